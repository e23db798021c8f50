"""Spawn and reap real worker processes (``python worker.py ...``) for the process-level tests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.pipelines.polling import until

ROOT = Path(__file__).resolve().parents[2]


class Proc:
    """A child process whose output goes to a file, so waiting on a line never blocks on a pipe."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._out = open(log, "ab")
        base = {k: v for k, v in os.environ.items() if k not in ("TEMPORAL_ADDRESS", "GECKO_TASK_QUEUE")}
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**base, "PYTHONUNBUFFERED": "1", **(env or {})},
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, within: float = 120.0) -> None:  # a failure bound only
        deadline = time.monotonic() + within
        while text not in self.output():
            if self.popen.poll() is not None:
                raise AssertionError(f"process exited with {self.popen.returncode} before {text!r}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} within {within} s:\n{self.output()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no graceful shutdown, exactly a crash."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._out.close()


class Procs:
    """Every process a test started; ``close()`` reaps them all, also when the test failed."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.started: list[Proc] = []

    def worker(self, *args: str, env: dict[str, str] | None = None) -> Proc:
        n = len(self.started) + 1
        proc = Proc([sys.executable, str(ROOT / "worker.py"), *args], self.tmp / f"worker-{n}.out", env)
        self.started.append(proc)
        return proc

    def command(self, *args: str, env: dict[str, str] | None = None) -> Proc:
        n = len(self.started) + 1
        proc = Proc([sys.executable, "-m", "gecko_temporal", *args], self.tmp / f"cli-{n}.out", env)
        self.started.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.started:
            proc.stop()


def load_example(name: str) -> Any:
    """examples/``name``.py loaded as a module, as its tests drive it (the folder is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None, f"no examples/{name}.py"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_event_log(path: str) -> list[tuple[str, int]]:
    """(event, pid) lines that pipeline nodes append to a log file, to count executions per process."""
    try:
        with open(path) as f:
            return [(e, int(p)) for e, p in (line.split() for line in f if line.strip())]
    except FileNotFoundError:
        return []


def wait_until(predicate: Callable[[], object], within: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {within} s")
        time.sleep(0.05)


def local_s3(moto_server: Any, monkeypatch: Any) -> Any:
    """moto's S3-compatible server (``moto.server``) started on a free local port, with the AWS_*
    variables set (test credentials) so boto3 and the S3 payload stores use it; the caller stops it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for name, value in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    return server


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def pids_running_with(argument: str) -> list[int]:
    """Pids of live (not zombie) processes with ``argument`` among their command-line arguments."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(") ", 1)[1][0]
        except (OSError, IndexError):
            continue  # gone meanwhile
        if argument.encode() in args and state != "Z":
            found.append(int(entry.name))
    return found


async def temporal(dev_server, *args: str, within: float = 60) -> tuple[int, str, str]:
    """The real Temporal CLI against the test server, as a user types it: (exit code, stdout, stderr)."""
    from gecko_temporal.temporal.embedded import find_temporal_binary

    proc = await asyncio.create_subprocess_exec(
        find_temporal_binary(),
        *args,
        "--address",
        dev_server.address,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "TEMPORAL_CLI_SHOW_STACKS": "0"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), within)
    return proc.returncode, out.decode(), err.decode()


async def flood(dev_server, session: str, folder: Path, count: int = 6, size: int = 1_500_000) -> None:
    """``count`` signals of ``size`` bytes from the real CLI: each lands in the run's history before
    the run can refuse it. A run continuing as new refuses signals for a moment ("workflow is
    closing"), as a flooded waiting run does here: the CLI is run again then, as a user would."""
    path = folder / "flood.json"
    path.write_text(json.dumps({"junk": "f" * size}))
    for _ in range(count):
        for _attempt in range(50):
            code, _, err = await temporal(
                dev_server, "workflow", "signal", "--workflow-id", session, "--name", "flood", "--input-file", str(path)
            )
            if code == 0 or "workflow is closing" not in err:
                break
            await asyncio.sleep(0.2)
        assert code == 0, err


async def waiting_for(handle: Any, node: str, index: int = 0, within: float = 60.0) -> dict[str, Any]:
    """gecko_state once ``node`` waits in its ``index``-th interrupt (a failure bound only)."""
    return await until(
        handle.state,
        lambda state: (state["waiting"].get(node) or {}).get("interrupt") == index,
        lambda state: f"{node} never waited in interrupt {index}: {state}",
        every=0.05,
        within=within,
    )


@contextmanager
def worker_serving(
    tmp: Path, address: str, queue: str, *targets: str, threads: int = 4, env: dict[str, str] | None = None
) -> Iterator[Proc]:
    """One ``worker.py`` process serving ``targets`` on ``queue`` while the block runs (a module's
    worker fixture); reaped when the block ends, also when the worker never got ready."""
    procs = Procs(tmp)
    proc = procs.worker(*targets, "--address", address, "--task-queue", queue, "--threads", str(threads), env=env)
    try:
        proc.wait_for("worker ready")
        yield proc
    finally:
        procs.close()


def ready_worker(procs: Procs, target: str, address: str, queue: str, *args: str, **env: str) -> Proc:
    """A ``worker.py`` process for ``target`` on ``queue`` (more arguments, e.g. ``--build-id v1``, after
    them), returned once it says it is ready (120 s, a failure bound only)."""
    proc = procs.worker(target, "--address", address, "--task-queue", queue, *args, env=env or None)
    proc.wait_for("worker ready", 120)
    return proc


def fresh_queue(monkeypatch: Any, address: str, prefix: str) -> str:
    """A new task queue for a test whose workers are processes: runs this process starts (``wf.start``)
    go to that server and queue, where only those processes poll."""
    queue = f"{prefix}-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("TEMPORAL_ADDRESS", address)
    monkeypatch.setenv("GECKO_TASK_QUEUE", queue)
    return queue


async def start_run(dev_server: Any, wf: Any, value: object, queue: str, prefix: str) -> tuple[str, Any]:
    """Start ``wf`` with input ``value`` on ``queue`` (served by a worker process) from a raw Temporal
    client, as another program would: (session id, Temporal handle)."""
    from gecko_temporal.core.spec import RunParams
    from gecko_temporal.temporal.client import connect

    session = f"{prefix}-{uuid.uuid4().hex[:8]}"
    client = await connect(dev_server.address)
    params = RunParams(spec=wf.compile(), input=json.dumps(value))
    handle = await client.start_workflow("GeckoWorkflow", params, id=session, task_queue=queue)
    return session, handle


async def promote_when_polled(address: str, build_id: str, deployment: str) -> None:
    """Promote ``build_id`` as soon as its worker has polled (the server knows a version only then)."""
    from gecko_temporal.temporal.client import connect
    from gecko_temporal.temporal.deployments import promote

    client = await connect(address)
    for _ in range(200):  # a failure bound only
        try:
            await promote(client, build_id, deployment)
            return
        except Exception:
            await asyncio.sleep(0.1)
    await promote(client, build_id, deployment)  # raises the real error


async def signal_by_cli(dev_server: Any, session: str, name: str, body: str) -> tuple[int, str, str]:
    """``temporal workflow signal`` with JSON ``body``, as a user types it: (exit code, stdout, stderr)."""
    return await temporal(dev_server, "workflow", "signal", "--workflow-id", session, "--name", name, "--input", body)


async def update_by_cli(dev_server: Any, session: str, name: str, body: str) -> tuple[int, str, str]:
    """``temporal workflow update execute`` with JSON ``body``: (exit code, stdout, stderr)."""
    return await temporal(
        dev_server, "workflow", "update", "execute", "--workflow-id", session, "--name", name, "--input", body
    )


def run_gecko(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m gecko_temporal ARGS`` from the repository root, waited for (``timeout`` a failure
    bound only): its exit code and text output, for a test's asserts."""
    return subprocess.run(
        [sys.executable, "-m", "gecko_temporal", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def gecko(dev_server: Any, *args: str, within: float = 60) -> tuple[int, str, str]:
    """The gecko-temporal command line in its own process against the test server (``dev_server``
    None: no address, so ``run`` starts its own embedded one): (exit code, stdout, stderr)."""
    where = ["--address", dev_server.address] if dev_server is not None else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gecko_temporal",
        *args,
        *where,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), within)
    return proc.returncode or 0, out.decode(), err.decode()
