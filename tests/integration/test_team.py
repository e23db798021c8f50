"""Team against a real Temporal dev server: RACE cancels losers through Temporal, ALL keeps going
past failures, mappers are bulkheaded, a router member's Next steers the run."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType

from gecko_temporal import (ExecutionStrategy, MemberResult, Next, NodeError, RetryPolicy, Team, Workflow,
                            step)

pytestmark = pytest.mark.asyncio

SLOW = 10.0  # seconds a slow member would take if nobody cancelled it


async def _wait_for(path: Path, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path.exists():
            return True
        await asyncio.sleep(0.05)
    return path.exists()


async def _events(handle) -> list[tuple[int, str]]:
    """(event type, activity type or '') of every event in the run's history."""
    history = await handle.temporal_handle.fetch_history()
    scheduled: dict[int, str] = {}
    out = []
    for e in history.events:
        name = ""
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name
            name = scheduled[e.event_id]
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED:
            name = scheduled[e.activity_task_cancel_requested_event_attributes.scheduled_event_id]
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
            name = scheduled[e.activity_task_canceled_event_attributes.scheduled_event_id]
        out.append((e.event_type, name))
    return out


def _race_members(tmp: Path):
    async def fast_model(prompt):
        await asyncio.sleep(0.2)
        return f"fast answer to {prompt}"

    async def slow_model(prompt):
        try:
            await asyncio.sleep(SLOW)
        except asyncio.CancelledError:
            (tmp / "slow_model.cancelled").touch()
            raise
        (tmp / "slow_model.finished").touch()
        return "slow answer"

    def slow_sync_model(prompt):
        # A sync member on a worker thread: cancellation lands between these short sleeps.
        deadline = time.monotonic() + SLOW
        try:
            while time.monotonic() < deadline:
                time.sleep(0.05)
        except BaseException:
            (tmp / "slow_sync_model.cancelled").touch()
            raise
        (tmp / "slow_sync_model.finished").touch()
        return "slow sync answer"

    return [slow_model, fast_model, slow_sync_model]


async def test_race_returns_fastest_and_cancels_losers_through_temporal(tmp_path, session_id):
    wf = Workflow("race_middle")
    wf.add_node("Prepare", lambda q: q.upper())
    wf.add_node("Cluster", Team(_race_members(tmp_path), strategy=ExecutionStrategy.RACE))

    async def after(results):
        # Keep the run open until the losers have reported their cancellation, so the history
        # shows ActivityTaskCanceled as well as ActivityTaskCancelRequested.
        await _wait_for(tmp_path / "slow_model.cancelled", 5)
        await _wait_for(tmp_path / "slow_sync_model.cancelled", 5)
        await asyncio.sleep(0.5)
        return results

    wf.add_node("After", after)
    wf.add_edge("Prepare", "Cluster")
    wf.add_edge("Cluster", "After")
    wf.set_entry_point("Prepare")

    began = time.monotonic()
    handle = await wf.start("why", session_id=session_id)
    results = await handle.result()
    took = time.monotonic() - began

    assert took < SLOW / 2, f"RACE took {took:.1f} s; it must not wait for the slow members"
    assert all(isinstance(r, MemberResult) for r in results)
    assert [(r.member, r.status, r.winner) for r in results] == [
        ("slow_model", "cancelled", False), ("fast_model", "succeeded", True),
        ("slow_sync_model", "cancelled", False)]
    assert results[1].result == "fast answer to WHY"
    assert results[0].error.type == "CancelledError" and "fast_model" in results[0].error.message
    # Both losers (async and sync-on-a-thread) received the cancellation in their own code...
    assert (tmp_path / "slow_model.cancelled").exists()
    assert (tmp_path / "slow_sync_model.cancelled").exists()
    # ... and Temporal recorded it: cancel requested and cancelled, for exactly the losers.
    events = await _events(handle)
    requested = {n for t, n in events if t == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED}
    cancelled = {n for t, n in events if t == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED}
    losers = {"race_middle.Cluster.slow_model", "race_middle.Cluster.slow_sync_model"}
    assert requested == losers and cancelled == losers
    # The slow members' code never completes, even given the time it would have needed.
    await asyncio.sleep(0.5)
    assert not (tmp_path / "slow_model.finished").exists()
    assert not (tmp_path / "slow_sync_model.finished").exists()


async def test_race_as_entry_node_returns_before_losers_stop(tmp_path):
    wf = Workflow("race_entry")
    wf.add_node("Cluster", Team(_race_members(tmp_path), strategy="race"))
    wf.set_entry_point("Cluster")
    began = time.monotonic()
    handle = await wf.start("q")
    results = await handle.result()
    assert time.monotonic() - began < SLOW / 2
    assert [r.status for r in results] == ["cancelled", "succeeded", "cancelled"]
    events = await _events(handle)
    assert {n for t, n in events if t == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED} == {
        "race_entry.Cluster.slow_model", "race_entry.Cluster.slow_sync_model"}
    # The run is over, yet the losers are told to stop at their next heartbeat.
    assert await _wait_for(tmp_path / "slow_model.cancelled", 5)
    assert await _wait_for(tmp_path / "slow_sync_model.cancelled", 5)
    await asyncio.sleep(0.5)
    assert not (tmp_path / "slow_model.finished").exists()
    assert not (tmp_path / "slow_sync_model.finished").exists()


