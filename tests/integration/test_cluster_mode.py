"""With TEMPORAL_ADDRESS set, runs go to that server and separate workers execute them."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from gecko_temporal import GeckoWorker, ServerError, Workflow, connect
from gecko_temporal.temporal.embedded import DevServer


def pipeline() -> Workflow:
    wf = Workflow("ClusterPipeline").add_node("upper", lambda s: s.upper()).add_node("exclaim", lambda s: s + "!")
    return wf.add_edge("upper", "exclaim").set_entry_point("upper")


async def test_runs_go_to_temporal_address_and_a_worker_serves_them(dev_server, monkeypatch):
    queue = f"cluster-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_server.address)
    monkeypatch.setenv("GECKO_TASK_QUEUE", queue)
    wf = pipeline()
    worker = GeckoWorker(await connect(dev_server.address), task_queue=queue)
    worker.serve(wf)
    await worker.start()
    try:
        handle = await wf.start("durable")
        assert await handle.result() == "DURABLE!"
        description = await handle.temporal_handle.describe()
        assert description.task_queue == queue  # not the embedded worker's queue
    finally:
        await worker.shutdown()


async def test_without_a_worker_the_run_waits_instead_of_running_in_process(dev_server, monkeypatch):
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_server.address)
    monkeypatch.setenv("GECKO_TASK_QUEUE", f"nobody-{uuid.uuid4().hex[:6]}")
    handle = await pipeline().start("x")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(handle.result(), 1.5)
    await handle.temporal_handle.terminate("test over")


async def test_unreachable_temporal_address_is_a_clear_server_error(monkeypatch):
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    with pytest.raises(ServerError, match="cannot connect to Temporal at 127.0.0.1:1.*TEMPORAL_ADDRESS"):
        await pipeline().execute("x")


def test_dev_server_on_a_taken_port_fails_clearly(dev_server):
    with pytest.raises(ServerError, match=f"port {dev_server.port}"):
        DevServer(port=dev_server.port)


def test_missing_temporal_binary_says_how_to_fix(monkeypatch, tmp_path):
    from gecko_temporal.temporal import embedded as client  # find_temporal_binary lives in embedded.py

    monkeypatch.setenv("GECKO_TEMPORAL_BIN", str(tmp_path / "nope"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(client.sysconfig, "get_path", lambda name: str(tmp_path))
    monkeypatch.setattr(client.sys, "executable", str(tmp_path / "python"))
    with pytest.raises(ServerError, match="no `temporal` binary found: install the project"):
        client.find_temporal_binary()


async def test_workflow_task_queue_option_routes_its_runs(dev_server, monkeypatch):
    """Workflow(task_queue=...) wins over GECKO_TASK_QUEUE; a worker on that queue runs it."""
    own = f"own-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_server.address)
    monkeypatch.setenv("GECKO_TASK_QUEUE", f"env-{uuid.uuid4().hex[:6]}")
    wf = Workflow("OwnQueue", task_queue=own).add_node("n", lambda s: f"ran on {s}").set_entry_point("n")
    worker = GeckoWorker(await connect(dev_server.address), task_queue=own)
    worker.serve(wf)
    await worker.start()
    try:
        handle = await wf.start("own queue")
        assert await handle.result() == "ran on own queue"
        assert (await handle.temporal_handle.describe()).task_queue == own
    finally:
        await worker.shutdown()
