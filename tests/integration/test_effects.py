"""``context.once``: an effect runs once per node execution, counted by the file it appends to.

Workers are separate ``worker.py`` processes sharing a file payload store (where once records live):
an exception after the effect (sync, async and local nodes), a worker SIGKILLed right after ``once``
returned, and a node that interrupts twice after its effect.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections import Counter

import pytest
from temporalio.service import RPCError

from gecko_temporal import NodeError
from tests.pipelines import effects
from tests.pipelines.procs import fresh_queue, local_s3, read_event_log, run_gecko, waiting_for

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

SPECS = ("tests.pipelines.effects:fails", "tests.pipelines.effects:crash", "tests.pipelines.effects:people")


@pytest.fixture
def cluster(dev_server, procs, tmp_path, monkeypatch):
    """Start workers (as processes) on a fresh task queue; this process only starts runs."""
    queue = fresh_queue(monkeypatch, dev_server.address, "effects")
    log = tmp_path / "effects.log"
    env = {"GECKO_EFFECT_LOG": str(log), "GECKO_PAYLOAD_STORE": f"file://{tmp_path / 'store'}"}

    def worker(extra_env: dict[str, str] | None = None):
        proc = procs.worker(
            *SPECS, "--address", dev_server.address, "--task-queue", queue, env={**env, **(extra_env or {})}
        )
        proc.wait_for("worker ready", 120)
        return proc

    return worker, log


def _counts(log) -> Counter:
    return Counter(event for event, _ in read_event_log(str(log)))


async def test_an_exception_after_the_effect_retries_without_running_it_again(cluster):
    worker, log = cluster
    proc = await asyncio.to_thread(worker)
    handle = await effects.fails.start("o1", session_id=f"effects-retry-{uuid.uuid4().hex[:8]}")
    result = await asyncio.wait_for(handle.result(), 120)  # a failure bound only

    # Each node ran twice (the first attempt raised after its effect); each effect ran once, and the
    # second attempt got the first attempt's recorded result (sync, async and local nodes alike).
    assert _counts(log) == Counter(
        {"run:sync": 2, "invoice": 1, "run:async": 2, "charge": 1, "run:local": 2, "ticket": 1}
    )
    assert result["sync"]["sent"] == {"invoice": "INV-o1", "pid": proc.pid}
    assert result["async"]["charged"] == {"charge": "CH-o1"}
    assert result["local"] == {"ticket": {"ticket": "T-o1"}}
    # Idempotency keys: stable per node execution (the retried attempt returned it), distinct by node/name.
    keys = {result["sync"]["key"], result["async"]["key"]}
    assert len(keys) == 2 and all(k.startswith("gecko-") and len(k) == 44 for k in keys)

    # A second session with the same input is another node execution: its effects run again.
    again = await effects.fails.start("o1", session_id=f"effects-retry-{uuid.uuid4().hex[:8]}")
    second = await asyncio.wait_for(again.result(), 120)
    assert _counts(log)["invoice"] == 2 and _counts(log)["charge"] == 2
    assert second["sync"]["key"] != result["sync"]["key"]


@pytest.mark.long  # two worker processes and a missed heartbeat: about 9 s idle
async def test_a_worker_killed_right_after_once_returned_does_not_run_the_effect_again(cluster):
    worker, log = cluster
    # Two workers: whichever takes the node kills itself (SIGKILL) right after once() returned; the
    # other takes the retry when the node's heartbeat (2 s) is missed.
    first, second = await asyncio.gather(asyncio.to_thread(worker), asyncio.to_thread(worker))
    handle = await effects.crash.start("o2", session_id=f"effects-kill-{uuid.uuid4().hex[:8]}")
    result = await asyncio.wait_for(handle.result(), 120)  # a failure bound only

    assert _counts(log) == Counter({"run:notify": 2, "invoice": 1})
    killed = {first.pid, second.pid} - {result["finished_by"]}
    assert len(killed) == 1 and [p.popen.poll() for p in (first, second) if p.pid in killed] == [-9]
    assert result["sent"] == {"invoice": "INV-o2", "pid": killed.pop()}  # the dead worker's recorded result


async def test_once_before_two_interrupts_runs_once_across_both_answers(cluster):
    worker, log = cluster
    await asyncio.to_thread(worker)
    handle = await effects.people.start("o3", session_id=f"effects-ask-{uuid.uuid4().hex[:8]}")
    state = await waiting_for(handle, "approve", 0)
    assert state["waiting"]["approve"]["payload"]["ticket"]["invoice"] == "INV-o3"
    await handle.answer("approve", "yes")
    await waiting_for(handle, "approve", 1)
    await handle.answer("approve", "sure")
    result = await asyncio.wait_for(handle.result(), 120)

    assert result["answers"] == ["yes", "sure"] and result["ticket"]["invoice"] == "INV-o3"
    assert _counts(log) == Counter({"run:approve": 3, "invoice": 1})  # the node ran 3 times, its effect once


async def test_once_without_a_record_store_fails_the_node_at_once_saying_how_to_fix_it(
    dev_server, procs, tmp_path, monkeypatch
):
    queue = fresh_queue(monkeypatch, dev_server.address, "effects")
    log = tmp_path / "effects.log"
    env = {"GECKO_EFFECT_LOG": str(log)}  # no GECKO_PAYLOAD_STORE on a named server: no store
    proc = procs.worker(SPECS[2], "--address", dev_server.address, "--task-queue", queue, env=env)
    await asyncio.to_thread(proc.wait_for, "worker ready", 120)
    handle = await effects.people.start("o4", session_id=f"effects-nostore-{uuid.uuid4().hex[:8]}")
    with pytest.raises(NodeError) as err:
        await asyncio.wait_for(handle.result(), 120)
    assert err.value.error_type == "EffectError" and "GECKO_PAYLOAD_STORE=file:///dir" in str(err.value)
    assert _counts(log) == Counter({"run:approve": 1})  # not retried, and the effect never ran


@pytest.mark.long  # floods the run with 9 MB of signals so that its wait continues as new
async def test_once_holds_when_the_wait_after_it_continues_as_new(cluster):
    worker, log = cluster
    await asyncio.to_thread(worker)
    handle = await effects.people.start("o5", session_id=f"effects-can-{uuid.uuid4().hex[:8]}")
    await waiting_for(handle, "approve", 0)
    await handle.answer("approve", "yes")
    await waiting_for(handle, "approve", 1)
    # Signals land in history before the run can refuse them: 6 of 1.5 MB fill it, and the wait
    # goes on in a new run, where the node runs again from its start with the first answer.
    for _ in range(6):
        try:
            await handle.temporal_handle.signal("flood", {"junk": "f" * 1_500_000})
        except RPCError as exc:  # the run is continuing as new already: enough
            assert "closing" in str(exc), exc
            break
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        state = await handle.state()
        if state["run"] >= 2 and (state["waiting"].get("approve") or {}).get("interrupt") == 1:
            break
        assert asyncio.get_running_loop().time() < deadline, f"the wait never moved to a new run: {state}"
        await asyncio.sleep(0.1)
    await handle.answer("approve", "sure")
    result = await asyncio.wait_for(handle.result(), 120)
    assert result["answers"] == ["yes", "sure"] and result["ticket"]["invoice"] == "INV-o5"
    assert _counts(log) == Counter({"run:approve": 4, "invoice": 1})  # 4 runs of the node over 2 Temporal runs


async def test_once_and_the_cache_keep_records_in_an_s3_payload_store(dev_server, monkeypatch, tmp_path):
    """GECKO_PAYLOAD_STORE=s3://bucket/prefix, against moto's S3-compatible server: once records and
    cache entries are objects under prefix/records/, and cache clear deletes the entries."""
    pytest.importorskip("aioboto3")
    moto_server = pytest.importorskip("moto.server")
    import boto3

    from gecko_temporal import CachePolicy, GeckoWorker, Workflow, connect, step

    s3 = local_s3(moto_server, monkeypatch)
    log = tmp_path / "effects.log"
    for name, value in {
        "GECKO_PAYLOAD_STORE": "s3://gecko-records/team",
        "GECKO_EFFECT_LOG": str(log),
        "TEMPORAL_ADDRESS": dev_server.address,
        "GECKO_TASK_QUEUE": f"s3fx-{uuid.uuid4().hex[:6]}",
    }.items():
        monkeypatch.setenv(name, value)
    bucket = boto3.client("s3")
    bucket.create_bucket(Bucket="gecko-records")

    @step(name="Summary", cache=CachePolicy(ttl=3600))
    def summary(order: str) -> str:
        effects.log("summary")
        return order[::-1]

    wf = Workflow("EffectsS3")
    wf.add_node("start", lambda order: order).add_node("sync", effects.sync_fails, retries=3).add_node(summary)
    wf.add_edge("start", "sync").add_edge("start", "Summary").set_entry_point("start")
    try:
        worker = GeckoWorker(await connect(), task_queue=os.environ["GECKO_TASK_QUEUE"])
        worker.serve(wf)
        await worker.start()
        try:
            first = await asyncio.wait_for((await wf.start("o6")).result(), 120)
            again = await wf.start("o6")
            second = await asyncio.wait_for(again.result(), 120)
            cached = (await again.state()).get("cached")
        finally:
            await worker.shutdown()
        # The first session's effect ran once over two attempts, the second session's once more (a
        # new execution); Summary ran once and the second session took it from the cache.
        assert _counts(log) == Counter({"run:sync": 3, "invoice": 2, "summary": 1})
        assert first["Summary"] == second["Summary"] == "6o" and cached == ["Summary"]
        keys = [o["Key"] for o in bucket.list_objects_v2(Bucket="gecko-records")["Contents"]]
        assert sum(k.startswith("team/records/effects/") for k in keys) == 2
        assert sum(k.startswith("team/records/cache/") for k in keys) == 1
        cleared = run_gecko("cache", "clear")
        assert cleared.returncode == 0, cleared.stderr
        assert json.loads(cleared.stdout) == {"cleared": 1, "node": None, "store": "s3://gecko-records/team/records"}
    finally:
        s3.stop()
