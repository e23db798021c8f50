"""The embedded default's dev server: usable as soon as it is handed out, gone when its owner exits."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest
from temporalio.client import Client

from gecko_temporal.client import DevServer
from tests.pipelines.procs import ROOT, port_open, wait_until


@pytest.mark.xfail(strict=True, reason=(
    "client.py bug: DevServer._wait_ready returns once the gRPC port accepts a TCP connection, but "
    "the frontend is not healthy yet, so the first Client.connect fails with Unavailable 'Frontend is "
    "not healthy yet' and connect() raises ServerError (seen on the first test of a session)"))
async def test_a_fresh_dev_server_accepts_a_client_as_soon_as_it_is_returned():
    failures = []
    for _ in range(10):  # about half of fresh servers refuse the first client on this machine
        server = await asyncio.to_thread(DevServer)
        try:
            await Client.connect(server.address)
        except RuntimeError as exc:
            failures.append(str(exc)[:120])
        finally:
            await asyncio.to_thread(server.stop)
    assert failures == []


SCRIPT = textwrap.dedent("""
    import asyncio, gecko_temporal.client as client
    from gecko_temporal import Workflow
    wf = Workflow("EmbeddedExit").add_node("n", lambda x: x + 1).set_entry_point("n")
    print("result", asyncio.run(wf.execute(1)), flush=True)
    print("server", client._dev_server.process.pid, client._dev_server.port, flush=True)
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie no one reaped yet counts as gone: it runs nothing and holds no port
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_the_embedded_server_is_gone_after_the_script_exits(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TEMPORAL_ADDRESS"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines["result"] == "2"
    pid, port = map(int, lines["server"].split())
    wait_until(lambda: not _alive(pid), 30, f"dev server pid {pid} gone")
    wait_until(lambda: not port_open(port), 30, f"port {port} closed")
