"""Token limits (``Limit(tokens_per_minute=...)``) with workers in their own processes, on a real dev
server: the limit holds over several runs and two workers, and a worker killed while holding a
reservation does not keep it past its minute.

Node start times come from tests/pipelines/flow.py's log; figures are lower bounds on waits.
"""

from __future__ import annotations

import asyncio

import pytest

from gecko_temporal.core.flow_limits import limit_queue
from gecko_temporal.temporal import limits_tokens
from gecko_temporal.temporal.client import connect
from tests.integration.test_flow_limits import cli, workers
from tests.pipelines import flow
from tests.pipelines.procs import fresh_queue, wait_until

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.long]


@pytest.fixture
def queue(monkeypatch, dev_server) -> str:
    return fresh_queue(monkeypatch, dev_server.address, "tokens")


def worker(procs, dev_server, queue, log, spec: str, **env: str):
    return workers(procs, dev_server, queue, log, spec, **env)[0]


async def test_six_runs_over_two_workers_spend_at_most_the_minutes_tokens(dev_server, procs, queue, tmp_path):
    log = tmp_path / "flow.log"
    two = [worker(procs, dev_server, queue, log, "tests.pipelines.flow:tokens") for _ in range(2)]
    handles = await asyncio.gather(*(flow.tokens.start(f"t{i}") for i in range(6)))
    results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 180)
    assert sorted(results) == [f"t{i}" for i in range(6)]
    starts = sorted(t for e, _, _, t in flow.read_log(str(log)) if e == "ask")
    shown = [round(t - starts[0], 2) for t in starts]
    # 300 tokens a minute, 100 reserved and spent per call: three calls, then the next three a minute later
    assert len(starts) == 6 and starts[2] - starts[0] < 30, shown
    assert starts[3] - starts[0] >= 58, shown
    assert max(sum(1 for t in starts if s <= t < s + 58) for s in starts) == 3, shown
    assert {p for e, _, p, _ in flow.read_log(str(log))} <= {w.pid for w in two}
    states = await asyncio.gather(*(h.state() for h in handles))
    assert all(s["usage"]["total"]["tokens"] == 100 for s in states)
    use = await limits_tokens.use_of(await connect(), limit_queue(queue, "llm"))
    assert use is not None and use["tokens_per_minute"] == 300 and use["reservations"] == 0, use
    command = ("limits", "--workflow", "tests.pipelines.flow:tokens", "--task-queue", queue, "--json")
    (row,) = (await cli(procs, dev_server, *command))["limits"]  # gecko-temporal limits shows the same
    assert row["tokens"]["tokens_per_minute"] == 300 and row["declared"]["estimate_tokens"] == 100, row
    print(f"\n6 calls of 100 tokens through 300 tokens/minute over two workers: starts at {shown} s")


async def test_a_sigkilled_workers_reservation_ends_with_its_minute(dev_server, procs, queue, tmp_path):
    log = tmp_path / "flow.log"
    first = worker(procs, dev_server, queue, log, "tests.pipelines.flow:hog", GECKO_FLOW_HOLD="600")
    handle = await flow.hog.start("h")
    await asyncio.to_thread(wait_until, lambda: any(e == "ask" for e, *_ in flow.read_log(str(log))), 60, "a call")
    first.kill()  # it reserved the whole minute (estimate 300 of 300) and never settles
    second = worker(procs, dev_server, queue, log, "tests.pipelines.flow:hog", GECKO_FLOW_HOLD="0")
    assert await asyncio.wait_for(handle.result(), 180) == "h"
    calls = [(p, t) for e, _, p, t in flow.read_log(str(log)) if e == "ask"]
    assert [p for p, _ in calls] == [first.pid, second.pid]
    waited = calls[1][1] - calls[0][1]
    # the retry (after the 2 s heartbeat timeout) waits for the dead reservation's minute to end, no longer
    assert 58 <= waited < 120, waited
    state = await handle.state()
    assert state["usage"]["total"]["tokens"] == 100
    print(f"\nkilled worker's reservation of the whole minute: the retry started {waited:.1f} s after the first call")
