"""Conditional edges, Send fan-out, reducers and Mermaid: the pure parts, without a server."""

from __future__ import annotations

import json

import pytest

from gecko_temporal import END, GraphError, Send, Team, WaitForInput, Workflow
from gecko_temporal.core.control import RunControl
from gecko_temporal.core.run.layer import LayerQueue
from gecko_temporal.core.scheduler import Scheduler
from gecko_temporal.core.spec import ROUTER, GraphSpec, Jump, NodeOutput, RunSnapshot
from gecko_temporal.core.state import REDUCERS, ReducerError, StateDelta, merge_layer


def _ident(x):
    return x


def pipeline(mode: str = "layered") -> Workflow:
    """classify -> (research | chat); research -> plan -> Send x n -> collect."""
    wf = Workflow("Lang", scheduling=mode, reducers={"findings": "extend"})
    for n in ("Classify", "Chat", "Plan", "Research", "Collect"):
        wf.add_node(n, _ident)
    wf.add_conditional_edges("Classify", _ident, {"research": "Plan", "chat": "Chat", "stop": END})

    def fan(topics) -> list[Send]:
        return [Send("Research", t) for t in topics]

    wf.add_conditional_edges("Plan", fan, ["Research"])
    wf.add_edge("Research", "Collect")
    return wf.set_entry_point("Classify")


def run(spec: GraphSpec, decide, input_text='"in"', snapshot=None):
    """Drive the scheduler: ``decide(task)`` gives (output text, routes, sends) or a Jump.
    Finishes each layer's tasks in REVERSE order, so nothing may depend on completion order."""
    sched = Scheduler(spec, snapshot)
    if snapshot is None:
        sched.start(input_text)
    layers = []
    while tasks := sched.next_layer():
        layers.append([t.key for t in tasks])
        for t in reversed(tasks):
            out, routes, sends = decide(t)
            sched.finish(t, out, None, routes=routes, sends=sends)
    return layers, sched


# -- compile-time checks -------------------------------------------------------------------------


def test_every_problem_of_conditional_edges_is_listed_at_compile():
    wf = Workflow("Bad")
    wf.add_node("A", _ident).add_node("Team", Team(members=[_ident])).add_node("W", WaitForInput("ok?"))
    wf.add_conditional_edges("Nope", _ident, ["A"])
    wf.add_conditional_edges("A", _ident, {"x": "Bee", "y": END})
    wf.add_conditional_edges("A", _ident)
    wf.add_conditional_edges("Team", _ident, ["A"])
    wf.add_conditional_edges("W", _ident, {})
    wf.add_node(END, _ident)
    wf.set_entry_point("A")
    with pytest.raises(GraphError) as info:
        wf.compile()
    problems = info.value.problems
    assert len(problems) == 7, problems
    assert 'a node is named "__end__", which routers return to go nowhere (END)' in problems[0]
    text = " | ".join(problems)
    assert 'conditional edges from "Nope": no node named "Nope"' in text
    assert "maps 'x' to 'Bee', which is no node" in text
    assert 'node "A" has conditional edges twice' in text
    assert 'conditional edges from team node "Team"' in text and 'conditional edges from wait node "W"' in text
    assert 'the path map of node "W" is empty' in text


def test_a_router_with_two_required_parameters_is_refused_at_once():
    wf = Workflow("Bad").add_node("A", _ident)
    with pytest.raises(GraphError, match='the router of node "A".*2 required positional'):
        wf.add_conditional_edges("A", lambda a, b: a)
    with pytest.raises(GraphError, match="path map .* must be a dict or a list"):
        wf.add_conditional_edges("A", _ident, "B")


def test_reducers_are_named_engine_functions_or_importable_functions():
    with pytest.raises(GraphError) as info:
        Workflow("R", reducers={"a": "extnd", "b": lambda x, y: x + y, 3: "add", "ok": "merge"})
    problems = info.value.problems
    assert len(problems) == 3
    assert "reducers['a'] = 'extnd' is no reducer" in problems[0] and 'did you mean "extend"' in problems[0]
    assert "no qualified name a worker can import it by (a lambda" in problems[1]
    assert set(REDUCERS) == {"replace", "append", "extend", "add", "merge"}


