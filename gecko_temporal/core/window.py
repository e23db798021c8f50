"""How many activities a run keeps in flight: one FIFO window around every activity start.
Pure: no temporalio import (the workflow passes in what it needs from Temporal as callables).

Temporal refuses a workflow more than 2,000 pending activities: a wider layer would fail every
workflow task and wedge the run. Every activity start (node, local node, Team member) goes through
one :class:`Window`: at most ``size`` run at once, and when one finishes the next queued start goes
(a sliding window, in the order the starts were asked for, so replay decides identically).

A layer so wide that its history would grow too long for one run (a 10,000-wide layer writes
about 34,000 events: Temporal's limit is 51,200, and replaying that many takes longer than a
workflow task may) can *pause*: the window stops granting starts once the workflow says the history
is full (Temporal suggests continue-as-new, or :func:`history_full`), and when the last running
start has finished the workflow continues as new with the rest of the layer (see
``temporal/steps.py``, ``run_layer``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: Temporal's limit of pending activities per workflow (server default).
PENDING_ACTIVITIES_LIMIT = 2_000
#: The window when a graph sets no ``max_parallel``. Measured (benchmarks/wide_benchmark.py, a
#: 3,000-wide layer of instant nodes, one dev server and one 64-thread worker): windows of 100, 250,
#: 500 and 1,000 ran 151, 167, 117 and 86 nodes/s, the server's CPU growing with the activities
#: pending (12, 14, 16, 22 s). 500 keeps most of that speed and still covers the activity slots of
#: eight default workers (64 each); a quarter of Temporal's limit leaves room for cancelled
#: activities (a Team RACE's losers) that are still pending on the server.
DEFAULT_MAX_PARALLEL = 500
#: Temporal terminates a run at 51,200 history events or 50 MiB of history (server defaults).
HISTORY_EVENTS_LIMIT = 51_200
HISTORY_BYTES_LIMIT = 50 * 1024 * 1024
#: Events one activity may still add after the window pauses: scheduled, started, completed, and
#: a workflow task of its own (3) in the worst case, with room to spare.
EVENTS_PER_DRAINING_ACTIVITY = 8
#: Events kept free for what the run does after the drain (continue-as-new, queries' tasks, ...).
EVENTS_RESERVE = 2_000
#: Pause when history reaches this size: what the running activities add is unknown, so keep 10 MiB.
PAUSE_AT_BYTES = 40 * 1024 * 1024


def history_full(events: int, size: int, window: int) -> bool:
    """True when a run of ``events`` history events and ``size`` bytes must start no more
    activities, so that the ``window`` activities in flight can still finish within Temporal's limits."""
    reserve = EVENTS_RESERVE + EVENTS_PER_DRAINING_ACTIVITY * window
    return events + reserve >= HISTORY_EVENTS_LIMIT or size >= PAUSE_AT_BYTES


def check_max_parallel(value: Any) -> str | None:
    """Why ``value`` is no valid ``max_parallel``, or None (None itself means the default)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= PENDING_ACTIVITIES_LIMIT:
        return (
            f"max_parallel must be an int from 1 to {PENDING_ACTIVITIES_LIMIT} (Temporal's limit of pending "
            f"activities per run), got {value!r}"
        )
    return None


class Window:
    """At most ``size`` starts in flight; the others wait in FIFO order.

    ``may_limit`` is asked once, the first time a start would have to wait, whether limiting is
    allowed at all (the workflow answers with ``workflow.patched``: runs recorded before the window
    existed started every node of a layer at once and must replay that way). ``full`` is asked
    before each queued start while pausing is allowed (:meth:`allow_pause`).
    """

    def __init__(self, size: int, may_limit: Callable[[], bool] = lambda: True) -> None:
        self.size = size
        self.active = 0
        self._may_limit = may_limit
        self._limiting: bool | None = None  # None: not asked yet
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._full: Callable[[], bool] | None = None
        self.paused = False
        self._drained: asyncio.Future[None] | None = None

    @property
    def queued(self) -> int:
        """Starts waiting for a slot."""
        return len(self._waiting)

    async def run(self, start: Callable[[], Awaitable[T]]) -> T:
        """Await ``start()`` once a slot is free; the slot is free again when it returns or raises."""
        if (self.active >= self.size or self._waiting) and self.limits():
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append(fut)
            try:
                await fut  # the releaser counted us in (active += 1) when it granted the slot
            except BaseException:
                if fut.done() and not fut.cancelled():
                    self._release()  # granted, then cancelled before we ran: hand the slot on
                elif fut in self._waiting:  # (cancelled ones go in queue order: found at the front)
                    self._waiting.remove(fut)
                raise
        else:
            self.active += 1
        try:
            return await start()
        finally:
            self._release()

    # -- pausing a layer too wide for one run's history -----------------------------------------
    def allow_pause(self, full: Callable[[], bool]) -> asyncio.Future[None]:
        """From now on, stop granting queued starts once ``full()`` is true; the returned future
        fails with :class:`Paused` when the window has paused and nothing runs any more."""
        self._full = full
        self.paused = False
        self._drained = asyncio.get_running_loop().create_future()
        return self._drained

    def forbid_pause(self, resume: bool = True) -> None:
        """Pausing no longer allowed: the layer ended (``resume=False``: start nothing now, the run
        may be switching to a new one), or it could not continue as new (go on starting)."""
        self._full = None
        self.paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.cancel()
        self._drained = None
        if resume:
            self._grant()

    # -- internals --------------------------------------------------------------------------------
    def limits(self) -> bool:
        """Whether this run may hold starts back (asked of ``may_limit`` once, then remembered)."""
        if self._limiting is None:
            self._limiting = bool(self._may_limit())
        return self._limiting

    def _release(self) -> None:
        self.active -= 1
        self._grant()

    def paused_now(self) -> bool:
        """True if no more starts may go (pausing allowed and history full): a caller about to
        start work of its own (a layer starting its next node) asks first."""
        if self._full is not None and not self.paused and self._full():
            self.paused = True
        self._report_drained()
        return self.paused

    def _grant(self) -> None:
        while self._waiting and self.active < self.size and not self.paused_now():
            fut = self._waiting.popleft()
            if fut.done():  # its start was cancelled while it waited
                continue
            self.active += 1
            fut.set_result(None)
        self._report_drained()

    def _report_drained(self) -> None:
        if self.paused and self.active == 0 and self._drained is not None and not self._drained.done():
            self._drained.set_exception(Paused())


class Paused(Exception):
    """The window paused (history nearly full) and every running start has finished."""
