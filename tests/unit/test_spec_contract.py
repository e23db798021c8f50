"""The plain forms a run carries (core/spec.py), exactly: the compact spec's defaults and key order,
its expansion, the snapshot's optional keys, RunParams' keys, and Send."""

from __future__ import annotations

from gecko_temporal import Workflow
from gecko_temporal.core import codec
from gecko_temporal.core.spec import GraphSpec, RunParams, RunSnapshot, Send, compact_spec, expand_spec


def _spec() -> GraphSpec:
    wf = Workflow("Shop")
    wf.add_node("A", lambda x: x, timeout=10).add_node("B", lambda x: x).add_node("C", lambda x: x)
    wf.add_edge("A", "B").add_edge("A", "C").set_entry_point("A")
    return wf.compile()


def test_the_most_common_value_of_a_field_is_its_default_even_when_seen_later():
    compact = compact_spec(_spec())
    assert compact["defaults"]["start_to_close_timeout"] == 300.0  # B and C; A (seen first) differs
    assert [n.get("start_to_close_timeout") for n in compact["nodes"]] == [10.0, None, None]


def test_the_compact_form_keeps_its_key_order_and_expands_to_the_full_form():
    spec = _spec()
    compact = compact_spec(spec)
    assert next(iter(compact)) == "format" and list(compact)[-2:] == ["defaults", "nodes"]
    full = expand_spec(compact)
    assert "format" not in full and "defaults" not in full
    assert [sorted(set(n) & {"s", "p"}) for n in full["nodes"]] == [[], [], []]
    assert [(n["name"], n["successors"], n["predecessors"]) for n in full["nodes"]] == [
        ("A", ["B", "C"], []),
        ("B", [], ["A"]),
        ("C", [], ["A"]),
    ]


def test_an_activity_type_other_than_the_graphs_own_is_kept():
    spec = _spec()
    plain = spec.to_plain()
    plain["nodes"][1]["activity_type"] = "Other.B"
    again = GraphSpec.from_plain(plain)
    assert [n.activity_type for n in again.nodes] == ["Shop.A", "Other.B", "Shop.C"]
    assert again.to_plain()["nodes"][1]["activity_type"] == "Other.B"
    assert "activity_type" not in again.to_plain()["nodes"][0]


def test_optional_snapshot_keys_travel_only_when_set():
    snap = RunSnapshot(warned=["A"], partial_layer={"tasks": [], "done": {}})
    plain = snap.to_plain()
    assert plain["warned"] == ["A"] and plain["partial_layer"] == {"tasks": [], "done": {}}
    assert RunSnapshot.from_plain(plain) == snap
    assert "warned" not in RunSnapshot().to_plain() and "partial_layer" not in RunSnapshot().to_plain()


def test_run_params_travel_with_every_key():
    params = RunParams(spec=_spec(), input='"x"', timeout=5.0, snapshot={"run": 2}, payload_limit=99)
    plain = params.to_plain()
    assert list(plain) == ["spec", "input", "timeout", "snapshot", "payload_limit"]
    assert (plain["snapshot"], plain["payload_limit"]) == ({"run": 2}, 99)
    assert RunParams.from_plain(plain) == params


def test_send_takes_its_node_and_arg_by_position_and_round_trips():
    send = Send("Research", {"q": 1})
    assert (send.node, send.arg) == ("Research", {"q": 1})
    assert Send("Research") == Send(node="Research", arg=None)
    assert codec.decode(codec.encode(send)) == send