def test_specs_without_the_new_features_carry_no_new_values():
    wf = Workflow("Plain").add_node("A", _ident).add_node("B", _ident).add_edge("A", "B").set_entry_point("A")
    spec = wf.compile()
    assert spec.reducers == {} and all(n.router is None and n.route_targets is None for n in spec.nodes)
    assert Workflow("R", reducers={"k": "replace"}).reducers == {}  # replace is the default rule


def test_spec_names_the_router_and_its_targets_in_node_order():
    spec = pipeline().compile()
    classify = spec.node("Classify")
    assert (classify.router, classify.route_targets) == ("_ident", ["Chat", "Plan"])
    assert spec.node("Plan").route_targets == ["Research"] and spec.reducers == {"findings": "extend"}
    again = GraphSpec.from_plain(json.loads(json.dumps(_plain(spec))))
    assert again == spec


def _plain(spec):
    import dataclasses

    return dataclasses.asdict(spec)


def test_a_router_taking_context_makes_its_node_receive_the_context():
    wf = Workflow("C").add_node("A", _ident).add_node("B", _ident).set_entry_point("A")
    wf.add_conditional_edges("A", lambda out, context: "B", ["B"])
    assert wf.compile().node("A").takes_context


# -- scheduling: routes -----------------------------------------------------------------------


def test_routes_deliver_the_output_and_unchosen_branches_do_not_block_a_join():
    wf = Workflow("J")
    for n in ("A", "L", "R", "Join"):
        wf.add_node(n, _ident)
    wf.add_conditional_edges("A", _ident, ["L", "R"]).add_edge("L", "Join").add_edge("R", "Join").set_entry_point("A")

    def decide(t):
        return json.dumps(t.node), (["R"] if t.node == "A" else []), []

    layers, sched = run(wf.compile(), decide)
    assert layers == [["A"], ["R"], ["Join"]]
    assert json.loads(sched.result()) == "Join"


def test_a_join_waits_for_a_router_that_may_still_choose_it():
    # S -> A (static) and S -> B; B routes to Join or elsewhere; Join must wait for B's decision
    wf = Workflow("W")
    for n in ("S", "A", "A2", "B", "Join", "Else"):
        wf.add_node(n, _ident)
    wf.add_edge("S", "A").add_edge("A", "A2").add_edge("A2", "Join").add_edge("S", "B")
    wf.add_conditional_edges("B", _ident, ["Join", "Else"]).set_entry_point("S")
    spec = wf.compile()
    sched = Scheduler(spec)
    sched.start('"x"')
    assert [t.node for t in sched.next_layer()] == ["S"]
    sched.finish(sched_task(spec, "S"), '"s"', None)
    layer = sched.next_layer()
    assert [t.node for t in layer] == ["A", "B"]
    sched.finish(layer[0], '"a"', None)
    sched.finish(layer[1], '"b"', None, routes=["Else"])  # B sends elsewhere
    assert [t.node for t in sched.next_layer()] == ["A2", "Else"]
    # in eager mode, with B still running, Join (all static inputs in) must wait for B
    sched2 = Scheduler(spec)
    sched2.inbox = {"Join": {"A2": '"a2"'}}
    assert sched2.next_layer(running={"B"}) == []
    assert [t.node for t in sched2.next_layer(running=set())] == ["Join"]


def sched_task(spec, node):
    from gecko_temporal.core.scheduler import Task

    return Task(node, "null", 1)


def test_a_route_outside_the_path_map_fails_naming_router_and_choices():
    spec = pipeline().compile()
    sched = Scheduler(spec)
    sched.start('"x"')
    (task,) = sched.next_layer()
    with pytest.raises(
        GraphError,
        match='router of node "Classify" chose "Collect", which is not in its path map '
        r"\(valid: Chat, Plan\)",
    ):
        sched.finish(task, '"x"', None, routes=["Collect"])
    with pytest.raises(GraphError, match='chose an unknown node: no node named "Nowhere"'):
        sched.finish(task, '"x"', None, routes=["Nowhere"])


# -- scheduling: Sends ------------------------------------------------------------------------


def _fan(n):
    def decide(t):
        if t.node == "Classify":
            return '"research"', ["Plan"], []
        if t.node == "Plan":
            return "[]", [], [Jump("Research", json.dumps(f"t{i}"), ROUTER) for i in range(n)]
        if t.node == "Research":
            return json.dumps(json.loads(t.input).upper()), [], []
        return t.input, [], []

    return decide


