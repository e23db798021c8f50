"""Rewind points and reset detection (core/run/rewind.py)."""

from gecko_temporal.core.control import KEEP_CHECKPOINTS, RunControl
from gecko_temporal.core.run.rewind import REWIND_SIGNAL_WAIT, RewindPoints
from gecko_temporal.core.scheduler import Scheduler
from gecko_temporal.core.spec import GraphSpec, NodeSpec, RunSnapshot


def test_a_point_per_merge_rewindable_once_per_workflow_task_and_never_the_start():
    points = RewindPoints(seed=1)
    points.record(step=0, layer=0, nodes=[], time="t0", event=3, start=True)
    points.record(step=2, layer=1, nodes=["A", "B", "A"], time="t1", event=9)
    points.record(step=3, layer=2, nodes=["C"], time="t2", event=9)  # same workflow task: local steps
    points.record(step=4, layer=3, nodes=["D"], time="t3", event=15)
    assert points.points == [
        {"step": 0, "layer": 0, "nodes": [], "time": "t0", "event": 3, "rewindable": False},
        {"step": 2, "layer": 1, "nodes": ["A", "B"], "time": "t1", "event": 9, "rewindable": True},
        {"step": 3, "layer": 2, "nodes": ["C"], "time": "t2", "event": 9, "rewindable": False},
        {"step": 4, "layer": 3, "nodes": ["D"], "time": "t3", "event": 15, "rewindable": True},
    ]


def test_the_first_point_of_a_run_is_rewindable_unless_it_is_the_start():
    points = RewindPoints(seed=1)
    points.record(step=1, layer=1, nodes=["A"], time="t", event=5)
    assert points.points[0]["rewindable"] is True


def test_points_are_bounded():
    points = RewindPoints(seed=1)
    for i in range(KEEP_CHECKPOINTS + 2):
        points.record(step=i, layer=i, nodes=[], time="t", event=i)
    assert len(points.points) == KEEP_CHECKPOINTS and points.points[0]["step"] == 2


def _control():
    spec = GraphSpec("W", "W", "A", [NodeSpec("A", "function", "a", [], [])])
    live = RunControl(spec, Scheduler(spec), RunSnapshot())
    live.clock = lambda: "now"
    return live


def test_a_new_seed_means_a_reset_once():
    points = RewindPoints(seed=7)
    assert points.reseeded(7) is False
    assert points.reseeded(8) is True
    assert points.reseeded(8) is False
    assert points.reseeded(7) is True


def test_a_reset_waits_for_its_rewound_signal_unless_it_came_already():
    live, points = _control(), RewindPoints(seed=1)
    assert points.resets == 0 and points.rewound(live) is True
    assert points.reset_seen(live) is True and points.resets == 1
    assert points.rewound(live) is False
    live.rewinds = 1
    assert points.rewound(live) is True
    live.rewinds = 2  # the signal arrived before the reset was seen
    assert points.reset_seen(live) is False and points.resets == 2


def test_a_reset_by_hand_is_told_in_gecko_state():
    live, points = _control(), RewindPoints(seed=1)
    points.reset_seen(live)
    points.reset_seen(live)
    points.reset_by_hand(live, step=6)
    assert live.rewinds == 2 and points.rewound(live)
    assert live.rewound_from == {
        "run_id": None,
        "step": 6,
        "time": "now",
        "note": "reset without gecko-temporal rewind (no gecko_rewound signal)",
    }
    assert REWIND_SIGNAL_WAIT == 60
