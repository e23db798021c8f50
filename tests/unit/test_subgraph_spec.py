"""Subgraphs: another Workflow as a node. What compiles, what is refused, and what travels (no server)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from gecko_temporal import GraphError, Team, WaitForInput, Workflow
from gecko_temporal.core.spec import KIND_SUBGRAPH, GraphSpec, RunParams
from gecko_temporal.temporal.activities import NodeRunner

HISTORIES = Path(__file__).parents[1] / "histories"


def _inner() -> Workflow:
    wf = Workflow("Inner")
    wf.add_node("split", lambda text: text.split()).add_node("count", len)
    return wf.add_edge("split", "count").set_entry_point("split")


def _middle(inner: Workflow) -> Workflow:
    wf = Workflow("Middle")
    wf.add_node("prep", lambda x: x).add_node("Count", inner).add_node("ask", WaitForInput("ok?"))
    return wf.add_edge("prep", "Count").add_edge("Count", "ask").set_entry_point("prep")


def _outer(middle: Workflow) -> Workflow:
    wf = Workflow("Outer")
    wf.add_node("load", lambda x: x).add_node("Summary", middle).add_node("publish", lambda s: s)
    return wf.add_edge("load", "Summary").add_edge("Summary", "publish").set_entry_point("load")


def test_a_subgraph_node_carries_the_child_graph_compiled_under_a_key_of_its_own():
    inner = _inner()
    outer = _outer(_middle(inner))
    spec = outer.compile()
    node = spec.node("Summary")
    assert node.kind == KIND_SUBGRAPH == "subgraph"
    assert node.subgraph.name == "Middle" and node.subgraph.key == "Outer/Summary"
    nested = node.subgraph.node("Count")
    assert nested.kind == KIND_SUBGRAPH and nested.subgraph.key == "Outer/Summary/Count"
    assert [n.name for n in nested.subgraph.nodes] == ["split", "count"]
    assert nested.subgraph.node("count").activity_type == "Inner.count"  # the UI names the child's own nodes
    assert spec.node("load").subgraph is None
    # under another key (the embedded worker's "Outer~2") the children follow it
    assert outer.compile("Outer~2").node("Summary").subgraph.key == "Outer~2/Summary"


def test_a_worker_serving_the_parent_serves_every_nested_graph():
    inner = _inner()
    middle = _middle(inner)
    outer = _outer(middle)
    assert outer.subgraphs() == {"Outer/Summary": middle, "Outer/Summary/Count": inner}
    runner = NodeRunner(max_threads=1)
    try:
        runner.register(outer)
        served = runner.graphs()
        assert served["Outer"] is outer and served["Outer/Summary"] is middle and served["Outer/Summary/Count"] is inner
        assert outer.node_table()["Summary"].kind == KIND_SUBGRAPH and outer.node_table()["Summary"].callee is None
    finally:
        runner.shutdown()


def test_the_same_workflow_may_serve_as_a_subgraph_twice_and_on_its_own():
    inner = _inner()
    wf = Workflow("Twice")
    wf.add_node("a", inner).add_node("b", inner).add_edge("a", "b").set_entry_point("a")
    spec = wf.compile()
    assert [spec.node(n).subgraph.key for n in ("a", "b")] == ["Twice/a", "Twice/b"]
    assert inner.compile().key == "Inner"


def test_a_subgraph_cycle_is_a_compile_error_naming_the_path():
    a, b = Workflow("A"), Workflow("B")
    a.add_node("start", lambda x: x).add_node("RunB", b).add_edge("start", "RunB").set_entry_point("start")
    b.add_node("RunA", a).set_entry_point("RunA")
    with pytest.raises(GraphError) as info:
        a.compile()
    (problem,) = info.value.problems
    assert 'node "RunA" of "B" runs "A" again ("A" -> "B" -> "A")' in problem
    assert problem.startswith('subgraph node "RunB" (workflow "B"): subgraph cycle')
    with pytest.raises(GraphError, match='"B" -> "A" -> "B"'):
        b.compile()


def test_a_workflow_containing_itself_is_a_cycle_listed_with_the_other_problems():
    wf = Workflow("Self")
    wf.add_node("me", wf).add_edge("me", "nowhere").set_entry_point("me")
    with pytest.raises(GraphError) as info:
        wf.compile()
    problems = info.value.problems
    assert len(problems) == 2, problems
    assert any('no node named "nowhere"' in p for p in problems)
    assert any('subgraph cycle: node "me" of "Self" runs "Self" again' in p for p in problems)
    assert wf.subgraphs() == {}  # a cycle is never followed (registration then fails at compile)


def test_an_invalid_child_graph_fails_the_parents_compile_with_its_problems():
    child = Workflow("Broken")
    child.add_node("x", lambda v: v).add_edge("x", "y")  # unknown node and no entry point
    parent = Workflow("Parent")
    parent.add_node("Sub", child).set_entry_point("Sub")
    with pytest.raises(GraphError) as info:
        parent.compile()
    assert len(info.value.problems) == 2
    assert all(p.startswith('subgraph node "Sub" (workflow "Broken"): ') for p in info.value.problems)
    assert "no entry point" in str(info.value) and 'no node named "y"' in str(info.value)


def test_node_options_do_not_apply_to_a_subgraph():
    parent = Workflow("P")
    with pytest.raises(
        GraphError,
        match=r'node "S" is a subgraph \(workflow "Inner"\): option\(s\) \[\'retries\', '
        r"'timeout'\] apply to function nodes only",
    ):
        parent.add_node("S", _inner(), timeout=3, retries=2)
    with pytest.raises(GraphError, match="unknown option"):
        parent.add_node("S", _inner(), bogus=1)


def test_a_workflow_is_refused_as_a_team_member():
    with pytest.raises(GraphError) as info:
        Team([lambda x: x, _inner()])
    assert 'Team member 1 "Inner" is a Workflow' in str(info.value)
    assert "wf.add_node(name, workflow)" in str(info.value)


def test_a_child_changed_after_the_parent_compiled_is_picked_up():
    inner = _inner()
    outer = _outer(_middle(inner))
    assert len(outer.compile().node("Summary").subgraph.node("Count").subgraph.nodes) == 2
    inner.add_node("extra", lambda x: x).add_edge("count", "extra")
    assert len(outer.compile().node("Summary").subgraph.node("Count").subgraph.nodes) == 3


def test_the_nested_spec_survives_the_plain_round_trip():
    params = RunParams(spec=_outer(_middle(_inner())).compile(), input='"go"', timeout=9.0)
    plain = json.loads(json.dumps(params.to_plain()))
    rebuilt = RunParams.from_plain(plain)
    assert rebuilt == params
    assert isinstance(rebuilt.spec.node("Summary").subgraph, GraphSpec)
    # the plain form keeps the key only where there is a subgraph, at every depth
    nodes = plain["spec"]["nodes"]
    assert [("subgraph" in n) for n in nodes] == [False, True, False]
    middle_nodes = nodes[1]["subgraph"]["nodes"]
    assert [("subgraph" in n) for n in middle_nodes] == [False, True, False]
    assert all("subgraph" not in n for n in middle_nodes[1]["subgraph"]["nodes"])


def test_a_graph_compiled_today_is_the_graph_a_recorded_run_carries():
    """The recorded eager history holds the full spec form a client sent before subgraphs and the
    compact form existed: today's compact form of the same graph reads back as the same GraphSpec."""
    from tests.pipelines import replay

    events = json.loads((HISTORIES / "eager.json").read_text())["events"]
    recorded = base64.b64decode(events[0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]["data"])
    sent = json.loads(recorded)
    params = RunParams(spec=replay.eager.compile(sent["spec"]["key"]), input=sent["input"], timeout=sent["timeout"])
    plain = params.to_plain()
    assert "format" not in sent["spec"] and plain["spec"]["format"] == 2
    assert "subgraph" not in json.dumps(plain["spec"]["nodes"])  # unused fields travel once, in defaults
    assert GraphSpec.from_plain(plain["spec"]) == GraphSpec.from_plain(sent["spec"]) == params.spec


def test_status_lists_the_running_subgraph_sessions():
    from gecko_temporal.ops.cli import format_status

    shown = format_status(
        "s1",
        {
            "workflow": "Report",
            "status": "running",
            "nodes": ["load", "Summary"],
            "completed": ["load"],
            "running": ["Summary"],
            "children": {"Summary": "s1.Summary.2"},
        },
    )
    assert "subgraphs running: Summary (child session s1.Summary.2; gecko-temporal status s1.Summary.2)" in shown
    assert "subgraphs" not in format_status("s1", {"status": "completed", "children": {}})


def test_a_worker_without_the_parent_says_which_workflow_to_serve():
    from temporalio.exceptions import ApplicationError

    from gecko_temporal.core.spec import NodeInput

    runner = NodeRunner(max_threads=1)
    try:
        runner.register(_inner())
        with pytest.raises(ApplicationError) as info:
            runner._lookup(NodeInput(graph="Outer/Summary", node="prep", input="null", session_id="s", step=1))
        assert info.value.message == (
            'this worker does not serve workflow "Outer/Summary" (a subgraph of "Outer") '
            '(it serves: Inner); start the worker with the module of workflow "Outer"'
        )
    finally:
        runner.shutdown()