@pytest.mark.parametrize("mode", ["layered", "eager"])
def test_a_fan_out_runs_one_task_per_send_and_its_successor_once_with_outputs_in_send_order(mode):
    layers, sched = run(pipeline(mode).compile(), _fan(5))
    assert layers == [["Classify"], ["Plan"], [f"Research[{i}]" for i in range(5)], ["Collect"]]
    assert json.loads(sched.outputs["Collect"]) == ["T0", "T1", "T2", "T3", "T4"]  # the list, in Send order
    assert sched.step == 8  # each instance is a step of its own


def test_instances_get_their_own_steps_and_input():
    spec = pipeline().compile()
    sched = Scheduler(spec)
    sched.sends = [Jump("Research", '"a"', ROUTER), Jump("Research", '"b"', ROUTER)]
    tasks = sched.next_layer()
    assert [(t.key, t.input, t.step, t.sends) for t in tasks] == [
        ("Research[0]", '"a"', 1, 2),
        ("Research[1]", '"b"', 2, 2),
    ]
    assert sched.finish(tasks[1], '"B"', None) is False  # the fan-out is not done yet
    assert "Collect" not in sched.inbox
    assert sched.finish(tasks[0], '"A"', None) is True
    assert sched.inbox["Collect"] == {"Research": '["A","B"]'} and sched.outputs["Research"] == '["A","B"]'


def test_a_fan_out_waits_while_its_node_runs_and_a_jump_to_it_goes_first():
    spec = pipeline().compile()
    sched = Scheduler(spec)
    sched.sends = [Jump("Research", '"a"', ROUTER)]
    assert sched.next_layer(running={"Research"}) == [] and len(sched.sends) == 1
    sched.jumps = [Jump("Research", '"jumped"', "outside")]
    assert [(t.key, t.jumped) for t in sched.next_layer()] == [("Research", True)]
    assert [t.key for t in sched.next_layer()] == ["Research[0]"]


def test_router_sends_are_checked_against_the_path_map_but_a_nodes_own_sends_like_next_are_not():
    spec = pipeline().compile()
    sched = Scheduler(spec)
    with pytest.raises(GraphError, match='router of node "Plan" chose "Chat", which is not in its path map'):
        sched.request_send("Chat", "1", source="Plan", by_router=True)
    sched.request_send("Chat", "1", source="Plan")  # returned by Plan itself: any node, like Next
    with pytest.raises(GraphError, match='sent to an unknown node: no node named "Resarch"'):
        sched.request_send("Resarch", "1", source="Plan")


def test_a_send_to_a_waiting_node_is_refused():
    wf = Workflow("SW").add_node("A", _ident).add_node("Ask", WaitForInput("?")).set_entry_point("A")
    sched = Scheduler(wf.compile())
    with pytest.raises(GraphError, match='sent to WaitForInput node "Ask"'):
        sched.request_send("Ask", "1", source="A")


def test_a_fan_out_instance_that_jumps_steers_the_run_first_in_send_order():
    spec = pipeline().compile()
    sched = Scheduler(spec)
    sched.sends = [Jump("Research", "0", ROUTER), Jump("Research", "1", ROUTER), Jump("Research", "2", ROUTER)]
    a, b, c = sched.next_layer()
    sched.finish(c, "2", Jump("Chat", '"from 2"'))
    sched.finish(b, "1", Jump("Chat", '"from 1"'))
    sched.finish(a, "0", None)
    assert [(j.node, j.input) for j in sched.jumps] == [("Chat", '"from 1"')]
    assert "Collect" not in sched.inbox  # the jump skips the fan-out's successors


def test_pending_sends_cross_continue_as_new_and_old_snapshots_still_load():
    spec = pipeline().compile()
    sched = Scheduler(spec)
    assert "sends" not in sched.snapshot()  # a run without Sends snapshots exactly as before
    sched.sends = [Jump("Research", '"a"', ROUTER)]
    snap = json.loads(json.dumps(sched.snapshot()))
    assert snap["sends"] == [{"node": "Research", "input": '"a"', "source": ROUTER}]
    again = Scheduler(spec, snap)
    assert [t.key for t in again.next_layer()] == ["Research[0]"]
    old = {"inbox": {}, "jumps": [], "outputs": {}, "step": 3, "last_layer": ["A"]}
    assert Scheduler(spec, old).sends == []
    plain = RunSnapshot(scheduler=snap).to_plain()
    assert RunSnapshot.from_plain(plain).scheduler["sends"] == snap["sends"]


