"""The run loop's decisions (core/run/driver.py), for layered and eager runs, without a server."""

import json

import pytest

from gecko_temporal import Workflow
from gecko_temporal.core.control import KEEP_COMPLETED, RunControl
from gecko_temporal.core.inputs import NodeInputs
from gecko_temporal.core.run.driver import LOCAL_BURST, RunDriver
from gecko_temporal.core.run.failure import NodeFailed, RunFailure
from gecko_temporal.core.run.layer import LayerQueue
from gecko_temporal.core.scheduler import Scheduler, Task, _FanIn
from gecko_temporal.core.spec import Jump, NodeInput, NodeOutput, RunSnapshot
from gecko_temporal.core.state import StateDelta


def spec(scheduling="layered", edges=(("A", "C"), ("B", "C")), local=(), **kw):
    wf = Workflow("g", scheduling=scheduling, **kw)
    names = sorted({n for e in edges for n in e})
    for n in names:
        wf.add_node(n, lambda x: x, local=n in local)
    for a, b in edges:
        wf.add_edge(a, b)
    wf.set_entry_point(names[0])
    return wf.compile()


def driver(graph, snapshot=None, state=None):
    snap = snapshot or RunSnapshot()
    sched = Scheduler(graph, snap.scheduler)
    control = RunControl(graph, sched, snap)
    control.clock = lambda: "T"
    inputs = NodeInputs(graph.key, '"in"', snap.warned)
    return RunDriver(graph, sched, control, inputs, snap, snap.state if state is None else state)


def out(value, jump=None, **writes):
    return NodeOutput(value=json.dumps(value), jump=jump, writes={k: json.dumps(v) for k, v in writes.items()})


def test_a_first_run_queues_the_entry_and_sets_the_deadline():
    d = driver(spec())
    d.begin_run(True, '"go"', 10.0, 100.0)
    assert d.deadline == 110.0 and d.sched.jumps == [Jump("A", '"go"', "input")] and d.steps_at_start == 0
    assert d.time_left(104.5) == 5.5 and d.time_left(111.0) == 0.0
    d2 = driver(spec(), RunSnapshot(scheduler={"step": 7}, deadline=50.0))
    d2.begin_run(False, '"go"', 10.0, 100.0)
    assert d2.deadline == 50.0 and d2.sched.jumps == [] and d2.steps_at_start == 7
    d3 = driver(spec())
    d3.begin_run(True, "1", None, 100.0)
    assert d3.deadline is None and d3.time_left(5.0) is None


def test_a_layered_run_takes_layers_and_finishes_them_in_node_order():
    d = driver(spec())
    d.sched.jumps = [Jump("A", '"a"', "input"), Jump("B", '"b"', "input")]
    tasks = d.next_tasks({})
    assert [(t.node, t.step) for t in tasks] == [("A", 1), ("B", 2)] and d.layer == 1
    jumps = []
    d.finish([(tasks[0], out("a", k=1)), (tasks[1], out("b", k=2))], lambda *j: jumps.append(j))
    assert d.state == {"k": "2"} and d.conflicts == ["k"] and d.completed == ["A", "B"] and jumps == []
    assert d.conflict_note() == "layer 1: several nodes wrote ['k']; the last in node order won"
    assert d.more
    assert [t.node for t in d.next_tasks({})] == ["C"] and d.layer == 2


def test_an_empty_layer_leaves_the_layer_count():
    d = driver(spec())
    assert d.next_tasks({}) == [] and d.layer == 0 and not d.more


def test_jumps_are_told_with_their_step():
    d = driver(spec(edges=(("A", "B"),)))
    d.sched.jumps = [Jump("A", "1", "input")]
    (task,) = d.next_tasks({})
    told = []
    d.finish([(task, out("x", jump=Jump("B", "2")))], lambda *j: told.append(j))
    assert told == [("A", "B", 1)] and d.conflicts == [] and d.conflict_note() is None


def test_completed_is_bounded():
    d = driver(spec(), RunSnapshot(completed=["Z"] * KEEP_COMPLETED))
    d.sched.jumps = [Jump("A", "1", "input")]
    (task,) = d.next_tasks({})
    d.finish([(task, out(1))], lambda *j: None)
    assert len(d.completed) == KEEP_COMPLETED and d.completed[-1] == "A" and d.completed[0] == "Z"


