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
from temporalio.api.enums.v1 import WorkflowTaskFailedCause
from temporalio.client import WorkflowHistory
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    Replayer,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)
from temporalio.workflow import NondeterminismError

from gecko_temporal.core.errors import GeckoError
from gecko_temporal.protocol import EAGER_REDIRECT_PATCH
from gecko_temporal.temporal.workflow import GeckoWorkflow
from tests.pipelines import replay

HISTORIES = Path(__file__).parent / "histories"
RECORD = os.environ.get("GECKO_RECORD_HISTORIES", "")
NAMES = [
    "linear",
    "fanin",
    "loop",
    "race",
    "steer",
    "continue_as_new_first_run",
    "continue_as_new_last_run",
    "local_burst",
    "conflict",
    "eager",
    "subgraph",
    "subgraph_child",
    "language",
    "language_eager",
    "language_continue_as_new_first_run",
    "language_continue_as_new_second_run",
    "interrupt",
    "rewound",
    "rewound_late",
    "observed_first_run",
    "observed_last_run",
    "window",
    "window_before_patch",
    "refs",
    "eager_jump",
    "eager_jump_before_patch",
]


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
    runs = {
        "linear": (replay.linear, 1),
        "fanin": (replay.fanin, 10),
        "loop": (replay.loop, []),
        "local_burst": (replay.burst, 1),
        "conflict": (replay.conflict, "go"),
        "eager": (replay.eager, "in"),
        "language": (replay.language, "why?"),
        "language_eager": (replay.language_eager, "why?"),
        "window": (replay.window, "go"),
        "refs": (replay.refs, ["y" * 300]),
    }
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
    if _wanted("subgraph"):
        await _record_subgraph()
    if _wanted("language_continue_as_new_first_run"):
        await _record_language_continue_as_new()
    if _wanted("interrupt"):
        await _record_interrupt()
    if _wanted("rewound"):
        await _record_rewound()
    if _wanted("rewound_late"):
        await _record_rewound_late()
    if _wanted("observed_first_run"):
        await _record_observed()
    if _wanted("window_before_patch"):
        await _record_before_window()
    for name in ("eager_jump", "eager_jump_before_patch"):
        if _wanted(name):
            await _record_eager_jump(name)


async def _record_eager_jump(name: str) -> None:
    """A jump from outside while an eager run's node runs; before the patch, as such runs recorded
    it: the loop never woke for the jump (it redirected when the node finished)."""
    from gecko_temporal.core.run.driver import RunDriver

    original = RunDriver.redirect_due
    if name.endswith("_before_patch"):
        RunDriver.redirect_due = lambda self: False  # type: ignore[method-assign]
    try:
        handle = await replay.eager_jump.start("x", session_id=f"replay-{name}")
        for _ in range(400):
            if (await handle.state())["running"] == ["held"]:
                break
            await asyncio.sleep(0.05)
        await handle.jump("side", "now")
        # the run returns what finished last: held (the jump ran beside it), or side (after it)
        assert await handle.result() == ("side:now" if name.endswith("_before_patch") else "held:x")
    finally:
        RunDriver.redirect_due = original  # type: ignore[method-assign]
    await _save(name, handle.temporal_handle)


async def _waiting(handle, node: str, index: int) -> None:
    for _ in range(400):
        if (await handle.state())["waiting"].get(node, {}).get("interrupt") == index:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{node} never waited in interrupt {index}")


async def _record_interrupt() -> None:
    """Two interrupts in one node: answered by the gecko_answer signal, then (after an update_state
    while waiting) by the gecko_reply update."""
    handle = await replay.interrupt.start(5, session_id="replay-interrupt")
    await _waiting(handle, "ask", 0)
    await handle.temporal_handle.signal("gecko_answer", {"node": "ask", "value": "one"})
    await _waiting(handle, "ask", 1)
    await handle.update_state({"edited": True, "asked": 0})
    await handle.answer("ask", "two")
    assert await handle.result() == {"first": "one", "second": "two", "state": {"edited": True, "asked": 1}}
    await _save("interrupt", handle.temporal_handle)


async def _record_rewound() -> None:
    """The run a rewind started (Temporal reset + gecko_rewound signal with a state edit)."""
    handle = await replay.rewind.start(2, session_id="replay-rewound")
    assert await handle.result() == {"x": 2, "state": {"trail": ["a", "b"]}}
    await handle.rewind(1, values={"factor": 10})
    again = await replay.rewind.get_handle("replay-rewound")
    assert await again.result() == {"x": 20, "state": {"trail": ["a", "b"], "factor": 10}}
    await _save("rewound", again.temporal_handle._client.get_workflow_handle("replay-rewound"))