async def test_race_has_exactly_one_winner_when_members_finish_together():
    barrier = threading.Barrier(3)

    def twin(x):
        barrier.wait(timeout=10)  # all three return in the same instant
        return x

    wf = Workflow("race_tie")
    wf.add_node("Tie", Team([step(name="a")(lambda x: twin(x)), step(name="b")(lambda x: twin(x)),
                             step(name="c")(lambda x: twin(x))], strategy=ExecutionStrategy.RACE))
    wf.set_entry_point("Tie")
    for _ in range(3):
        barrier.reset()
        results = await wf.execute("same")
        winners = [r for r in results if r.winner]
        assert len(winners) == 1 and winners[0].status == "succeeded"
        assert [r.is_success for r in results].count(True) == 1
        assert {r.status for r in results if not r.winner} == {"cancelled"}


async def test_race_where_every_member_fails_raises_node_error_listing_each():
    def flaky(x):
        raise ConnectionError("model A is down")

    async def broken(x):
        raise ValueError("model B returned garbage")

    wf = Workflow("race_all_fail")
    wf.add_node("Cluster", Team([flaky, broken], strategy=ExecutionStrategy.RACE, retries=1))
    wf.set_entry_point("Cluster")
    with pytest.raises(NodeError) as caught:
        await wf.execute("q")
    message = str(caught.value)
    assert caught.value.node == "Cluster"
    assert 'member "flaky" failed: ConnectionError: model A is down' in message
    assert 'member "broken" failed: ValueError: model B returned garbage' in message
    assert [m["member"] for m in caught.value.details["members"]] == ["flaky", "broken"]


async def test_all_with_mixed_success_and_failure_does_not_fail_the_team():
    def good(x):
        return x * 2

    async def bad(x):
        raise RuntimeError(f"cannot handle {x}")

    wf = Workflow("all_mixed")
    wf.add_node("Group", Team([good, bad, good], strategy=ExecutionStrategy.ALL, retries=1))
    wf.add_node("Count", lambda rs: {"ok": [r.result for r in rs if r.is_success],
                                     "failed": [[r.member, r.error.type, r.error.message]
                                                for r in rs if r.status == "failed"]})
    wf.add_edge("Group", "Count")
    wf.set_entry_point("Group")
    out = await wf.execute(21)
    assert out == {"ok": [42, 42], "failed": [["bad", "RuntimeError", "cannot handle 21"]]}


async def test_mapper_failure_fails_only_that_member():
    def mapper(data, index):
        if index == 1:
            raise KeyError(f"no prompt for member {index}")
        return f"{data}/{index}"

    wf = Workflow("mapper_bulkhead")
    wf.add_node("Group", Team([lambda x: x, lambda x: x, lambda x: x], input_mapper=mapper, retries=3))
    wf.set_entry_point("Group")
    results = await wf.execute("task")
    assert [r.status for r in results] == ["succeeded", "failed", "succeeded"]
    assert [r.result for r in results] == ["task/0", None, "task/2"]
    assert results[1].error.type == "InputMapperError"
    assert "no prompt for member 1" in results[1].error.message
    # Member names of lambdas are made unique so each is its own activity.
    assert len({r.member for r in results}) == 3


async def test_router_member_next_steers_the_run_first_in_member_order_under_all():
    def router(x):
        return Next("Escalate", {"why": x})

    def other_router(x):
        return Next("Ignore", x)

    wf = Workflow("router_all")
    wf.add_node("Team", Team([lambda x: "analysis", router, other_router]))
    wf.add_node("Default", lambda rs: "default path")
    wf.add_node("Escalate", lambda x: f"escalated: {x['why']}")
    wf.add_node("Ignore", lambda x: "second router's target")
    wf.add_edge("Team", "Default")
    wf.set_entry_point("Team")
    handle = await wf.start("refund")
    assert await handle.result() == "escalated: refund"
    state = await handle.state()
    assert state["completed"] == ["Team", "Escalate"]  # static successor skipped, Ignore never ran


async def test_router_winner_next_wins_under_race():
    async def slow_router(x):
        await asyncio.sleep(SLOW)
        return Next("Slow", x)

    async def fast_router(x):
        return Next("Fast", x)

    wf = Workflow("router_race")
    wf.add_node("Start", lambda x: x)
    wf.add_node("Team", Team([slow_router, fast_router], strategy=ExecutionStrategy.RACE))
    wf.add_node("Fast", lambda x: f"fast took {x}")
    wf.add_node("Slow", lambda x: "slow")
    wf.add_edge("Start", "Team")
    wf.set_entry_point("Start")
    began = time.monotonic()
    assert await wf.execute("it") == "fast took it"
    assert time.monotonic() - began < SLOW / 2