def test_a_fan_out_paused_in_one_run_fans_in_in_the_next_with_the_outputs_carried_over():
    spec = pipeline().compile()
    sched = Scheduler(spec)
    sched.sends = [Jump("Research", '"a"', ROUTER), Jump("Research", '"b"', ROUTER), Jump("Research", '"c"', ROUTER)]
    layer = LayerQueue(sched.next_layer())
    layer.launch(), layer.launch(), layer.launch()
    layer.landed(0, NodeOutput(value='"A"'))
    layer.pause_wait(1, {"resume": None, "until": None})  # its wait stops: the run switches
    layer.landed(2, NodeOutput(value='"C"'))
    paused = json.loads(json.dumps(layer.paused()))
    again = Scheduler(spec, json.loads(json.dumps(sched.snapshot())))  # the next run
    resumed = LayerQueue.resumed(paused)
    assert [(t.key, t.sends, t.source) for t in resumed.tasks] == [(f"Research[{i}]", 3, ROUTER) for i in range(3)]
    again.fan_in_again(resumed.tasks)
    assert resumed.launch() == 1
    resumed.landed(1, NodeOutput(value='"B"'))
    wholes = [again.finish(t, o.value, None) for t, o in zip(resumed.tasks, resumed.outputs())]
    assert wholes == [False, False, True]
    assert again.inbox["Collect"] == {"Research": '["A","B","C"]'}


def test_a_jump_from_outside_drops_pending_sends():
    spec = pipeline().compile()
    sched = Scheduler(spec)
    control = RunControl(spec, sched, RunSnapshot())
    sched.sends = [Jump("Research", '"a"', ROUTER)]
    sched.jumps.append(Jump("Chat", '"now"', "signal"))
    control.apply_redirects()
    assert sched.sends == [] and [t.key for t in sched.next_layer()] == ["Chat"]


# -- reducers -----------------------------------------------------------------------------------


def test_reduced_keys_combine_in_the_order_given_and_are_no_conflicts():
    state = {"findings": '["seed"]', "cost": "1", "meta": '{"a":1}'}
    reducers = {"findings": "extend", "cost": "add", "meta": "merge", "log": "append"}
    deltas = [
        (
            f"R[{i}]",
            StateDelta(
                {
                    "findings": json.dumps([f"f{i}"]),
                    "cost": "2",
                    "meta": json.dumps({f"k{i}": i}),
                    "log": json.dumps(i),
                    "plain": json.dumps(i),
                }
            ),
        )
        for i in range(3)
    ]
    conflicts = merge_layer(state, deltas, reducers)
    assert conflicts == ["plain"]
    assert json.loads(state["findings"]) == ["seed", "f0", "f1", "f2"]
    assert json.loads(state["cost"]) == 7
    assert json.loads(state["meta"]) == {"a": 1, "k0": 0, "k1": 1, "k2": 2}
    assert json.loads(state["log"]) == [0, 1, 2] and json.loads(state["plain"]) == 2


def test_reducers_keep_tagged_values_and_a_delete_resets_the_key():
    import datetime

    from gecko_temporal.core import codec

    when = datetime.date(2026, 11, 25)
    state = {"days": codec.encode([when])}
    merge_layer(state, [("A", StateDelta({"days": codec.encode([when])}))], {"days": "extend"})
    assert codec.decode(state["days"]) == [when, when]
    merge_layer(
        state, [("A", StateDelta(deletes=["days"])), ("B", StateDelta({"days": codec.encode([1])}))], {"days": "extend"}
    )
    assert json.loads(state["days"]) == [1]


@pytest.mark.parametrize(
    "how, old, new, message",
    [
        ("extend", '["a"]', '"b"', 'reducer "extend" cannot combine: extend needs a list, got a str'),
        ("extend", '{"x":1}', '["b"]', "the value so far is a dict, not a list"),
        ("add", '"a"', "1", "cannot add a int to a str"),
        ("add", "1", "true", "cannot add a bool to a int"),
        ("merge", '{"a":1}', "[1]", "merge needs a dict, got a list"),
        ("merge", '{"a":1}', '{"__gecko__":"x:Model","data":{}}', "merge needs a dict, got a Model"),
        ("append", '"s"', "1", "the value so far is a str, not a list"),
    ],
)
def test_a_value_a_reducer_cannot_combine_names_node_key_and_value(how, old, new, message):
    with pytest.raises(ReducerError) as info:
        merge_layer({"k": old}, [("Writer", StateDelta({"k": new}))], {"k": how})
    assert info.value.node == "Writer" and info.value.key == "k"
    assert f"node \"Writer\" wrote state key 'k' = {new}" in str(info.value) and message in str(info.value)