async def _record_observed() -> None:
    handle = await replay.observed.start(1, session_id="replay-observed")
    seen = []
    async for event in handle.stream():  # a reader's polls are updates in the history
        seen.append(event.type)
        if event.type == "waiting":
            await handle.answer("Ask", 1)
    assert await handle.result() == {"turns": 4}
    assert seen.count("custom") == 7 and seen[-1] == "run_finished"
    th = handle.temporal_handle
    first = th._client.get_workflow_handle(th.id, run_id=th.first_execution_run_id)
    await _save("observed_first_run", first)
    await _save("observed_last_run", th._client.get_workflow_handle(th.id))


async def _record_before_window() -> None:
    """What a run recorded before the window existed looks like: every node of a layer started
    at once, no patch marker (the window is told it may not limit, as a pre-patch run replays)."""
    from gecko_temporal.core.window import Window

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


async def _record_subgraph() -> None:
    handle = await replay.subgraph.start("hello big", session_id="replay-subgraph")
    assert await handle.result() == {"words": 3, "state": {}}
    await _save("subgraph", handle.temporal_handle)
    th = handle.temporal_handle
    await _save("subgraph_child", th._client.get_workflow_handle("replay-subgraph.Sub.2"))


async def _record_language_continue_as_new() -> None:
    handle = await replay.language_cont.start("why?", session_id="replay-language_continue_as_new")
    assert (await handle.result())["cost"] == 8
    th = handle.temporal_handle
    first = th._client.get_workflow_handle(th.id, run_id=th.first_execution_run_id)
    await _save("language_continue_as_new_first_run", first)
    history = await first.fetch_history()
    (can,) = [
        e.workflow_execution_continued_as_new_event_attributes
        for e in history.events
        if e.HasField("workflow_execution_continued_as_new_event_attributes")
    ]
    # the run that starts from the snapshot with the four pending Sends
    await _save(
        "language_continue_as_new_second_run", th._client.get_workflow_handle(th.id, run_id=can.new_execution_run_id)
    )


@pytest.mark.skipif(not RECORD, reason="set GECKO_RECORD_HISTORIES=1 to re-record the histories")
async def _record_rewound_late() -> None:
    """A reset whose gecko_rewound signal arrives after the new run's first task: it waits (a timer)."""
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest

    handle = await replay.rewind.start(3, session_id="replay-rewound_late")
    await handle.result()
    point = next(p for p in await handle.steps() if p["step"] == 1)
    client = handle.temporal_handle._client
    reset = await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id="replay-rewound_late", run_id=point["run_id"]),
            reason="recording",
            workflow_task_finish_event_id=point["event"] + 1,
            request_id="replay-rewound_late",
        )
    )
    new = client.get_workflow_handle("replay-rewound_late", run_id=reset.run_id)
    for _ in range(400):
        if any(e.HasField("timer_started_event_attributes") for e in [e async for e in new.fetch_history_events()]):
            break
        await asyncio.sleep(0.05)
    told = {"from_run": point["run_id"], "to_step": 1, "values": {"factor": 2}, "run": reset.run_id}
    await new.signal("gecko_rewound", told)
    assert await new.result() == {"x": 6, "state": {"trail": ["a", "b"], "factor": 2}}
    await _save("rewound_late", new)


async def test_record_histories(dev_server):
    await _record_all()


@pytest.mark.parametrize("name", NAMES)
async def test_recorded_history_replays_on_the_current_interpreter(name):
    history = _load(name)
    events = history.events
    assert events[0].HasField("workflow_execution_started_event_attributes")
    assert events[-1].HasField("workflow_execution_completed_event_attributes") or events[-1].HasField(
        "workflow_execution_continued_as_new_event_attributes"
    ), f"{name}: run did not end"
    await _replayer().replay_workflow(history)


