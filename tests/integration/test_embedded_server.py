"""The embedded default's dev server: usable as soon as it is handed out, gone when its owner exits."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest
from temporalio.client import Client

from gecko_temporal.temporal.client import DevServer
from tests.pipelines.procs import ROOT, port_open, wait_until

SLOW_START = textwrap.dedent("""\
    #!{python}
    # A server that starts slowly, as a loaded machine makes the real one do: its port accepts TCP
    # connections (and drops them) for 2 s before the real dev server takes over on that port.
    import os, socket, sys, time
    args = sys.argv[1:]
    port = int(args[args.index("--port") + 1])
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen()
    s.settimeout(0.05)
    end = time.monotonic() + 2
    while time.monotonic() < end:
        try:
            s.accept()[0].close()
        except socket.timeout:
            pass
    s.close()
    os.execv({real!r}, [{real!r}, *args])
""")


async def test_a_dev_server_accepts_a_client_as_soon_as_it_is_returned(tmp_path, monkeypatch):
    from gecko_temporal.temporal.client import find_temporal_binary

    fake = tmp_path / "temporal"
    fake.write_text(SLOW_START.format(python=sys.executable, real=find_temporal_binary()))
    fake.chmod(0o755)
    monkeypatch.setenv("GECKO_TEMPORAL_BIN", str(fake))
    server = await asyncio.to_thread(DevServer)
    try:
        await Client.connect(server.address)  # DevServer said it is up: a client must get in
    finally:
        await asyncio.to_thread(server.stop)


async def test_a_picked_port_taken_before_the_server_binds_it_is_picked_again(monkeypatch):
    """Seen in CI: another process bound the port free_port() had just picked, the dev server died
    with "address already in use", and the run failed. A port DevServer picked is picked again."""
    import socket
    import threading

    from gecko_temporal.temporal import embedded

    thief = socket.socket()  # takes the first pick after DevServer looked and before the server binds
    thief.bind(("127.0.0.1", 0))
    thief.listen()
    thief.settimeout(0.05)
    taken = thief.getsockname()[1]
    stop = threading.Event()

    def refuse() -> None:  # drop whoever connects (as a port serving something else would)
        while not stop.is_set():
            try:
                thief.accept()[0].close()
            except OSError:
                pass

    threading.Thread(target=refuse, daemon=True).start()
    picks = iter([taken])
    real_free_port, real_listening = embedded.free_port, embedded._listening
    looked: list[int] = []

    def pick() -> int:
        return next(picks, None) or real_free_port()

    def listening(port: int) -> bool:  # DevServer's own look finds the port free: the race
        if port == taken and port not in looked:
            looked.append(port)
            return False
        return real_listening(port)

    monkeypatch.setattr(embedded, "free_port", pick)
    monkeypatch.setattr(embedded, "_listening", listening)
    try:
        server = await asyncio.to_thread(DevServer)
    finally:
        stop.set()
        thief.close()
    try:
        assert looked == [taken] and server.port != taken
        await Client.connect(server.address)
    finally:
        await asyncio.to_thread(server.stop)


SCRIPT = textwrap.dedent("""
    import asyncio
    from gecko_temporal import Workflow
    from gecko_temporal.temporal.embedded import embedded_server
    wf = Workflow("EmbeddedExit").add_node("n", lambda x: x + 1).set_entry_point("n")
    print("result", asyncio.run(wf.execute(1)), flush=True)
    server = embedded_server()  # the one the run started (started on first use, then reused)
    print("server", server.process.pid, server.port, flush=True)
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
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines["result"] == "2"
    pid, port = map(int, lines["server"].split())
    wait_until(lambda: not _alive(pid), 30, f"dev server pid {pid} gone")
    wait_until(lambda: not port_open(port), 30, f"port {port} closed")