def test_a_missing_key_starts_from_nothing():
    state: dict[str, str] = {}
    merge_layer(
        state,
        [("A", StateDelta({"n": "2", "l": "1", "m": '{"a":1}', "e": "[1]"}))],
        {"n": "add", "l": "append", "m": "merge", "e": "extend"},
    )
    assert {k: json.loads(v) for k, v in state.items()} == {"n": 2, "l": [1], "m": {"a": 1}, "e": [1]}


# -- Mermaid ------------------------------------------------------------------------------------


def test_mermaid_labels_conditional_edges_marks_sends_and_draws_teams_as_blocks():
    wf = pipeline()
    wf.add_node("Panel", Team(members=[_ident, _ident]))
    wf.add_edge("Collect", "Panel")
    wf.add_node("Ask me", WaitForInput("ok?"))
    wf.add_edge("Panel", "Ask me")
    text = wf.draw_mermaid()
    lines = text.splitlines()
    assert lines[:4] == ["---", "title: Lang", "---", "flowchart TD"]
    assert '    Classify -.->|"research"| Plan' in lines and '    Classify -.->|"stop"| __end__' in lines
    assert '    Plan ==>|"Send: Research"| Research' in lines and '    Research["Research (Send)"]' in lines
    assert '    subgraph Panel["Panel (Team all)"]' in lines and "    Collect --> Panel" in lines
    assert '    Ask_me{{"Ask me (waits for input)"}}' in lines and "    Panel --> Ask_me" in lines
    assert "    __start__ --> Classify" in lines and "    __end__([end])" in lines


def test_a_layer_of_fan_outs_beyond_what_one_run_fans_in_fails_instead_of_overgrowing_its_history():
    spec = pipeline().compile()
    sched = Scheduler(spec)
    sched.sends = [Jump("Research", "1", ROUTER)] * 1500 + [Jump("Chat", "1", ROUTER)] * 500
    assert len(sched.next_layer()) == 2000  # exactly the limit is fine
    sched = Scheduler(spec)
    sched.sends = [Jump("Research", "1", ROUTER)] * 1500 + [Jump("Chat", "1", ROUTER)] * 400
    with pytest.raises(
        GraphError,
        match=r'would run 2001 nodes in one layer \(Sends: "Research" 1500, "Chat" '
        r"400\); at most 2000 fan in within one run's history",
    ):
        sched.next_layer(pending=101)


def test_mermaid_ids_never_collide_with_keywords_edges_or_each_other():
    # checked once with Mermaid 11's own parser (mermaid.parse under jsdom): "end" as an id broke it
    wf = Workflow("Ids")
    names = ["end", "graph", "o1", "xray", "1st", "a|b", "a_b", "__end__", 'say "hi"']
    for n in names:
        wf.add_node(n, _ident)
    for a, b in zip(names, names[1:]):
        wf.add_edge(a, b)
    lines = wf.set_entry_point("end").draw_mermaid().splitlines()
    nodes = [line.strip() for line in lines[5 : 5 + len(names)]]
    ids = [n.split("[", 1)[0] for n in nodes]
    assert ids == ["n_end", "n_graph", "n_o1", "n_xray", "n_1st", "a_b", "a_b_6", "__end___7", "say__hi_"]
    assert nodes[-1] == 'say__hi_["say #quot;hi#quot;"]'
    assert "    n_end --> n_graph" in lines


