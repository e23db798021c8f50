"""One layer's launch queue (core/run/layer.py): order, cap, first failure, pausing."""

from gecko_temporal.core.run.layer import LayerQueue
from gecko_temporal.core.scheduler import Task
from gecko_temporal.core.spec import NodeOutput

KINDS = {"A": "function", "B": "function", "T": "team", "W": "wait"}


def tasks(*names):
    return [Task(n, f'"{n}"', i + 1) for i, n in enumerate(names)]


def out(v):
    return NodeOutput(value=v)


def test_tasks_launch_in_order_up_to_the_cap_and_the_next_as_one_lands():
    layer = LayerQueue(tasks("A", "B", "A", "B"))
    assert layer.cap == 4
    layer.limit(9)
    assert layer.cap == 4
    layer.limit(2)
    assert layer.cap == 2
    assert layer.can_launch and layer.launch() == 0
    assert layer.can_launch and layer.launch() == 1
    assert not layer.can_launch and layer.running == [0, 1] and list(layer.waiting) == [2, 3]
    layer.landed(1, out("b"))
    assert layer.running == [0] and layer.done == {1: out("b")} and layer.can_launch
    assert layer.launch() == 2
    layer.landed(0, out("a"))
    layer.landed(2, out("c"))
    assert not layer.over and layer.launch() == 3 and not layer.can_launch
    layer.landed(3, out("d"))
    assert layer.over and not layer.can_launch
    assert layer.outputs() == [out("a"), out("b"), out("c"), out("d")]
    assert layer.first_failure() is None and layer.late() == []


def test_the_first_failure_in_node_order_is_reported_and_ends_the_layer():
    layer = LayerQueue(tasks("A", "B", "A"))
    for _ in range(3):
        layer.launch()
    late, early = ValueError("late"), KeyError("early")
    layer.landed(2, error=late)
    assert layer.over and not layer.can_launch and layer.first_failure() is late
    layer.landed(0, error=early)
    assert layer.first_failure() is early and layer.late() == [1]
    assert layer.failures == {2: late, 0: early}


def test_a_cancelled_task_only_stops_running():
    layer = LayerQueue(tasks("A", "B"))
    layer.launch()
    layer.launch()
    layer.landed(1)
    layer.landed(1)  # landing twice is harmless
    assert layer.running == [0] and layer.done == {} and layer.failures == {}
    assert layer.late() == [0]


def test_late_tasks_are_in_node_order():
    layer = LayerQueue(tasks("A", "B", "A"))
    layer.limit(3)
    for _ in range(3):
        layer.launch()
    layer.running.reverse()
    assert layer.late() == [0, 1, 2]


def test_only_a_held_back_layer_of_plain_nodes_may_pause():
    wide = LayerQueue(tasks("A", "B", "A"))
    assert not wide.may_pause(KINDS)  # nothing held back
    wide.limit(2)
    assert wide.may_pause(KINDS)
    team = LayerQueue(tasks("A", "T", "B"))
    team.limit(1)
    assert not team.may_pause(KINDS)
    fan = LayerQueue([Task("A", "1", 1, send=0, sends=2), Task("A", "2", 2, send=1, sends=2)])
    fan.limit(1)
    assert not fan.may_pause(KINDS)


def test_a_paused_layer_resumes_as_it_was():
    layer = LayerQueue([Task("A", '"x"', 4), Task("B", '"y"', 5, jumped=True), Task("A", '"z"', 6)])
    layer.launch()
    layer.launch()
    layer.landed(1, NodeOutput(value="1", writes={"k": "2"}))
    paused = layer.paused()
    assert paused == {
        "tasks": [["A", '"x"', 4, False], ["B", '"y"', 5, True], ["A", '"z"', 6, False]],
        "done": {"1": {"value": "1", "writes": {"k": "2"}}},
    }
    again = LayerQueue.resumed(paused)
    assert again.tasks == layer.tasks and again.done == {1: NodeOutput(value="1", writes={"k": "2"})}
    assert list(again.waiting) == [0, 2] and again.cap == 2
    assert again.launch() == 0 and again.launch() == 2


def test_an_empty_layer_is_over_at_once():
    assert LayerQueue([]).over and LayerQueue([]).outputs() == []
    done = LayerQueue(tasks("A"), {0: out("a")})
    assert done.over and done.cap == 0 and done.outputs() == [out("a")]


def test_a_wait_stopped_for_a_switch_ends_the_layer_once_the_rest_lands_and_waits_again_next_run():
    layer = LayerQueue([Task("W", '"w"', 3), Task("A", '"a"', 3), Task("B", '"b"', 3)])
    layer.limit(2)
    assert layer.waits_may_pause
    assert layer.launch() == 0 and layer.launch() == 1
    layer.pause_wait(0, {"resume": ['"first"'], "until": 125.0})
    assert not layer.over and not layer.can_launch  # A still runs; B must not start in this run
    layer.landed(1, out("a"))
    assert layer.over
    paused = layer.paused()
    assert paused["tasks"][0] == ["W", '"w"', 3, False, {"resume": ['"first"'], "until": 125.0}]
    assert paused["tasks"][2] == ["B", '"b"', 3, False] and list(paused["done"]) == ["1"]
    again = LayerQueue.resumed(paused)
    assert again.tasks[0].resume == ['"first"'] and again.tasks[0].wait_until == 125.0
    assert again.tasks[2].resume is None and again.tasks[2].wait_until is None
    assert list(again.waiting) == [0, 2] and not again.paused_waits


def test_a_layer_that_could_not_switch_starts_its_stopped_waits_first():
    layer = LayerQueue(tasks("W", "A", "B"))
    layer.limit(2)
    layer.launch(), layer.launch()
    layer.pause_wait(0, {"resume": None, "until": None})
    layer.landed(1, out("a"))
    layer.unpause_waits()
    assert not layer.over and list(layer.waiting) == [0, 2] and layer.launch() == 0


def test_waits_in_a_fan_out_stop_for_a_switch_only_under_the_newer_rule_and_instances_keep_their_place():
    layer = LayerQueue(
        [Task("W", '"w"', 3, send=0, sends=2, source="P"), Task("W", '"v"', 4, send=1, sends=2, source="P")]
    )
    assert not layer.waits_may_pause and layer.has_sends  # runs recorded before the patch waited on
    assert not LayerQueue(tasks("A", "W")).has_sends
    layer.launch(), layer.launch()
    layer.pause_wait(1, {"resume": ['"x"'], "until": 9.0})
    layer.landed(0, out("w"))
    paused = layer.paused()["tasks"]
    assert paused[0] == ["W", '"w"', 3, False, {"send": 0, "sends": 2, "source": "P"}]
    assert paused[1] == ["W", '"v"', 4, False, {"resume": ['"x"'], "until": 9.0, "send": 1, "sends": 2, "source": "P"}]
    again = LayerQueue.resumed(layer.paused())
    assert [(t.key, t.sends, t.source, t.resume) for t in again.tasks] == [
        ("W[0]", 2, "P", None),
        ("W[1]", 2, "P", ['"x"']),
    ]
    assert list(again.waiting) == [1]