def test_a_reducer_that_cannot_combine_fails_the_node():
    d = driver(spec(reducers={"n": "add"}), state={"n": "1"})
    d.sched.jumps = [Jump("A", "1", "input")]
    (task,) = d.next_tasks({})
    with pytest.raises(NodeFailed) as caught:
        d.finish([(task, out(1, n="x"))], lambda *j: None)
    assert (caught.value.node, caught.value.error_type) == ("A", "ReducerError")


def test_a_teams_member_deltas_reduce_one_by_one():
    d = driver(spec(reducers={"n": "add"}), state={"n": "1"})
    d.sched.jumps = [Jump("A", "1", "input")]
    (task,) = d.next_tasks({})
    d.team_deltas["A"] = [StateDelta({"n": "2"}, []), StateDelta({"n": "3"}, [])]
    d.finish([(task, out(1, n=100))], lambda *j: None)
    assert d.state == {"n": "6"} and d.team_deltas == {}


def test_team_deltas_without_reducers_merge_as_the_teams_output():
    d = driver(spec(), state={})
    d.sched.jumps = [Jump("A", "1", "input")]
    (task,) = d.next_tasks({})
    d.team_deltas["A"] = [StateDelta({"n": "2"}, [])]
    d.finish([(task, out(1, n=100))], lambda *j: None)
    assert d.state == {"n": "100"} and d.team_deltas == {}


def test_an_eager_run_starts_ready_nodes_and_tracks_overlapping_writers():
    d = driver(spec("eager"))
    d.sched.jumps = [Jump("A", '"a"', "input"), Jump("B", '"b"', "input")]
    a, b = d.next_tasks({})
    assert d.layer == 1
    d.finish([(a, out("a", k=1))], lambda *j: None)
    assert d.conflicts == [] and d.sched.last_layer == ["A"]
    assert d.next_tasks({"B": b}) == [] and d.layer == 1  # C waits for B
    d.finish([(b, out("b", k=2))], lambda *j: None)
    assert d.conflicts == ["k"] and d.state == {"k": "2"} and d.sched.last_layer == ["B"]
    assert d.conflict_note() == "nodes that ran at the same time wrote ['k']; the last to finish won"
    (c,) = d.next_tasks({})
    assert c.node == "C" and d.layer == 2


def test_an_eager_run_starts_nothing_once_switching_is_due():
    d = driver(spec("eager"))
    d.sched.jumps = [Jump("A", "1", "input")]
    d.switching = True
    assert d.next_tasks({}) == [] and d.sched.jumps == [Jump("A", "1", "input")]


def test_an_eager_run_takes_over_the_waits_the_previous_run_switched_with():
    d = driver(spec("eager"))
    d.sched.jumps = [Jump("B", '"b"', "input")]
    (b,) = d.next_tasks({})
    paused = LayerQueue([Task("A", '"a"', 3, resume=['"yes"'])])  # it waited when the last run switched
    paused.launch()
    paused.pause_wait(0, {"resume": ['"yes"'], "until": 70.0})
    assert d.with_fan_ins(paused) == paused.paused()  # no Send instance: nothing more to carry
    (a,) = d.carried_over(paused.paused())
    assert (a.key, a.step, a.resume, a.wait_until) == ("A", 3, ['"yes"'], 70.0)
    d.finish([(b, out("b", k=1))], lambda *j: None)
    d.finish([(a, out("a", k=2))], lambda *j: None)  # it ran beside B: an overlapping writer
    assert d.state == {"k": "2"} and d.conflicts == ["k"]


def test_a_jump_from_outside_redirects_eager_tasks_running_then():
    d = driver(spec("eager", edges=(("A", "B"), ("X", "B"))))
    d.sched.jumps = [Jump("A", "1", "input")]
    (a,) = d.next_tasks({})
    d.begin_step({"A": a})
    assert d._redirected == set()
    assert not d.redirect_due()  # the entry is no jump from outside
    d.control.queue_jump({"node": "X", "input": "2"}, "signal")
    assert d.redirect_due()  # the loop wakes for it while A runs
    d.begin_step({"A": a})
    assert not d.redirect_due()  # and only once: X waits in the queue without waking it again
    d.begin_step({"A": a})  # one jump redirects once
    d.finish([(a, out("a"))], lambda *j: None)
    assert d.sched.outputs == {"A": '"a"'} and d.sched.inbox == {}  # kept its output, lost its successor
    assert [t.node for t in d.next_tasks({})] == ["X"]


