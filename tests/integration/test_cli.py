"""The gecko-temporal CLI and worker.py, against the real dev server and real worker processes.

The worker always runs as a separate process (``python worker.py ...``); the CLI commands run
in-process through ``gecko_temporal.ops.cli.main`` (fast) and once through the installed console script.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid
from pathlib import Path

import pytest

from gecko_temporal.core.spec import RunParams
from gecko_temporal.ops.cli import main, worker_main
from gecko_temporal.temporal.client import connect
from gecko_temporal.temporal.embedded import free_port as _free_port
from tests.pipelines import review
from tests.pipelines.polling import until
from tests.pipelines.procs import Procs, port_open, start_run, wait_until, worker_serving

QUEUE = f"cli-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def worker(dev_server, tmp_path_factory):
    """One worker process serving the review pipelines for this module's tests."""
    with worker_serving(
        tmp_path_factory.mktemp("cli-worker"),
        dev_server.address,
        QUEUE,
        "tests.pipelines.review:wf",
        "tests.pipelines.review:upper",
    ) as proc:
        yield proc


async def cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run one CLI command in a thread (it runs its own event loop) and capture what it printed."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(args))
    out, err = capsys.readouterr()
    return code, out, err


async def start_review(dev_server, topic: str) -> str:
    session, _ = await start_run(dev_server, review.wf, topic, QUEUE, "review")
    return session


async def until_waiting(dev_server, session: str) -> None:
    handle = (await connect(dev_server.address)).get_workflow_handle(session)
    await until(
        lambda: handle.query("gecko_state"),
        lambda state: state["waiting"],
        "the run never reached its WaitForInput node",
        every=0.05,
        tries=200,
    )


