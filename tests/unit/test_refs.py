"""References and deltas (core/refs.py), without a server: what crosses the boundary, and that the
workflow rebuilds exactly the texts the node made."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gecko_temporal.core import codec
from gecko_temporal.core.refs import (
    INPUT,
    MIN_REF,
    Composer,
    RefError,
    Unpacked,
    ValueTable,
    common_prefix,
    digest,
    expand_output,
    input_refs,
    pack_input,
)


def msg(role, turn, size):
    return {"role": role, "turn": turn, "content": "w" * size}


def through(table, owner, arg, node_output):
    """A node's round trip: the input packed by the workflow, resolved and run by the activity
    (``node_output(plain input) -> NodeOutput plain``), its output packed, expanded by the workflow.
    Returns (shipped input, shipped output, expanded output)."""
    shipped_in = pack_input(arg, table, owner)
    found = {k: table.get(k) for k in input_refs(shipped_in)}
    unpacked = Unpacked(json.loads(json.dumps(shipped_in)), found)
    out = node_output(unpacked.plain)
    shipped_out = json.loads(json.dumps(unpacked.pack(json.loads(json.dumps(out)))))
    expanded = expand_output(json.loads(json.dumps(shipped_out)), table, owner, "N")
    table.release(owner)
    return shipped_in, shipped_out, expanded


def node_arg(input="null", state=None, history=None):
    return {
        "graph": "g",
        "node": "N",
        "input": input,
        "session_id": "s",
        "step": 1,
        "member": None,
        "state": state,
        "history": history,
        "run_input": "null",
        "payload_limit": None,
    }


def test_short_texts_travel_as_they_are_and_long_ones_as_references_the_table_holds_until_released():
    table = ValueTable()
    long = codec.encode(["x" * MIN_REF])
    assert table.ref("a", "[1]") == "[1]"
    ref = table.ref("a", long)
    assert ref == "@" + digest(long) and table.get(ref[1:]) == long
    table.ref("b", long)  # a second holder
    table.release("a")
    assert table.get(ref[1:]) == long  # b still holds it
    table.release("b")
    assert table.get(ref[1:]) is None and len(table) == 0


def test_an_appended_list_ships_only_the_new_item_and_the_workflow_rebuilds_the_exact_text():
    table = ValueTable()
    history = [msg("assistant", i, 2000) for i in range(30)]
    state = {"messages": codec.encode(history), "title": codec.encode("t")}

    def node(plain):
        messages = codec.decode(plain["state"]["messages"])
        messages.append(msg("tool", 30, 1000))
        return {"value": "null", "jump": None, "writes": {"messages": codec.encode(messages)}, "deletes": []}

    shipped_in, shipped_out, expanded = through(table, "1.1", node_arg(state=state), node)
    assert len(json.dumps(shipped_in)) < 400  # a reference, not 60 KB
    assert shipped_in["state"]["title"] == '"t"'  # short: as it is
    assert 1000 < len(json.dumps(shipped_out)) < 1300  # the new message only
    assert expanded["writes"]["messages"] == codec.encode([*history, msg("tool", 30, 1000)])


def test_a_next_value_holds_its_jump_input_once():
    from gecko_temporal import Next

    table = ValueTable()
    conversation = [msg("assistant", i, 2000) for i in range(20)]

    def node(plain):
        messages = codec.decode(plain["input"])
        messages.append(msg("tool", 20, 1000))
        result = Next("Model", messages)
        return {
            "value": codec.encode(result),
            "jump": {"node": "Model", "input": codec.encode(messages), "source": "N"},
            "writes": {},
            "deletes": [],
        }

    _, shipped_out, expanded = through(table, "1.2", node_arg(input=codec.encode(conversation)), node)
    assert len(json.dumps(shipped_out)) < 1400  # not two copies of 40 KB
    grown = [*conversation, msg("tool", 20, 1000)]
    assert expanded["jump"]["input"] == codec.encode(grown)
    assert expanded["value"] == codec.encode(Next("Model", grown))


def test_an_unchanged_value_written_back_is_a_reference():
    table = ValueTable()
    text = codec.encode(["y" * 1000])

    def node(plain):
        return {"value": plain["state"]["k"], "jump": None, "writes": {"k": plain["state"]["k"]}, "deletes": []}

    _, shipped_out, expanded = through(table, "1.3", node_arg(state={"k": text}), node)
    assert shipped_out["writes"]["k"] == shipped_out["value"] == "@" + digest(text)
    assert expanded["writes"]["k"] == expanded["value"] == text


def test_a_reference_to_a_value_the_run_does_not_hold_is_a_clear_error():
    table = ValueTable()
    with pytest.raises(RefError, match=r'state key .k. of node "N" names value 0123456789ab\.\.\., which this run'):
        expand_output({"value": "null", "writes": {"k": "@" + "0123456789abcdef" * 2}}, table, "o", "N")
    with pytest.raises(RefError, match="malformed composition"):
        table.expand("o", "+[not json", "the output value")
    with pytest.raises(RefError, match="malformed part"):
        table.expand("o", '+[["abc", "x", 2]]', "the output value")


def test_the_query_answer_stays_within_its_budget_but_always_gives_one():
    table = ValueTable()
    keys = [table.ref("o", str(i) * 600)[1:] for i in range(1, 6)]
    assert list(table.answer(keys, budget=1300)) == keys[:2]
    assert list(table.answer(keys[4:], budget=10)) == keys[4:]
    assert table.answer(["nope", 3]) == {}


def test_the_live_table_is_found_by_run_id_while_the_run_lives():
    import gc

    from gecko_temporal.core.refs import live_table

    table = ValueTable("run-1")
    assert live_table("run-1") is table
    del table
    gc.collect()
    assert live_table("run-1") is None


def test_a_write_grows_from_the_received_text_it_shares_most_with():
    texts = ["[" + "1," * 200 + "1]", "[" + "1," * 300 + "1]", "[" + "3," * 300 + "1]"]
    received = {digest(t): t for t in texts}
    composer = Composer(received)
    new = "[" + "1," * 250 + "2]"
    packed = composer.write(new, prefer=digest(texts[0]))
    assert json.loads(packed[1:]) == [[digest(texts[1]), 0, 1 + 2 * 250], "2]"]
    table = ValueTable()
    for t in texts:
        table.ref("o", t)
    assert table.expand("o", packed) == new
    assert INPUT not in received


@given(st.text(max_size=400), st.text(max_size=400))
def test_common_prefix_is_the_longest_shared_prefix(a, b):
    n = common_prefix(a, b)
    assert a[:n] == b[:n]
    assert n == min(len(a), len(b)) or a[n] != b[n]


@given(st.lists(st.text(min_size=0, max_size=60), max_size=40), st.lists(st.text(max_size=60), max_size=5))
def test_any_grown_list_expands_to_exactly_what_the_node_made(items, more):
    table = ValueTable()
    base = codec.encode(items)

    def node(plain):
        grown = codec.decode(plain["state"]["k"]) + more
        return {"value": codec.encode(grown), "jump": None, "writes": {"k": codec.encode(grown)}, "deletes": []}

    _, _, expanded = through(table, "o", node_arg(state={"k": base}), node)
    assert expanded["writes"]["k"] == expanded["value"] == codec.encode(items + more)
    assert len(table) == 0
