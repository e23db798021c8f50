"""Live control of a run (core/control.py), exactly: the messages a client gets back for what it sent,
the bounds of what a run keeps, the whole gecko_state answer, redirects from outside, and the
gecko_rewound signal. All of it is what `gecko-temporal status`, the CLI and clients read."""

from __future__ import annotations

import json
import math

from gecko_temporal import WaitForInput, Workflow
from gecko_temporal.core import control
from gecko_temporal.core.control import (
    EDIT_LIMIT,
    PREVIEW_CHARS,
    REASON_CHARS,
    VALUE_LIMIT,
    Arg,
    RunControl,
    parse_edit,
    parse_request,
    preview,
    rejection,
    shown_value,
)
from gecko_temporal.core.scheduler import Scheduler
from gecko_temporal.core.spec import Jump, RunSnapshot
from tests.pipelines.core_parts import review_control


# -- previews and rejections ------------------------------------------------------------------------
def test_a_preview_shows_one_argument_bare_several_as_a_list_and_unreadable_ones_by_encoding():
    assert preview([Arg({"node": "é"})]) == '{"node": "é"}'
    assert preview([Arg(1), Arg("a")]) == '[1, "a"]'
    assert preview([Arg(problem="bad", encoding="binary/x"), Arg(problem="bad")]) == (
        '["<unreadable binary/x>", "<unreadable payload>"]'
    )
    assert preview([Arg(b"\x00")]) == "\"b'\\\\x00'\""  # not JSON: its repr, as a JSON string
    loop: list = []
    loop.append(loop)
    assert preview([Arg(loop)]) == "[[[...]]]"  # cannot be JSON at all: the repr of what was sent


def test_a_preview_is_cut_after_exactly_preview_chars():
    fits = "x" * (PREVIEW_CHARS - 2)  # plus the two quotes
    assert preview([Arg(fits)]) == f'"{fits}"'
    assert preview([Arg(fits + "y")]) == f'"{fits}y... (301 characters in all)'


def test_a_rejection_keeps_a_reason_of_exactly_reason_chars():
    assert rejection("gecko_next", [Arg(1)], "r" * REASON_CHARS, 3) == {
        "signal": "gecko_next",
        "request": "1",
        "reason": "r" * REASON_CHARS,
        "step": 3,
    }
    assert rejection("gecko_next", [], "r" * (REASON_CHARS + 1), 3)["reason"] == "r" * REASON_CHARS + "..."


# -- requests ---------------------------------------------------------------------------------------
def test_what_a_request_must_be_is_said_exactly():
    assert parse_request("jump", []) == (
        None,
        'a jump takes exactly one argument, a JSON object like {"node": "Name", "input": ...}; got 0 arguments',
    )
    request, problem = parse_request("answer", [Arg([1])])
    assert request is None and problem.endswith('needs a JSON object like {"node": "Name", "value": ...}, got an array')
    six = {"node": "A", **{f"f{i}": i for i in range(6)}}
    assert parse_request("jump", [Arg(six)]) == (
        None,
        "unknown field(s) 'f0', 'f1', 'f2', 'f3', 'f4' in the jump (valid: 'node', 'input')",
    )


def test_the_type_a_client_sent_is_named_in_json_words():
    def why(node):
        return parse_request("jump", [Arg({"node": node})])[1].rsplit("got ", 1)[1]

    assert [why(v) for v in ({}, [], "", True, 1, 1.5, None, b"x", {1})] == [
        "an object",
        "an array",
        "a string",
        "a boolean",
        "a number",
        "a number",
        "null",
        "raw bytes (send JSON)",
        "set",
    ]


def test_shown_values_are_parsed_up_to_exactly_the_limit_then_previewed():
    fits = '"' + "v" * (VALUE_LIMIT - 2) + '"'
    assert shown_value(fits) == ("v" * (VALUE_LIMIT - 2), False)
    over = '"' + "v" * (VALUE_LIMIT - 1) + '"'
    assert shown_value(over) == (
        '<65,537 characters of JSON, too big to show; starts with: "' + "v" * 199 + ">",
        True,
    )


