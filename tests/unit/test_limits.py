"""Payload size checks: pure, so the messages are checked here without a server."""

from gecko_temporal import Workflow
from gecko_temporal.core.limits import (
    PAYLOAD_LIMIT,
    PAYLOAD_WARN,
    SizeTable,
    human,
    json_size,
    node_input_problem,
    output_problem,
)

MB = 1024 * 1024


def test_json_size_counts_escapes_as_temporal_sends_them():
    assert json_size("abc") == 5
    assert json_size('"x"') == 7  # quotes are escaped inside a JSON string
    assert json_size("é") == 8  # non-ASCII is sent as \u00e9


def test_human_sizes():
    assert (human(12), human(2048), human(3 * MB // 2)) == ("12 B", "2.0 KB", "1.5 MB")


def test_size_table_names_the_biggest_entries_first():
    table = SizeTable({"small": '"a"', "big": '"' + "x" * 5000 + '"', "mid": '"' + "y" * 900 + '"'})
    assert table.total == sum(table.sizes.values())
    assert table.biggest(count=2) == '"big" 4.9 KB, "mid" 913 B, ...'
    assert table.of(["small"]) == table.sizes["small"] and table.of(["nope"]) == 0


def test_a_small_node_input_is_fine():
    state = SizeTable({"k": '"v"'})
    assert node_input_problem(
        "n", input_size=10, state=state, reads=None, history=SizeTable({}), history_names=None
    ) == (None, None)


def test_state_over_the_limit_fails_naming_the_node_the_keys_and_reads():
    state = SizeTable({"a": '"' + "x" * (MB + 100) + '"', "b": '"' + "y" * (MB + 100) + '"', "c": "1"})
    error, warning = node_input_problem(
        "Summarise", input_size=5, state=state, reads=None, history=SizeTable({"Fetch": '"ok"'}), history_names=None
    )
    assert warning is None
    assert error.startswith(
        'node "Summarise" would receive 2.0 MB per call (its input 5 B; state 2.0 MB: "a" 1.0 MB, "b" 1.0 MB, "c" 8 B;'
    )
    assert "over Temporal's 2.0 MB payload limit; declare reads=[...] with the state keys it uses, or keep" in error
    assert "history=" not in error  # its outputs weigh nothing: no advice about them


def test_declared_reads_keep_big_keys_out_of_the_count():
    state = SizeTable({"a": '"' + "x" * (3 * MB) + '"', "small": "1"})
    assert node_input_problem("n", input_size=5, state=state, reads=["small"], history=None, history_names=None) == (
        None,
        None,
    )


def test_history_between_the_warning_and_the_limit_warns_and_suggests_history():
    outputs = SizeTable({"Step1": '"' + "z" * (PAYLOAD_WARN + 10) + '"'})
    error, warning = node_input_problem(
        "Step9", input_size=2, state=SizeTable({}), reads=None, history=outputs, history_names=None
    )
    assert error is None
    assert warning.startswith('node "Step9" would receive')
    assert "warning size; declare history=[...] with the nodes whose outputs it reads" in warning


def test_a_node_without_context_counts_only_its_input():
    error, _ = node_input_problem(
        "n", input_size=PAYLOAD_LIMIT, state=None, reads=None, history=None, history_names=None
    )
    assert "(its input 2.0 MB)" in error and "declare" not in error


def test_output_over_the_limit_names_the_writes():
    assert output_problem('node "w"', '"ok"', {"k": '"small"'}) is None
    error = output_problem('node "w"', '"ok"', {"blob": '"' + "x" * (2 * MB) + '"'})
    assert error.startswith(
        'the output of node "w" is 2.0 MB (its return value 8 B; state writes 2.0 MB: "blob" 2.0 MB)'
    )
    assert "Next" not in error
    assert output_problem('node "j"', "null", {}, jump_input='"' + "x" * (2 * MB) + '"') is not None


def test_the_thresholds_are_temporals_512_kib_warning_and_2_mib_limit():
    """README: over 512 KiB warns, over 2 MiB fails; measured on what is shipped, framing included."""
    from gecko_temporal.core.limits import FRAME

    assert (PAYLOAD_WARN, PAYLOAD_LIMIT) == (512 * 1024, 2 * MB)

    def problem(size):
        return node_input_problem(
            "n", input_size=size - FRAME, state=None, reads=None, history=None, history_names=None
        )

    assert problem(PAYLOAD_WARN) == (None, None)
    error, warning = problem(PAYLOAD_WARN + 1)
    assert error is None and warning == (
        'node "n" would receive 512.0 KB per call (its input 504.0 KB), over '
        "Temporal's 512.0 KB warning size; keep large data outside the run "
        "(write it to a file or a store and pass its path)"
    )
    error, warning = problem(PAYLOAD_LIMIT)
    assert error is None and warning is not None
    error, warning = problem(PAYLOAD_LIMIT + 1)
    assert warning is None and "over Temporal's 2.0 MB payload limit" in error


def test_output_limit_counts_value_writes_and_jump_input():
    from gecko_temporal.core.limits import FRAME

    room = PAYLOAD_LIMIT - FRAME
    assert output_problem('node "n"', "x" * (room - 2), {}) is None  # json_size adds the two quotes
    assert output_problem('node "n"', "x" * (room - 1), {}) is not None
    half = "x" * (room // 2)
    assert output_problem('node "n"', half, {}, jump_input=half) is not None
    assert output_problem('node "n"', "1", {"k": half}) is None
    message = output_problem('node "n"', half, {"k": half})
    assert message.startswith(
        'the output of node "n" is 2.0 MB (its return value 1020.0 KB; state writes 1020.0 KB: "k" 1020.0 KB), over'
    )


def test_human_switches_unit_at_exactly_one_unit():
    assert (human(1023), human(1024), human(MB - 1), human(MB)) == ("1023 B", "1.0 KB", "1024.0 KB", "1.0 MB")


def test_biggest_of_named_entries_ties_by_name():
    table = SizeTable({"b": '"x"', "a": '"x"', "mid": '"' + "y" * 900 + '"'})
    assert table.biggest(["a", "b", "gone"]) == '"a" 12 B, "b" 12 B'
    assert table.biggest(["b", "mid"], count=1) == '"mid" 913 B, ...'


def _state_of(size_bytes: int) -> SizeTable:
    table = SizeTable({"s": '"' + "x" * size_bytes + '"'})
    return table


def test_the_fix_names_reads_only_when_state_weighs_a_tenth_of_the_total():
    from gecko_temporal.core.limits import FRAME

    state = _state_of(60_000)
    s = state.total
    at_tenth = 9 * s - FRAME  # input size that makes state exactly a tenth of the total
    _, warning = node_input_problem("n", input_size=at_tenth, state=state, reads=None, history=None, history_names=None)
    assert "declare reads=[...]" in warning
    _, warning = node_input_problem(
        "n", input_size=at_tenth + 1, state=state, reads=None, history=None, history_names=None
    )
    assert "declare" not in warning and f'state {human(s)}: "s"' in warning


def test_the_fix_names_history_only_when_outputs_weigh_a_tenth_of_the_total():
    from gecko_temporal.core.limits import FRAME

    history = _state_of(60_000)
    h = history.total
    at_tenth = 9 * h - FRAME
    _, warning = node_input_problem(
        "n", input_size=at_tenth, state=None, reads=None, history=history, history_names=None
    )
    assert "declare history=[...]" in warning
    _, warning = node_input_problem(
        "n", input_size=at_tenth + 1, state=None, reads=None, history=history, history_names=None
    )
    assert "declare" not in warning


def test_the_whole_message_for_state_history_and_the_run_input():
    state, history = _state_of(300_000), _state_of(300_000)
    _, warning = node_input_problem(
        "n", input_size=10, state=state, reads=None, history=history, history_names=None, run_input_size=2048
    )
    assert warning == (
        'node "n" would receive 596.0 KB per call (its input 10 B; state 293.0 KB: "s" 293.0 KB; node outputs '
        "293.0 KB: \"s\" 293.0 KB; the run's input 2.0 KB), over Temporal's 512.0 KB warning size; declare "
        "reads=[...] with the state keys it uses and history=[...] with the nodes whose outputs it reads, or keep "
        "large data outside the run (write it to a file or a store and pass its path)"
    )


def test_declared_names_limit_what_is_counted_and_an_empty_part_lists_no_keys():
    history = SizeTable({"big": '"' + "x" * 600_000 + '"', "small": '"s"'})
    assert node_input_problem("n", input_size=10, state=None, reads=None, history=history, history_names=["small"]) == (
        None,
        None,
    )
    _, warning = node_input_problem(
        "n",
        input_size=600_000,
        state=SizeTable({}),
        reads=["k"],
        history=SizeTable({}),
        history_names=[],
        run_input_size=0,
    )
    assert "(its input 585.9 KB; state 0 B; node outputs 0 B)" in warning
    big_run_input = node_input_problem(
        "n", input_size=10, state=None, reads=None, history=None, history_names=None, run_input_size=600_000
    )[1]
    assert "the run's input 585.9 KB" in big_run_input


def test_the_message_names_only_the_declared_keys_and_outputs():
    table = SizeTable({"declared": '"' + "x" * 600_000 + '"', "other": '"' + "y" * 900_000 + '"'})
    _, state_warning = node_input_problem(
        "n", input_size=1, state=table, reads=["declared"], history=None, history_names=None
    )
    _, history_warning = node_input_problem(
        "n", input_size=1, state=None, reads=None, history=table, history_names=["declared"]
    )
    assert 'state 586.0 KB: "declared" 586.0 KB)' in state_warning and '"other"' not in state_warning
    assert 'node outputs 586.0 KB: "declared" 586.0 KB)' in history_warning and '"other"' not in history_warning


def test_child_session_ids_that_fit_stay_as_they_were_and_longer_ones_are_hashed_to_fit():
    from gecko_temporal.core.limits import ID_LIMIT, child_session_id, id_size

    assert child_session_id("sess", "Kid", 3) == "sess.Kid.3"
    long_a = child_session_id("s" * 998, "Kid", 1)
    long_b = child_session_id("s" * 998, "Kid", 2)
    assert id_size(long_a) == ID_LIMIT and long_a.endswith(".1") and long_a != long_b
    assert long_a == child_session_id("s" * 998, "Kid", 1)  # stable on replay
    multibyte = child_session_id("é" * 700, "Kïd", 1)
    assert id_size(multibyte) <= ID_LIMIT


def test_a_name_over_temporals_id_limit_is_named_with_its_size():
    from gecko_temporal.core.limits import name_problem

    assert name_problem("x", "a" * 1000) is None
    assert "1,001 bytes" in (name_problem("session_id", "a" * 1001) or "")


def test_a_send_instance_does_not_carry_its_sources_list_of_sends():
    from gecko_temporal import Send
    from gecko_temporal.core import codec
    from gecko_temporal.core.inputs import NodeInputs
    from gecko_temporal.core.scheduler import Task

    wf = Workflow("Fan")
    wf.add_node("split", lambda x: [Send("work", i) for i in range(3)])
    wf.add_node("work", lambda x, context: x).set_entry_point("split")
    spec = wf.compile()
    work = next(n for n in spec.nodes if n.name == "work")
    outputs = {"start": '"s"', "split": codec.encode([Send("work", i) for i in range(500)])}
    inputs = NodeInputs(spec.key, '"x"')

    def history(task: Task) -> dict:
        arg, _ = inputs.build(work, task, member=None, takes_context=True, session_id="s", state={}, outputs=outputs)
        return arg.history

    assert history(Task("work", "1", 2, send=1, sends=500, source="split")) == {"start": '"s"'}
    assert set(history(Task("work", "1", 2))) == {"start", "split"}  # not a Send instance: all
    outputs["split"] = '"a value its router fanned out"'
    assert set(history(Task("work", "1", 2, send=1, sends=2, source="split"))) == {"start", "split"}


def test_sends_past_the_payload_limit_fail_naming_node_count_size_and_fix():
    from gecko_temporal.core.limits import sends_problem

    assert sends_problem('node "fan"', 1000, 1024, 0) is None
    problem = sends_problem('node "fan"', 1000, 3_800_000, 1)
    assert problem and 'node "fan" returned 1,000 Sends' in problem and "3.6 MB by Send 1" in problem
    assert "GECKO_PAYLOAD_STORE" in problem


# -- the run's result, its continue-as-new snapshot, and a payload store's raised limit -------------
def test_limit_name_says_whose_limit_it_is():
    from gecko_temporal.core.limits import limit_name

    assert limit_name(PAYLOAD_LIMIT) == "Temporal's 2.0 MB payload limit"
    assert limit_name(PAYLOAD_LIMIT - 1) == "Temporal's 2.0 MB payload limit"
    assert limit_name(PAYLOAD_LIMIT + 1) == "the payload store's 2.0 MB payload limit"
    assert limit_name(64 * MB) == "the payload store's 64.0 MB payload limit"


def test_a_result_too_big_to_return_names_the_last_nodes():
    from gecko_temporal.core.limits import FRAME, result_problem

    fits = "x" * (PAYLOAD_LIMIT - FRAME - 2)  # json_size adds the two quotes
    assert result_problem(fits, ["Last"]) is None
    assert result_problem(fits + "x", ["Last"]) == (
        "Last",
        "the run's result (the output of 'Last') is 2.0 MB, over Temporal's 2.0 MB payload limit; "
        "make the last node return something smaller (a summary or a file path)",
    )
    node, message = result_problem("x" * (3 * MB), ["A", "B"])
    assert node == "A, B"
    assert message.startswith("the run's result (the output of 'A', 'B') is 3.0 MB, over Temporal's")
    assert result_problem("x" * (3 * MB), ["A"], limit=4 * MB) is None
    assert (
        "over the payload store's 2.5 MB payload limit" in result_problem("x" * (3 * MB), ["A"], limit=5 * MB // 2)[1]
    )


def test_a_snapshot_too_big_to_continue_as_new_names_the_biggest_state_keys():
    from gecko_temporal.core.limits import FRAME, snapshot_problem

    state = {"a": '"' + "x" * 2000 + '"', "b": "1", "c": "[]", "d": "{}"}
    assert snapshot_problem("x" * (PAYLOAD_LIMIT - FRAME), "wf-1", state) is None
    assert snapshot_problem("x" * (PAYLOAD_LIMIT - FRAME + 1), "wf-1", state) == (
        "run wf-1 cannot continue as new: its snapshot is 2.0 MB (state: "
        '"a" 2.0 KB, "c" 9 B, "d" 9 B, ...), over Temporal\'s 2.0 MB payload limit; it goes on in this run, '
        "which Temporal ends at 51,200 events. Keep large data out of state (write it to a file and keep the path)"
    )
    assert snapshot_problem("x" * (3 * MB), "wf", {}, limit=4 * MB) is None


def test_an_output_over_a_raised_limit_does_not_suggest_the_payload_store_again():
    room = PAYLOAD_LIMIT - 8 * 1024
    assert output_problem('node "n"', "x" * (room - 1), {}) == (
        'the output of node "n" is 2.0 MB (its return value 2.0 MB), over Temporal\'s 2.0 MB payload limit; '
        "set GECKO_PAYLOAD_STORE (see docs/payloads.md) or keep large data outside the run "
        "(write it to a file or a store and pass its path)"
    )
    assert output_problem('node "n"', "x" * (room - 1), {}, limit=4 * MB) is None
    assert output_problem('node "n"', "x" * (5 * MB), {}, limit=4 * MB) == (
        'the output of node "n" is 5.0 MB (its return value 5.0 MB), over the payload store\'s 4.0 MB payload '
        "limit; keep large data outside the run (write it to a file or a store and pass its path)"
    )


def test_under_a_raised_limit_nothing_warns_and_the_error_names_the_store():
    five = 5 * MB
    assert node_input_problem(
        "n", input_size=3 * MB, state=None, reads=None, history=None, history_names=None, limit=4 * MB
    ) == (None, None)
    error, warning = node_input_problem(
        "n", input_size=five, state=None, reads=None, history=None, history_names=None, limit=4 * MB
    )
    assert warning is None
    assert error == (
        'node "n" would receive 5.0 MB per call (its input 5.0 MB), over the payload store\'s 4.0 MB payload '
        "limit; keep large data outside the run (write it to a file or a store and pass its path)"
    )


def test_size_table_counts_name_and_framing_and_shows_three_by_default():
    table = SizeTable({"a": "1", "bb": "22", "ccc": "333", "dddd": "4444"})
    assert table.sizes == {"a": 8, "bb": 10, "ccc": 12, "dddd": 14}  # quoted text + name + 4
    assert table.of(None) == table.total == 44
    assert table.of(["a", "dddd"]) == 22
    assert table.biggest() == '"dddd" 14 B, "ccc" 12 B, "bb" 10 B, ...'
    assert SizeTable({"a": "1", "bb": "22", "ccc": "333"}).biggest() == '"ccc" 12 B, "bb" 10 B, "a" 8 B'
    assert table.biggest(["a", "bb", "ccc"]) == '"ccc" 12 B, "bb" 10 B, "a" 8 B'