def test_routes_and_sends_of_fan_out_instances_combine_in_send_order():
    wf = Workflow("Nested")
    for n in ("Map", "Left", "Right", "Leaf"):
        wf.add_node(n, _ident)
    wf.add_conditional_edges("Map", _ident, ["Left", "Right", "Leaf"]).set_entry_point("Map")
    sched = Scheduler(wf.compile())
    sched.sends = [Jump("Map", "0", ROUTER), Jump("Map", "1", ROUTER), Jump("Map", "2", ROUTER)]
    a, b, c = sched.next_layer()
    sched.finish(c, '"c"', None, routes=["Right"], sends=[Jump("Leaf", '"c1"', ROUTER)])
    sched.finish(a, '"a"', None, routes=["Left", "Right"], sends=[Jump("Leaf", '"a1"', ROUTER)])
    sched.finish(b, '"b"', None)
    # each chosen target once, with the fan-out's list; the instances' Sends in Send order
    assert sched.inbox == {"Left": {"Map": '["a","b","c"]'}, "Right": {"Map": '["a","b","c"]'}}
    assert [(j.node, j.input) for j in sched.sends] == [("Leaf", '"a1"'), ("Leaf", '"c1"')]
    assert [t.key for t in sched.next_layer()] == ["Left", "Right", "Leaf[0]", "Leaf[1]"]


def test_mermaid_draws_any_node_kind_with_parts_as_a_block():
    # a sub-workflow node kind (issue 12 point 4) has a Workflow as its object: drawn as a block
    from gecko_temporal.core.build.graph import NodeDef
    from gecko_temporal.core.build.mermaid import draw
    from gecko_temporal.core.build.nodes import StepOptions

    inner = Workflow("Summary").add_node("Draft", _ident).add_node("Edit", _ident)
    nodes = [
        NodeDef("Collect", "function", _ident, StepOptions()),
        NodeDef("Sum", "subgraph", inner, StepOptions()),
        NodeDef("Odd", "someday", object(), StepOptions()),
    ]
    lines = draw("Outer", "Collect", nodes, [("Collect", "Sum"), ("Sum", "Odd")], []).splitlines()
    assert '    subgraph Sum["Sum (subgraph Summary)"]' in lines
    assert '        Sum__0["Draft"]' in lines and '        Sum__1["Edit"]' in lines
    assert '    Odd["Odd"]' in lines and "    Collect --> Sum" in lines and "    Sum --> Odd" in lines


def test_a_join_in_a_conditional_loop_does_not_wait_for_what_only_it_leads_back_to():
    # classify -> (A | B) -> Join -> (router) back to classify: after A, Join must not wait for B,
    # which only Join itself could lead back to
    wf = Workflow("Loop")
    for n in ("Classify", "A", "B", "Join"):
        wf.add_node(n, _ident)
    wf.add_conditional_edges("Classify", _ident, ["A", "B"]).add_edge("A", "Join").add_edge("B", "Join")
    wf.add_conditional_edges("Join", _ident, {"again": "Classify", "stop": END}).set_entry_point("Classify")
    rounds = iter([["A"], ["B"]])

    def decide(t):
        if t.node == "Classify":
            return '"c"', next(rounds), []
        if t.node == "Join":
            return json.dumps(t.input), (["Classify"] if t.input == '"A"' else []), []
        return json.dumps(t.node), [], []

    layers, _ = run(wf.compile(), decide)
    assert layers == [["Classify"], ["A"], ["Join"], ["Classify"], ["B"], ["Join"]]


def test_an_agent_loop_without_a_path_map_runs():
    # LangGraph's agent <-> tools loop, the router naming nodes directly (any node may be chosen)
    wf = Workflow("Agent")
    wf.add_node("agent", _ident).add_node("tools", _ident).add_edge("tools", "agent")
    wf.add_conditional_edges("agent", _ident).set_entry_point("agent")
    calls = iter([["tools"], ["tools"], []])

    def decide(t):
        return json.dumps(t.node), (next(calls) if t.node == "agent" else []), []

    layers, sched = run(wf.compile(), decide)
    assert layers == [["agent"], ["tools"], ["agent"], ["tools"], ["agent"]]
    assert json.loads(sched.result()) == "agent"


def test_two_joins_waiting_on_each_other_through_routers_do_not_end_the_run():
    # X waits for P (reachable from Y's router), Y waits for Q (reachable from X's router)
    wf = Workflow("Knot")
    for n in ("S", "X", "Y", "P", "Q"):
        wf.add_node(n, _ident)
    wf.add_edge("S", "X").add_edge("S", "Y").add_edge("P", "X").add_edge("Q", "Y")
    wf.add_conditional_edges("X", _ident, ["Q"]).add_conditional_edges("Y", _ident, ["P"]).set_entry_point("S")
    layers, _ = run(wf.compile(), lambda t: (json.dumps(t.node), [], []))
    assert layers == [["S"], ["X"], ["Y"]]  # X goes first (node order) instead of the run ending
