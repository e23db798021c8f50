"""RetryAfter and HTTP 429s on a real dev server: the node runs again after the delay it asked for,
and rate-limited attempts never use up its retries."""

from __future__ import annotations

import time

import httpx
import pytest

from gecko_temporal import NodeError, RetryAfter, RetryPolicy, Workflow, step

pytestmark = pytest.mark.asyncio


async def test_retry_after_waits_and_does_not_count_toward_retries(session_id):
    calls: list[float] = []

    @step(retries=1)  # one attempt: any ordinary failure would fail the run
    def flaky(x: int) -> int:
        calls.append(time.monotonic())
        if len(calls) <= 3:
            raise RetryAfter(1.0, "provider busy")
        return x * 2

    wf = Workflow("RetryAfterFlow").add_node("flaky", flaky).set_entry_point("flaky")
    assert await wf.execute(21, session_id=session_id, timeout=60) == 42
    assert len(calls) == 4
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert all(g >= 1.0 for g in gaps), gaps  # never earlier than asked (the timer may fire late)


async def test_httpx_429_with_retry_after_is_recognised(session_id):
    calls: list[float] = []

    @step(retries=2)
    def calls_api(x: str) -> str:
        calls.append(time.monotonic())
        request = httpx.Request("POST", "https://api.example.com/v1/chat")
        if len(calls) <= 2:  # two 429s, then one ordinary failure: it still has a retry left
            response = httpx.Response(429, headers={"Retry-After": "1"}, request=request)
            raise httpx.HTTPStatusError("429 Too Many Requests", request=request, response=response)
        if len(calls) == 3:
            raise ConnectionError("reset by peer")
        return x.upper()

    wf = Workflow("Http429Flow").add_node("api", calls_api).set_entry_point("api")
    assert await wf.execute("ok", session_id=session_id, timeout=60) == "OK"
    assert len(calls) == 4
    assert calls[1] - calls[0] >= 1.0


async def test_ordinary_failures_still_count(session_id):
    calls: list[int] = []

    @step(retry=RetryPolicy(maximum_attempts=2, initial_interval=0.1))
    def broken(x: int) -> int:
        calls.append(x)
        if len(calls) == 1:
            raise RetryAfter(0)
        raise ValueError("bad input")

    wf = Workflow("RetryAfterThenFail").add_node("broken", broken).set_entry_point("broken")
    with pytest.raises(NodeError, match="bad input"):
        await wf.execute(1, session_id=session_id, timeout=60)
    assert len(calls) == 3  # one rate-limited attempt + the two retries