async def test_downstream_node_reads_member_results_through_context_history():
    def critic(results, context):
        team = context.history["Team"]
        return [type(r).__name__ for r in team] + [results[0].member]

    wf = Workflow("team_history")
    wf.add_node("Team", Team([step(name="writer")(lambda x: x)]))
    wf.add_node("Critic", critic)
    wf.add_edge("Team", "Critic")
    wf.set_entry_point("Team")
    assert await wf.execute("draft") == ["MemberResult", "writer"]


async def test_team_state_writes_are_merged_in_member_order():
    def first(x, context):
        context.state["votes"] = ["first"]
        context.state["only_first"] = 1
        return 1

    def second(x, context):
        context.state["votes"] = ["second"]
        return 2

    def reader(rs, context):
        return dict(context.state)

    wf = Workflow("team_state")
    wf.add_node("Team", Team([first, second]))
    wf.add_node("Read", reader)
    wf.add_edge("Team", "Read")
    wf.set_entry_point("Team")
    assert await wf.execute(None) == {"votes": ["second"], "only_first": 1}


async def test_quorum_takes_the_first_n_successes_and_cancels_the_rest(tmp_path):
    async def quick(x):
        return "quick"

    async def also_quick(x):
        await asyncio.sleep(0.3)
        return "also quick"

    async def slow(x):
        await asyncio.sleep(SLOW)
        (tmp_path / "slow.finished").touch()
        return "slow"

    wf = Workflow("quorum")
    wf.add_node("Vote", Team([slow, quick, also_quick], strategy=ExecutionStrategy.QUORUM, quorum=2))
    wf.set_entry_point("Vote")
    began = time.monotonic()
    results = await wf.execute("q")
    assert time.monotonic() - began < SLOW / 2
    assert [(r.status, r.winner) for r in results] == [("cancelled", False), ("succeeded", True),
                                                      ("succeeded", True)]


async def test_quorum_that_cannot_be_reached_fails_naming_the_shortfall():
    def ok(x):
        return x

    def nope(x):
        raise ValueError("refused")

    wf = Workflow("quorum_short")
    wf.add_node("Vote", Team([ok, nope, nope], strategy="quorum", quorum=2, retries=1))
    wf.set_entry_point("Vote")
    with pytest.raises(NodeError, match="2 successes, got 1") as caught:
        await wf.execute(1)
    assert 'member "nope" failed: ValueError: refused' in str(caught.value)


async def test_max_concurrency_caps_members_running_at_once():
    lock = threading.Lock()
    running = [0]
    peak = [0]

    def worker(x):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.3)
        with lock:
            running[0] -= 1
        return x

    wf = Workflow("max_conc")
    wf.add_node("Pool", Team([step(name=f"w{i}")(worker) for i in range(5)], max_concurrency=2))
    wf.set_entry_point("Pool")
    results = await wf.execute("x")
    assert [r.status for r in results] == ["succeeded"] * 5
    assert peak[0] == 2


async def test_per_member_timeout_and_retry_policy():
    attempts = {"flaky": 0}

    @step(retry=RetryPolicy(maximum_attempts=3, initial_interval=0.1))
    def flaky(x):
        attempts["flaky"] += 1
        if attempts["flaky"] < 3:
            raise ConnectionError("try again")
        return "third time lucky"

    async def sleepy(x):
        await asyncio.sleep(SLOW)
        return "too late"

    wf = Workflow("member_policies")
    # Team-level defaults (1 s, one attempt) apply to sleepy; flaky's own @step policy wins.
    wf.add_node("Group", Team([flaky, sleepy], timeout=1, retries=1))
    wf.set_entry_point("Group")
    began = time.monotonic()
    results = await wf.execute(None)
    assert time.monotonic() - began < SLOW / 2
    assert (results[0].status, results[0].result) == ("succeeded", "third time lucky")
    assert attempts["flaky"] == 3
    assert results[1].status == "failed" and results[1].error.type == "TimeoutError"


async def test_agent_objects_with_sync_and_async_run_and_names():
    class SyncAgent:
        name = "gpt"

        def run(self, prompt):
            return f"{self.name}: {prompt}"

    class AsyncAgent:
        def __init__(self, name):
            self.name = name

        async def run(self, prompt, context):
            return f"{self.name}@{context.node}: {prompt}"

    class Unnamed:
        def run(self, prompt):
            return "unnamed"

    wf = Workflow("agents")
    wf.add_node("Cluster", Team([SyncAgent(), AsyncAgent("claude"), Unnamed()]))
    wf.set_entry_point("Cluster")
    results = await wf.execute("hi")
    assert [(r.member, r.result) for r in results] == [
        ("gpt", "gpt: hi"), ("claude", "claude@Cluster: hi"), ("Unnamed", "unnamed")]
