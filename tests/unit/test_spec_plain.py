"""The workflow rebuilds its input from plain JSON itself (the converter's reflection is ~20x slower):
the rebuilt spec must equal the compiled one, whatever the graph holds."""

from __future__ import annotations

import dataclasses
import json

import pytest

from gecko_temporal import ExecutionStrategy, RetryPolicy, Team, WaitForInput, Workflow, step
from gecko_temporal.core.spec import GraphSpec, Jump, NodeInput, NodeOutput, ResumedNodeInput, RunParams


def _rich_graph() -> Workflow:
    @step(
        retry=RetryPolicy(maximum_attempts=5, non_retryable_error_types=["ValueError"]),
        local=True,
        reads=["a"],
        history=["Start"],
    )
    def think(x, context):
        return x

    wf = Workflow("Rich", max_steps=50, steps_per_run=7)
    wf.add_node("Start", lambda x: x)
    wf.add_node("Think", think)
    wf.add_node(
        "Panel",
        Team([lambda x: 1, lambda x: 2], strategy=ExecutionStrategy.QUORUM, quorum=2, max_concurrency=1, timeout=9),
    )
    wf.add_node("Ask", WaitForInput("ok?", timeout=60, default="yes"))
    wf.add_edge("Start", "Think").add_edge("Think", "Panel").add_edge("Panel", "Ask")
    return wf.set_entry_point("Start")


def _as_json(value):
    return json.loads(json.dumps(dataclasses.asdict(value)))


def test_run_params_rebuilt_from_json_equal_the_compiled_ones():
    params = RunParams(spec=_rich_graph().compile(), input='"go"', timeout=30.0, snapshot={"run": 2})
    rebuilt = RunParams.from_plain(_as_json(params))
    assert rebuilt == params
    assert isinstance(rebuilt.spec.node("Panel").team.members[0].retry.maximum_attempts, int)


def test_keys_from_a_newer_client_are_ignored():
    plain = _as_json(RunParams(spec=_rich_graph().compile(), input="1"))
    plain["future_option"] = True
    plain["spec"]["nodes"][0]["future_node_option"] = 1
    assert RunParams.from_plain(plain).spec == GraphSpec.from_plain(_as_json(_rich_graph().compile()))


def test_node_output_rebuilt_with_and_without_a_jump():
    out = NodeOutput(value="1", jump=Jump(node="B", input='"x"', source='node "A"'), writes={"k": "2"}, deletes=["d"])
    assert NodeOutput.from_plain(_as_json(out)) == out
    assert NodeOutput.from_plain({"value": "null"}) == NodeOutput(value="null")


def test_every_member_and_node_field_survives_the_round_trip():
    """A field from_plain dropped would silently change a running graph (e.g. a Team member that
    takes the context would see an empty state), so every field is set away from its default."""

    def reader(x, context):
        return context.state.get("a")

    @step(timeout=7, retries=4, heartbeat_timeout=2)
    def plain_member(x):
        return x

    wf = Workflow("AllFields")
    wf.add_node("Panel", Team([reader, plain_member], strategy=ExecutionStrategy.QUORUM, quorum=2, max_concurrency=1))
    wf.add_node("Ask", WaitForInput("ok?", timeout=60, default="yes"))
    wf.add_edge("Panel", "Ask").set_entry_point("Panel")
    spec = wf.compile()
    members = spec.node("Panel").team.members
    assert [m.takes_context for m in members] == [True, False]
    assert (members[1].start_to_close_timeout, members[1].retry.maximum_attempts, members[1].heartbeat_timeout) == (
        7,
        4,
        2,
    )
    rebuilt = GraphSpec.from_plain(_as_json(spec))
    assert rebuilt == spec
    assert [m.takes_context for m in rebuilt.node("Panel").team.members] == [True, False]
    for original, copy in zip(spec.nodes, rebuilt.nodes):
        assert dataclasses.asdict(original) == dataclasses.asdict(copy), original.name


def test_graph_spec_node_lookup():
    spec = _rich_graph().compile()
    assert spec.node("Think").name == "Think" and spec.node("Think").reads == ["a"]
    import pytest

    with pytest.raises(KeyError):
        spec.node("Nope")


def test_next_keeps_its_input_in_every_form():
    from gecko_temporal import Next

    assert Next("B").input is None
    assert Next("B", {"x": 1}).input == {"x": 1}
    assert Next("B", input=[2]).input == [2] and Next(node="C", input=3) == Next("C", 3)


