"""Nothing a client sends can wedge, fool or break a run.

Driven the way the reports came in: the real `temporal` CLI against a worker in its own process
(`python worker.py ...`), with malformed, oversized, non-JSON and forged requests.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sys
import uuid
from pathlib import Path

import pytest

from gecko_temporal import NodeError, Workflow
from gecko_temporal.temporal.client import RunHandle, connect
from gecko_temporal.temporal.embedded import DevServer
from gecko_temporal.temporal.embedded import free_port as _free_port
from tests.pipelines import hostile
from tests.pipelines.polling import poll, until
from tests.pipelines.procs import ROOT, Procs, port_open, start_run, temporal, wait_until, worker_serving

QUEUE = f"hostile-{uuid.uuid4().hex[:6]}"


def _strict_json(text: str):
    """Parse as the Go CLI and the UI do: NaN/Infinity are errors."""

    def refuse(token: str):
        raise ValueError(f"not strict JSON: {token}")

    return json.loads(text, parse_constant=refuse)


async def cli_state(dev_server, session: str) -> dict:
    code, out, err = await temporal(
        dev_server, "workflow", "query", "--workflow-id", session, "--name", "gecko_state", "--output", "json"
    )
    assert code == 0, f"gecko_state did not answer from the CLI: {err}"
    return _strict_json(out)["queryResult"][0]


async def cli_state_when(dev_server, session: str, ready, tries: int, every: float) -> dict:
    """gecko_state from the CLI once ``ready(state)`` holds, or the last one asked for once ``tries``
    asks did not see it (the caller's assert then shows what the run looked like)."""
    _, state = await poll(lambda: cli_state(dev_server, session), ready, every=every, tries=tries)
    return state


@pytest.fixture(scope="module")
def worker(dev_server, tmp_path_factory):
    """One worker process for the drill; importing the canary module would leave a file."""
    tmp = tmp_path_factory.mktemp("hostile")
    canary = tmp / "canary-imported"
    env = {"GECKO_CANARY_FILE": str(canary)}
    with worker_serving(tmp, dev_server.address, QUEUE, "tests.pipelines.hostile:wf", env=env) as proc:
        proc.canary = canary
        yield proc


async def start_hostile(dev_server, queue: str = QUEUE, prefix: str = "hostile", topic: str = "durability") -> str:
    """Start tests/pipelines/hostile.py's run on ``queue`` with a raw client; return once it waits at Gate1."""
    session, _ = await start_run(dev_server, hostile.wf, topic, queue, prefix)
    await until(
        lambda: cli_state(dev_server, session),
        lambda state: state["waiting"],
        "the run never reached Gate1",
        every=0.05,
        tries=400,
    )
    return session


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_drill_of_malformed_and_hostile_requests_leaves_the_run_unharmed(dev_server, worker, tmp_path):
    session = await start_hostile(dev_server)
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"node": "Nope", "input": "x" * 1_500_000}))
    deep = tmp_path / "deep.json"
    deep.write_text(json.dumps({"node": "Echo1", "input": "@"}).replace('"@"', "[" * 5000 + "]" * 5000))
    wid = ("--workflow-id", session)
    signals = [  # (signal name, CLI input arguments): every one must be rejected and recorded
        ("gecko_next", ()),
        ("gecko_next", ("--input", '{"node":"Echo1"}', "--input", '{"node":"Finish"}')),
        ("gecko_answer", ()),
        ("gecko_answer", ("--input", '{"node":"Gate1","value":1}', "--input", "2")),
        ("gecko_next", ("--input", '"Echo1"')),
        ("gecko_next", ("--input", '{"node": 5}')),
        ("gecko_next", ("--input", '{"node": "Nope"}')),
        ("gecko_next", ("--input", '{"node": "Echo1", "inptu": 1}')),
        ("gecko_next", ("--input-file", str(big))),
        ("gecko_next", ("--input-file", str(big))),
        ("gecko_answer", ("--input", '{"node": "Echo1", "value": 1}')),
        ("gecko_nxt", ("--input", '{"node": "Finish"}')),
        ("gecko_next", ("--input-meta", "encoding=binary/plain", "--input-base64", "--input", _b64(b"\x00\xffjump"))),
        (
            "gecko_next",
            ("--input-meta", "encoding=application/x-nobody-reads-this", "--input-base64", "--input", _b64(b"{}")),
        ),
        ("gecko_next", ("--input-file", str(deep))),
        ("gecko_next", ("--input", "null")),
        ("gecko_next", ("--input", "[]")),
        ("gecko_answer", ("--input", '{"node": "Gate1", "value": {"x": NaN}}')),
    ]
    sent = 0
    for name, extra in signals:
        code, _, err = await temporal(dev_server, "workflow", "signal", *wid, "--name", name, *extra)
        if code != 0:  # the CLI itself refused to send it (e.g. text it cannot parse as JSON): fine too
            assert "NaN" in " ".join(extra), f"signal {name} {extra}: {err}"  # (1e999 is read as inf: accepted)
            continue
        sent += 1
        state = await cli_state(dev_server, session)
        assert state["status"] == "waiting" and state["waiting"].keys() == {"Gate1"}, state
        assert len(state["rejected"]) == sent, f"signal {name} {extra} was not recorded as rejected"
        entry = state["rejected"][-1]
        assert entry["signal"] == name and entry["reason"] and len(entry["request"]) < 400, entry
    assert sent >= 17

    updates = [  # each is refused to its sender; nothing is recorded in the run
        ("gecko_jump", ()),
        ("gecko_jump", ("--input", '{"node":"Echo1"}', "--input", '{"node":"Finish"}')),
        ("gecko_jump", ("--input", '{"node": "Nope"}')),
        ("gecko_jump", ("--input", '"Finish"')),
        ("gecko_reply", ("--input", '{"node": "Echo1", "value": 1}')),
        ("gecko_reply", ("--input-meta", "encoding=binary/plain", "--input-base64", "--input", _b64(b"\x01"))),
        ("gecko_nope", ("--input", "{}")),
    ]
    for name, extra in updates:
        code, out, err = await temporal(dev_server, "workflow", "update", "execute", *wid, "--name", name, *extra)
        assert code != 0, f"update {name} {extra} was accepted: {out}"
        await cli_state(dev_server, session)
    for extra in [
        ("--input", "1", "--input", "2"),
        ("--input-meta", "encoding=binary/plain", "--input-base64", "--input", _b64(b"\x02")),
    ]:
        code, _, err = await temporal(dev_server, "workflow", "query", *wid, "--name", "gecko_state", *extra)
        assert code == 0, f"gecko_state with arguments {extra} failed: {err}"
    code, _, err = await temporal(dev_server, "workflow", "query", *wid, "--name", "gecko_nope")
    assert code != 0 and "gecko_state" in err  # names the queries that exist

    state = await cli_state(dev_server, session)
    assert len(json.dumps(state)) < 64 * 1024, "rejected requests must be kept as short previews"
    rejected_jumps = [r for r in state["rejected"] if r["signal"] == "gecko_next"]
    assert state["rejected_jumps"] == rejected_jumps and not state["pending_jumps"], state
    reasons = " | ".join(r["reason"] for r in state["rejected"])
    for phrase in [
        "exactly one argument, a JSON object",
        "got 2 arguments",
        'no node named "Nope"',
        "unknown field(s) 'inptu'",
        "is not a WaitForInput node",
        'unknown signal "gecko_nxt" (did you mean "gecko_next"?',
        "raw bytes (send JSON)",
        "could not be read: encoding 'application/x-nobody-reads-this'",
    ]:
        assert phrase in reasons, f"no rejection says {phrase!r}: {reasons}"

    # The real answers: forged type tags that must arrive as the plain data that was sent.
    canary_tag = {"__gecko__": "tests.pipelines.canary:Boom", "data": {"x": 1}}
    next_tag = {"__gecko__": "gecko_temporal.spec:Next", "data": {"node": "Bad", "input": None}}
    code, out, err = await temporal(
        dev_server,
        "workflow",
        "update",
        "execute",
        *wid,
        "--name",
        "gecko_reply",
        "--input",
        json.dumps({"node": "Gate1", "value": canary_tag}),
    )
    assert code == 0, err
    for _ in range(400):
        if (await cli_state(dev_server, session))["waiting"].keys() == {"Gate2"}:
            break
        await asyncio.sleep(0.05)
    code, _, err = await temporal(
        dev_server,
        "workflow",
        "signal",
        *wid,
        "--name",
        "gecko_answer",
        "--input",
        json.dumps({"node": "Gate2", "value": next_tag}),
    )
    assert code == 0, err
    client = await connect(dev_server.address)
    handle = client.get_workflow_handle(session)
    result = await asyncio.wait_for(RunHandle(handle).result(), 60)
    assert result == {"first": {"got": canary_tag, "type": "dict"}, "second": next_tag, "topic": "durability"}

    history = await handle.fetch_history()
    kinds = {e.WhichOneof("attributes") for e in history.events}
    assert "workflow_task_failed_event_attributes" not in kinds
    assert not worker.canary.exists(), "data made the worker import a module"
    assert "Traceback" not in worker.output()
    final = await cli_state(dev_server, session)  # a closed run still answers
    assert final["status"] == "completed" and len(final["rejected"]) == sent


