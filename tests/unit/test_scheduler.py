"""Layer scheduling semantics, driven without a server."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gecko_temporal import GraphError, StepLimitError, Workflow
from gecko_temporal.core.scheduler import Scheduler
from gecko_temporal.core.spec import Jump


def graph(edges, nodes=None, entry=None, **kw):
    wf = Workflow("g", **kw)
    names = nodes or sorted({n for e in edges for n in e})
    for n in names:
        wf.add_node(n, lambda x: x)
    for a, b in edges:
        wf.add_edge(a, b)
    wf.set_entry_point(entry or names[0])
    return wf.compile()


def drive(spec, outputs=None, jumps=None, input_text='"in"'):
    """Run the scheduler to the end; nodes output their name unless told otherwise. Returns layers."""
    outputs, jumps = outputs or {}, dict(jumps or {})
    sched = Scheduler(spec)
    sched.start(input_text)
    layers, inputs = [], {}
    while tasks := sched.next_layer():
        layers.append([t.node for t in tasks])
        for t in tasks:
            inputs.setdefault(t.node, []).append(json.loads(t.input))
            jump = jumps.pop((t.node, len(inputs[t.node])), None)
            sched.finish(t, outputs.get(t.node, json.dumps(t.node)), jump)
    return layers, inputs, sched


def test_linear_chain_passes_outputs_along():
    layers, inputs, sched = drive(graph([("A", "B"), ("B", "C")]))
    assert layers == [["A"], ["B"], ["C"]]
    assert inputs == {"A": ["in"], "B": ["A"], "C": ["B"]}
    assert json.loads(sched.result()) == "C"


def test_fan_out_runs_in_one_layer_and_fan_in_gets_a_dict_by_name():
    layers, inputs, _sched = drive(graph([("A", "B"), ("A", "C"), ("B", "D"), ("C", "D")]))
    assert layers == [["A"], ["B", "C"], ["D"]]
    assert inputs["D"] == [{"B": "B", "C": "C"}]


def test_join_waits_for_a_longer_branch():
    spec = graph([("A", "B"), ("B", "C"), ("C", "J"), ("A", "J")], nodes=["A", "B", "C", "J"])
    layers, inputs, _ = drive(spec)
    assert layers == [["A"], ["B"], ["C"], ["J"]]
    assert inputs["J"] == [{"C": "C", "A": "A"}]


def test_a_branch_that_jumps_away_does_not_block_the_join():
    spec = graph([("A", "B"), ("A", "C"), ("B", "J"), ("C", "J")], nodes=["A", "B", "C", "J", "X"])
    layers, inputs, _ = drive(spec, jumps={("B", 1): Jump("X", '"to-x"')})
    assert layers == [["A"], ["B", "C"], ["J", "X"]]
    assert inputs["J"] == ["C"]  # one finished predecessor: its output, not a dict
    assert inputs["X"] == ["to-x"]


def test_a_node_reachable_only_through_next_never_runs_by_itself():
    spec = graph([("Fetcher", "Analyzer")], nodes=["Fetcher", "Analyzer", "ErrorHandler"])
    layers, _, _ = drive(spec)
    assert layers == [["Fetcher"], ["Analyzer"]]


def test_backward_jump_loops_and_skips_static_successors():
    spec = graph([("Plan", "Act"), ("Act", "Check"), ("Check", "Done")], nodes=["Plan", "Act", "Check", "Done"])
    layers, inputs, _ = drive(spec, jumps={("Check", 1): Jump("Plan", '"again"')})
    assert layers == [["Plan"], ["Act"], ["Check"], ["Plan"], ["Act"], ["Check"], ["Done"]]
    assert inputs["Plan"] == ["in", "again"]


def test_two_jumps_to_one_node_run_in_successive_layers():
    spec = graph([("A", "B"), ("A", "C")], nodes=["A", "B", "C", "T"])
    layers, inputs, _ = drive(spec, jumps={("B", 1): Jump("T", '"from B"'), ("C", 1): Jump("T", '"from C"')})
    assert layers == [["A"], ["B", "C"], ["T"], ["T"]]
    assert inputs["T"] == ["from B", "from C"]  # node order, nothing dropped


def test_final_layer_with_several_nodes_returns_a_dict():
    _, _, sched = drive(graph([("A", "B"), ("A", "C")]))
    assert json.loads(sched.result()) == {"B": "B", "C": "C"}


def test_unknown_jump_target_names_valid_targets():
    spec = graph([("A", "B")])
    sched = Scheduler(spec)
    sched.start('"x"')
    (task,) = sched.next_layer()
    with pytest.raises(
        GraphError,
        match='node "A" jumped to an unknown node: no node named "b" \\(did you mean "B"\\? valid: "A", "B"\\)',
    ):
        sched.finish(task, '"A"', Jump("b", "null"))


def test_step_limit_stops_a_runaway_loop():
    spec = graph([], nodes=["L"], max_steps=3)
    sched = Scheduler(spec)
    sched.start("0")
    with pytest.raises(StepLimitError, match="step limit of 3"):
        for _ in range(10):
            (task,) = sched.next_layer()
            sched.finish(task, "0", Jump("L", "0"))


def test_snapshot_round_trip_continues_identically():
    spec = graph([("A", "B"), ("A", "C"), ("B", "D"), ("C", "D")])
    sched = Scheduler(spec)
    sched.start('"in"')
    for t in sched.next_layer():
        sched.finish(t, json.dumps(t.node), None)
    (b, c) = sched.next_layer()
    sched.finish(b, '"B"', None)
    sched.finish(c, '"C"', None)
    restored = Scheduler(spec, json.loads(json.dumps(sched.snapshot())))
    (d,) = restored.next_layer()
    assert d.node == "D" and json.loads(d.input) == {"B": "B", "C": "C"} and d.step == 4
    assert restored.outputs["A"] == '"A"'


@st.composite
def random_dags(draw):
    n = draw(st.integers(2, 12))
    names = [f"n{i}" for i in range(n)]
    edges = {(names[i], names[j]) for i in range(n) for j in range(i + 1, n) if draw(st.booleans())}
    return names, sorted(edges)


@settings(max_examples=150, deadline=None)
@given(random_dags())
def test_without_jumps_every_reachable_node_runs_once_after_all_its_reachable_predecessors(dag):
    names, edges = dag
    spec = graph(edges, nodes=names, entry="n0")
    reachable, frontier = {"n0"}, ["n0"]
    while frontier:
        for a, b in edges:
            if a == frontier[-1] and b not in reachable:
                reachable.add(b)
                frontier.insert(0, b)
        frontier.pop()
    layers, _inputs, _ = drive(spec)
    ran = [n for layer in layers for n in layer]
    assert sorted(ran) == sorted(reachable) and len(ran) == len(set(ran))
    position = {n: i for i, layer in enumerate(layers) for n in layer}
    for a, b in edges:
        if a in reachable:
            assert position[a] < position[b]


def test_default_step_bound_lets_a_loop_continue_as_new_by_step_count():
    """A Next loop with default settings passes steps_per_run (where the run continues as new)
    and several runs more before the runaway guard stops it; the bound counts across runs."""
    spec = graph([], nodes=["L"])
    assert spec.max_steps >= 5 * spec.steps_per_run
    sched = Scheduler(spec)
    sched.start("0")
    while sched.step < spec.steps_per_run + 1:  # the first run's share, and one step of the next
        (task,) = sched.next_layer()
        sched.finish(task, "0", Jump("L", "0"))
    # continue-as-new carries the count: the next run starts at the same step, not at zero
    sched = Scheduler(spec, json.loads(json.dumps(sched.snapshot())))
    assert sched.step == spec.steps_per_run + 1
    with pytest.raises(StepLimitError, match=f"step limit of {spec.max_steps}"):
        while True:
            (task,) = sched.next_layer()
            sched.finish(task, "0", Jump("L", "0"))
    assert sched.step == spec.max_steps


def test_a_step_bound_below_steps_per_run_is_a_short_session_not_an_error():
    spec = graph([], nodes=["L"], max_steps=50, steps_per_run=2000)
    assert (spec.max_steps, spec.steps_per_run) == (50, 2000)


def test_eager_scheduling_starts_a_branch_as_soon_as_its_inputs_are_ready():
    """Called with the nodes still running, the scheduler starts what is ready now, and a join still
    waits for a running branch (the pure half of eager scheduling)."""
    from gecko_temporal import Workflow
    from gecko_temporal.core.scheduler import Scheduler

    wf = Workflow("Uneven")
    for name in ["Start", "Slow", "C1", "C2", "Join"]:
        wf.add_node(name, lambda x: x)
    for a, b in [("Start", "Slow"), ("Start", "C1"), ("C1", "C2"), ("Slow", "Join"), ("C2", "Join")]:
        wf.add_edge(a, b)
    sched = Scheduler(wf.set_entry_point("Start").compile())
    sched.start('"in"')
    [start] = sched.next_layer()
    sched.finish(start, '"s"', None)
    slow, c1 = sched.next_layer()
    assert (slow.node, c1.node) == ("Slow", "C1")
    sched.finish(c1, '"c1"', None)
    [c2] = sched.next_layer(running={"Slow"})  # C2 need not wait for Slow
    assert c2.node == "C2" and c2.input == '"c1"'
    sched.finish(c2, '"c2"', None)
    assert sched.next_layer(running={"Slow"}) == []  # the join waits for the running branch
    sched.finish(slow, '"slow"', None)
    [join] = sched.next_layer()
    assert join.node == "Join" and join.input == '{"Slow":"slow","C2":"c2"}'  # edge order
    assert [t.step for t in (start, slow, c1, c2, join)] == [1, 2, 3, 4, 5]


def test_a_jump_to_a_running_node_waits_until_it_has_finished():
    from gecko_temporal import Workflow
    from gecko_temporal.core.scheduler import Scheduler

    wf = Workflow("JumpRunning").add_node("A", lambda x: x).add_node("B", lambda x: x).set_entry_point("A")
    sched = Scheduler(wf.compile())
    sched.request_jump("B", '"first"', "signal")
    [b] = sched.next_layer()
    sched.request_jump("B", '"second"', "signal")
    assert sched.next_layer(running={"B"}) == []
    sched.finish(b, '"done"', None, redirected=True)  # a redirect keeps the output, drops where it led
    assert sched.outputs["B"] == '"done"'
    [again] = sched.next_layer()
    assert again.node == "B" and again.input == '"second"'


# -- rules the README states, each with the breakage it catches -----------------------------------


def test_join_input_is_a_dict_in_edge_order_not_node_order():
    """README: several finished predecessors give a dict {name: output} in edge order."""
    wf = Workflow("g")
    for n in ["A", "B", "C", "J"]:
        wf.add_node(n, lambda x: x)
    wf.add_edge("A", "C").add_edge("A", "B").add_edge("C", "J").add_edge("B", "J").set_entry_point("A")
    layers, inputs, _ = drive(wf.compile())
    assert layers == [["A"], ["B", "C"], ["J"]]  # the layer runs in node order ...
    assert list(inputs["J"][0].items()) == [("C", "C"), ("B", "B")]  # ... the join input in edge order


def test_join_input_text_keeps_edge_order_through_json():
    spec = graph([("A", "B"), ("B", "C"), ("C", "J"), ("A", "J")], nodes=["A", "B", "C", "J"])
    sched = Scheduler(spec)
    sched.start('"in"')
    while (tasks := sched.next_layer())[0].node != "J":
        for t in tasks:
            sched.finish(t, json.dumps(t.node), None)
    assert tasks[0].input == '{"C":"C","A":"A"}'


def test_a_jump_replaces_the_edge_inputs_the_target_was_waiting_for():
    """Q jumps to the join J while P delivered to it: J runs once, with the jump's input only."""
    spec = graph([("S", "P"), ("S", "Q"), ("P", "J"), ("Q", "J")], nodes=["S", "P", "Q", "J"])
    layers, inputs, sched = drive(spec, jumps={("Q", 1): Jump("J", '"jumped"')})
    assert layers == [["S"], ["P", "Q"], ["J"]]
    assert inputs["J"] == ["jumped"]
    assert sched.inbox == {} and json.loads(sched.result()) == "J"