def test_unknown_node_lookup_names_it():
    import pytest

    with pytest.raises(KeyError) as info:
        _rich_graph().compile().node("Nope")
    assert info.value.args == ("Nope",)


def test_node_output_travels_without_its_empty_fields_and_reads_the_old_form():
    """Each completed event carries only what the node made; outputs recorded in the old form
    (every field, nulls and empties included) read back as the same output."""
    from temporalio.converter import default

    converter = default().payload_converter
    trivial = NodeOutput(value="1")
    assert trivial.to_plain() == {"value": "1"}
    assert converter.to_payload(trivial.to_plain()).data == b'{"value":"1"}'
    full = NodeOutput(value="1", jump=Jump(node="B", input='"x"', source='node "A"'), writes={"k": "2"}, deletes=["d"])
    assert full.to_plain() == {
        "value": "1",
        "jump": {"node": "B", "input": '"x"', "source": 'node "A"'},
        "writes": {"k": "2"},
        "deletes": ["d"],
    }
    for out in (trivial, full):
        assert NodeOutput.from_plain(out.to_plain()) == out
        recorded = {
            k: v
            for k, v in dataclasses.asdict(out).items()
            if k not in ("routes", "sends", "interrupt", "cached", "usage")
        }
        assert NodeOutput.from_plain(recorded) == out  # what histories recorded before hold
    asked = NodeOutput(value="null", interrupt={"payload": '"ok?"', "index": 0, "timeout": None, "default": None})
    assert asked.to_plain()["interrupt"] == asked.interrupt and NodeOutput.from_plain(asked.to_plain()) == asked
    hit = NodeOutput(value="1", cached=True)
    assert hit.to_plain()["cached"] is True and NodeOutput.from_plain(hit.to_plain()) == hit
    used = NodeOutput(
        value="1", usage={"input_tokens": 3, "output_tokens": 1, "tokens": 4, "cost_usd": 0.0, "calls": 1}
    )
    assert used.to_plain()["usage"] == used.usage and NodeOutput.from_plain(used.to_plain()) == used


def test_node_output_with_routes_and_sends_round_trips():
    out = NodeOutput(value="1", routes=["B", "C"], sends=[Jump(node="R", input='"a"', source="router")])
    assert out.to_plain() == {
        "value": "1",
        "routes": ["B", "C"],
        "sends": [{"node": "R", "input": '"a"', "source": "router"}],
    }
    assert NodeOutput.from_plain(out.to_plain()) == out


def test_node_input_leaves_out_what_the_activity_knows_and_gets_it_back():
    plain_node = NodeInput(graph="Chains", node="C1.0", input='"x"', session_id="s-1", step=3)
    shipped = plain_node.to_plain("Chains.C1.0")
    assert shipped == {"node": "C1.0", "input": '"x"', "step": 3}
    assert NodeInput.from_plain(shipped, "Chains.C1.0", "s-1") == plain_node
    # a Team member's type names the member, a subgraph's graph key is not its name: the key travels
    member = NodeInput(graph="Chains", node="T", input='"x"', session_id="s-1", step=4, member=1)
    assert member.to_plain("Chains.T.m1")["graph"] == "Chains"
    assert NodeInput.from_plain(member.to_plain("Chains.T.m1"), "Chains.T.m1", "s-1") == member
    child = NodeInput(graph="Report/Summary", node="split", input='"x"', session_id="s-1.Summary.2", step=1)
    assert NodeInput.from_plain(child.to_plain("Summarize.split"), "Summarize.split", "s-1.Summary.2") == child
    # the full form older runs send reads the same; a resumed node keeps its answers
    old = {**vars(plain_node), "member": None, "state": None}
    assert NodeInput.from_plain(old, "Chains.C1.0", "other") == plain_node
    resumed = NodeInput.from_plain({**shipped, "resume": ['"yes"']}, "Chains.C1.0", "s-1")
    assert isinstance(resumed, ResumedNodeInput) and resumed.resume == ['"yes"']


def test_a_node_input_without_its_graph_names_the_activity_it_came_to():
    shipped = {"node": "C1.0", "input": '"x"', "step": 3}
    with pytest.raises(ValueError, match=r"activity named GRAPH\.C1\.0, not 'Other\.B'"):
        NodeInput.from_plain(shipped, "Other.B", "s-1")
    with pytest.raises(TypeError):
        NodeInput.from_plain({"graph": "G", "node": "A"}, "G.A", "s-1")  # no input, no step