# -- values that are not JSON: NaN and Infinity are floats, tagged in strict JSON -------------------
async def test_a_node_writing_nan_into_state_keeps_it_and_the_cli_still_reads_the_run(dev_server, session_id):
    def score(x, context):
        context.state["ok"] = 1
        context.state["score"] = float("nan")
        return x

    wf = Workflow("NaNState")
    wf.add_node("Score", score, retries=3)
    wf.add_node("Read", lambda x, context: [context.state["score"], float("-inf")])
    wf.add_edge("Score", "Read")
    wf.set_entry_point("Score")
    handle = await wf.start(1, session_id=session_id)
    score, low = await handle.result()
    assert score != score and low == float("-inf")  # NaN (only NaN differs from itself) and -inf
    state = await cli_state(dev_server, session_id)  # the Go CLI parses it (strict JSON)
    assert state["state"] == {"ok": 1, "score": "nan"} and state["status"] == "completed"


async def test_cli_reads_non_finite_input_as_floats_and_prints_strict_json(dev_server, session_id, capsys):
    from gecko_temporal.ops.cli import main

    args = ["run", "tests.pipelines.replay:linear", "--session", session_id, "--quiet", "--input", "1e999"]
    code = await asyncio.to_thread(main, args)
    out = capsys.readouterr().out
    assert code == 0 and _strict_json(out.strip()) == "result=inf", out  # inf + 1, * 2, formatted