def test_a_layered_run_redirects_without_marking_tasks():
    d = driver(spec(edges=(("A", "B"), ("X", "B"))))
    d.sched.inbox = {"B": {"A": "1"}}
    d.control.queue_jump({"node": "X", "input": "2"}, "update")
    assert not d.redirect_due()  # a layered run takes the jump after its layer
    d.begin_step({"A": Task("A", "1", 1)})
    assert d.sched.inbox == {} and d._redirected == set()


def test_a_fan_out_merges_when_its_last_instance_finishes_in_send_order():
    d = driver(spec("eager", edges=(("A", "B"),)))
    i0, i1 = Task("B", "0", 1, send=0, sends=2), Task("B", "1", 2, send=1, sends=2)
    d.sched._fanin["B"] = _FanIn([None, None], [None, None], [[], []], [[], []], left=2)
    d._writes.started("B[0]")
    d._writes.started("B[1]")
    d.finish([(i1, out(1, k="one"))], lambda *j: None)
    assert d.state == {} and d.completed == ["B"]
    d.finish([(i0, out(0, k="zero", z=0))], lambda *j: None)
    assert d.state == {"k": '"one"', "z": "0"} and d.sched.outputs["B"] == "[0,1]"


def test_an_eager_fan_out_whose_instances_wait_goes_on_collecting_in_the_next_run():
    graph = spec("eager", edges=(("A", "B"), ("B", "C")))
    d = driver(graph)
    d.sched.request_send("B", "0", source="A")
    d.sched.request_send("B", "1", source="A")
    d.sched.request_send("B", "2", source="A")
    i0, i1, i2 = d.next_tasks({})
    # B[0] finished in this run, with a write, a route and a Send of its own; B[1] and B[2] wait
    d.finish(
        [(i0, NodeOutput(value="0", writes={"k": '"zero"', "z": "0"}, routes=["C"], sends=[Jump("C", "9")]))], print
    )
    d.begin_step({"B[1]": i1, "B[2]": i2})
    d.control.queue_jump({"node": "C", "input": "1"}, "update")  # a jump from outside redirects them
    d.begin_step({"B[1]": i1, "B[2]": i2})
    waits = LayerQueue([i1, i2])
    for i in range(2):
        waits.launch()
        waits.pause_wait(i, {"resume": ['"yes"']})
    carried = json.loads(json.dumps(d.with_fan_ins(waits)))  # as continue-as-new carries it
    assert carried["redirected"] == ["B[1]", "B[2]"] and carried["fan_ins"]["B"]["left"] == 2

    nxt = driver(graph, RunSnapshot(scheduler=json.loads(json.dumps(d.sched.snapshot())), state=d.state))
    t1, t2 = nxt.carried_over(carried)
    assert (t1.key, t1.step, t1.resume, t2.key) == ("B[1]", i1.step, ['"yes"'], "B[2]")
    nxt.finish([(t2, out(2, k="two"))], print)
    assert nxt.state == {} and "B" not in nxt.sched.outputs  # still collecting
    nxt.finish([(t1, out(1))], print)
    assert nxt.sched.outputs["B"] == "[0,1,2]"
    assert nxt.state == {"k": '"two"', "z": "0"}  # merged in Send order, B[0]'s from the last run first
    # redirected: where the fan-out would have led (C by its route and its Send) is dropped
    assert nxt.sched.inbox == {} and nxt.sched.sends == []


def test_edits_land_only_when_the_run_is_quiet():
    d = driver(spec(), state={"a": "1"})
    edit = {"values": {"b": "2"}, "delete": ["a"], "source": "update"}
    d.apply_edits([])  # nothing pending
    d.control.queue_edit(edit)
    d.apply_edits(["A"])
    assert d.state == {"a": "1"} and d.control.pending_edits == [edit]
    d.control.waiting["A"] = {}
    d.apply_edits(["A"])
    assert d.state == {"b": "2"} and d.control.pending_edits == []
    assert d.control.edits == [{"step": 0, "layer": 0, "time": "T", "source": "update", "set": ["b"], "deleted": ["a"]}]


def test_edits_make_inputs_measure_the_state_again():
    d = driver(spec())
    d.inputs._sizes = ("measured",)
    d.apply_edits([])
    assert d.inputs._sizes == ("measured",)
    d.control.queue_edit({"values": {"b": "2"}, "delete": [], "source": "update"})
    d.apply_edits([])
    assert d.inputs._sizes is None


