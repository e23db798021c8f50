"""Determinism safety: replay recorded histories of representative runs against today's GeckoWorkflow.

A change to the interpreter that would break workflows already running on a cluster (a different
command sequence for the same history) makes these replays fail. Re-record on purpose only, when a
change is meant to be incompatible (and versioned with workflow.patched for live runs):

    GECKO_RECORD_HISTORIES=1 python -m pytest tests/test_replay.py       # all of them
    GECKO_RECORD_HISTORIES=local_burst python -m pytest tests/test_replay.py  # one new pipeline

That runs each pipeline of tests/pipelines/replay.py on the embedded dev server and rewrites
tests/histories/<name>.json; without the variable the suite only replays (no server needed).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import (ExecuteWorkflowInput, Interceptor, Replayer, WorkflowInboundInterceptor,
                               WorkflowInterceptorClassInput)
from temporalio.workflow import NondeterminismError

from gecko_temporal._workflow import GeckoWorkflow
from gecko_temporal.errors import GeckoError
from tests.pipelines import replay

HISTORIES = Path(__file__).parent / "histories"
RECORD = os.environ.get("GECKO_RECORD_HISTORIES", "")
NAMES = ["linear", "fanin", "loop", "race", "steer", "continue_as_new_first_run", "continue_as_new_last_run",
         "local_burst", "conflict", "eager", "window", "window_before_patch"]


def _wanted(name: str) -> bool:
    return RECORD == "1" or name in RECORD.split(",")


def _replayer() -> Replayer:
    return Replayer(workflows=[GeckoWorkflow], workflow_failure_exception_types=[GeckoError])


def _load(name: str) -> WorkflowHistory:
    text = (HISTORIES / f"{name}.json").read_text()
    return WorkflowHistory.from_json(f"replay-{name}", text)


async def _save(name: str, temporal_handle) -> None:
    history = await temporal_handle.fetch_history()
    (HISTORIES / f"{name}.json").write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")


async def _record_all() -> None:
    HISTORIES.mkdir(exist_ok=True)
    runs = {"linear": (replay.linear, 1), "fanin": (replay.fanin, 10), "loop": (replay.loop, []),
            "local_burst": (replay.burst, 1), "conflict": (replay.conflict, "go"),
            "eager": (replay.eager, "in"), "window": (replay.window, "go")}
    for name, (wf, data) in runs.items():
        if not _wanted(name):
            continue
        handle = await wf.start(data, session_id=f"replay-{name}")
        await handle.result()
        await _save(name, handle.temporal_handle)

    if _wanted("race"):
        await _record_race()
    if _wanted("steer"):
        await _record_steer()
    if _wanted("continue_as_new_first_run"):
        await _record_continue_as_new()
    if _wanted("window_before_patch"):
        await _record_before_window()


async def _record_before_window() -> None:
    """What a run recorded before the window existed looks like: every node of a layer started
    at once, no patch marker (the window is told it may not limit, as a pre-patch run replays)."""
    from gecko_temporal.window import Window

    original = Window.limits
    Window.limits = lambda self: False
    try:
        handle = await replay.window.start("go", session_id="replay-window_before_patch")
        await handle.result()
    finally:
        Window.limits = original
    await _save("window_before_patch", handle.temporal_handle)


async def _record_race() -> None:
    handle = await replay.race.start("why", session_id="replay-race")
    assert await handle.result() == ["fast: WHY"]
    await asyncio.sleep(1.0)  # let the loser's cancellation land before the history is read
    await _save("race", handle.temporal_handle)


async def _record_steer() -> None:
    handle = await replay.steer.start("x", session_id="replay-steer")
    await asyncio.sleep(0.3)
    await handle.signal_jump("ask", "from a signal")  # the gecko_next signal, mid-layer
    for _ in range(100):
        if (await handle.state())["waiting"]:
            break
        await asyncio.sleep(0.05)
    await handle.answer("ask", "yes")  # the gecko_reply update
    assert await handle.result() == {"answer": "yes"}
    await _save("steer", handle.temporal_handle)


async def _record_continue_as_new() -> None:
    handle = await replay.cont.start([], session_id="replay-continue_as_new")
    assert await handle.result() == {"answer": [1, 2, 3]}
    th = handle.temporal_handle
    first = th._client.get_workflow_handle(th.id, run_id=th.first_execution_run_id)
    await _save("continue_as_new_first_run", first)
    await _save("continue_as_new_last_run", th._client.get_workflow_handle(th.id))


@pytest.mark.skipif(not RECORD, reason="set GECKO_RECORD_HISTORIES=1 to re-record the histories")
async def test_record_histories(dev_server):
    await _record_all()


@pytest.mark.parametrize("name", NAMES)
async def test_recorded_history_replays_on_the_current_interpreter(name):
    history = _load(name)
    events = history.events
    assert events[0].HasField("workflow_execution_started_event_attributes")
    assert events[-1].HasField("workflow_execution_completed_event_attributes") or \
        events[-1].HasField("workflow_execution_continued_as_new_event_attributes"), f"{name}: run did not end"
    await _replayer().replay_workflow(history)


def test_the_histories_cover_what_they_claim():
    def kinds(name: str) -> set[str]:
        return {e.WhichOneof("attributes") for e in _load(name).events}

    assert "activity_task_cancel_requested_event_attributes" in kinds("race")
    steer = kinds("steer")
    assert "workflow_execution_signaled_event_attributes" in steer
    assert "workflow_execution_update_completed_event_attributes" in steer
    assert "workflow_execution_continued_as_new_event_attributes" in kinds("continue_as_new_first_run")
    burst = [e.activity_task_scheduled_event_attributes.activity_type.name for e in _load("local_burst").events
             if e.HasField("activity_task_scheduled_event_attributes")]
    assert burst == ["gecko.yield"], burst  # 150 local steps: one break after the first 100
    events = _load("eager").events
    scheduled = {e.activity_task_scheduled_event_attributes.activity_type.name: e.event_id for e in events
                 if e.HasField("activity_task_scheduled_event_attributes")}
    slow_done = next(e.event_id for e in events if e.HasField("activity_task_completed_event_attributes")
                     and e.activity_task_completed_event_attributes.scheduled_event_id == scheduled["ReplayEager.slow"])
    assert scheduled["ReplayEager.c2"] < slow_done < scheduled["ReplayEager.join"]  # c2 did not wait for slow
    def peak_pending(events) -> int:
        pending = peak = 0
        for e in events:
            if e.HasField("activity_task_scheduled_event_attributes"):
                pending += 1
                peak = max(peak, pending)
            elif e.HasField("activity_task_completed_event_attributes"):
                pending -= 1
        return peak

    events = _load("window").events  # a layer of six, never more than two pending at once
    assert sum(e.HasField("marker_recorded_event_attributes") for e in events) == 1  # the patch
    assert peak_pending(events) == 2
    before = _load("window_before_patch").events  # as before the window: all six at once, no marker
    assert not any(e.HasField("marker_recorded_event_attributes") for e in before)
    assert peak_pending(before) == 6


async def test_a_changed_interpreter_fails_the_replay():
    """The guard can fail: a history whose recorded commands differ from what the code does now."""
    data = json.loads((HISTORIES / "linear.json").read_text())
    for event in data["events"]:
        scheduled = event.get("activityTaskScheduledEventAttributes")
        if scheduled and scheduled["activityType"]["name"] == "ReplayLinear.b":
            scheduled["activityType"]["name"] = "ReplayLinear.renamed"
    with pytest.raises(NondeterminismError):
        await _replayer().replay_workflow(WorkflowHistory.from_json("replay-linear", json.dumps(data)))


# -- replays that check what the run computed, not only its commands ------------------------------
# Temporal's replayer compares commands (which activities, timers, ...), not the values the
# workflow computed from their results: a changed merge order or a lost tombstone replays green.
# An interceptor captures what the replayed workflow returns and its final gecko_state, and each
# is checked against the recorded completion and against the README's rules.

class _Outcome(Interceptor):
    """Captures, per replayed run, its result (or the exception that ended it) and final gecko_state."""

    def __init__(self) -> None:
        self.runs: list[dict] = []

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput):
        runs = self.runs

        class _Inbound(WorkflowInboundInterceptor):
            async def execute_workflow(self, input: ExecuteWorkflowInput):
                outcome: dict = {}
                try:
                    outcome["result"] = await super().execute_workflow(input)
                    return outcome["result"]
                except BaseException as exc:  # continue-as-new ends a run by raising
                    outcome["ended_by"] = type(exc).__name__
                    raise
                finally:
                    outcome["state"] = workflow.get_query_handler("gecko_state")()
                    runs.append(outcome)

        return _Inbound


def _recorded_result(history: WorkflowHistory):
    done = history.events[-1].workflow_execution_completed_event_attributes
    return json.loads(done.result.payloads[0].data)


async def _replay_outcome(name: str) -> dict:
    capture = _Outcome()
    history = _load(name)
    replayer = Replayer(workflows=[GeckoWorkflow], workflow_failure_exception_types=[GeckoError],
                        interceptors=[capture])
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
    (outcome,) = capture.runs
    if "result" in outcome:
        assert outcome["result"] == _recorded_result(history), f"{name}: replay computed another result"
    return outcome


# What each recorded run must end with, derived from the README (not from a previous run).
EXPECTED = {
    "linear": ({"result": "result=4", "state": {}, "completed": ["a", "b", "c"], "step": 3}),
    "fanin": ({"state": {"seen": ["start"], "left": 11, "right": 12}, "completed": ["start", "left", "right", "join"],
               "step": 4}),
    "loop": ({"result": {"answer": [1, 2, 3]}, "state": {"turns": 4}, "step": 5}),
    "conflict": ({"result": {"writer_a": "a", "writer_b": "b"},
                  "state": {"shared": "b", "doomed": "revived by b", "kept": "seed", "a_only": 1},
                  "conflicts": {"contested", "doomed", "shared"}, "step": 3}),
    "continue_as_new_last_run": ({"result": {"answer": [1, 2, 3]}, "state": {"turns": 4}, "run": 2, "step": 5}),
    "eager": ({"result": {"parts": {"slow": "slow", "c2": "in>c1>c2"}, "state": {"chain": ["c1", "c2"], "slow": True}},
               "state": {"chain": ["c1", "c2"], "slow": True}, "completed": ["start", "c1", "c2", "slow", "join"],
               "step": 5}),
    "window": ({"result": ["w0", "w1", "w2", "w3", "w4", "w5"], "state": {"last": "w5"}, "step": 8}),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_replayed_run_computes_the_recorded_result_and_final_state(name):
    outcome = await _replay_outcome(name)
    expected = dict(EXPECTED[name])
    if "result" in expected:
        assert outcome["result"] == expected.pop("result")
    state = outcome["state"]
    assert state["status"] == "completed"
    for key, value in expected.items():
        got = set(state[key]) if isinstance(value, set) else state[key]  # conflicts: no order is promised
        assert got == value, f"{name}: gecko_state[{key!r}]"


def test_fanin_join_saw_the_merged_state_of_the_layer_before():
    # the join's output (recorded) holds dict(context.state): the merge of start, left, right
    result = _recorded_result(_load("fanin"))
    assert result == {"parts": {"left": "L", "right": "R"},
                      "state": {"seen": ["start"], "left": 11, "right": 12}}


async def test_the_run_that_continued_as_new_carries_its_state_over():
    outcome = await _replay_outcome("continue_as_new_first_run")
    assert "ContinueAsNew" in outcome["ended_by"]
    assert outcome["state"]["state"] == {"turns": 3} and outcome["state"]["step"] == 3