# -- failures that used to hide behind timeouts ---------------------------------------------------
class BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


@pytest.mark.parametrize("local", [False, True])
async def test_an_exception_whose_str_raises_is_reported_at_once(session_id, local):
    calls = []

    def explode(x):
        calls.append(x)
        raise BadStr()

    wf = Workflow(f"BadStr{'Local' if local else ''}")
    wf.add_node("Explode", explode, retries=2, local=local)
    wf.set_entry_point("Explode")
    handle = await wf.start(1, session_id=session_id, timeout=120)
    with pytest.raises(NodeError) as exc:
        await handle.result()
    assert exc.value.error_type == "BadStr" and "BadStr.__str__ raised RuntimeError" in exc.value.error_message
    assert len(calls) == 2  # both attempts ran and failed as themselves: nothing waited for a timeout
    history = await handle.temporal_handle.fetch_history()
    kinds = [e.WhichOneof("attributes") for e in history.events]
    assert not any("timed_out" in k for k in kinds), kinds


# -- noise --------------------------------------------------------------------------------------
TEAM_SCRIPT = """
import asyncio
from gecko_temporal import ExecutionStrategy, Team, Workflow

def member(name):
    def fail(x):
        raise ValueError(f"{name} cannot answer {x!r}")
    fail.__name__ = name
    return fail

def ok(x):
    return "fine"

wf = Workflow("NoisyTeam")
wf.add_node("Panel", Team([member("a"), member("b"), member("c"), ok], ExecutionStrategy.ALL, retries=2))
wf.set_entry_point("Panel")
results = asyncio.run(wf.execute("q", timeout=120))
print("statuses:", [r.status for r in results])
"""


