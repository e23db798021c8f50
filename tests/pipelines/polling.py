"""Ask a run (or anything) again and again until a condition holds: the one polling loop the tests share.

Every bound here is a failure bound only: a passing test returns as soon as the condition holds.
A caller names its bound as ``tries`` (how many asks, ``every`` seconds apart) or ``within``
(seconds on the loop's clock), whichever it had before the loops were shared.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")


async def poll(
    fetch: Callable[[], Awaitable[T]],
    ready: Callable[[T], object],
    *,
    every: float,
    tries: int | None = None,
    within: float | None = None,
    skip: tuple[type[BaseException], ...] = (),
) -> tuple[bool, T | None]:
    """(reached, last value fetched): ask ``fetch`` until ``ready`` holds or the bound is spent.

    An error of a type in ``skip`` counts as an ask that got nothing (a run continuing as new
    does not answer a query for a moment, a worker not yet polling makes a version unknown).
    """
    if (tries is None) == (within is None):
        raise TypeError("poll: give exactly one bound, tries=N or within=SECONDS")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within if within is not None else None
    last: T | None = None
    asked = 0
    while True:
        try:
            value = await fetch()
        except skip:
            pass
        else:
            last = value
            if ready(value):
                return True, value
        asked += 1
        if deadline is not None and loop.time() >= deadline:
            return False, last
        await asyncio.sleep(every)  # after the last of ``tries`` asks too, as the loops did before
        if tries is not None and asked >= tries:
            return False, last


async def until(
    fetch: Callable[[], Awaitable[T]],
    ready: Callable[[T], object],
    failure: str | Callable[[T | None], str],
    *,
    every: float,
    tries: int | None = None,
    within: float | None = None,
    skip: tuple[type[BaseException], ...] = (),
) -> T:
    """The first value ``fetch`` gives that is ``ready``; AssertionError(``failure``) once the bound is
    spent (a callable ``failure`` gets the last value fetched, to show what the run looked like)."""
    outcome = await poll(fetch, ready, every=every, tries=tries, within=within, skip=skip)
    if not outcome[0]:
        raise AssertionError(failure(outcome[1]) if callable(failure) else failure)
    return cast(T, outcome[1])  # reached: the value fetched that was ready


async def waiting_at(handle: Any, node: str, tries: int = 600, every: float = 0.1) -> dict[str, Any]:
    """gecko_state once ``node`` waits, asked through the handle; a query that fails is asked again
    (a worker that has not polled yet, a run switching to its next)."""
    return await until(
        handle.state,
        lambda state: node in state.get("waiting", {}),
        f"{handle.id} never waited at {node}",
        every=every,
        tries=tries,
        skip=(Exception,),
    )
