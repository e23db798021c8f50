"""The state merge and the reducers (core/state.py), exactly: which keys count as conflicts, the text a
reducer writes, and the messages of values a reducer cannot combine."""

from __future__ import annotations

import pytest

from gecko_temporal.core.errors import StateKeyError
from gecko_temporal.core.state import ReducerError, StateDelta, StateView, combine, merge_layer, reduce_value


def test_a_limited_view_of_an_unnamed_node_still_names_reads():
    with pytest.raises(StateKeyError) as info:
        StateView({"b": "1"}, limited_to=["b"])["a"]  # the worker ships only the declared keys
    assert str(info.value) == (
        "node \"\" read state key 'a' that it did not declare in reads=['b']; add it to reads or drop reads to "
        "receive all keys"
    )


def test_deleting_a_key_twice_in_a_layer_is_a_conflict_unless_the_key_has_a_reducer():
    state = {"x": "1", "r": "[1]"}
    deltas = [("A", StateDelta(deletes=["x", "r"])), ("B", StateDelta(deletes=["x", "r"]))]
    assert merge_layer(state, deltas, reducers={"r": "append"}) == ["x"]
    assert state == {}


def test_a_reducer_writes_compact_json_and_keeps_non_ascii_text():
    assert reduce_value("append", '["é"]', '{"k": "ü"}') == '["é",{"k":"ü"}]'
    assert reduce_value("replace", '"old"', '"new"') == '"new"'


def test_add_joins_lists_and_strings_of_the_same_kind_only():
    assert reduce_value("add", "[1]", "[2,3]") == "[1,2,3]"
    assert reduce_value("add", '"ab"', '"c"') == '"abc"'
    assert reduce_value("add", "2", "0.5") == "2.5"
    for old, new, why in [
        ("1", '"s"', "cannot add a str to a int"),
        ('"s"', "1.5", "cannot add a float to a str"),
        ("[1]", '"s"', "cannot add a str to a list"),
        ("null", '{"a":1}', "add needs a number, str or list, got a dict"),
        ("null", "true", "add needs a number, str or list, got a bool"),
    ]:
        with pytest.raises(ReducerError) as info:
            reduce_value("add", None if old == "null" else old, new, node="N", key="k")
        assert str(info.value).endswith(f'which reducer "add" cannot combine: {why}'), (old, new)


def test_kinds_in_messages_are_json_words_and_model_class_names():
    with pytest.raises(ReducerError) as info:
        reduce_value("extend", "[]", "null", node="N", key="k")
    assert str(info.value) == (
        'node "N" wrote state key \'k\' = null, which reducer "extend" cannot combine: '
        'extend needs a list, got a None (use "append" to add one item)'
    )
    model = '{"__gecko__":"app.models:Report","data":{"a":1}}'
    with pytest.raises(ReducerError) as info:
        reduce_value("merge", model, '{"b":2}', node="N", key="k")
    assert str(info.value).endswith("cannot combine: the value so far is a Report, not a dict")
    with pytest.raises(ReducerError) as info:
        reduce_value("merge", "[1]", '{"b":2}', node="N", key="k")
    assert str(info.value).endswith("cannot combine: the value so far is a list, not a dict")
    with pytest.raises(ReducerError) as info:
        reduce_value("append", '{"__gecko__":"datetime","data":"2024-01-01"}', "1", node="N", key="k")
    assert str(info.value).endswith("cannot combine: the value so far is a datetime, not a list")


def test_an_unknown_reducer_is_refused_naming_the_valid_ones():
    with pytest.raises(ReducerError) as info:
        reduce_value("sum", "1", "2")
    assert str(info.value) == (
        "state key '' names no reducer 'sum' (valid: replace, append, extend, add, merge, or a function of "
        "yours by qualified name, registered when the worker imports the module that builds the Workflow)"
    )
    assert (info.value.node, info.value.key) == ("", "")
    with pytest.raises(ReducerError) as info:
        reduce_value("sum", "1", "2", node="N", key="total")
    assert (info.value.node, info.value.key) == ("N", "total")
    assert str(info.value).startswith("state key 'total' names no reducer 'sum'")


def test_the_written_value_is_shown_up_to_80_characters():
    exact = '"' + "x" * 78 + '"'
    with pytest.raises(ReducerError) as info:
        reduce_value("extend", None, exact, node="N", key="k")
    assert f"= {exact}, which" in str(info.value)
    longer = '"' + "x" * 79 + '"'
    with pytest.raises(ReducerError) as info:
        reduce_value("extend", None, longer, node="N", key="k")
    assert f"= {longer[:80]}..., which" in str(info.value)


def test_a_write_after_a_delete_in_combine_is_no_delete():
    assert combine([StateDelta(deletes=["k", "j"]), StateDelta(writes={"k": "1"})]) == StateDelta({"k": "1"}, ["j"])
