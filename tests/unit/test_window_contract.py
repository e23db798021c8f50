"""The activity window (core/window.py) at its edges: a start cancelled while it waits, a grant racing a
cancellation, pausing allowed again after a pause, and ending a pause that never began."""

from __future__ import annotations

import asyncio

import pytest

from gecko_temporal.core.window import Window


async def _jobs(window: Window, count: int):
    log: list[str] = []
    gates = [asyncio.get_running_loop().create_future() for _ in range(count)]

    async def job(i):
        log.append(f"start {i}")
        await gates[i]
        return i

    jobs = [asyncio.ensure_future(window.run(lambda i=i: job(i))) for i in range(count)]
    await asyncio.sleep(0)
    return log, gates, jobs


async def test_a_start_cancelled_while_waiting_leaves_the_queue_at_once():
    window = Window(1)
    log, gates, jobs = await _jobs(window, 3)
    assert window.queued == 2
    jobs[1].cancel()
    await asyncio.sleep(0)
    assert window.queued == 1
    with pytest.raises(asyncio.CancelledError):
        await jobs[1]
    gates[0].set_result(None)
    gates[2].set_result(None)
    assert await jobs[2] == 2 and log == ["start 0", "start 2"]


async def test_a_slot_freed_next_to_a_cancelled_waiter_goes_to_the_next_one():
    window = Window(1)
    log, gates, jobs = await _jobs(window, 3)
    gates[0].set_result(None)  # job 0 ends on the next turn of the loop ...
    jobs[1].cancel()  # ... when job 1's cancellation is already done but not yet handled
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert log == ["start 0", "start 2"] and window.active == 1 and window.queued == 0
    gates[2].set_result(None)
    assert await jobs[2] == 2


async def test_pausing_can_be_allowed_again_after_a_pause():
    window = Window(1)
    window.allow_pause(lambda: True)
    log, gates, jobs = await _jobs(window, 2)
    assert window.paused_now() and window.paused is True
    window.forbid_pause(resume=False)
    drained = window.allow_pause(lambda: False)  # the next layer: history has room again
    assert window.paused is False and not drained.done()
    gates[0].set_result(None)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert log == ["start 0", "start 1"]
    gates[1].set_result(None)
    await asyncio.gather(*jobs)


async def test_forbidding_a_pause_cancels_the_drain_and_may_be_repeated():
    Window(1).forbid_pause()  # never allowed: nothing to end
    window = Window(1)
    drained = window.allow_pause(lambda: False)
    window.forbid_pause()
    assert drained.cancelled()
    window.forbid_pause()
    assert window.paused is False