def test_a_paused_layer_is_taken_once():
    d = driver(spec(), RunSnapshot(partial_layer={"tasks": [], "done": {}}))
    d.inputs._sizes = ("measured",)
    assert d.take_partial_layer() == {"tasks": [], "done": {}} and d.inputs._sizes is None
    d.inputs._sizes = ("measured",)
    assert d.take_partial_layer() is None and d.inputs._sizes == ("measured",)


def test_a_long_burst_of_local_steps_yields_between_steps_only():
    d = driver(spec(edges=(("A", "B"),), local=("A", "B")))
    d.sched.inbox = {"B": {"A": "1"}}  # more to run
    assert d.local_burst(["A"] * (LOCAL_BURST - 1), running=False) is False
    assert d.local_burst(["A"], running=True) is False  # tasks still run: not counted
    assert d.local_burst(["B"], running=False) is True
    assert d.local_burst(["B"], running=False) is True  # until the run yields
    d.burst_ended()
    assert d.local_burst(["A"] * (LOCAL_BURST - 1), running=False) is False
    d.sched.inbox = {}
    assert d.local_burst(["A"] * 5, running=False) is False  # never just to finish
    d.sched.jumps = [Jump("A", "1", "x")]
    assert d.local_burst(["A"], running=False) is True
    d.sched.jumps, d.sched.sends = [], [Jump("A", "1", "x")]
    assert d.local_burst(["A", "B"], running=False) is True


def test_a_regular_activity_ends_the_burst():
    d = driver(spec(edges=(("A", "B"),), local=("A",)))
    d.sched.inbox = {"B": {"A": "1"}}
    assert d.local_burst(["A"] * (LOCAL_BURST - 1), running=False) is False
    assert d.local_burst(["A", "B"], running=False) is False
    assert d.local_burst(["A"] * (LOCAL_BURST - 1), running=False) is False
    assert d.local_burst(["A"], running=False) is True


def test_continue_as_new_is_due_after_steps_per_run_or_when_suggested_and_only_with_more():
    d = driver(spec(steps_per_run=3), RunSnapshot(scheduler={"step": 10}))
    d.begin_run(False, "1", None, 0.0)
    d.sched.step = 12
    d.check_switch(lambda: False)
    assert d.switching is False  # nothing more to run
    d.sched.jumps = [Jump("A", "1", "x")]
    d.check_switch(lambda: False)
    assert d.switching is False  # 2 steps of 3
    d.check_switch(lambda: True)
    assert d.switching is True
    assert d.switch_now(running=True) is False and d.switching is True
    assert d.switch_now(running=False) is True and d.switching is False
    assert d.switch_now(running=False) is False
    d.sched.step = 13
    d.check_switch(lambda: pytest.fail("not asked once steps_per_run is reached"))
    assert d.switching is True
    d.switching, d.cannot_switch = False, True
    d.check_switch(lambda: True)
    assert d.switching is False


def test_the_snapshot_carries_the_run_on():
    d = driver(spec(), RunSnapshot(run=4, layer=9, deadline=5.0, completed=["A"], warned=["A"]), state={"k": "1"})
    d.control.rejected.append({"r": 1})
    d.control.answers["W"] = "2"
    d.control.rewound_from = {"run_id": "r"}
    snap = d.snapshot({"tasks": [], "done": {}})
    assert snap == RunSnapshot(
        scheduler=d.sched.snapshot(),
        state={"k": "1"},
        deadline=5.0,
        run=5,
        completed=["A"],
        rejected=[{"r": 1}],
        answers={"W": "2"},
        layer=9,
        warned=["A"],
        edits=[],
        rewound_from={"run_id": "r"},
        partial_layer={"tasks": [], "done": {}},
    )
    assert d.snapshot().partial_layer is None


def test_the_timeout_names_running_tasks_in_node_order():
    d = driver(spec())
    d.sched.step = 8
    running = [Task("B", "1", 3), Task("A", "1", 5, send=1, sends=2), Task("A", "1", 4, send=0, sends=2)]
    assert [t.key for t in d.in_node_order(running)] == ["A[0]", "A[1]", "B"]
    assert d.timed_out(running) == RunFailure(
        'run "g" timed out after its timeout while running A[0], A[1], B (step 8); raise timeout= or make the nodes faster',
        "WorkflowTimeoutError",
        {"running": ["A[0]", "A[1]", "B"], "step": 8},
    )


