"""Eager scheduling on a real dev server: a branch never waits for an unrelated slow node.

Decided by what happened, not by a stopwatch: the slow node waits for a mark that only the end of
the fast chain leaves, so it can see it only if the chain ran while it was running.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path

import pytest

from gecko_temporal import ExecutionStrategy, Next, Team, WaitForInput, Workflow

pytestmark = pytest.mark.asyncio


def _uneven(mode: str, mark: Path) -> Workflow:
    wf = Workflow(f"Uneven-{mode}-{uuid.uuid4().hex[:4]}", scheduling=mode)
    wf.add_node("Start", lambda x: x)

    def slow(x):
        deadline = time.monotonic() + 4  # layered: the chain cannot run meanwhile, so it gives up
        while time.monotonic() < deadline and not mark.exists():
            time.sleep(0.05)
        return "saw the chain finish" if mark.exists() else "gave up waiting"

    wf.add_node("Slow", slow)
    previous = "Start"
    for i in range(3):
        wf.add_node(f"C{i}", lambda x, i=i: x + [i])
        wf.add_edge(previous, f"C{i}")
        previous = f"C{i}"

    def last(x):
        mark.write_text("done")
        return x

    wf.add_node("Last", last).add_edge(previous, "Last")
    wf.add_node("Join", lambda parts: parts).add_edge("Slow", "Join").add_edge("Last", "Join")
    wf.add_edge("Start", "Slow")
    return wf.set_entry_point("Start")


@pytest.mark.parametrize("mode, slow_saw", [("eager", "saw the chain finish"), ("layered", "gave up waiting")])
async def test_a_fast_branch_runs_while_a_slow_one_does_only_in_eager_mode(tmp_path, mode, slow_saw):
    result = await _uneven(mode, tmp_path / "mark").execute([])
    assert result == {"Slow": slow_saw, "Last": [0, 1, 2]}  # the join waited for both, in edge order


async def test_eager_state_conflicts_jumps_and_waits(session_id, tmp_path, caplog):
    """Writes merge as nodes finish; overlapping writers of one key are reported; a wait in one
    branch does not hold the other; Teams run; a jump from outside redirects the run."""
    caplog.set_level(logging.INFO)
    wf = Workflow("EagerMix", scheduling="eager")

    def start(x, context):
        context.state["log"] = ["start"]
        return x

    mark = tmp_path / "panel-ran"

    async def slow_writer(x, context):
        for _ in range(600):  # until the Team of the other branch has run (eager lets it)
            if mark.exists():
                break
            await asyncio.sleep(0.05)
        context.state["slow_saw_panel"] = mark.exists()
        context.state["owner"] = "slow"
        return "slow"

    def quick_writer(x, context):
        context.state["owner"] = "quick"
        context.state["quick_saw_log"] = context.state["log"]
        return "quick"

    async def member(x):
        mark.write_text("yes")
        return f"member saw {x}"

    wf.add_node("Start", start).add_node("Slow", slow_writer).add_node("Quick", quick_writer)
    wf.add_node("Panel", Team([member, member], ExecutionStrategy.ALL))
    wf.add_node("Ask", WaitForInput("go?")).add_node("End", lambda parts: parts)
    wf.add_edge("Start", "Slow").add_edge("Start", "Quick").add_edge("Quick", "Panel")
    wf.add_edge("Panel", "Ask").add_edge("Ask", "End").add_edge("Slow", "End").set_entry_point("Start")
    handle = await wf.start("in", session_id=session_id, timeout=120)

    for _ in range(600):
        state = await handle.state()
        if state["waiting"] and "Slow" in state["completed"]:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"never waited with Slow done: {state}")
    # The Team ran while Slow still ran: Slow waited for its member's mark. (Slow may finish before the
    # Team's result reaches the workflow, or in the same activation: their order in completed is open.)
    assert state["state"]["slow_saw_panel"] is True
    done = state["completed"]
    assert done[:2] == ["Start", "Quick"] and sorted(done[2:]) == ["Panel", "Slow"]
    # Both wrote it, overlapping: the batch that merged Slow reported it (logged; gecko_state shows the
    # conflicts of the last batch only, which is Slow's unless the Team's result merged after it).
    assert state["state"]["owner"] == "slow"
    reported = [r.getMessage() for r in caplog.records if "nodes that ran at the same time wrote" in r.getMessage()]
    assert any("'owner'" in line for line in reported), reported
    if done[-1] == "Slow":
        assert "owner" in state["conflicts"]
    assert state["state"]["quick_saw_log"] == ["start"]
    await handle.answer("Ask", "yes")
    assert await handle.result() == {"Slow": "slow", "Ask": "yes"}


async def test_an_outside_jump_redirects_an_eager_run_while_a_branch_runs(session_id):
    wf = Workflow("EagerRedirect", scheduling="eager")

    async def slow(x):
        await asyncio.sleep(1.5)
        return "slow"

    wf.add_node("Start", lambda x: x).add_node("Slow", slow).add_node("After", lambda x: "should not run")
    wf.add_node("Done", lambda x: f"redirected with {x}")
    wf.add_edge("Start", "Slow").add_edge("Slow", "After").set_entry_point("Start")
    handle = await wf.start(1, session_id=session_id)
    for _ in range(200):
        if (await handle.state())["running"] == ["Slow"]:
            break
        await asyncio.sleep(0.05)
    await handle.jump("Done", "now")
    # Done starts at once, beside Slow, and finishes first; the run returns what finished last
    assert await handle.result() == "slow"
    state = await handle.state()
    assert state["completed"] == ["Start", "Done", "Slow"]  # and After, where Slow led, never ran


async def test_an_eager_loop_continues_as_new_once_its_branches_finished(session_id):
    def think(n, context):
        context.state["turns"] = n
        return Next("think", n + 1) if n < 7 else n

    wf = Workflow("EagerLoop", scheduling="eager", steps_per_run=3)
    wf.add_node("think", think).add_node("answer", lambda n: {"answer": n}).add_edge("think", "answer")
    handle = await wf.set_entry_point("think").start(1, session_id=session_id)
    assert await handle.result() == {"answer": 7}
    state = await handle.state()
    assert state["run"] >= 3 and state["state"] == {"turns": 7} and state["step"] == 8