def test_failing_team_members_print_one_line_each_not_tracebacks(tmp_path):
    import subprocess

    script = tmp_path / "noisy_team.py"
    script.write_text(TEAM_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "statuses: ['failed', 'failed', 'failed', 'succeeded']" in output
    assert "Traceback" not in output and "Completing activity as failed" not in output, output
    failure_lines = [line for line in output.splitlines() if "cannot answer" in line]
    assert len(failure_lines) == 6, output  # one line per failed attempt: 3 members x 2 attempts
    assert all('member "' in line and "attempt" in line for line in failure_lines), failure_lines


# -- workers and servers -----------------------------------------------------------------------
@pytest.fixture
def procs(tmp_path):
    p = Procs(tmp_path)
    yield p
    p.close()


def test_worker_stops_on_sigterm_while_the_server_does_not_answer(procs, tmp_path):
    server = DevServer()
    try:
        worker = procs.worker("tests.pipelines.hostile:wf", "--address", server.address, "--graceful-shutdown", "2")
        worker.wait_for("worker ready")
        server.process.send_signal(signal.SIGSTOP)  # unreachable: connections hang, nothing answers
        worker.popen.send_signal(signal.SIGTERM)
        # graceful shutdown (2 s) plus the engine's slack (3 s); it used to be alive after 90 s
        worker.popen.wait(timeout=30)
        assert "worker stopped" in worker.output()
    finally:
        server.process.send_signal(signal.SIGCONT)
        server.stop()


def test_worker_with_a_wrong_namespace_says_so_and_never_reports_ready(procs, dev_server):
    worker = procs.worker(
        "tests.pipelines.hostile:wf", "--address", dev_server.address, env={"TEMPORAL_NAMESPACE": "nosuchns"}
    )
    assert worker.popen.wait(timeout=60) == 1
    out = worker.output()
    assert 'namespace "nosuchns" does not exist' in out and "worker ready" not in out, out


async def test_a_config_profile_alone_points_runs_and_workers_at_the_users_server(procs, tmp_path):
    server = DevServer()
    try:
        config = tmp_path / "temporal.toml"
        config.write_text(f'[profile.lab]\naddress = "{server.address}"\nnamespace = "default"\n')
        env = {"TEMPORAL_CONFIG_FILE": str(config), "TEMPORAL_PROFILE": "lab"}
        worker = procs.worker("tests.pipelines.review:upper", env=env)
        worker.wait_for("worker ready")
        assert server.address in worker.output()
        session = f"profile-{uuid.uuid4().hex[:6]}"
        run = procs.command(
            "run", "tests.pipelines.review:upper", "--input", '"profiles"', "--session", session, env=env
        )
        assert run.popen.wait(timeout=60) == 0, run.output()
        assert '"PROFILES"' in run.output()
        client = await connect(server.address)  # the run is on the user's server, not an embedded one
        assert (await client.get_workflow_handle(session).describe()).status.name == "COMPLETED"
    finally:
        server.stop()


@pytest.mark.long
def test_dev_server_restarts_at_once_on_the_file_a_stopping_server_still_holds(tmp_path):
    db, port = str(tmp_path / "gecko.db"), _free_port()
    for _ in range(5):
        server = DevServer(port=port, db_filename=db)
        server.process.terminate()  # like a SIGTERMed worker's server: the port closes first
        wait_until(lambda: not port_open(port), 15, "port closed")
        server._log.close()
    server = DevServer(port=port, db_filename=db)
    server.stop()
    assert Path(f"{db}.log").exists()


def test_a_dev_server_that_cannot_start_shows_its_log(tmp_path):
    from gecko_temporal import ServerError

    not_a_db = tmp_path / "dir.db"
    not_a_db.mkdir()
    with pytest.raises(ServerError) as exc:
        DevServer(db_filename=str(not_a_db))
    assert "its log" in str(exc.value) and str(not_a_db) in str(exc.value)
