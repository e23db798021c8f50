"""Long agent loops: continue-as-new with a slimmed snapshot keeps history, state, signals and
queries intact across runs."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.api.enums.v1 import EventType

from gecko_temporal import Next, Workflow, step

pytestmark = pytest.mark.asyncio

STEPS = 2000


@pytest.mark.long
@pytest.mark.slow
async def test_a_2000_step_loop_continues_as_new_and_keeps_everything(session_id):
    """2,000+ steps with steps_per_run=250: several runs, step 1 still readable, no signal lost."""

    def start(task, context):
        context.state["marks"] = []
        context.state["task"] = task
        return 1  # Think's first input

    def think(n, context):
        # Step 2,000 reads step 1's output: the snapshot keeps the latest output of every node.
        assert context.history["Start"] == 1, context.history["Start"]
        context.state["count"] = n
        return Next("Think", n + 1) if n < STEPS else {"finished_at": n, "first": context.history["Start"]}

    def mark(x, context):
        # A jump target that records the signal and resumes the loop where it was.
        context.state["marks"] = context.state["marks"] + [x]
        return Next("Think", context.history["Think"].input)

    wf = Workflow("long_loop", max_steps=STEPS + 100, steps_per_run=250)
    wf.add_node("Start", start)
    wf.add_node("Think", think, local=True)
    wf.add_node("Mark", mark, local=True)
    wf.add_edge("Start", "Think")
    wf.set_entry_point("Start")

    handle = await wf.start("loop", session_id=session_id)
    runs_seen = set()
    while (await handle.state())["step"] < 5:  # Mark resumes Think, so Think must have run
        await asyncio.sleep(0.05)
    sent = 0
    while True:  # signal all along the run, so some arrive while it switches to a new run
        try:
            await handle.signal_jump("Mark", sent)
        except Exception:
            # only a run that ended between the check and the signal may refuse it
            description = await handle.temporal_handle.describe()
            if description.status is None or description.status.name == "RUNNING":
                raise
            break
        sent += 1
        state = await handle.state()
        runs_seen.add(state["run"])
        if state["status"] != "running" or state["step"] > STEPS - 300 or sent >= 40:
            break
        await asyncio.sleep(0.15)
    result = await handle.result()

    assert result == {"finished_at": STEPS, "first": 1}
    final = await handle.state()  # a query after the end reaches the last run
    assert final["state"]["count"] == STEPS
    assert final["state"]["marks"] == list(range(sent)), "a signal sent during a switch was lost"
    assert final["step"] == 1 + STEPS + sent  # Start, Think 1..STEPS, one Mark per signal
    assert final["state"]["task"] == "loop"
    assert final["run"] >= (STEPS // 250)
    assert len(runs_seen) >= 3, f"queries saw runs {sorted(runs_seen)}; they must work in every run"
    assert final["completed"][-1] == "Think"
    # The first run was continued as new, and its history stayed far below Temporal's limits.
    history = await handle.temporal_handle.fetch_history()
    assert history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    assert len(history.events) < 4096  # (speed: benchmarks/long_loop_benchmark.py)


async def test_continue_as_new_keeps_state_and_history():
    """A short loop with steps_per_run=3: the switch carries state and history."""

    def count(n, context):
        context.state["seen"] = context.state.get("seen", []) + [n]
        return Next("Count", n + 1) if n < 10 else {"last": n, "first_output": context.history["Seed"]}

    def seed(x, context):
        context.state["run_input"] = x
        return 0

    wf = Workflow("short_loop", steps_per_run=3)
    wf.add_node("Seed", seed)
    wf.add_node("Count", count)
    wf.add_edge("Seed", "Count")
    wf.set_entry_point("Seed")
    handle = await wf.start("s")
    out = await handle.result()
    assert out == {"last": 10, "first_output": 0}
    state = await handle.state()
    assert state["state"]["run_input"] == "s"
    assert state["run"] == 4  # 12 steps, 3 per run, no extra run just to finish
    assert state["step"] == 12
    assert len(state["state"]["seen"]) == 11


async def test_continue_as_new_history_shows_the_switch():
    wf = Workflow("can_history", steps_per_run=2)
    wf.add_node("A", lambda x: Next("A", x + 1) if x < 3 else x)
    wf.set_entry_point("A")
    handle = await wf.start(0)
    assert await handle.result() == 3
    history = await handle.temporal_handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.continued_execution_run_id, "the last run must have been continued as new"
    assert (await handle.state())["run"] == 2  # steps 1-2, then 3-4 (no third run to finish)


async def test_queries_and_jumps_get_through_a_long_burst_of_local_steps(session_id):
    """Local steps run inside one workflow task, where queries and signals wait; the interpreter
    ends the task every 100 local steps, so a watcher sees the loop progress and can stop it."""

    @step(local=True)
    def spin(n, context):
        context.state["n"] = n
        return Next("spin", n + 1)  # forever, until a jump ends it

    wf = Workflow("LocalBurst", max_steps=20_000, steps_per_run=20_000)
    wf.add_node("spin", spin).add_node("Stop", lambda x: x).set_entry_point("spin")
    handle = await wf.start(1, session_id=session_id, timeout=120)
    seen = []
    while len(seen) < 4:
        seen.append((await handle.state())["step"])
        await asyncio.sleep(0.2)
    await handle.jump("Stop", "stopped")
    assert await handle.result() == "stopped"
    gaps = [b - a for a, b in zip(seen, seen[1:])]
    # Without the breaks a query waits for the SDK to end the task on its own (8 s, ~2,000 steps).
    assert all(0 < gap < 1000 for gap in gaps), f"queries saw steps {seen}: the loop starved them"
    history = await handle.temporal_handle.fetch_history()
    yields = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "gecko.yield"
    ]
    assert yields, "no workflow task ended inside the loop"