def test_a_join_waits_for_a_predecessor_jumped_to_in_the_same_layer():
    """T is queued by a jump when the join's other input is ready: the join waits for T."""
    spec = graph([("A", "B"), ("A", "C"), ("B", "J"), ("T", "J")], nodes=["A", "B", "C", "T", "J"])
    layers, inputs, _ = drive(spec, jumps={("C", 1): Jump("T", '"go"')})
    assert layers == [["A"], ["B", "C"], ["T"], ["J"]]
    assert inputs["J"] == [{"B": "B", "T": "T"}]  # once, with both inputs
    assert inputs["T"] == ["go"]


def test_a_join_waits_for_a_predecessor_reachable_from_a_pending_jump():
    # a second jump to X waits a layer; X -> T -> J: J must wait for the whole chain
    spec = graph(
        [("A", "B"), ("A", "C"), ("A", "D"), ("B", "J"), ("X", "T"), ("T", "J")],
        nodes=["A", "B", "C", "D", "X", "T", "J"],
    )
    layers, inputs, _ = drive(spec, jumps={("C", 1): Jump("X", '"1"'), ("D", 1): Jump("X", '"2"')})
    assert layers == [["A"], ["B", "C", "D"], ["X"], ["X", "T"], ["T", "J"], ["J"]]
    assert inputs["X"] == ["1", "2"]
    # the first pass waits for T (queued behind the second jump's X); the second pass has only T
    assert inputs["J"] == [{"B": "B", "T": "T"}, "T"]


