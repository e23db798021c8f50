"""Named limits, tenants and budgets with workers in their own processes, on a real dev server.

Node start times come from tests/pipelines/flow.py's log. Figures are lower bounds (a limit can
only slow starts down; a busy machine slows them further), never upper bounds on speed.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest

from gecko_temporal.core.flow_limits import limit_queue
from gecko_temporal.temporal import limits_admin
from gecko_temporal.temporal.client import connect
from tests.pipelines import flow
from tests.pipelines.procs import fresh_queue, wait_until

pytestmark = pytest.mark.slow  # (asyncio_mode = "auto" runs the async tests)


@pytest.fixture
def queue(monkeypatch, dev_server) -> str:
    return fresh_queue(monkeypatch, dev_server.address, "flow")  # the test only starts runs


def workers(procs, dev_server, queue, log, spec: str, count: int = 1, **env: str) -> list:
    """``count`` workers for ``spec`` logging to ``log``, started together, returned once all are ready."""
    started = [
        procs.worker(
            spec, "--address", dev_server.address, "--task-queue", queue, env={"GECKO_FLOW_LOG": str(log), **env}
        )
        for _ in range(count)
    ]
    for w in started:
        w.wait_for("worker ready", 120)
    return started


@pytest.mark.long
async def test_ten_runs_share_one_limit_of_two_per_second_across_two_workers(dev_server, procs, queue, tmp_path):
    log = tmp_path / "flow.log"
    two = workers(procs, dev_server, queue, log, "tests.pipelines.flow:rated", count=2)
    handles = await asyncio.gather(*(flow.rated.start(f"r{i}") for i in range(10)))
    assert sorted(await asyncio.gather(*(h.result() for h in handles))) == sorted(f"r{i}" for i in range(10))
    starts = sorted(t for e, _, _, t in flow.read_log(str(log)) if e == "call")
    pids = {p for e, _, p, _ in flow.read_log(str(log))}
    span = starts[-1] - starts[0]
    shown = [round(t - starts[0], 2) for t in starts]
    # The server's limiter lets a short burst through (3 starts here), then holds 2/s: 10 starts
    # take 3 s and more (unlimited, they start within about 0.3 s), the last 6 at least 2 s.
    assert span >= 3.0 and starts[-1] - starts[4] >= 2.0, shown
    assert max(sum(1 for t in starts if s <= t < s + 1.0) for s in starts) <= 5, shown
    assert pids <= {w.pid for w in two}
    print(f"\n10 starts through 2/s over two workers: {span:.2f} s, {9 / span:.2f} starts/s: {shown}")


@pytest.mark.long
async def test_a_tenant_of_weight_two_gets_about_twice_the_share(dev_server, procs, queue, tmp_path):
    log = tmp_path / "flow.log"
    workers(procs, dev_server, queue, log, "tests.pipelines.flow:fair")
    client = await connect()
    limited = limit_queue(queue, "shared")
    await (await flow.fair.start("warm-up")).result()  # the limit's worker has declared its rate
    await limits_admin.set_weights(client, limited, {"heavy": 2.0})
    await limits_admin.set_rate(client, limited, 0)  # hold dispatch: both tenants queue up first
    handles = []
    for _ in range(24):
        handles.append(await flow.fair.start("heavy", tenant="heavy"))
        handles.append(await flow.fair.start("light", tenant="light"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not all(s["running"] == ["shared"] for s in await asyncio.gather(*(h.state() for h in handles))):
        assert loop.time() < deadline  # all 48 nodes queued on the limit
        await asyncio.sleep(0.2)
    await limits_admin.set_rate(client, limited, None)  # back to the workers' 4/s: contention
    await asyncio.gather(*(h.result() for h in handles))
    order = [label for e, label, _, t in sorted(flow.read_log(str(log)), key=lambda r: r[3]) if e == "shared"]
    order = [label for label in order if label != "warm-up"]
    first = Counter(order[:24])
    assert first["heavy"] >= 1.5 * first["light"], order  # 16 and 8 measured (the embedded server)
    print(f"\nfirst 24 starts under contention: heavy (weight 2) {first['heavy']}, light {first['light']}")


@pytest.mark.long
async def test_a_sigkilled_worker_gives_its_concurrency_slots_back(dev_server, procs, queue, tmp_path):
    log = tmp_path / "flow.log"
    (first,) = workers(procs, dev_server, queue, log, "tests.pipelines.flow:slots", GECKO_FLOW_HOLD="30")
    handles = [await flow.slots.start(f"s{i}") for i in range(4)]
    await asyncio.to_thread(
        wait_until, lambda: sum(e == "hold-start" for e, *_ in flow.read_log(str(log))) == 2, 60, "two slots taken"
    )
    await asyncio.sleep(1.0)
    assert sum(e == "hold-start" for e, *_ in flow.read_log(str(log))) == 2  # concurrency=2: the others wait
    first.kill()
    (second,) = workers(procs, dev_server, queue, log, "tests.pipelines.flow:slots", GECKO_FLOW_HOLD="1")
    results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 120)
    assert sorted(results) == ["s0", "s1", "s2", "s3"]
    entries = flow.read_log(str(log))
    on_second = [(e, t) for e, _, p, t in entries if p == second.pid]
    assert sum(e == "hold-end" for e, _ in on_second) == 4  # the killed worker's two nodes ran again
    running, most = 0, 0
    for e, _ in sorted(on_second, key=lambda r: r[1]):
        running += 1 if e == "hold-start" else -1
        most = max(most, running)
    assert most == 2  # the slots came back, and still two at most


async def test_budget_pause_answered_from_the_cli_then_finished(dev_server, procs, queue, tmp_path):
    log = tmp_path / "flow.log"
    workers(procs, dev_server, queue, log, "tests.pipelines.flow:budgeted")
    handle = await flow.budgeted.start(0)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while "budget" not in (state := await handle.state())["waiting"]:
        assert loop.time() < deadline, state
        await asyncio.sleep(0.2)
    assert state["status"] == "waiting" and state["completed"] == ["a", "b"]
    assert state["waiting"]["budget"]["payload"]["tokens"] == 2000
    answer = procs.command(
        "answer", handle.id, "budget", "--value", json.dumps({"tokens": 5000}), "--address", dev_server.address
    )
    assert await asyncio.to_thread(answer.popen.wait, 60) == 0, answer.output()
    assert await asyncio.wait_for(handle.result(), 60) == 3
    final = await handle.state()
    assert final["usage"]["total"]["tokens"] == 3000 and final["usage"]["total"]["cost_usd"] == 0.03
    assert [label for e, label, _, _ in flow.read_log(str(log))] == ["a", "b", "c"]


async def cli(procs, dev_server, *args: str) -> Any:
    """Run the gecko-temporal CLI in its own process; return the JSON it printed (stdout and stderr
    share one log: the JSON is what starts at the first line opening with "{", "[" or '"')."""
    proc = procs.command(*args, "--address", dev_server.address)
    code = await asyncio.to_thread(proc.popen.wait, 120)
    out = proc.output()
    assert code == 0, out
    start = next((i for i, line in enumerate(out.splitlines(keepends=True)) if line[:1] in '{["'), None)
    if start is None:
        return None
    text = "".join(out.splitlines(keepends=True)[start:])
    return json.JSONDecoder().raw_decode(text)[0]


@pytest.mark.long
async def test_limits_cli_shows_sets_resets_and_weighs_and_list_finds_tenants(dev_server, procs, queue, tmp_path):
    log = tmp_path / "flow.log"
    workers(procs, dev_server, queue, log, "tests.pipelines.flow:rated")
    shown = ("limits", "--workflow", "tests.pipelines.flow:rated", "--task-queue", queue, "--json")
    run = ("run", "tests.pipelines.flow:rated", "--input", '"cli"', "--tenant", "acme", "--task-queue", queue)
    assert await cli(procs, dev_server, *run, "--quiet") == "cli"
    (row,) = (await cli(procs, dev_server, *shown))["limits"]
    assert row["limit"] == "api" and row["per_second"] == 2 and row["override"] is None and row["pollers"] >= 1
    await cli(
        procs, dev_server, "limits", "set", "api", "--per-second", "5", "--per-tenant", "1", "--task-queue", queue
    )
    (row,) = (await cli(procs, dev_server, *shown))["limits"]
    assert row["per_second"] == 5 and row["override"] == 5 and row["per_tenant"] == 1
    await cli(procs, dev_server, "limits", "weight", "acme=2", "globex=0.5", "--limit", "api", "--task-queue", queue)
    (row,) = (await cli(procs, dev_server, *shown))["limits"]
    assert row["weights"] == {"acme": 2.0, "globex": 0.5}
    await cli(procs, dev_server, "limits", "reset", "api", "--task-queue", queue)
    (row,) = (await cli(procs, dev_server, *shown))["limits"]
    assert row["per_second"] == 2 and row["override"] is None and row["per_tenant"] is None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:  # visibility is eventually consistent
        rows = await cli(procs, dev_server, "list", "--tenant", "acme", "--sort", "cost", "--json")
        if rows or loop.time() > deadline:
            break
        await asyncio.sleep(0.5)
    assert [r["tenant"] for r in rows] == ["acme"] and rows[0]["pipeline"] == "FlowRated"


_TWO_LOOPS = """
import asyncio
from gecko_temporal import Limit, Workflow

def call(x):
    return x + 1

wf = Workflow("TwoLoops", limits=[Limit("api", per_second=50)])
wf.add_node("call", call, limit="api").set_entry_point("call")
print(asyncio.run(wf.execute(1)), flush=True)
print(asyncio.run(wf.execute(2)), flush=True)  # the limit's worker outlived the first loop
"""


def test_a_limit_served_by_the_embedded_worker_outlives_the_callers_event_loop(tmp_path):
    """A script on the embedded default runs a limited node in one asyncio.run, then in another. The
    limit's worker used to run on the caller's loop: the first asyncio.run cancelled it on the way
    out (which could hang that exit in the SDK's shutdown), and the second run's node never started."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("TEMPORAL_ADDRESS", "GECKO_TASK_QUEUE")}
    proc = subprocess.run(
        [sys.executable, "-c", _TWO_LOOPS], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["2", "3"], proc.stdout
