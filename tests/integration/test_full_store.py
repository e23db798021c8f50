"""A payload store whose disk is full (a real 2 MB tmpfs) neither fails a run nor wedges it: values
that fit in history stay there until the disk has room, a worker process says so once, and no
half-written file is left behind."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid

import pytest
from temporalio.client import Client

from gecko_temporal.core.spec import RunParams
from gecko_temporal.temporal.payloads import data_converter
from tests.pipelines import full_store
from tests.pipelines.procs import Procs


@pytest.fixture
def full_disk(tmp_path):
    """A 2 MB tmpfs with 1.5 MB taken: no room for a 400 KB payload and the store's margin."""
    mount = tmp_path / "store"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        (mount / "filler").write_bytes(b"\0" * 1_500_000)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_a_full_store_keeps_values_in_history_and_the_run_finishes(dev_server, tmp_path, full_disk):
    procs = Procs(tmp_path)
    env = {"GECKO_PAYLOAD_STORE": f"file://{full_disk}"}
    queue = f"fullstore-{uuid.uuid4().hex[:6]}"
    try:
        worker = procs.worker(
            "tests.pipelines.full_store:wf", "--address", dev_server.address, "--task-queue", queue, env=env
        )
        worker.wait_for("worker ready")
        client = await Client.connect(dev_server.address, data_converter=data_converter(env))
        session = f"fullstore-{uuid.uuid4().hex[:8]}"
        handle = await client.start_workflow(
            "GeckoWorkflow",
            RunParams(spec=full_store.wf.compile(), input=json.dumps(400_000)),
            id=session,
            task_queue=queue,
        )
        assert await asyncio.wait_for(handle.result(), 60) == 400_000
        assert (await handle.query("gecko_state"))["state"]["seen"] == 400_000
        assert "payload store" in worker.output() and "is full" in worker.output()
        left = [name for _, _, files in os.walk(full_disk) for name in files if name != "filler"]
        assert left == [], f"the full store kept {left}"
        failures = [
            e for e in (await handle.fetch_history()).events if e.HasField("workflow_task_failed_event_attributes")
        ]
        assert failures == [], "a workflow task failed on the full disk"
    finally:
        procs.close()
