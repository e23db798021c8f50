"""Team against a real Temporal dev server: RACE cancels losers through Temporal, ALL keeps going
past failures, mappers are bulkheaded, a router member's Next steers the run."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType

from gecko_temporal import ExecutionStrategy, MemberResult, Next, NodeError, RetryPolicy, Team, Workflow, step

pytestmark = pytest.mark.asyncio

# Seconds a slow member would take if nobody cancelled it: far longer than any run here, so "it
# did not wait for the slow member" is checked by the member never finishing, not by a stopwatch.
SLOW = 60.0


async def _wait_for(path: Path, within: float = 30.0) -> None:
    """Wait for ``path`` to appear; raise naming it if it does not (``within`` bounds a failure only)."""
    deadline = time.monotonic() + within
    while not path.exists():
        if time.monotonic() > deadline:
            seen = sorted(p.name for p in path.parent.iterdir())
            raise AssertionError(f"{path.name} did not appear within {within} s; {path.parent} holds {seen}")
        await asyncio.sleep(0.05)


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
        await _wait_for(tmp_path / "slow_model.cancelled")
        await _wait_for(tmp_path / "slow_sync_model.cancelled")
        return results

    wf.add_node("After", after)
    wf.add_edge("Prepare", "Cluster")
    wf.add_edge("Cluster", "After")
    wf.set_entry_point("Prepare")

    handle = await wf.start("why", session_id=session_id)
    results = await handle.result()

    assert all(isinstance(r, MemberResult) for r in results)
    assert [(r.member, r.status, r.winner) for r in results] == [
        ("slow_model", "cancelled", False),
        ("fast_model", "succeeded", True),
        ("slow_sync_model", "cancelled", False),
    ]
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
    # Cancel requests are the workflow's own commands: exactly the losers. Whether a loser's
    # "cancelled" reply lands before the run closes depends on the machine, so that is a subset.
    assert requested == losers and cancelled <= losers
    # The slow members' code never completed: the run did not wait for them.
    assert not (tmp_path / "slow_model.finished").exists()
    assert not (tmp_path / "slow_sync_model.finished").exists()


async def test_race_as_entry_node_returns_before_losers_stop(tmp_path):
    wf = Workflow("race_entry")
    wf.add_node("Cluster", Team(_race_members(tmp_path), strategy="race"))
    wf.set_entry_point("Cluster")
    handle = await wf.start("q")
    results = await handle.result()
    # the RACE returned while the slow members were still running (they have not finished) ...
    assert not (tmp_path / "slow_model.finished").exists()
    assert not (tmp_path / "slow_sync_model.finished").exists()
    assert [r.status for r in results] == ["cancelled", "succeeded", "cancelled"]
    events = await _events(handle)
    assert {n for t, n in events if t == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED} == {
        "race_entry.Cluster.slow_model",
        "race_entry.Cluster.slow_sync_model",
    }
    # ... and although the run is over, the losers are told to stop at their next heartbeat.
    await _wait_for(tmp_path / "slow_model.cancelled")
    await _wait_for(tmp_path / "slow_sync_model.cancelled")
    assert not (tmp_path / "slow_model.finished").exists()
    assert not (tmp_path / "slow_sync_model.finished").exists()


async def test_race_has_exactly_one_winner_when_members_finish_together():
    barrier = threading.Barrier(3)

    def twin(x):
        barrier.wait(timeout=10)  # all three return in the same instant
        return x

    wf = Workflow("race_tie")
    wf.add_node(
        "Tie",
        Team(
            [step(name="a")(lambda x: twin(x)), step(name="b")(lambda x: twin(x)), step(name="c")(lambda x: twin(x))],
            strategy=ExecutionStrategy.RACE,
        ),
    )
    wf.set_entry_point("Tie")
    for _ in range(3):
        barrier.reset()
        handle = await wf.start("same")
        results = await handle.result()
        winners = [r for r in results if r.winner]
        assert len(winners) == 1 and winners[0].status == "succeeded"
        assert [r.is_success for r in results].count(True) == 1
        assert {r.status for r in results if not r.winner} == {"cancelled"}
        # The tie-break: of the members whose results the workflow received at once (one workflow
        # task), the first in member order wins, whatever order they completed in.
        seen_together = await _first_completions_seen_together(handle)
        assert winners[0].member == min(seen_together, key="abc".index), (seen_together, winners[0].member)


async def _first_completions_seen_together(handle) -> list[str]:
    """Members (by name) whose completions the first workflow task that saw any of them received.

    A workflow task that failed (e.g. Temporal's UnhandledCommand: a result arrived while the task
    ran) decided nothing; the next one sees everything recorded before it started.
    """
    history = await handle.temporal_handle.fetch_history()
    scheduled, completed, seen = {}, [], []
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name.rsplit(".", 1)[-1]
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            completed.append(scheduled[e.activity_task_completed_event_attributes.scheduled_event_id])
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            seen = list(completed)
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and seen:
            return seen
    raise AssertionError(f"no workflow task saw a member completion: {scheduled}, {completed}")


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
    wf.add_node(
        "Count",
        lambda rs: {
            "ok": [r.result for r in rs if r.is_success],
            "failed": [[r.member, r.error.type, r.error.message] for r in rs if r.status == "failed"],
        },
    )
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
    handle = await wf.start("it")
    assert await handle.result() == "fast took it"
    assert (await handle.state())["completed"] == ["Start", "Team", "Fast"]


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
        try:
            await asyncio.sleep(SLOW)
        except asyncio.CancelledError:
            (tmp_path / "slow.cancelled").touch()
            raise
        (tmp_path / "slow.finished").touch()
        return "slow"

    wf = Workflow("quorum")
    wf.add_node("Vote", Team([slow, quick, also_quick], strategy=ExecutionStrategy.QUORUM, quorum=2))
    wf.set_entry_point("Vote")
    results = await wf.execute("q")
    assert not (tmp_path / "slow.finished").exists()  # the Team did not wait for it
    assert [(r.status, r.winner) for r in results] == [("cancelled", False), ("succeeded", True), ("succeeded", True)]
    assert [r.result for r in results] == [None, "quick", "also quick"]
    await _wait_for(tmp_path / "slow.cancelled")  # cancelled in its own code, through Temporal
    assert not (tmp_path / "slow.finished").exists()


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
    results = await wf.execute(None)
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
        ("gpt", "gpt: hi"),
        ("claude", "claude@Cluster: hi"),
        ("Unnamed", "unnamed"),
    ]


async def test_members_read_context_state_and_history():
    """A member that takes the context sees the state and earlier outputs, as a node does."""

    def prepare(x, context):
        context.state["topic"] = "otters"
        return f"notes on {x}"

    def reader(x, context):
        return {
            "input": x,
            "topic": context.state["topic"],
            "notes": context.history["Prepare"],
            "has_topic": "topic" in context.state,
            "node": context.node,
        }

    async def async_reader(x, context):
        return context.state.get("topic")

    wf = Workflow("team_context")
    wf.add_node("Prepare", prepare).add_node("Panel", Team([reader, async_reader]))
    wf.add_edge("Prepare", "Panel").set_entry_point("Prepare")
    results = await wf.execute("rivers")
    assert [r.status for r in results] == ["succeeded", "succeeded"]
    assert results[0].result == {
        "input": "notes on rivers",
        "topic": "otters",
        "notes": "notes on rivers",
        "has_topic": True,
        "node": "Panel",
    }
    assert results[1].result == "otters"


async def test_quorum_next_comes_from_the_first_winner_in_member_order_that_returned_one(tmp_path):
    async def slow_router(x):  # a loser: its Next must not count
        await asyncio.sleep(SLOW)
        return Next("Loser", x)

    async def plain(x):
        return "no jump"

    async def router(x):
        await asyncio.sleep(0.2)
        return Next("Chosen", x)

    async def second_router(x):
        await asyncio.sleep(0.2)
        return Next("Other", x)

    wf = Workflow("quorum_next")
    wf.add_node("Vote", Team([slow_router, plain, router, second_router], strategy=ExecutionStrategy.QUORUM, quorum=3))
    for name in ["Loser", "Chosen", "Other", "Default"]:
        wf.add_node(name, lambda x, name=name: f"{name}: {x}")
    wf.add_edge("Vote", "Default").set_entry_point("Vote")
    handle = await wf.start("q")
    assert await handle.result() == "Chosen: q"
    assert (await handle.state())["completed"] == ["Vote", "Chosen"]


async def test_max_concurrency_marks_members_never_started_once_a_race_is_decided():
    calls = []

    def member(x):
        calls.append(x)
        return x

    wf = Workflow("race_capped")
    # one function per member: step() sets its options on the function object it is given
    wf.add_node(
        "Pool",
        Team(
            [step(name=f"m{i}")(lambda x: member(x)) for i in range(3)],
            strategy=ExecutionStrategy.RACE,
            max_concurrency=1,
        ),
    )
    wf.set_entry_point("Pool")
    handle = await wf.start("x")
    results = await handle.result()
    assert [(r.member, r.status, r.winner) for r in results] == [
        ("m0", "succeeded", True),
        ("m1", "cancelled", False),
        ("m2", "cancelled", False),
    ]
    assert [r.error.message for r in results[1:]] == ["not started: the race was decided"] * 2
    assert calls == ["x"]
    scheduled = [n for t, n in await _events(handle) if t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert scheduled == ["race_capped.Pool.m0"]