def test_node_input_and_activity_id():
    graph = spec()
    d = driver(graph, RunSnapshot(run=3), state={"k": "1"})
    task = Task("A", '"x"', 7)
    arg, warning = d.node_input(graph.node("A"), task, None, False, "sess")
    # what the activity knows by itself stays out of the envelope: the session is its workflow's id,
    # the graph its activity type's prefix, and unset optional fields read as None
    assert warning is None and arg == {"node": "A", "input": '"x"', "step": 7}
    back = NodeInput.from_plain(arg, graph.node("A").activity_type, "sess")
    assert (back.graph, back.session_id, back.state, back.member) == (graph.key, "sess", None, None)
    arg, _ = d.node_input(graph.node("A"), task, 2, True, "sess")
    assert arg["state"] == {"k": "1"} and arg["member"] == 2
    assert d.activity_id(task, None) == "3.7" and d.activity_id(task, 0) == "3.7.0"


def test_an_activitys_plain_output_becomes_its_node_output():
    import asyncio

    async def plain(value):
        return {"value": value, "writes": {"k": value}}

    out = asyncio.run(driver(spec()).expanded(Task("A", '"x"', 7), None, plain('"v"')))
    assert (out.value, out.writes, out.jump) == ('"v"', {"k": '"v"'}, None)  # (with references: below)


def test_an_input_too_large_fails_the_node():
    graph = spec()
    d = driver(graph)
    d.inputs._limit = 20_000
    with pytest.raises(NodeFailed) as caught:
        d.node_input(graph.node("A"), Task("A", json.dumps("x" * 600_000), 1), None, False, "s")
    assert (caught.value.node, caught.value.error_type) == ("A", "PayloadTooLarge")


def test_a_new_driver_has_no_conflicts_and_may_switch():
    layered, eager = driver(spec()), driver(spec("eager"))
    assert layered.conflicts == [] and layered.cannot_switch is False and layered.switching is False
    assert layered._writes is None and layered._seen is None  # layered runs track no writes
    assert eager._writes is not None and eager._seen == []


def test_a_layered_run_redirects_at_every_step_while_the_outside_jump_waits():
    d = driver(spec(edges=(("A", "B"), ("X", "B"))))
    d.control.queue_jump({"node": "X", "input": "2"}, "signal")
    d.begin_step({})
    d.sched.inbox = {"B": {"A": "1"}}
    d.begin_step({})
    assert d.sched.inbox == {}


def test_an_eager_run_redirects_once_per_outside_jump():
    d = driver(spec("eager", edges=(("A", "B"), ("X", "B"))))
    d.control.queue_jump({"node": "X", "input": "2"}, "signal")
    d.begin_step({})
    d.sched.inbox = {"B": {"A": "1"}}
    d.begin_step({})
    assert d.sched.inbox == {"B": {"A": "1"}}


def test_a_redirected_task_is_forgotten_once_finished():
    d = driver(spec("eager", edges=(("A", "B"), ("X", "B"))))
    d.sched.jumps = [Jump("A", "1", "input")]
    (a,) = d.next_tasks({})
    d.control.queue_jump({"node": "X", "input": "2"}, "signal")
    d.begin_step({"A": a})
    assert d._redirected == {"A"}
    d.finish([(a, out("a"))], lambda *j: None)
    assert d._redirected == set()


def test_an_eager_fan_out_counts_the_running_tasks_against_the_limit():
    from gecko_temporal import GraphError
    from gecko_temporal.core.scheduler import FAN_OUT_LIMIT

    d = driver(spec("eager", edges=(("A", "B"),)))
    running = {f"A[{i}]": Task("A", "1", i, send=i, sends=FAN_OUT_LIMIT - 1) for i in range(FAN_OUT_LIMIT - 1)}
    d.sched.sends = [Jump("B", "1", "A"), Jump("B", "2", "A")]
    with pytest.raises(GraphError, match="would run 2001 nodes"):
        d.next_tasks(running)


def test_a_jump_is_queued_with_the_scheduler():
    d = driver(spec(edges=(("A", "B"),)))
    d.sched.jumps = [Jump("A", "1", "input")]
    (task,) = d.next_tasks({})
    d.finish([(task, out("x", jump=Jump("B", "2")))], lambda *j: None)
    assert d.sched.jumps == [Jump("B", "2", 'node "A"')] and d.sched.inbox == {}