def test_the_histories_cover_what_they_claim():
    def kinds(name: str) -> set[str]:
        return {e.WhichOneof("attributes") for e in _load(name).events}

    assert "activity_task_cancel_requested_event_attributes" in kinds("race")
    steer = kinds("steer")
    assert "workflow_execution_signaled_event_attributes" in steer
    assert "workflow_execution_update_completed_event_attributes" in steer
    assert "workflow_execution_continued_as_new_event_attributes" in kinds("continue_as_new_first_run")
    observed = kinds("observed_first_run")
    assert {
        "workflow_execution_signaled_event_attributes",
        "workflow_execution_update_completed_event_attributes",
        "upsert_workflow_search_attributes_event_attributes",
        "marker_recorded_event_attributes",
        "workflow_execution_continued_as_new_event_attributes",
    } <= observed
    assert "upsert_workflow_search_attributes_event_attributes" in kinds("observed_last_run")
    burst = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in _load("local_burst").events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert burst == ["gecko.yield"], burst  # 150 local steps: one break after the first 100
    events = _load("eager").events
    scheduled = {
        e.activity_task_scheduled_event_attributes.activity_type.name: e.event_id
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    slow_done = next(
        e.event_id
        for e in events
        if e.HasField("activity_task_completed_event_attributes")
        and e.activity_task_completed_event_attributes.scheduled_event_id == scheduled["ReplayEager.slow"]
    )
    assert scheduled["ReplayEager.c2"] < slow_done < scheduled["ReplayEager.join"]  # c2 did not wait for slow
    sub = kinds("subgraph")
    assert {
        "start_child_workflow_execution_initiated_event_attributes",
        "child_workflow_execution_completed_event_attributes",
    } <= sub
    (started,) = [
        e.workflow_execution_started_event_attributes
        for e in _load("subgraph_child").events
        if e.HasField("workflow_execution_started_event_attributes")
    ]
    assert started.parent_workflow_execution.workflow_id == "replay-subgraph"
    for name, graph in (("language", "ReplayLanguage"), ("language_eager", "ReplayLanguageEager")):
        research = [
            e.activity_task_scheduled_event_attributes.activity_id
            for e in _load(name).events
            if e.HasField("activity_task_scheduled_event_attributes")
            and e.activity_task_scheduled_event_attributes.activity_type.name == f"{graph}.research"
        ]
        assert len(set(research)) == len(research) == 4, research  # one activity per Send
    (can,) = [
        e.workflow_execution_continued_as_new_event_attributes
        for e in _load("language_continue_as_new_first_run").events
        if e.HasField("workflow_execution_continued_as_new_event_attributes")
    ]
    snapshot = json.loads(can.input.payloads[0].data)["snapshot"]["scheduler"]
    assert [s["node"] for s in snapshot["sends"]] == ["research"] * 4  # the Sends travel in the snapshot

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


def test_the_eager_jump_histories_cover_what_they_claim():
    def order(name: str) -> tuple[list[str], bool]:
        """Activities started and finished, in history order; whether a patch marker is there."""
        seen, types = [], {}
        events = _load(name).events
        for e in events:
            if e.HasField("activity_task_scheduled_event_attributes"):
                types[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name.split(".")[-1]
                seen.append("start " + types[e.event_id])
            elif e.HasField("activity_task_completed_event_attributes"):
                seen.append("end " + types[e.activity_task_completed_event_attributes.scheduled_event_id])
        return seen, EAGER_REDIRECT_PATCH.encode() in b"".join(
            p.data
            for e in events
            if e.HasField("marker_recorded_event_attributes")
            for d in e.marker_recorded_event_attributes.details.values()
            for p in d.payloads
        )

    # the target starts while held runs; where held led (after) is dropped
    assert order("eager_jump") == (["start held", "start side", "end side", "end held"], True)
    assert order("eager_jump_before_patch") == (["start held", "end held", "start side", "end side"], False)


def test_the_people_histories_cover_what_they_claim():
    events = _load("interrupt").events
    asks = [
        e
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "ReplayInterrupt.ask"
    ]
    assert len(asks) == 3  # the first run and one per answer
    updates = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for e in events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    assert updates == ["gecko_update_state", "gecko_reply"]
    assert [
        e.workflow_execution_signaled_event_attributes.signal_name
        for e in events
        if e.HasField("workflow_execution_signaled_event_attributes")
    ] == ["gecko_answer"]
    events = _load("rewound").events
    assert any(
        e.HasField("workflow_task_failed_event_attributes")
        and e.workflow_task_failed_event_attributes.cause
        == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW
        for e in events
    )
    assert [
        e.workflow_execution_signaled_event_attributes.signal_name
        for e in events
        if e.HasField("workflow_execution_signaled_event_attributes")
    ] == ["gecko_rewound"]
    late = {e.WhichOneof("attributes") for e in _load("rewound_late").events}
    assert {"timer_started_event_attributes", "timer_canceled_event_attributes"} <= late  # it waited
    markers = [
        e.marker_recorded_event_attributes
        for e in _load("rewound_late").events
        if e.HasField("marker_recorded_event_attributes")
    ]
    assert [json.loads(m.details["patch-data"].payloads[0].data)["id"] for m in markers] == ["gecko-rewind-wait"]


async def test_the_rewound_run_replays_knowing_where_it_came_from():
    state = (await _replay_outcome("rewound"))["state"]
    assert state["rewound_from"]["step"] == 1 and state["rewound_from"]["run_id"]
    assert [(e["source"], e["set"], e["step"]) for e in state["state_edits"]] == [("rewind", ["factor"], 1)]
    interrupt = (await _replay_outcome("interrupt"))["state"]
    assert [(e["source"], sorted(e["set"]), e["step"]) for e in interrupt["state_edits"]] == [
        ("update", ["asked", "edited"], 1)
    ]  # (the client's JSON sorts keys)


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
    replayer = Replayer(
        workflows=[GeckoWorkflow], workflow_failure_exception_types=[GeckoError], interceptors=[capture]
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
    (outcome,) = capture.runs
    if "result" in outcome:
        assert outcome["result"] == _recorded_result(history), f"{name}: replay computed another result"
    return outcome


# What each recorded run must end with, derived from the README (not from a previous run).
EXPECTED = {
    "linear": ({"result": "result=4", "state": {}, "completed": ["a", "b", "c"], "step": 3}),
    "fanin": (
        {
            "state": {"seen": ["start"], "left": 11, "right": 12},
            "completed": ["start", "left", "right", "join"],
            "step": 4,
        }
    ),
    "loop": ({"result": {"answer": [1, 2, 3]}, "state": {"turns": 4}, "step": 5}),
    "conflict": (
        {
            "result": {"writer_a": "a", "writer_b": "b"},
            "state": {"shared": "b", "doomed": "revived by b", "kept": "seed", "a_only": 1},
            "conflicts": {"contested", "doomed", "shared"},
            "step": 3,
        }
    ),
    "observed_last_run": ({"result": {"turns": 4}, "run": 2, "step": 6}),
    "continue_as_new_last_run": ({"result": {"answer": [1, 2, 3]}, "state": {"turns": 4}, "run": 2, "step": 5}),
    "subgraph": (
        {
            "result": {"words": 3, "state": {}},
            "state": {},
            "completed": ["load", "Sub", "done"],
            "step": 3,
            "children": {},
        }
    ),
    "subgraph_child": (
        {"result": {"words": 3}, "state": {"child_saw": "hello big world"}, "completed": ["words", "count"], "step": 2}
    ),
    "eager": (
        {
            "result": {"parts": {"slow": "slow", "c2": "in>c1>c2"}, "state": {"chain": ["c1", "c2"], "slow": True}},
            "state": {"chain": ["c1", "c2"], "slow": True},
            "completed": ["start", "c1", "c2", "slow", "join"],
            "step": 5,
        }
    ),
    **{
        name: (
            {
                "result": {
                    "found": ["WHY?#0", "WHY?#1", "WHY?#2", "WHY?#3"],
                    "log": ["classify", "research 0", "research 1", "research 2", "research 3"],
                    "cost": 8,
                },
                "state": {"log": ["classify", "research 0", "research 1", "research 2", "research 3"], "cost": 8},
                "completed": ["classify", "plan", "research", "research", "research", "research", "collect"],
                "conflicts": [],
                "step": 7,
            }
        )
        for name in ("language", "language_eager")
    },
    "interrupt": (
        {
            "result": {"first": "one", "second": "two", "state": {"edited": True, "asked": 1}},
            "state": {"edited": True, "asked": 1},
            "completed": ["ask", "end"],
            "step": 2,
            "waiting": {},
        }
    ),
    "rewound": (
        {"result": {"x": 20, "state": {"trail": ["a", "b"], "factor": 10}}, "completed": ["a", "b", "end"], "step": 3}
    ),
    "rewound_late": ({"result": {"x": 6, "state": {"trail": ["a", "b"], "factor": 2}}, "step": 3}),
    "window": ({"result": ["w0", "w1", "w2", "w3", "w4", "w5"], "state": {"last": "w5"}, "step": 8}),
    "refs": ({"result": {"x": 3, "notes": 3}, "completed": ["grow", "grow", "grow"], "step": 3}),
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
    assert result == {"parts": {"left": "L", "right": "R"}, "state": {"seen": ["start"], "left": 11, "right": 12}}


async def test_the_run_that_continued_as_new_carries_its_state_over():
    outcome = await _replay_outcome("continue_as_new_first_run")
    assert "ContinueAsNew" in outcome["ended_by"]
    assert outcome["state"]["state"] == {"turns": 3} and outcome["state"]["step"] == 3


def test_the_refs_history_holds_references_and_compositions_not_copies():
    # what the refs pipeline replays: inputs name long texts, outputs carry only what is new
    events = _load("refs").events
    inputs = [
        json.loads(e.activity_task_scheduled_event_attributes.input.payloads[0].data)
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    outputs = [
        json.loads(e.activity_task_completed_event_attributes.result.payloads[0].data)
        for e in events
        if e.HasField("activity_task_completed_event_attributes")
    ]
    assert all(i["refs"] == 1 and i["input"].startswith("@") for i in inputs)
    assert inputs[2]["state"]["notes"].startswith("@")
    assert outputs[0]["jump"]["input"].startswith("+[[") and outputs[2]["writes"]["notes"].startswith("+[[")
    grown = json.loads(outputs[2]["writes"]["notes"][1:])  # the third note only, after a slice of two
    assert grown[0] == [inputs[2]["state"]["notes"][1:], 0, 2 * 303 + 2] and grown[1].count("n") == 300
