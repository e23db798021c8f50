"""How a step's tasks run until a batch of them has finished: a layer, or an eager run's batch.

Workflow code, called from ``GeckoWorkflow._steps`` (the one run loop). The two scheduling modes
wait differently, and each keeps exactly the commands it recorded (one timer per wait while the
run has a timeout): a layered run waits for its whole layer (``run_layer``, the ``LayerQueue``
deciding what launches and which failure counts); an eager run waits for whatever finishes first
(``finished_together``). The ``RunDriver`` decides the rest.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, Protocol

from temporalio import workflow

from gecko_temporal.temporal.node_runs import abandon

with workflow.unsafe.imports_passed_through():
    from gecko_temporal.core.control import RunControl
    from gecko_temporal.core.run.driver import RunDriver
    from gecko_temporal.core.run.layer import LayerQueue
    from gecko_temporal.core.run.person import PersonWait, WaitPaused
    from gecko_temporal.core.run.rewind import REWIND_SIGNAL_WAIT, RewindPoints
    from gecko_temporal.core.scheduler import Task
    from gecko_temporal.core.spec import NodeOutput
    from gecko_temporal.core.window import Window, history_full
    from gecko_temporal.protocol import (
        EAGER_REDIRECT_PATCH,
        EAGER_SEND_WAIT_PATCH,
        REWIND_WAIT_PATCH,
        WAIT_SWITCH_PATCH,
        WIDE_WAIT_SWITCH_PATCH,
    )

Running = dict[str, tuple[Task, "asyncio.Future[NodeOutput]"]]  # an eager run's tasks in flight, by Task.key


class Host(Protocol):
    """What the steps need of the workflow."""

    drive: RunDriver
    window: Window
    queued: int  # tasks of the layer waiting for a slot of the window (gecko_state)
    waits_may_pause: bool  # a wait for a person in the running layer may stop for a switch of runs
    wait_patch: str | None  # ...in runs that record this patch too (a fan-out's or an eager run's wait)

    def run_task(self, task: Task) -> Coroutine[Any, Any, NodeOutput]: ...

    async def continue_as_new(self, partial_layer: dict[str, Any] | None = None) -> None: ...

    def give_up(self, futures: list[asyncio.Future[NodeOutput]], late: list[Task]) -> NoReturn: ...


async def finished_together(host: Host, running: Running) -> list[tuple[Task, NodeOutput]]:
    """Eager: wait until running tasks finish; those that finished in the same workflow activation,
    in node order (Temporal replays completions in the order it recorded them). ``[]`` when a jump
    from outside arrived first: the loop begins a step now, redirecting the running tasks.

    A wait for a person that stops because the history is full (see :func:`switch_while_waiting`)
    stays in ``running``, done: the run starts nothing more, the other tasks finish and merge here,
    and once only stopped waits are left the run continues as new with them (they wait again there).
    A Send instance's wait too: its fan-out goes on collecting in the next run (``RunDriver.with_fan_ins``)."""
    drive = host.drive
    host.waits_may_pause = True
    # (a wait beside a Send instance: runs recorded before the fan-out's collecting crossed runs waited here)
    sending = any(t.send is not None for t, _ in running.values())
    host.wait_patch = EAGER_SEND_WAIT_PATCH if sending else WIDE_WAIT_SWITCH_PATCH
    jumped: asyncio.Future[None] | None = None  # a jump from outside arrived: [] begins a step at once
    try:
        while True:
            live = [f for _, f in running.values() if not _paused(f)]
            if not live:  # only stopped waits are left
                await _switch_with_waits(host, running)  # returns only if the run could not switch
                continue
            if jumped is None and drive.wake_for_redirects:
                jumped = asyncio.ensure_future(workflow.wait_condition(drive.redirect_due))
            timeout = drive.time_left(workflow.now().timestamp())
            watched: list[asyncio.Future[Any]] = [*live] if jumped is None else [*live, jumped]
            done, _ = await workflow.wait(watched, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                host.give_up([f for _, f in running.values()], [t for t, _ in running.values()])
            if jumped is not None and jumped.done():
                jumped = None  # (with tasks done too, it redirects once their batch has merged)
                if len(done) == 1:
                    if workflow.patched(EAGER_REDIRECT_PATCH):
                        return []
                    drive.wake_for_redirects = False  # recorded before: redirect when a task finishes
                    continue
            if any(_paused(f) for f in done):
                drive.switching = True  # start nothing more in this run
            batch = drive.in_node_order([t for t, f in running.values() if f in done and not _paused(f)])
            if not batch:
                continue
            for task in batch:  # the first failure in node order fails the run
                error = running[task.key][1].exception()
                if error is not None:
                    for _, fut in running.values():
                        if not fut.done():
                            abandon(fut)
                    raise error
            return [(task, running.pop(task.key)[1].result()) for task in batch]
    finally:
        host.waits_may_pause, host.wait_patch = False, None
        if jumped is not None and not jumped.done():
            jumped.cancel()


def _paused(fut: asyncio.Future[Any]) -> bool:
    return fut.done() and not fut.cancelled() and isinstance(fut.exception(), WaitPaused)


async def _switch_with_waits(host: Host, running: Running) -> None:
    """Continue as new with an eager run's stopped waits (nothing else runs); if the run cannot
    switch (its snapshot is too big), start the waits again here."""
    tasks = host.drive.in_node_order([t for t, _ in running.values()])
    layer = LayerQueue(tasks)
    for i, task in enumerate(tasks):
        error = running[task.key][1].exception()
        assert isinstance(error, WaitPaused)
        layer.pause_wait(i, error.again)
        task.wait_until = error.again.get("until")
    workflow.logger.info("continuing as new while %s wait (history is long)", ", ".join(t.key for t in tasks))
    await host.continue_as_new(host.drive.with_fan_ins(layer))
    host.drive.switching = False
    for task in tasks:
        running[task.key] = (task, asyncio.ensure_future(host.run_task(task)))


def _history_full(window: Window) -> bool:
    # Temporal's suggestion (4,096 events or 4 MiB on a default server) is the bound that matters:
    # a worker that lost its cache replays the whole history within one workflow task (10 s), and
    # the 34,000 events of a 10,000-wide layer took longer than that here, so the run never got on.
    info = workflow.info()
    return info.is_continue_as_new_suggested() or history_full(
        info.get_current_history_length(), info.get_current_history_size(), window.size
    )


def switch_while_waiting(host: Host) -> Callable[[], bool]:
    """What a wait for a person waits for besides its answer: the run's history is full and the run
    may switch (a snapshot that fits; in an eager run, no Send instance running). Signals that reach a
    waiting run then land in the next run's history, so a long or flooded wait never reaches
    Temporal's limits. Runs recorded before the patch waited in one history, and replay so; so did
    waits in a fan-out or an eager run recorded before ``host.wait_patch``."""
    if not host.waits_may_pause or host.drive.cannot_switch or not workflow.patched(WAIT_SWITCH_PATCH):
        return lambda: False
    if host.wait_patch is not None and not workflow.patched(host.wait_patch):
        return lambda: False
    return lambda: not host.drive.cannot_switch and _history_full(host.window)


async def run_layer(host: Host, layer: LayerQueue, kinds: dict[str, str]) -> list[NodeOutput]:
    """Run a layer's tasks (those not done already) and return their outputs in task order.

    The window starts at most ``max_parallel`` activities at once. A layer wider than that
    starts its node tasks as earlier ones finish, in node order (a task per waiting node cost
    the 10,000-wide layer's first workflow task more than Temporal's 2 s deadlock limit, and
    its eviction more than the SDK allows). A layer of plain nodes wider than the window may
    pause when Temporal suggests continue-as-new: once the running nodes finish, the run
    continues as new with the rest of the layer (and what finished). ``kinds``: node -> kind.
    """
    window = host.window
    if layer.cap > window.size and window.limits():  # older runs started every node at once
        layer.limit(window.size)
    futures: dict[int, asyncio.Future[NodeOutput]] = {}
    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    host.drive.sched.fan_in_again(layer.tasks)  # a fan-out the previous run paused fans in here
    host.waits_may_pause = True
    host.wait_patch = None if layer.waits_may_pause else WIDE_WAIT_SWITCH_PATCH  # (a fan-out's waits)
    pausable = layer.may_pause(kinds)
    drained = window.allow_pause(functools.partial(_history_full, window)) if pausable else None

    def launch() -> None:
        while layer.can_launch:
            if drained is not None and window.paused_now():
                break
            i = layer.launch()
            fut = futures[i] = asyncio.ensure_future(host.run_task(layer.tasks[i]))
            fut.add_done_callback(functools.partial(landed, i))
        host.queued = len(layer.waiting)
        if layer.over and not finished.done():
            finished.set_result(None)

    def landed(i: int, fut: asyncio.Future[NodeOutput]) -> None:
        futures.pop(i, None)
        if fut.cancelled():
            layer.landed(i)
            return
        error = fut.exception()
        if isinstance(error, WaitPaused):  # the layer finishes what runs, then the run switches
            layer.pause_wait(i, error.again)
            launch()
            return
        layer.landed(i, None if error is not None else fut.result(), error)
        if error is None:
            launch()
        elif not finished.done():
            finished.set_result(None)

    launch()
    try:
        while True:
            waited = [finished, *([drained] if drained is not None else [])]
            timeout = host.drive.time_left(workflow.now().timestamp())
            got, _ = await workflow.wait(waited, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if layer.failures or not got:
                late = layer.late()
                for i in late:
                    abandon(futures[i])
                first = layer.first_failure()  # reported in node order
                if first is not None:
                    raise first
                host.give_up([], [layer.tasks[i] for i in late])
            if drained is not None and drained.done() and not finished.done():
                workflow.logger.info(
                    "layer %d: continuing as new after %d of its %d nodes (history is long)",
                    host.drive.layer,
                    len(layer.done),
                    len(layer.tasks),
                )
                await host.continue_as_new(layer.paused())  # returns only if the run cannot switch
                window.forbid_pause()
                drained = None
                launch()
                continue
            if finished.done() and layer.paused_waits:
                workflow.logger.info(
                    "layer %d: continuing as new while a node waits (history is long)", host.drive.layer
                )
                await host.continue_as_new(layer.paused())  # returns only if the run cannot switch
                layer.unpause_waits()
                finished = asyncio.get_running_loop().create_future()
                launch()
                continue
            if finished.done():
                return layer.outputs()
    finally:  # (continue-as-new raises through here: it must not start the rest of the layer)
        host.queued = 0
        host.waits_may_pause, host.wait_patch = False, None
        if drained is not None:
            window.forbid_pause(resume=False)


async def wait_for_person(
    wait: PersonWait,
    task: Task,
    live: RunControl,
    events: Any,
    show: Callable[[], None],
    apply_edits: Callable[[], None],
    switch: Callable[[], Callable[[], bool]],
) -> str:
    """Wait (durably, no activity running) for the answer to ``wait.node``; return it (JSON text).

    ``live`` holds the answers, ``events`` tells readers, ``show`` updates the UI's details,
    ``apply_edits`` lands edits sent meanwhile (an interrupt's), ``switch()`` says when the wait must
    stop so that the run can continue as new (see :func:`switch_while_waiting`)."""
    timeout, until = wait.time_left(task.wait_until, workflow.now().timestamp())
    task.wait_until = None
    shown = wait.begin(live, task.input, workflow.now().isoformat())
    events.waiting(wait.node, task.step, shown, wait.index)
    show()
    if wait.edits_first:
        apply_edits()
    must_switch = switch()
    try:
        await workflow.wait_condition(lambda: wait.node in live.answers or must_switch(), timeout=timeout)
        if wait.node not in live.answers:  # the history is full: wait on in the next run
            raise wait.again(task.resume, until)
        return live.answer_for(wait.node)
    except asyncio.TimeoutError:
        return wait.timed_out()  # the default, or NodeFailed
    finally:
        live.stop_waiting(wait.node)
        if not live.waiting:
            events.set_status("running")


async def rewind_point(
    points: RewindPoints, drive: RunDriver, live: RunControl, nodes: list[str], start: bool = False
) -> None:
    """Record the rewind point of what just merged (``nodes``; ``start``: the run's start).

    A rewind resets the run to the task that merged a step, then signals gecko_rewound (where it
    came from, edits, updates the reset dropped). If this task is such a reset, wait here for that
    signal so the edits land before the next step starts; after a reset by other means, go on after
    a minute."""
    info = workflow.info()
    event, now = info.get_current_history_length(), workflow.now().isoformat()
    points.record(step=drive.sched.step, layer=drive.layer, nodes=nodes, time=now, event=event, start=start)
    if not points.reseeded(workflow.random_seed()):
        return
    if not workflow.patched(REWIND_WAIT_PATCH):
        return  # a run reset (by hand) under code without rewinds went on at once: replay it so
    if points.reset_seen(live):
        try:
            await workflow.wait_condition(lambda: points.rewound(live), timeout=REWIND_SIGNAL_WAIT)
        except asyncio.TimeoutError:
            points.reset_by_hand(live, drive.sched.step)