# -- the gecko_state answer --------------------------------------------------------------------------
def test_the_whole_gecko_state_answer():
    answer = control.state_answer(
        workflow="W",
        status="running",
        state={"a": "1"},
        completed=("A",),
        running=("B",),
        waiting={"R": {"prompt": "ok?"}},
        step=5,
        layer=3,
        run=2,
        nodes=("A", "B", "R"),
        pending_jumps=[Jump("A", '"again"', "update")],
        rejected=[{"request": "1", "reason": "r", "step": 1}, {"signal": "gecko_answer", "reason": "r"}],
        conflicts=("a",),
        edits=({"step": 1},),
        pending_edits=[{"values": {"k": "1", "j": "2"}, "delete": ["z"], "source": "update"}],
        rewound_from={"run_id": "r0", "step": 1, "time": "T"},
    )
    assert answer == {
        "workflow": "W",
        "status": "running",
        "state": {"a": 1},
        "truncated": [],
        "completed": ["A"],
        "running": ["B"],
        "waiting": {"R": {"prompt": "ok?"}},
        "step": 5,
        "layer": 3,
        "run": 2,
        "nodes": ["A", "B", "R"],
        "pending_jumps": [{"node": "A", "input": "again", "source": "update"}],
        # a record without a signal name is an old run's rejected jump
        "rejected_jumps": [{"request": "1", "reason": "r", "step": 1}],
        "rejected": [{"request": "1", "reason": "r", "step": 1}, {"signal": "gecko_answer", "reason": "r"}],
        "conflicts": ["a"],
        "state_edits": [{"step": 1}],
        "pending_edits": [{"set": ["k", "j"], "deleted": ["z"], "source": "update"}],
        "rewound_from": {"run_id": "r0", "step": 1, "time": "T"},
    }


def test_the_run_control_answer_carries_its_counters_edits_and_origin():
    ctl, _ = review_control()
    ctl.clock = lambda: "T1"
    ctl.reseeded()  # the run was reset: the rewind's signal is taken
    ctl.signal("gecko_rewound", [Arg({"from_run": "r0", "to_step": 2, "values": {"k": 1}})])
    answer = ctl.state_answer(
        status="running", state={}, completed=[], running=[], step=4, layer=3, run=2, conflicts=["c"]
    )
    assert (answer["step"], answer["layer"], answer["run"], answer["conflicts"]) == (4, 3, 2, ["c"])
    assert answer["rewound_from"] == {"run_id": "r0", "step": 2, "time": "T1"}
    assert answer["pending_edits"] == [{"set": ["k"], "deleted": [], "source": "rewind"}]
    ctl.apply_edits({}, step=4, layer=3)
    after = ctl.state_answer(status="running", state={}, completed=[], running=[], step=4, layer=3, run=2, conflicts=[])
    assert after["state_edits"] == [
        {"step": 4, "layer": 3, "time": "T1", "source": "rewind", "set": ["k"], "deleted": []}
    ]
    assert after["pending_edits"] == []


# -- state edits --------------------------------------------------------------------------------------
def test_every_edit_problem_is_said_exactly():
    six = [f"f{i}" for i in range(6)]
    assert parse_edit({"a": 1}, None, six, "update") == (
        None,
        "unknown field(s) 'f0', 'f1', 'f2', 'f3', 'f4' in update_state (valid: 'values', 'delete')",
    )
    assert parse_edit("x", None, [], "update") == (
        None,
        '"values" must be a JSON object of state keys to set, got a string',
    )
    assert parse_edit(None, [1], [], "update") == (None, '"delete" must be a list of state keys (non-empty strings)')
    assert parse_edit({}, [], [], "update") == (
        None,
        'update_state needs "values" to set or "delete" keys to remove; both are empty',
    )
    assert parse_edit({"": 1}, None, [], "update") == (None, "state keys must be non-empty strings")
    keys = {k: 1 for k in six}
    assert parse_edit(keys, six, [], "update") == (
        None,
        "keys both set and deleted: 'f0', 'f1', 'f2', 'f3', 'f4'; pick one",
    )
    _, problem = parse_edit({"a": object()}, None, [], "update")
    assert problem.startswith("state key 'a' of update_state contains a object (builtins.object), which cannot")
    edit, problem = parse_edit({"a": math.nan}, None, [], "update")  # a NaN is a float: carried tagged
    assert problem is None and edit is not None and edit["values"] == {"a": '{"__gecko__":"float","data":"nan"}'}