def test_steps_count_every_execution_and_a_layer_runs_in_node_order():
    spec = graph([("A", "C"), ("A", "B")], nodes=["A", "C", "B"])
    sched = Scheduler(spec)
    sched.start('"in"')
    (a,) = sched.next_layer()
    assert (a.node, a.step, a.jumped, a.input) == ("A", 1, True, '"in"')
    sched.finish(a, '"A"', None)
    layer = sched.next_layer()
    assert [(t.node, t.step, t.jumped) for t in layer] == [("C", 2, False), ("B", 3, False)]
    assert sched.step == 3 and sched.last_layer == ["C", "B"]
    for t in layer:
        sched.finish(t, json.dumps(t.node), None)
    assert sched.next_layer() == [] and sched.last_layer == ["C", "B"]
    assert sched.result() == '{"C":"C","B":"B"}'  # several last nodes: a dict in node order


def test_a_jump_skips_only_the_jumping_nodes_successors_and_mixes_with_edge_inputs_in_node_order():
    spec = graph([("A", "B"), ("A", "C"), ("C", "D")], nodes=["A", "B", "C", "D", "Z"])
    sched = Scheduler(spec)
    sched.start("0")
    (a,) = sched.next_layer()
    sched.finish(a, "1", None)
    b, c = sched.next_layer()
    sched.finish(b, "2", Jump("Z", '"z"'))
    sched.finish(c, "3", None)
    layer = sched.next_layer()
    assert [(t.node, t.input, t.jumped, t.step) for t in layer] == [("D", "3", False, 4), ("Z", '"z"', True, 5)]
    assert sched.outputs == {"A": "1", "B": "2", "C": "3"}


