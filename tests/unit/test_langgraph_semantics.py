"""LangGraph's rules where gecko-temporal uses its names (issue 23), driven without a server."""

import json

from gecko_temporal import END, Workflow
from gecko_temporal.core.context import History, WorkflowContext, router_context
from gecko_temporal.core.scheduler import Scheduler
from gecko_temporal.core.state import StateView


def _layers(spec, routes, may_skip_loops=lambda: True):
    """Drive the scheduler; ``routes[(node, nth run)]`` is what its router chose."""
    sched = Scheduler(spec, None, may_skip_loops)
    sched.start('"in"')
    layers, runs = [], {}
    while tasks := sched.next_layer():
        layers.append([t.node for t in tasks])
        for t in tasks:
            runs[t.node] = runs.get(t.node, 0) + 1
            sched.finish(t, json.dumps(t.node), None, routes=routes.get((t.node, runs[t.node]), ()))
    return layers


def _issue_graph(j_path_map):
    wf = Workflow("g")
    for n in ["s", "x", "y", "z", "j", "done"]:
        wf.add_node(n, lambda v: v)
    wf.add_conditional_edges("s", lambda v: ["x", "y"], ["x", "y"])
    wf.add_edge("x", "z").add_edge("z", "j").add_edge("y", "j")
    wf.add_conditional_edges("j", lambda v: "done", j_path_map)
    return wf.set_entry_point("s").compile()


def test_a_router_without_a_path_map_leaves_parallel_branches_elsewhere_parallel():
    routes = {("s", 1): ["x", "y"], ("j", 1): ["done"]}
    expected = [["s"], ["x", "y"], ["z"], ["j"], ["done"]]
    assert _layers(_issue_graph(None), routes) == expected
    assert _layers(_issue_graph(["done", "s"]), routes) == expected


def test_runs_recorded_before_the_patch_still_wait_for_the_router_they_lead_to():
    asked = []

    def unpatched():
        asked.append(True)
        return False

    routes = {("s", 1): ["x", "y"], ("j", 1): ["done"]}
    assert _layers(_issue_graph(None), routes, unpatched) == [["s"], ["x"], ["y"], ["z"], ["j"], ["done"]]
    assert asked  # asked only where the answer matters
    never: list[bool] = []
    mapped = _layers(_issue_graph(["done", "s"]), routes, lambda: never.append(True) or True)
    assert mapped == [["s"], ["x", "y"], ["z"], ["j"], ["done"]] and never == []


def test_a_join_still_waits_for_a_router_upstream_that_may_choose_it():
    wf = Workflow("g")
    for n in ["s", "x", "j"]:
        wf.add_node(n, lambda v: v)
    wf.add_edge("s", "x").add_edge("x", "j")
    wf.add_conditional_edges("s", lambda v: "j", ["j", END])
    spec = wf.set_entry_point("s").compile()
    assert _layers(spec, {("s", 1): ["j"]}) == [["s"], ["x"], ["j"]]


def _context(base, node="a"):
    view = StateView({k: json.dumps(v) for k, v in base.items()}, node=node)
    return WorkflowContext(state=view, history=History({}), input=None, session_id="s", node=node, step=1)


def test_a_router_reads_a_reduced_key_combined_with_its_nodes_update():
    context = _context({"agg": ["A", "B"], "n": 1})
    context.state["agg"] = ["A"]
    context.state["n"] = 2
    routed = router_context(context, {"agg": '["A","B"]', "n": "1"}, {"agg": "extend"})
    assert routed is not None
    assert routed.state["agg"] == ["A", "B", "A"] and routed.state["n"] == 2
    assert context.state["agg"] == ["A"]  # the node's contribution is unchanged
    untouched = _context({"agg": []})
    untouched.state["n"] = 1
    assert router_context(untouched, {"agg": "[]"}, {"agg": "extend"}) is None