def test_an_edit_may_write_exactly_edit_limit_characters_counted_over_all_keys():
    fits = "x" * (EDIT_LIMIT - 1 - 2)  # key "k" (1) and the value's two quotes
    edit, problem = parse_edit({"k": fits}, None, [], "update")
    assert problem is None and edit == {"values": {"k": f'"{fits}"'}, "delete": [], "source": "update"}
    assert parse_edit({"k": fits + "x"}, None, [], "update") == (
        None,
        "update_state values are over 1,048,576 characters of JSON (at key 'k'); "
        "keep big data in files and put paths in state",
    )
    half = "x" * (EDIT_LIMIT // 2)
    _, problem = parse_edit({"a": half, "b": half}, None, [], "update")
    assert problem is not None and "(at key 'b')" in problem


def test_update_state_takes_one_object():
    ctl, _ = review_control()
    assert ctl.check_edit([]) == (
        None,
        'update_state takes exactly one argument, a JSON object like {"values": {"key": ...}, "delete": ["key"]}; '
        "got 0 arguments",
    )


def test_applying_edits_deletes_missing_keys_quietly_and_says_whether_anything_changed():
    ctl, _ = review_control()
    assert ctl.apply_edits({"a": "1"}, step=1, layer=1) is False
    ctl.queue_edit({"values": {}, "delete": ["missing"], "source": "update"})
    state = {"a": "1"}
    assert ctl.apply_edits(state, step=1, layer=1) is True and state == {"a": "1"}


# -- answers and signals ------------------------------------------------------------------------------
def test_an_answer_for_a_node_that_does_not_wait_names_the_ones_that_do():
    ctl, _ = review_control()
    assert ctl.check_answer([Arg({"node": "Draft", "value": 1})]) == (
        None,
        '"Draft" is not a WaitForInput node (those are: Review) nor a node waiting in context.interrupt() '
        "(waiting now: none)",
    )
    ctl.start_waiting("Draft", "", "null", "T", None, payload='"ok?"', index=0)
    ctl.start_waiting("Publish", "", "null", "T", None, payload='"ok?"', index=1)
    ctl.stop_waiting("Draft")
    assert ctl.check_answer([Arg({"node": "Draft", "value": 1})])[1].endswith("(waiting now: Publish)")
    wf = (
        Workflow("NoWaits")
        .add_node("A", lambda x: x)
        .add_node("B", lambda x: x)
        .add_edge("A", "B")
        .set_entry_point("A")
    )
    spec = wf.compile()
    plain = RunControl(spec, Scheduler(spec), RunSnapshot())
    assert "(those are: none)" in plain.check_answer([Arg({"node": "A", "value": 1})])[1]


def test_waiting_records_what_a_person_sees():
    ctl, _ = review_control()
    ctl.start_waiting("Review", "Approve?", '{"d":1}', "T0", 60.0)
    assert ctl.waiting == {"Review": {"prompt": "Approve?", "input": {"d": 1}, "since": "T0", "timeout": 60.0}}
    ctl.start_waiting("Draft", "", '"x"', "T1", None, payload='"sure?"', index=2)
    assert ctl.waiting["Draft"] == {
        "prompt": "",
        "input": "x",
        "since": "T1",
        "timeout": None,
        "payload": "sure?",
        "interrupt": 2,
        "interrupted": True,
    }
    ctl.stop_waiting("Nobody")  # not waiting: nothing to do
    assert list(ctl.waiting) == ["Review", "Draft"]


def test_an_unknown_signal_says_what_each_signal_is_for():
    ctl, _ = review_control()
    assert ctl.signal("hello", [])["reason"] == (
        'unknown signal "hello" (valid: "gecko_next", "gecko_answer"); jump with gecko_next, answer a WaitForInput node with gecko_answer'
    )


def test_a_request_that_breaks_the_handler_costs_only_that_request():
    class Hostile(dict):
        def __iter__(self):
            raise RuntimeError("no")

    ctl, sched = review_control()
    entry = ctl.signal("gecko_next", [Arg(Hostile(node="Publish"))])
    assert entry["reason"] == "could not be handled: RuntimeError"
    assert ctl.rejected == [entry] and sched.jumps == []


# -- redirects from outside ----------------------------------------------------------------------------
def test_only_a_jump_from_outside_redirects_and_it_keeps_the_runs_input_jump():
    ctl, sched = review_control()
    own = Jump("Publish", "1", 'node "Draft"')
    sched.jumps = [own]
    assert ctl.apply_redirects() is False and sched.jumps == [own]
    start, outside = Jump("Draft", "0", "input"), Jump("Publish", "2", "update")
    sched.jumps = [start, own, outside]
    sched.sends = [Jump("Review", "3", "Draft")]
    assert ctl.apply_redirects() is True
    assert sched.jumps == [start, outside] and sched.sends == []


def test_an_eager_run_applies_each_outside_jump_once():
    ctl, sched = review_control()
    first = Jump("Publish", "1", "signal")
    sched.jumps = [first]
    seen: list[Jump] = []
    assert ctl.apply_redirects(seen) is True and seen == [first]
    assert ctl.apply_redirects(seen) is False and seen == [first]  # already applied: waits for its target
    second = Jump("Publish", "1", "signal")  # equal, but another request
    sched.jumps = [first, second]
    assert ctl.apply_redirects(seen) is True and seen == [first, second] and seen[1] is second
    sched.jumps = [second]  # the first one ran
    assert ctl.apply_redirects(seen) is False and len(seen) == 1 and seen[0] is second


# -- the gecko_rewound signal ----------------------------------------------------------------------------
def test_a_malformed_rewound_signal_is_rejected_with_what_it_should_be():
    ctl, _ = review_control()
    why = "gecko_rewound takes one JSON object (sent by gecko-temporal rewind)"
    for args in ([], [Arg({}), Arg({})], [Arg(problem="bad")], [Arg([1])], [Arg({"a": 1}, problem="x")]):
        assert ctl.rewound(args) == why, args
    assert ctl.rewinds == 0 and ctl.rewound_from is None


def test_a_rewind_edit_that_is_wrong_rejects_the_rewind():
    ctl, _ = review_control()
    assert ctl.rewound([Arg({"values": [1]})]) == '"values" must be a JSON object of state keys to set, got an array'
    assert ctl.rewound([Arg({"delete": [""]})]) == '"delete" must be a list of state keys (non-empty strings)'
    assert ctl.rewinds == 0 and ctl.pending_edits == []


def test_a_rewind_without_an_edit_counts_and_queues_only_its_redo():
    ctl, sched = review_control()
    ctl.clock = lambda: "T"
    ctl.reseeded()
    ctl.reseeded()  # two resets: two rewind signals are taken
    redo = [
        "not an update",
        {"update": "gecko_jump", "args": [{"node": "Publish", "input": 5}]},
        {"update": "gecko_jump", "args": [{"node": "Nope"}]},
        {"update": "gecko_update_state", "args": [{"delete": ["d"]}]},
    ]
    assert ctl.rewound([Arg({"from_run": "r1", "to_step": 3, "redo": redo})]) is None
    assert ctl.rewound_from == {"run_id": "r1", "step": 3, "time": "T"}
    assert [(j.node, j.input, j.source) for j in sched.jumps] == [("Publish", "5", "update")]
    assert ctl.pending_edits == [{"values": {}, "delete": ["d"], "source": "update"}]
    # a redo that is not a list of at most 100 updates refuses the whole rewind signal
    assert ctl.rewound([Arg({"from_run": "r2", "to_step": 1, "redo": 5})]) == (
        '"redo" must be a list of at most 100 updates'
    )
    assert ctl.rewinds == 1
    assert ctl.rewound([Arg({"from_run": "r2", "to_step": 1, "delete": ["z"], "redo": []})]) is None
    assert ctl.rewinds == 2 and ctl.rewound_from["run_id"] == "r2"
    assert ctl.pending_edits[-1] == {"values": {}, "delete": ["z"], "source": "rewind"}


# -- what carries over and the state budget -------------------------------------------------------------
def test_where_a_rewound_run_came_from_survives_continue_as_new():
    origin = {"run_id": "r0", "step": 2, "time": "T"}
    ctl, _ = review_control(RunSnapshot(rewound_from=origin))
    assert ctl.rewound_from == origin
    answer = ctl.state_answer(
        status="running", state={}, completed=[], running=[], step=1, layer=1, run=2, conflicts=[]
    )
    assert answer["rewound_from"] == origin


def test_an_edit_applied_without_a_workflow_clock_has_an_empty_time():
    ctl, _ = review_control()
    ctl.queue_edit({"values": {"k": "1"}, "delete": [], "source": "update"})
    ctl.apply_edits({}, step=1, layer=1)
    assert ctl.edits[0]["time"] == ""


def test_the_lists_in_an_answer_problem_are_comma_separated():
    wf = Workflow("Two").add_node("A", lambda x: x).add_node("W1", WaitForInput("?")).add_node("W2", WaitForInput("?"))
    wf.add_edge("A", "W1").add_edge("W1", "W2").set_entry_point("A")
    spec = wf.compile()
    ctl = RunControl(spec, Scheduler(spec), RunSnapshot())
    ctl.start_waiting("X", "", "null", "T", None, payload="1", index=0)
    ctl.start_waiting("Y", "", "null", "T", None, payload="1", index=0)
    assert ctl.check_answer([Arg({"node": "A", "value": 1})])[1] == (
        '"A" is not a WaitForInput node (those are: W1, W2) nor a node waiting in context.interrupt() '
        "(waiting now: X, Y)"
    )


def test_the_state_shown_fits_the_budget_cutting_the_biggest_values_first_then_by_name():
    from gecko_temporal.core.control import STATE_BUDGET

    def value(chars: int) -> str:
        return '"' + "v" * (chars - 2) + '"'

    assert control.shown_state({"k": value(VALUE_LIMIT)})[1] == []  # exactly VALUE_LIMIT: shown
    keys = "abcdefghijklmnopq"
    # 16 entries of 65,535 + 1 (the key counts too) characters: exactly the budget, nothing cut
    exact = {k: value(VALUE_LIMIT - 1) for k in keys[:16]}
    assert sum(len(t) + len(k) for k, t in exact.items()) == STATE_BUDGET
    assert control.shown_state(exact)[1] == []
    # one character more, in "p": the biggest value is cut, not the first name
    assert control.shown_state(dict(exact, p=value(VALUE_LIMIT)))[1] == ["p"]
    # 17 equal entries: cutting one ("a", the first name) brings it to exactly the budget: done
    assert control.shown_state({k: value(VALUE_LIMIT - 1) for k in keys})[1] == ["a"]


def test_an_answer_is_called_an_answer_in_its_messages():
    problem = parse_request("answer", [])[1] or ""
    assert problem.startswith("an answer takes exactly one argument"), problem
    problem = parse_request("answer", [Arg({"value": 1})])[1] or ""
    assert problem.startswith('an answer needs "node"'), problem


def test_a_rejected_request_never_previews_a_value_read_from_the_payload_store():
    ctl, _ = review_control()
    stored = Arg({"spec": "another session's input " + "s" * 1000}, "json/plain", stored=True)
    entry = ctl.signal("gecko_next", [stored])
    assert entry is not None and entry["request"] == '"<a value from the payload store: not shown>"'
    assert "another session" not in json.dumps(ctl.rejected)
    entry = ctl.signal("gecko_next", [Arg({"spec": "sent inline"})])
    assert "sent inline" in entry["request"]  # what a client sent itself is still shown
