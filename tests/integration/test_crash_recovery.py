"""Crash survival with real processes: SIGKILL a worker mid-node, or stop worker and dev server.

The pipeline (tests/pipelines/crash.py) logs every node execution with the process id and time,
so the tests can count: completed nodes never run again, the node in flight runs again on the new
worker, and it starts again within seconds of the crash (nodes heartbeat on their own; the default
heartbeat timeout is 5 s).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import pytest
from temporalio.api.enums.v1 import TimeoutType

from gecko_temporal.temporal.client import connect
from gecko_temporal.temporal.embedded import DevServer
from gecko_temporal.temporal.embedded import free_port as _free_port
from tests.pipelines import crash
from tests.pipelines.procs import Procs, pids_running_with, port_open, wait_until

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

SPEC = "tests.pipelines.crash:wf"


@pytest.fixture
def procs(tmp_path):
    p = Procs(tmp_path)
    yield p
    p.close()


def _events(log) -> Counter:
    return Counter(e for e, _, _ in crash.read_log(str(log)))


@pytest.mark.long
async def test_sigkilled_worker_resumes_without_rerunning_completed_nodes(dev_server, procs, tmp_path, monkeypatch):
    log = tmp_path / "nodes.log"
    queue = f"crash-{uuid.uuid4().hex[:6]}"
    env = {"GECKO_CRASH_LOG": str(log)}
    first = procs.worker(SPEC, "--address", dev_server.address, "--task-queue", queue, env=env)
    first.wait_for("worker ready", 120)
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_server.address)  # the test only starts the run
    monkeypatch.setenv("GECKO_TASK_QUEUE", queue)
    handle = await crash.wf.start(1, session_id=f"crash-{uuid.uuid4().hex[:8]}")

    await asyncio.to_thread(wait_until, lambda: _events(log)["slow-start"] == 1, 120, "slow node in flight")
    first.kill()
    killed_at = time.time()
    assert _events(log) == Counter({"prepare": 1, "slow-start": 1})  # "slow" was cut off mid-node

    second = procs.worker(SPEC, "--address", dev_server.address, "--task-queue", queue, env=env)
    result = await asyncio.wait_for(handle.result(), 120)  # a failure bound only
    finished_at = time.time()

    assert result == {"result": 20, "state": {"prepared": True, "slow": 2}}
    entries = crash.read_log(str(log))
    counts = Counter(e for e, _, _ in entries)
    assert counts == Counter({"prepare": 1, "slow-start": 2, "slow-end": 1, "finish": 1})
    by_pid = {e: p for e, p, _ in entries}  # the last process that logged each event
    assert by_pid["prepare"] == first.pid
    assert by_pid["slow-end"] == by_pid["finish"] == second.pid
    retried_at = [t for e, _, t in entries if e == "slow-start"][1]
    resume = retried_at - killed_at
    state = await handle.state()
    assert state["completed"] == ["prepare", "slow", "finish"] and state["status"] == "completed"
    print(
        f"\nworker SIGKILL: in-flight node restarted {resume:.1f} s after the crash; "  # for the log only
        f"run finished {finished_at - killed_at:.1f} s after it"
    )
    # Retried because its heartbeats stopped (seconds), not after its 300 s start-to-close timeout:
    # Temporal records why the attempt that completed was started. Counted, not timed.
    history = await handle.temporal_handle.fetch_history()
    slow_id = next(
        e.event_id
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name.endswith(".slow")
    )
    (started,) = [
        e.activity_task_started_event_attributes
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
        and e.activity_task_started_event_attributes.scheduled_event_id == slow_id
    ]
    assert started.attempt == 2
    assert started.last_failure.timeout_failure_info.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT


@pytest.mark.long
async def test_dev_server_and_worker_restart_on_the_same_sqlite_file(procs, tmp_path):
    log = tmp_path / "nodes.log"
    db, port = str(tmp_path / "gecko.db"), _free_port()
    env = {"GECKO_CRASH_LOG": str(log)}
    first = procs.worker(SPEC, "--dev", "--port", str(port), "--db-filename", db, env=env)
    first.wait_for("worker ready", 120)
    client = await connect(f"127.0.0.1:{port}")
    session = f"restart-{uuid.uuid4().hex[:8]}"
    from gecko_temporal.core.spec import RunParams

    await client.start_workflow(
        "GeckoWorkflow", RunParams(spec=crash.wf.compile(), input="1"), id=session, task_queue="gecko-temporal"
    )
    await asyncio.to_thread(wait_until, lambda: _events(log)["slow-start"] == 1, 120, "slow node in flight")

    # SIGKILL the worker; its embedded dev server gets SIGTERM (PDEATHSIG) and goes down with it.
    first.kill()
    stopped_at = time.time()
    await asyncio.to_thread(wait_until, lambda: not port_open(port), 60, "dev server down")
    # The port closes before the server lets go of its SQLite file (docs: a server restarted at once
    # on that file can die with SQLITE_BUSY), so wait for the old server process itself to be gone.
    await asyncio.to_thread(wait_until, lambda: not pids_running_with(db), 60, f"old dev server on {db} exited")

    # The history lives in the file, not the port: restart on a fresh port. The released port is
    # free for anyone on a shared machine (another suite's server took it: "already in use").
    new_port = _free_port()
    second = procs.worker(SPEC, "--dev", "--port", str(new_port), "--db-filename", db, env=env)
    await asyncio.to_thread(second.wait_for, "worker ready", 120)
    restarted = time.time() - stopped_at
    client = await connect(f"127.0.0.1:{new_port}")
    result = await asyncio.wait_for(client.get_workflow_handle(session).result(), 120)  # a failure bound only
    finished = time.time() - stopped_at

    assert result == {"result": 20, "state": {"prepared": True, "slow": 2}}
    counts = _events(log)
    assert counts == Counter({"prepare": 1, "slow-start": 2, "slow-end": 1, "finish": 1})
    print(
        f"\ndev server + worker restart: back up {restarted:.1f} s after the kill, run finished {finished:.1f} s after it"
    )


async def test_separate_dev_server_restart_keeps_a_run_started_before_it(procs, tmp_path):
    """The server alone (DevServer with a db file) stops and starts between two nodes."""
    log = tmp_path / "nodes.log"
    db = str(tmp_path / "server.db")
    server = DevServer(db_filename=db)
    env = {"GECKO_CRASH_LOG": str(log), "GECKO_CRASH_SLOW": "0.5"}
    try:
        worker = procs.worker(SPEC, "--address", server.address, env=env)
        worker.wait_for("worker ready", 120)
        client = await connect(server.address)
        from gecko_temporal.core.spec import RunParams

        session = f"server-restart-{uuid.uuid4().hex[:8]}"
        await client.start_workflow(
            "GeckoWorkflow", RunParams(spec=crash.wf.compile(), input="4"), id=session, task_queue="gecko-temporal"
        )
        await asyncio.to_thread(wait_until, lambda: _events(log)["prepare"] == 1, 120, "first node done")
        server.stop()
        server = DevServer(port=server.port, db_filename=db)
        result = await asyncio.wait_for(client.get_workflow_handle(session).result(), 120)  # a failure bound only
    finally:
        server.stop()
    assert result == {"result": 50, "state": {"prepared": True, "slow": 5}}
    assert _events(log)["prepare"] == 1 and _events(log)["finish"] == 1