# -- bad input: no server needed -----------------------------------------------------------------
@pytest.mark.parametrize(
    "spec, message",
    [
        ("tests.pipelines.review", "is not MODULE:WF: name a module and a Workflow object in it"),
        ("tests.pipelines.nosuch:wf", 'no module named "tests.pipelines.nosuch"; run from the directory'),
        ("tests.pipelines.review:missing", 'has no attribute "missing" (Workflow objects there: wf, upper'),
        (
            "tests.pipelines.review:not_a_workflow",
            '"tests.pipelines.review:not_a_workflow" is a dict, not a gecko_temporal Workflow',
        ),
        ("tests.pipelines.review:broken", 'invalid workflow "Broken"'),
    ],
)
def test_worker_names_the_bad_spec_and_the_fix(capsys, spec, message):
    assert worker_main([spec, "--address", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("worker.py: error: ") and message in err


def test_worker_without_a_server_says_how_to_get_one(capsys, monkeypatch):
    monkeypatch.delenv("TEMPORAL_ADDRESS", raising=False)
    assert worker_main(["tests.pipelines.review:wf"]) == 2
    assert "no Temporal server: pass --address HOST:PORT or set TEMPORAL_ADDRESS" in capsys.readouterr().err


def test_commands_other_than_run_need_a_server(capsys, monkeypatch):
    monkeypatch.delenv("TEMPORAL_ADDRESS", raising=False)
    assert main(["status", "some-session"]) == 2
    assert "no Temporal server" in capsys.readouterr().err


def test_bad_json_input_is_a_usage_error(capsys):
    assert main(["run", "tests.pipelines.review:upper", "--input", "hi", "--address", "127.0.0.1:1"]) == 2
    assert "--input must be JSON (a string needs quotes" in capsys.readouterr().err


async def test_unreachable_server_is_exit_code_1(capsys):
    code, _, err = await cli(capsys, "status", "x", "--address", "127.0.0.1:1")
    assert code == 1 and "cannot connect to Temporal at 127.0.0.1:1" in err


# -- against a worker process --------------------------------------------------------------------
async def test_run_prints_the_json_result(dev_server, worker, capsys):
    code, out, err = await cli(
        capsys,
        "run",
        "tests.pipelines.review:upper",
        "--input",
        '"hello"',
        "--address",
        dev_server.address,
        "--task-queue",
        QUEUE,
        "--session",
        f"cli-run-{uuid.uuid4().hex[:6]}",
        "--timeout",
        "30",
    )
    assert (code, out) == (0, '"HELLO"\n')
    assert "session: cli-run-" in err


async def test_the_console_script_runs_a_pipeline(dev_server, worker, tmp_path):
    script = Path(sys.executable).parent / "gecko-temporal"
    proc = await asyncio.create_subprocess_exec(
        str(script),
        "run",
        "tests.pipelines.review:upper",
        "--input",
        '"via script"',
        "--address",
        dev_server.address,
        "--task-queue",
        QUEUE,
        cwd=Path(__file__).resolve().parents[2],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert json.loads(out) == "VIA SCRIPT"


async def test_status_answer_and_the_finished_run(dev_server, worker, capsys):
    session = await start_review(dev_server, "cats")
    await until_waiting(dev_server, session)
    code, out, _ = await cli(capsys, "status", session, "--address", dev_server.address)
    assert code == 0, out
    assert "running: Review" in out
    assert f"session {session} (ReviewPipeline): waiting [temporal: RUNNING]" in out
    assert "progress: 1/4 nodes completed" in out and "completed: Draft" in out
    assert f"waiting: Review (Publish the draft? (yes/no); answer with: gecko-temporal answer {session} Review" in out
    assert 'state: {"topic": "cats"}' in out

    code, _, err = await cli(capsys, "answer", session, "Draft", "--value", '"yes"', "--address", dev_server.address)
    assert code == 1 and '"Draft" is not a WaitForInput node (those are: Review)' in err

    code, out, _ = await cli(capsys, "answer", session, "Review", "--value", '"yes"', "--address", dev_server.address)
    assert code == 0 and json.loads(out) == {"node": "Review", "waiting": True}
    result = await (await connect(dev_server.address)).get_workflow_handle(session).result()
    assert result == {"published": True, "topic": "cats"}

    code, out, _ = await cli(capsys, "status", session, "--json", "--address", dev_server.address)
    state = json.loads(out)
    assert code == 0 and state["status"] == "completed" and state["completed"] == ["Draft", "Review", "Publish"]


async def test_jump_to_an_unknown_node_fails_clearly_and_a_valid_jump_redirects(dev_server, worker, capsys):
    session = await start_review(dev_server, "dogs")
    await until_waiting(dev_server, session)
    code, out, err = await cli(capsys, "jump", session, "Publsh", "--address", dev_server.address)
    assert code == 1 and out == ""
    assert "JumpRejectedError: jump to 'Publsh' rejected" in err and 'did you mean "Publish"' in err

    code, out, _ = await cli(
        capsys, "jump", session, "Abort", "--input", '"changed my mind"', "--address", dev_server.address
    )
    assert code == 0 and json.loads(out)["node"] == "Abort"
    code, _, _ = await cli(capsys, "answer", session, "Review", "--value", '"yes"', "--address", dev_server.address)
    assert code == 0
    result = await (await connect(dev_server.address)).get_workflow_handle(session).result()
    assert result == {"aborted": "changed my mind"}  # the jump replaced Review's static successor


async def test_cancel_stops_a_running_session_and_refuses_a_finished_one(dev_server, worker, capsys):
    from temporalio.client import WorkflowExecutionStatus

    session = await start_review(dev_server, "owls")
    await until_waiting(dev_server, session)
    code, out, _ = await cli(capsys, "cancel", session, "--address", dev_server.address)
    assert code == 0 and json.loads(out) == {"session": session, "cancel_requested": True}
    handle = (await connect(dev_server.address)).get_workflow_handle(session)
    for _ in range(100):
        if (await handle.describe()).status == WorkflowExecutionStatus.CANCELED:
            break
        await asyncio.sleep(0.05)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    code, _, err = await cli(capsys, "cancel", session, "--address", dev_server.address)
    assert code == 1 and f'session "{session}" is not running (it is canceled)' in err


async def test_status_of_an_unknown_session(dev_server, capsys):
    code, _, err = await cli(capsys, "status", "no-such-session-xyz", "--address", dev_server.address)
    assert code == 1 and 'no session "no-such-session-xyz"' in err


# -- process lifecycle ---------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_worker_stops_gracefully_on_signals(dev_server, tmp_path, sig):
    procs = Procs(tmp_path)
    try:
        proc = procs.worker(
            "tests.pipelines.review:upper",
            "--address",
            dev_server.address,
            "--task-queue",
            f"stop-{uuid.uuid4().hex[:6]}",
        )
        await asyncio.to_thread(proc.wait_for, "worker ready")
        proc.popen.send_signal(sig)
        code = await asyncio.to_thread(proc.popen.wait, 20)
        assert code == 0, proc.output()
        assert "stopping: letting running nodes finish" in proc.output() and "worker stopped" in proc.output()
    finally:
        procs.close()


@pytest.mark.slow
async def test_dev_command_serves_a_durable_server_and_prints_its_address(tmp_path, capsys):
    procs = Procs(tmp_path)
    port, db = _free_port(), tmp_path / "dev.db"
    try:
        proc = procs.command("dev", "tests.pipelines.review:upper", "--port", str(port), "--db-filename", str(db))
        await asyncio.to_thread(proc.wait_for, "worker ready")
        assert f"export TEMPORAL_ADDRESS=127.0.0.1:{port}" in proc.output()
        code, out, _ = await cli(
            capsys, "run", "tests.pipelines.review:upper", "--input", '"dev"', "--address", f"127.0.0.1:{port}"
        )
        assert (code, out) == (0, '"DEV"\n')
        proc.popen.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.popen.wait, 20) == 0
        assert not port_open(port) and db.stat().st_size > 0  # server stopped with it; history on disk
    finally:
        procs.close()


@pytest.mark.slow
async def test_graceful_shutdown_lets_a_running_node_finish(dev_server, tmp_path):
    """SIGTERM mid-node with --graceful-shutdown: the node finishes on the stopping worker (it is
    not cut off and rerun), and a later worker carries the run on from there."""
    from collections import Counter

    from tests.pipelines import crash

    log = tmp_path / "nodes.log"
    queue = f"graceful-{uuid.uuid4().hex[:6]}"
    env = {"GECKO_CRASH_LOG": str(log), "GECKO_CRASH_SLOW": "2"}
    procs = Procs(tmp_path)
    try:
        first = procs.worker(
            "tests.pipelines.crash:wf",
            "--address",
            dev_server.address,
            "--task-queue",
            queue,
            "--graceful-shutdown",
            "120",
            env=env,
        )
        await asyncio.to_thread(first.wait_for, "worker ready")
        client = await connect(dev_server.address)
        session = f"graceful-{uuid.uuid4().hex[:8]}"
        handle = await client.start_workflow(
            "GeckoWorkflow", RunParams(spec=crash.wf.compile(), input="1"), id=session, task_queue=queue
        )
        events = lambda: Counter(e for e, _, _ in crash.read_log(str(log)))  # noqa: E731
        await asyncio.to_thread(wait_until, lambda: events()["slow-start"] == 1, 60, "slow node in flight")
        first.popen.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(first.popen.wait, 120) == 0, first.output()
        assert "stopping: letting running nodes finish (up to 120 s)" in first.output()
        assert events() == Counter({"prepare": 1, "slow-start": 1, "slow-end": 1})  # finished, not cut off
        assert {e: p for e, p, _ in crash.read_log(str(log))}["slow-end"] == first.pid

        second = procs.worker(
            "tests.pipelines.crash:wf", "--address", dev_server.address, "--task-queue", queue, env=env
        )
        result = await asyncio.wait_for(handle.result(), 120)  # a failure bound only
        assert result == {"result": 20, "state": {"prepared": True, "slow": 2}}
        assert events() == Counter({"prepare": 1, "slow-start": 1, "slow-end": 1, "finish": 1})
        assert {e: p for e, p, _ in crash.read_log(str(log))}["finish"] == second.pid
    finally:
        procs.close()


@pytest.mark.slow
async def test_worker_waits_for_a_server_that_comes_up_within_connect_timeout(tmp_path, capsys):
    from gecko_temporal.temporal.client import DevServer

    port = _free_port()
    procs = Procs(tmp_path)
    server = None
    try:
        proc = procs.worker(
            "tests.pipelines.review:upper", "--address", f"127.0.0.1:{port}", "--connect-timeout", "120"
        )
        await asyncio.to_thread(proc.wait_for, f"waiting for Temporal at 127.0.0.1:{port} (up to 120 s)")
        assert "worker ready" not in proc.output()
        server = await asyncio.to_thread(DevServer, port)  # the server comes up after the worker
        await asyncio.to_thread(proc.wait_for, "worker ready", 120)
        code, out, _ = await cli(
            capsys, "run", "tests.pipelines.review:upper", "--input", '"late"', "--address", server.address
        )
        assert (code, out) == (0, '"LATE"\n')
    finally:
        procs.close()
        if server is not None:
            server.stop()


@pytest.mark.slow
async def test_worker_gives_up_after_connect_timeout(tmp_path):
    procs = Procs(tmp_path)
    try:
        proc = procs.worker(
            "tests.pipelines.review:upper", "--address", f"127.0.0.1:{_free_port()}", "--connect-timeout", "2"
        )
        code = await asyncio.to_thread(proc.popen.wait, 120)
        assert code != 0 and "waiting for Temporal" in proc.output(), proc.output()
        assert "cannot connect to Temporal" in proc.output()
    finally:
        procs.close()