def test_conflicts_of_every_task_in_an_eager_batch_are_kept():
    d = driver(spec("eager", edges=(("A", "D"), ("B", "D"), ("C", "D"))))
    d.sched.jumps = [Jump(n, "1", "input") for n in "ABC"]
    a, b, c = d.next_tasks({})
    d.finish([(a, out("a", k=1))], lambda *j: None)
    d.finish([(b, out("b", k=2)), (c, out("c", j=3))], lambda *j: None)
    assert d.conflicts == ["k"]


def test_deletes_merge_too():
    d = driver(spec(), state={"a": "1", "b": "2"})
    d.sched.jumps = [Jump("A", "1", "input")]
    (task,) = d.next_tasks({})
    d.finish([(task, NodeOutput(value="1", deletes=["a"]))], lambda *j: None)
    assert d.state == {"b": "2"}


def test_a_reducer_failure_keeps_the_reducers_message():
    from gecko_temporal.core.state import ReducerError, merge_layer

    try:
        merge_layer({"n": "1"}, [("A", StateDelta({"n": '"x"'}, []))], {"n": "add"})
    except ReducerError as exc:
        expected = str(exc)
    d = driver(spec(reducers={"n": "add"}), state={"n": "1"})
    d.sched.jumps = [Jump("A", "1", "input")]
    (task,) = d.next_tasks({})
    with pytest.raises(NodeFailed) as caught:
        d.finish([(task, out(1, n="x"))], lambda *j: None)
    assert caught.value.message == expected and expected


def test_the_snapshot_carries_the_edits():
    d = driver(spec())
    d.control.edits.append({"step": 1})
    assert d.snapshot().edits == [{"step": 1}]


def test_an_input_too_large_says_what_is_big():
    graph = spec()
    d = driver(graph)
    d.inputs._limit = 20_000
    with pytest.raises(NodeFailed) as caught:
        d.node_input(graph.node("A"), Task("A", json.dumps("x" * 600_000), 1), None, False, "s")
    assert caught.value.message.startswith('node "A" would receive ')


def test_the_run_decisions_never_import_temporalio():
    import subprocess
    import sys

    modules = ", ".join(
        f"gecko_temporal.core.run.{m}" for m in ("driver", "failure", "handoff", "layer", "person", "rewind", "writes")
    )
    code = f"import sys, {modules}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'temporalio'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_with_references_a_node_input_refers_and_its_packed_output_comes_back_whole():
    import asyncio

    from gecko_temporal.core import codec
    from gecko_temporal.core.refs import Unpacked, input_refs

    graph = spec(edges=(("A", "B"),))
    big = codec.encode(["m" * 500])
    d = driver(graph, state={"messages": big})
    d.use_refs("")
    task = Task("A", json.dumps("x" * 600_000), 1)  # too big to ship whole; a reference is not
    arg, warning = d.node_input(graph.node("A"), task, None, True, "sess")
    assert warning is None and arg["input"].startswith("@") and arg["state"]["messages"].startswith("@")
    found: dict = {}
    for _ in range(3):  # an answer holds about 300,000 characters (at least one value): ask for the rest
        found |= d.values([[r for r in input_refs(arg) if r not in found]])
    assert found == {r: d.refs.get(r) for r in input_refs(arg)} and len(d.values([input_refs(arg)])) == 1
    assert d.values([]) == {} and d.values(["not a list"]) == {}
    unpacked = Unpacked(arg, found)
    grown = codec.encode(["m" * 500, "n" * 500])
    shipped = unpacked.pack(out(None).to_plain() | {"writes": {"messages": grown}})
    assert shipped["writes"]["messages"].startswith("+")

    async def done(plain):  # the activity's output arrives as plain data
        return plain

    result = asyncio.run(d.expanded(task, None, done(shipped)))
    assert result.writes == {"messages": grown} and len(d.refs) == 0  # the input's texts let go

    d.node_input(graph.node("A"), task, None, True, "sess")
    bad = {"value": "@" + "0" * 32, "jump": None, "writes": {}, "deletes": []}
    with pytest.raises(NodeFailed, match='the output value of node "A" names value 000000000000'):
        asyncio.run(d.expanded(task, None, done(bad)))
    assert len(d.refs) == 0
