"""LangGraph's rules where gecko-temporal uses its names (issue 23), driven without a server."""

import json

from gecko_temporal import END, START, GraphError, Workflow
from gecko_temporal.core.context import History, WorkflowContext, router_context
from gecko_temporal.core.control import Arg, RunControl, reduce_edit
from gecko_temporal.core.scheduler import Scheduler
from gecko_temporal.core.spec import RunSnapshot
from gecko_temporal.core.state import ReducerError, StateDelta, StateView, merge_layer


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


def _nodes(*names):
    wf = Workflow("g")
    for n in names:
        wf.add_node(n, lambda v: v)
    return wf


def test_a_waiting_edge_joins_its_sources_and_a_bad_one_is_a_graph_error():
    spec = _nodes("a", "b", "c").add_edge(["a", "b"], "c").set_entry_point("a").compile()
    assert {n.name: n.predecessors for n in spec.nodes}["c"] == ["a", "b"]
    for bad in ([], ["a", 1]):
        try:
            _nodes("a").add_edge(bad, "a")
        except GraphError as exc:
            assert "non-empty list of node names" in str(exc)
        else:
            raise AssertionError(bad)


def test_start_edges_an_end_edge_and_a_conditional_entry_point():
    one = _nodes("a", "b").add_edge(START, "a").add_edge("a", "b").add_edge("b", END).compile()
    assert one.entry == "a" and [n.name for n in one.nodes] == ["a", "b"]  # one entry: no extra node
    two = _nodes("a", "b").add_edge(START, "a").add_edge(START, "b").compile()
    assert two.entry == START and [n.name for n in two.nodes] == [START, "a", "b"]
    assert two.nodes[0].successors == ["a", "b"] and two.nodes[0].local
    routed = _nodes("a", "b").set_conditional_entry_point(lambda x: "b", ["a", "b"]).compile()
    assert routed.entry == START and routed.nodes[0].route_targets == ["a", "b"]
    assert "__start__ --> a" in _nodes("a", "b").add_edge(START, "a").add_edge(START, "b").draw_mermaid()
    try:
        _nodes("a").add_edge("nope", END).set_entry_point("a").compile()
    except GraphError as exc:
        assert 'edge "nope" -> END: no node named "nope"' in str(exc)
    else:
        raise AssertionError("an END edge from no node compiled")


def keep_last_two(old, new):
    """A reducer of the user's own: pure, importable by its qualified name."""
    return [*(old or []), *new][-2:]


def fails_on_three(old, new):
    if 3 in new:
        raise ValueError("three is not allowed")
    return new


def test_a_module_level_reducer_is_kept_by_qualified_name_and_combines_in_node_order():
    wf = Workflow("R", reducers={"k": keep_last_two, "j": f"{__name__}:fails_on_three"})
    assert wf.reducers == {"k": f"{__name__}:keep_last_two", "j": f"{__name__}:fails_on_three"}
    state = {"k": "[1]"}
    merge_layer(state, [("a", StateDelta({"k": "[2]"})), ("b", StateDelta({"k": "[3]"}))], wf.reducers)
    assert json.loads(state["k"]) == [2, 3]
    try:
        merge_layer(state, [("a", StateDelta({"j": "[3]"}))], wf.reducers)
    except ReducerError as exc:
        assert str(exc) == (
            f"reducer \"{__name__}:fails_on_three\" of state key 'j' raised ValueError: three is not allowed "
            'combining node "a"\'s write [3]'
        )
    else:
        raise AssertionError("the reducer's exception was lost")


def test_a_reducer_that_cannot_be_imported_by_name_is_refused_naming_it():
    def nested(old, new):
        return new

    for bad, why in ((nested, "a lambda or a nested function"), ("no_such_module:fn", "cannot import")):
        try:
            Workflow("R", reducers={"k": bad})
        except GraphError as exc:
            assert why in str(exc) and "reducers['k']" in str(exc)
        else:
            raise AssertionError(bad)


def test_an_edit_sent_as_a_node_goes_through_the_reducers_and_a_bad_value_is_left_out():
    spec = Workflow("E", reducers={"log": "extend"}).add_node("w", lambda v: v).set_entry_point("w").compile()
    control = RunControl(spec, Scheduler(spec), RunSnapshot())
    edit, problem = control.check_edit([Arg({"values": {"log": ["edit"], "n": 2}, "as_node": "w"})])
    assert problem is None and edit is not None and edit["as_node"] == "w"
    _, problem = control.check_edit([Arg({"values": {"n": 1}, "as_node": "x"})])
    assert problem == '"as_node" names no node: \'x\' (valid: "w")'
    state = {"log": '["w"]', "n": "1"}
    control.queue_edit(edit)
    control.apply_edits(state, 1, 1)
    assert json.loads(state["log"]) == ["w", "edit"] and state["n"] == "2"
    assert control.edits[-1]["as_node"] == "w" and "refused" not in control.edits[-1]
    plain, _ = control.check_edit([Arg({"values": {"log": ["only"]}})])
    assert reduce_edit(state, plain, spec.reducers) == [] and state["log"] == '["only"]'  # no as_node: set
    bad = {**plain, "values": {"log": '"not a list"', "n": "3"}, "as_node": "w"}
    refused = reduce_edit(state, bad, spec.reducers)
    assert state["log"] == '["only"]' and state["n"] == "3"
    assert refused and 'reducer "extend" cannot combine' in refused[0]


def test_interrupt_before_names_function_nodes_only():
    from gecko_temporal import WaitForInput

    wf = Workflow("B", interrupt_before=["a", "ask", "nope"]).add_node("a", lambda v: v)
    wf.add_node("ask", WaitForInput("ok?")).add_edge("a", "ask").set_entry_point("a")
    try:
        wf.compile()
    except GraphError as exc:
        assert exc.problems == [
            'interrupt_before names wait node "ask": only function nodes wait before running (a WaitForInput '
            "node before it does the same)",
            'interrupt_before names no node "nope" (valid: "a", "ask")',
        ]
    else:
        raise AssertionError("compiled")
    assert wf.node_table()["a"].breakpoint and not Workflow("C").add_node("a", lambda v: v).node_table()["a"].breakpoint