def test_step_limit_counts_the_whole_next_layer_and_names_it():
    spec = graph([("A", "B"), ("A", "C")], max_steps=2)
    sched = Scheduler(spec)
    sched.start("0")
    (a,) = sched.next_layer()
    sched.finish(a, "0", None)
    with pytest.raises(
        StepLimitError,
        match=r'run "g" reached its step limit of 2 node executions '
        r"\(next layer: B, C\); a Next loop may not terminate\. Raise "
        r"max_steps on the Workflow or execute\(\) if the loop is intended\.$",
    ):
        sched.next_layer()
    exact = Scheduler(graph([("A", "B")], max_steps=2))
    exact.start("0")
    (a,) = exact.next_layer()
    exact.finish(a, "0", None)
    assert [t.node for t in exact.next_layer()] == ["B"]  # exactly max_steps is allowed


def test_check_target_and_request_jump():
    sched = Scheduler(graph([("A", "B")]))
    assert sched.check_target("B") is None
    assert sched.check_target("Bx") == 'no node named "Bx" (did you mean "B"? valid: "A", "B")'
    with pytest.raises(GraphError, match='signal jumped to an unknown node: no node named "Q"'):
        sched.request_jump("Q", "null", "signal")
    sched.request_jump("B", '"x"', "signal")
    assert sched.jumps == [Jump("B", '"x"', "signal")]
    assert sched.snapshot()["jumps"] == [{"node": "B", "input": '"x"', "source": "signal"}]


