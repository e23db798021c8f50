"""Copy-on-read state and the per-layer merge, without a server."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gecko_temporal import SerializationError
from gecko_temporal.core.errors import StateKeyError
from gecko_temporal.core.state import StateDelta, StateView, merge_layer


def enc(value):
    return json.dumps(value)


def test_mutating_a_read_value_changes_nothing_outside_the_node():
    base = {"items": enc([1, 2])}
    view = StateView(base, node="A")
    items = view["items"]
    items.append(3)
    assert view["items"] == [1, 2, 3]  # the node sees its own copy consistently
    assert view.delta() == StateDelta()  # but nothing leaks unless assigned back
    other = StateView(base, node="B")
    assert other["items"] == [1, 2]


def test_assigning_back_records_a_write_with_the_final_value():
    view = StateView({"items": enc([1])}, node="A")
    items = view["items"]
    view["items"] = items
    items.append(2)  # mutated after assignment: the delta encodes the value as it ends up
    assert view.delta().writes == {"items": enc([1, 2]).replace(" ", "")}


def test_delete_is_a_tombstone_and_set_after_delete_revives():
    view = StateView({"a": "1", "b": "2"}, node="A")
    del view["a"]
    assert "a" not in view and list(view) == ["b"]
    with pytest.raises(KeyError):
        view["a"]
    view["b"] = 3
    del view["b"]
    view["b"] = 4
    assert view.delta() == StateDelta(writes={"b": "4"}, deletes=["a"])
    with pytest.raises(KeyError):
        del view["missing"]


def test_untouched_keys_are_never_decoded():
    view = StateView({"ok": "1", "broken": "{not json"}, node="A")
    assert view["ok"] == 1  # the broken key would raise if decoded
    assert len(view) == 2 and set(view) == {"ok", "broken"}


def test_reads_limit_names_the_undeclared_key():
    view = StateView({"a": "1"}, node="N", limited_to=["a"])
    with pytest.raises(KeyError, match="did not declare"):
        view["b"]


def test_reads_limits_reading_only_writes_and_deletes_of_other_keys_still_merge():
    state = {"a": "1", "blob": '"big"', "old": "2"}
    view = StateView({"a": state["a"]}, node="N", limited_to=["a"])  # shipped only what it reads
    view["new"] = 3
    del view["blob"]  # not shipped, so deleted blindly
    with pytest.raises(KeyError):
        del view["a"], view["a"]  # a declared key still behaves like a dict
    merge_layer(state, [("N", view.delta())])
    assert state == {"new": "3", "old": "2"}


def test_unserializable_write_names_key_and_node():
    view = StateView({}, node="Writer")
    view["sock"] = object()
    with pytest.raises(SerializationError, match="state key 'sock' written by node \"Writer\""):
        view.delta()


def test_non_str_key_is_refused():
    with pytest.raises(TypeError, match="state keys must be str"):
        StateView({}, node="A")[1] = 2


def test_merge_applies_in_node_order_and_reports_conflicts():
    state = {"keep": "0", "gone": "1", "both": "0"}
    conflicts = merge_layer(
        state,
        [
            ("A", StateDelta(writes={"both": '"A"', "a": "1"}, deletes=["gone"])),
            ("B", StateDelta(writes={"both": '"B"'})),
        ],
    )
    assert state == {"keep": "0", "both": '"B"', "a": "1"}
    assert conflicts == ["both"]


def test_a_later_delete_beats_an_earlier_write_in_one_layer():
    state = {"k": "0"}
    merge_layer(state, [("A", StateDelta(writes={"k": "1"})), ("B", StateDelta(deletes=["k"]))])
    assert state == {}


keys = st.sampled_from(list("abcde"))
deltas = st.lists(
    st.tuples(st.dictionaries(keys, st.integers().map(str), max_size=3), st.lists(keys, max_size=2, unique=True)),
    min_size=1,
    max_size=5,
)


@given(deltas)
def test_merge_equals_applying_nodes_one_after_another(layer):
    """Whatever order the nodes finished in, merging in node order equals running them sequentially."""
    named = [(f"n{i}", StateDelta(writes=w, deletes=[k for k in d if k not in w])) for i, (w, d) in enumerate(layer)]
    merged = {"a": "0", "b": "0"}
    merge_layer(merged, named)
    sequential = {"a": "0", "b": "0"}
    for _, delta in named:
        for k in delta.deletes:
            sequential.pop(k, None)
        sequential.update(delta.writes)
    assert merged == sequential


# -- reads=: every read path follows the one rule ------------------------------------------------


def test_reads_limit_applies_to_every_read_path():
    """README: with reads=[...] reading another key raises StateKeyError naming node, key and fix."""
    view = StateView({"a": "1"}, node="N", limited_to=["a", "maybe"])
    for read in (lambda: view["b"], lambda: view.get("b"), lambda: view.get("b", 0), lambda: "b" in view):
        with pytest.raises(StateKeyError, match=r'node "N" read state key \'b\' .* reads=\[\'a\', \'maybe\'\]; add it'):
            read()
    # declared keys answer like a dict, present or not
    assert view.get("a") == 1 and "a" in view and view["a"] == 1
    assert view.get("maybe", "dflt") == "dflt" and "maybe" not in view
    with pytest.raises(KeyError) as info:
        view["maybe"]
    assert not isinstance(info.value, StateKeyError)


def test_with_reads_a_node_may_read_back_what_it_wrote_or_deleted_itself():
    view = StateView({"a": "1"}, node="N", limited_to=["a"])
    view["new"] = 5
    assert view["new"] == 5 and view.get("new") == 5 and "new" in view
    del view["other"]  # blind delete of an undeclared key
    assert "other" not in view and view.get("other", "gone") == "gone"
    with pytest.raises(KeyError):
        view["other"]


def test_get_and_contains_honour_tombstones():
    view = StateView({"a": "1", "b": "2"}, node="A")
    assert view.get("a") == 1  # decoded into the node's copy first
    del view["a"]
    del view["b"]  # never read before the delete
    assert view.get("a") is None and view.get("a", "dflt") == "dflt" and view.get("b", 7) == 7
    assert "a" not in view and "b" not in view and len(view) == 0 and dict(view) == {}
    assert view.get("missing", 3) == 3


def test_get_decodes_once_and_keeps_the_private_copy():
    view = StateView({"items": "[1]"}, node="A")
    first = view.get("items")
    first.append(2)
    assert view.get("items") == [1, 2] and view["items"] is first  # one private copy per node
    assert view.delta() == StateDelta()


def test_key_errors_carry_the_key_and_a_bad_key_names_its_type():
    view = StateView({"a": "1"}, node="A")
    with pytest.raises(KeyError) as info:
        view["nope"]
    assert info.value.args == ("nope",)
    del view["a"]
    with pytest.raises(KeyError) as info:
        view["a"]
    assert info.value.args == ("a",)
    with pytest.raises(KeyError) as info:
        del view["a"]
    assert info.value.args == ("a",)
    with pytest.raises(TypeError, match=r"state keys must be str, got int 1"):
        view[1] = 2
    assert repr(StateView({"a": "1"}, node="A")) == "StateView({'a': 1})"


def test_a_blind_delete_under_reads_drops_the_nodes_own_write_too():
    view = StateView({"a": "1"}, node="N", limited_to=["a"])
    view["new"] = 1
    del view["new"]  # undeclared: deleted blindly, and its own write is gone
    assert "new" not in view and view.get("new") is None and list(view) == ["a"]
    assert view.delta() == StateDelta(writes={}, deletes=["new"])


def test_deleting_a_key_written_in_this_node_only_leaves_no_tombstone():
    view = StateView({"a": "1"}, node="N")
    view["fresh"] = 1
    del view["fresh"]
    assert view.delta() == StateDelta()
    assert view.get("fresh", "gone") == "gone"


@pytest.mark.parametrize(
    "first, second, conflict",
    [
        (StateDelta(deletes=["k"]), StateDelta(deletes=["k"]), ["k"]),
        (StateDelta(deletes=["k"]), StateDelta(writes={"k": "2"}), ["k"]),
        (StateDelta(writes={"k": "1"}), StateDelta(deletes=["k"]), ["k"]),
        (StateDelta(writes={"k": "1"}, deletes=["d"]), StateDelta(writes={"j": "2"}, deletes=["e"]), []),
    ],
)
def test_conflicts_are_keys_two_nodes_touched(first, second, conflict):
    assert merge_layer({"k": "0", "d": "0", "e": "0"}, [("A", first), ("B", second)]) == conflict
    assert merge_layer({"k": "0"}, [("A", first)]) == []  # one node touching a key is no conflict


def test_iteration_lists_base_keys_then_new_keys_once():
    view = StateView({"a": "1", "b": "2"}, node="A")
    view["a"] = 10  # an existing key written: listed once, in its place
    view["new"] = 3
    del view["b"]
    assert list(view) == ["a", "new"] and len(view) == 2 and dict(view) == {"a": 10, "new": 3}
