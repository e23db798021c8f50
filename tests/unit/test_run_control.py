"""RunControl without a server: live jumps, answers, rejections and waiting, and RunSnapshot round trips."""

from __future__ import annotations

import math

from gecko_temporal.core.control import KEEP_REJECTED, Arg
from gecko_temporal.core.spec import RunSnapshot
from tests.pipelines.core_parts import review_control


def test_a_jump_signal_to_a_node_is_queued_for_the_next_layer():
    control, sched = review_control()
    assert control.signal("gecko_next", [Arg({"node": "Publish", "input": {"n": 1}})]) is None
    assert [(j.node, j.input, j.source) for j in sched.jumps] == [("Publish", '{"n":1}', "signal")]


def test_a_jump_to_an_unknown_node_is_rejected_with_a_suggestion_and_kept():
    control, sched = review_control()
    entry = control.signal("gecko_next", [Arg({"node": "Publsh"})])
    assert entry["reason"].startswith('no node named "Publsh" (did you mean "Publish"?')
    assert entry["signal"] == "gecko_next" and entry["step"] == 0
    assert control.rejected == [entry] and sched.jumps == []


def test_malformed_requests_are_rejected_never_raised():
    control, _ = review_control()
    for args in (
        [],
        [Arg("Publish")],
        [Arg({"node": "Publish"}), Arg(1)],
        [Arg({"node": "A", "input": math.nan})],
        [Arg(encoding="binary/plain", problem="raw bytes")],
        [Arg({"node": "Publish", "extra": 1})],
    ):
        assert control.signal("gecko_next", args) is not None, args
    assert len(control.rejected) == 6


def test_unknown_signals_name_the_right_ones():
    control, _ = review_control()
    entry = control.signal("gecko_nxt", [Arg({"node": "Publish"})])
    assert 'unknown signal "gecko_nxt" (did you mean "gecko_next"?' in entry["reason"]


def test_rejections_are_bounded():
    control, _ = review_control()
    for i in range(KEEP_REJECTED + 5):
        control.signal("gecko_next", [Arg({"node": f"nope{i}"})])
    assert len(control.rejected) == KEEP_REJECTED
    assert '"nope5"' in control.rejected[0]["request"]


def test_an_update_jump_is_checked_then_queued():
    control, sched = review_control()
    request, problem = control.check_jump([Arg({"node": "Draft", "input": "again"})])
    assert problem is None
    assert control.queue_jump(request, "update") == {"node": "Draft", "queued_after_step": 0}
    assert sched.jumps[-1].source == "update"
    assert control.check_jump([Arg({"node": "Nowhere"})])[0] is None


def test_answers_go_only_to_wait_nodes():
    control, _ = review_control()
    request, problem = control.check_answer([Arg({"node": "Publish", "value": "yes"})])
    assert request is None and problem.startswith(
        '"Publish" is not a WaitForInput node (those are: Review) nor a node waiting in context.interrupt()'
    )
    assert control.signal("gecko_answer", [Arg({"node": "Review", "value": "yes"})]) is None
    assert control.answers == {"Review": '"yes"'}
    assert control.answer_for("Review") == '"yes"' and control.answers == {}


def test_an_answer_before_the_wait_is_kept_and_says_the_node_was_not_waiting_yet():
    control, _ = review_control()
    request, _ = control.check_answer([Arg({"node": "Review", "value": 1})])
    assert control.give_answer(request) == {"node": "Review", "waiting": False}
    control.start_waiting("Review", "Approve?", '"draft"', "2026-11-24T00:00:00+00:00", 60)
    assert control.give_answer(request) == {"node": "Review", "waiting": True}


def test_a_jump_from_outside_drops_where_the_run_was_going_on_its_own():
    control, sched = review_control()
    sched.start('"go"')
    sched.finish(sched.next_layer()[0], '"drafted"', None)
    assert sched.inbox  # Review would run next
    control.apply_redirects()
    assert sched.inbox  # nothing from outside: nothing changes
    control.signal("gecko_next", [Arg({"node": "Publish", "input": "now"})])
    control.apply_redirects()
    assert not sched.inbox and [t.node for t in sched.next_layer()] == ["Publish"]


def test_gecko_state_shows_waiting_nodes_and_a_waiting_status():
    control, _ = review_control()
    control.start_waiting("Review", "Approve?", '"draft"', "2026-11-24T00:00:00+00:00", 60)
    answer = control.state_answer(
        status="running",
        state={"k": "1"},
        completed=["Draft"],
        running=["Review"],
        step=1,
        layer=2,
        run=1,
        conflicts=[],
    )
    assert answer["status"] == "waiting" and answer["workflow"] == "Live"
    assert answer["waiting"]["Review"]["input"] == "draft" and answer["state"] == {"k": 1}
    assert answer["nodes"] == ["Draft", "Review", "Publish"]
    control.stop_waiting("Review")
    assert (
        control.state_answer(
            status="running", state={}, completed=[], running=[], step=1, layer=2, run=1, conflicts=[]
        )["status"]
        == "running"
    )


def test_what_was_rejected_and_answered_continues_as_new():
    snapshot = RunSnapshot(
        rejected=[{"signal": "gecko_next", "request": "1", "reason": "r", "step": 3}], answers={"Review": '"yes"'}
    )
    control, _ = review_control(snapshot)
    assert control.rejected == snapshot.rejected and control.answers == {"Review": '"yes"'}
    assert (
        control.state_answer(
            status="completed", state={}, completed=[], running=[], step=1, layer=1, run=2, conflicts=[]
        )["rejected_jumps"]
        == snapshot.rejected
    )


def test_the_snapshot_keeps_the_dict_recorded_histories_carry():
    plain = {
        "scheduler": {"inbox": {}, "jumps": [], "outputs": {}, "step": 7, "last_layer": ["A"]},
        "state": {"k": "1"},
        "deadline": 12.5,
        "run": 3,
        "completed": ["A"],
        "rejected": [],
        "answers": {},
        "layer": 7,
    }
    snap = RunSnapshot.from_plain(plain)
    assert snap.run == 3 and snap.scheduler["step"] == 7
    assert snap.to_plain() == plain and list(snap.to_plain()) == list(plain)
    assert RunSnapshot.from_plain({"run": 2}) == RunSnapshot(run=2)