def test_result_of_a_run_that_never_ran_a_node_is_null_and_snapshot_restores_every_field():
    spec = graph([("A", "B")])
    assert Scheduler(spec).result() == "{}"
    sched = Scheduler(spec)
    sched.start('"in"')
    (a,) = sched.next_layer()
    sched.finish(a, '"A"', Jump("A", '"again"'))
    snap = json.loads(json.dumps(sched.snapshot()))
    assert snap == {
        "inbox": {},
        "jumps": [{"node": "A", "input": '"again"', "source": 'node "A"'}],
        "outputs": {"A": '"A"'},
        "step": 1,
        "last_layer": ["A"],
    }
    restored = Scheduler(spec, snap)
    assert restored.result() == '"A"'
    (again,) = restored.next_layer()
    assert (again.node, again.input, again.step) == ("A", '"again"', 2)


def test_a_jump_to_a_waiting_node_does_not_hold_back_later_ready_nodes():
    spec = graph([("S", "P"), ("S", "Q"), ("P", "J"), ("Q", "J"), ("P", "Z")], nodes=["S", "P", "Q", "J", "Z"])
    layers, inputs, _ = drive(spec, jumps={("Q", 1): Jump("J", '"jumped"')})
    assert layers == [["S"], ["P", "Q"], ["J", "Z"]]
    assert inputs["J"] == ["jumped"] and inputs["Z"] == ["P"]


def test_a_blocked_join_does_not_hold_back_later_ready_nodes():
    spec = graph([("A", "B"), ("B", "C"), ("C", "J"), ("A", "J"), ("A", "Z")], nodes=["A", "B", "C", "J", "Z"])
    layers, _, _ = drive(spec)
    assert layers == [["A"], ["B", "Z"], ["C"], ["J"]]


def test_the_entry_jump_is_sourced_input_and_a_missing_output_reads_null():
    sched = Scheduler(graph([("A", "B")]))
    sched.start('"in"')
    assert sched.snapshot()["jumps"] == [{"node": "A", "input": '"in"', "source": "input"}]
    assert Scheduler(graph([("A", "B")]), {"last_layer": ["A"]}).result() == "null"
    assert (
        Scheduler(graph([("A", "B")]), {"last_layer": ["A", "B"], "outputs": {"B": "2"}}).result() == '{"A":null,"B":2}'
    )
