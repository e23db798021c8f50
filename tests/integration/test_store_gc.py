"""``gecko-temporal store gc`` against a real server and a worker process writing the file store:
it removes what no session needs and nothing a running or recently ended session refers to; an
entry removed from under a session's history is then a clear error naming session, key and file."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from gecko_temporal.core.spec import RunParams
from gecko_temporal.temporal.store import FileStorageDriver
from tests.integration.test_red_team_decode import Worker, _finish
from tests.pipelines import hostile
from tests.pipelines.procs import Procs

pytestmark = pytest.mark.asyncio


def _gc(address: str, store: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gecko_temporal", "store", "gc", "--store", f"file://{store}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TEMPORAL_ADDRESS": address},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _entries(store: Path) -> set[str]:
    return {p.name for p in store.rglob("*") if p.is_file()}


def _holding(store: Path, marker: bytes) -> set[str]:
    """The entries holding ``marker`` many times over (a run's input, and copies it passed on)."""
    return {p.name for p in store.rglob("*") if p.is_file() and marker * 1000 in p.read_bytes()}


@pytest.mark.long
async def test_store_gc_keeps_what_sessions_need_and_removes_the_rest(dev_server, tmp_path):
    store = tmp_path / "store"
    procs = Procs(tmp_path)
    try:
        worker = Worker(procs, dev_server.address, "gc", {"GECKO_PAYLOAD_STORE": f"file://{store}"})
        worker.proc.wait_for("worker ready")
        client = await worker.client()
        sessions = {}
        for name, letter in (("open", "o"), ("ended", "e")):  # start inputs over the 256 KiB threshold
            sessions[name] = f"gc-{name}-{uuid.uuid4().hex[:8]}"
            await client.start_workflow(
                "GeckoWorkflow",
                RunParams(spec=hostile.wf.compile(), input=json.dumps(letter * 400_000)),
                id=sessions[name],
                task_queue=worker.queue,
            )
        for session in sessions.values():
            for _ in range(600):
                if (await worker.state(session))["waiting"]:
                    break
                await asyncio.sleep(0.05)
        await _finish(worker, sessions["ended"])
        open_entries, ended_entries = _holding(store, b"o"), _holding(store, b"e")
        assert open_entries and ended_entries

        driver = FileStorageDriver(str(store))
        orphan = driver._write(b"nobody refers to this")
        fresh = driver._write(b"a run that is starting wrote this a moment ago")
        leftover = store / "ab" / ("ab" + "0" * 62 + ".123.456.tmp")
        leftover.parent.mkdir(exist_ok=True)
        leftover.write_bytes(b"half a payload")
        hours_ago = time.time() - 7200
        for path in store.rglob("*"):
            if path.is_file() and path.name != fresh:
                os.utime(path, (hours_ago, hours_ago))

        said = _gc(dev_server.address, store, "--dry-run")
        assert "would remove 1 entries" in said and leftover.name in {p.name for p in store.rglob("*")}, said
        said = _gc(dev_server.address, store, "--retention", "30d", "--grace", "1h")
        assert "removed 1 entries" in said and "1 unreferenced but newer" in said, said
        assert _entries(store) >= {*open_entries, *ended_entries, fresh} and orphan not in _entries(store)
        assert leftover.name not in _entries(store)

        await asyncio.sleep(1.5)
        said = _gc(dev_server.address, store, "--retention", "1s", "--grace", "1h")
        assert not ended_entries & _entries(store), said  # its session ended before the retention
        assert open_entries <= _entries(store)  # the open session refers to them, however old

        # The ended session's history now names a missing entry: reading its state fails (never
        # hangs), and the worker says which session, key and file.
        with pytest.raises(AssertionError, match="gecko_state did not answer"):
            await worker.state(sessions["ended"], within=30)
        said = worker.proc.output()
        assert f"session {sessions['ended']}: payload store {store} has no" in said, worker.log_tail()
        assert any(f"{e[:12]}... (file {store / e[:2] / e}" in said for e in ended_entries), worker.log_tail()
        await _finish(worker, sessions["open"])  # the open session goes on
    finally:
        procs.close()
