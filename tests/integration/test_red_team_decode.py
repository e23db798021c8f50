"""Nothing a client sends can wedge a run, part two: payloads that cannot be decoded.

Issue 28, second round. Temporal decodes every payload of a workflow activation (codec, then the
claim-check store) before any handler sees it, so a forged claim-check reference or an undecodable
encrypted/compressed payload in one signal or update used to fail the workflow task on every
attempt: the run was wedged and ``gecko_state`` stopped answering. Driven as the reports came in:
worker processes (``python worker.py ...``), the real ``temporal`` CLI, raw HTTP for the codec server.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
import zlib

import pytest
from temporalio.client import Client

from gecko_temporal.core.spec import RunParams
from gecko_temporal.temporal.payloads import data_converter
from tests.pipelines import hostile
from tests.pipelines.procs import Procs, temporal
from tests.pipelines.task_failures import no_failed_tasks

pytestmark = pytest.mark.asyncio

KEY = "k1:" + base64.b64encode(os.urandom(32)).decode()
RUN = uuid.uuid4().hex[:6]
REFERENCE = "json/external-storage-reference"


@pytest.fixture(autouse=True)
def _no_failed_workflow_tasks(request, dev_server):
    yield from no_failed_tasks(request, dev_server)


def forged_reference(claim: str, driver: str = "gecko.file") -> str:
    """A claim-check reference as the SDK writes it (legacy JSON form), pointing wherever we like."""
    return json.dumps({"driver_name": driver, "driver_claim": {"claim_data": {"sha256": claim}}})


class Worker:
    """A worker process on its own task queue, and a client configured like it."""

    def __init__(self, procs: Procs, address: str, name: str, env: dict[str, str]) -> None:
        self.queue = f"redteam-{name}-{RUN}"
        self.env = env
        self.address = address
        self.proc = procs.worker(
            "tests.pipelines.hostile:wf", "--address", address, "--task-queue", self.queue, "--threads", "4", env=env
        )

    async def client(self) -> Client:
        return await Client.connect(self.address, data_converter=data_converter(self.env))

    async def start(self) -> str:
        """A hostile run waiting at Gate1."""
        session = f"redteam-{uuid.uuid4().hex[:8]}"
        client = await self.client()
        await client.start_workflow(
            "GeckoWorkflow", RunParams(spec=hostile.wf.compile(), input='"decode"'), id=session, task_queue=self.queue
        )
        for _ in range(600):
            if (await self.state(session))["waiting"]:
                return session
            await asyncio.sleep(0.05)
        raise AssertionError("the run never reached Gate1")

    async def state(self, session: str, within: float = 20.0) -> dict:
        """gecko_state, bounded: a wedged run does not answer."""
        handle = (await self.client()).get_workflow_handle(session)
        try:
            return await asyncio.wait_for(handle.query("gecko_state"), within)
        except Exception as exc:  # a wedged run: the query times out or fails
            raise AssertionError(
                f"gecko_state did not answer ({type(exc).__name__}: {exc}):\n{self.log_tail()}"
            ) from exc

    def log_tail(self) -> str:
        return self.proc.output()[-3000:]


@pytest.fixture(scope="module")
def workers(dev_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("redteam")
    procs = Procs(tmp)
    store = tmp / "store"
    store.mkdir()
    made = {
        "plain": Worker(procs, dev_server.address, "plain", {"GECKO_PAYLOAD_STORE": "none"}),
        "store": Worker(procs, dev_server.address, "store", {"GECKO_PAYLOAD_STORE": f"file://{store}"}),
        "secret": Worker(
            procs,
            dev_server.address,
            "secret",
            {"GECKO_ENCRYPTION_KEY": KEY, "GECKO_PAYLOAD_STORE": f"file://{store}"},
        ),
        # encrypted without a store: Temporal's 2 MiB limit bounds every payload
        "sealed": Worker(
            procs, dev_server.address, "sealed", {"GECKO_ENCRYPTION_KEY": KEY, "GECKO_PAYLOAD_STORE": "none"}
        ),
    }
    try:
        for w in made.values():
            w.proc.wait_for("worker ready")
        yield made
    finally:
        procs.close()


async def _signal(dev_server, session: str, *extra: str) -> None:
    code, _, err = await temporal(
        dev_server, "workflow", "signal", "--workflow-id", session, "--name", "gecko_next", *extra
    )
    assert code == 0, err


async def _update_state(dev_server, session: str, *extra: str) -> tuple[int, str, str]:
    """gecko_update_state from the temporal CLI (``extra``: how the input is given): (exit code, stdout, stderr)."""
    return await temporal(
        dev_server, "workflow", "update", "execute", "--workflow-id", session, "--name", "gecko_update_state", *extra
    )


async def _assert_rejected_and_alive(worker: Worker, session: str, count: int, *phrases: str) -> dict:
    state = await worker.state(session)
    assert state["status"] == "waiting" and state["waiting"].keys() == {"Gate1"}, state
    assert len(state["rejected"]) == count, state["rejected"]
    reason = state["rejected"][-1]["reason"]
    for phrase in phrases:
        assert phrase in reason, reason
    return state


async def _finish(worker: Worker, session: str) -> None:
    """The run still takes its real answers and completes."""
    handle = (await worker.client()).get_workflow_handle(session)
    await handle.signal("gecko_answer", {"node": "Gate1", "value": "one"})
    for _ in range(600):
        if (await worker.state(session))["waiting"].keys() == {"Gate2"}:
            break
        await asyncio.sleep(0.05)
    await handle.signal("gecko_answer", {"node": "Gate2", "value": "two"})
    result = await asyncio.wait_for(handle.result(), 60)
    assert '"second": "two"' in json.dumps(result), result


# -- 1. forged claim-check references ---------------------------------------------------------------


async def test_forged_claim_check_references_are_rejected_not_wedging(dev_server, workers):
    cases = [
        ("plain", forged_reference("0" * 64), "no payload store"),
        ("store", forged_reference("../../../../etc/hostname"), "malformed claim"),
        ("store", forged_reference("0" * 64), "has no 000000000000"),
        ("store", forged_reference("0" * 64, driver="nobody.s3"), "nobody.s3"),
        ("store", '{"driver_name": 5}', "claim-check reference"),
    ]
    for name, reference, phrase in cases:
        worker = workers[name]
        session = await worker.start()
        await _signal(dev_server, session, "--input", reference, "--input-meta", f"encoding={REFERENCE}")
        state = await _assert_rejected_and_alive(worker, session, 1, REFERENCE)
        assert phrase in json.dumps(state["rejected"]), (phrase, state["rejected"])
        # The same reference in an update that is never accepted: refused to its caller, run alive.
        code, out, err = await _update_state(
            dev_server,
            session,
            "--input",
            reference,
            "--input-meta",
            f"encoding={REFERENCE}",
        )
        assert code != 0 and phrase in err, (out, err)
        await _assert_rejected_and_alive(worker, session, 1)
        await _finish(worker, session)


# -- 2. undecodable encrypted or compressed payloads ---------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_undecodable_payloads_in_an_encrypted_run_are_rejected_not_wedging(dev_server, workers):
    worker = workers["secret"]
    session = await worker.start()
    cases = [
        (("--input-meta", "encoding=binary/encrypted", "--input-meta", "encryption-key-id=k9"), b"x" * 40, '"k9"'),
        (("--input-meta", "encoding=binary/zlib"), b"not zlib at all", "compressed payload is corrupt"),
        (("--input-meta", "encoding=binary/encrypted", "--input-meta", "encryption-key-id=k1"), b"y" * 40, '"k1"'),
        (("--input-meta", "encoding=binary/encrypted", "--input-meta", "encryption-key-id=k1"), b"short", '"k1"'),
    ]
    for n, (meta, data, phrase) in enumerate(cases, 1):
        await _signal(dev_server, session, *meta, "--input-base64", "--input", _b64(data))
        state = await _assert_rejected_and_alive(worker, session, n)
        assert phrase in state["rejected"][-1]["reason"], state["rejected"][-1]
    code, out, err = await _update_state(
        dev_server,
        session,
        "--input-meta",
        "encoding=binary/encrypted",
        "--input-meta",
        "encryption-key-id=k9",
        "--input-base64",
        "--input",
        _b64(b"z" * 40),
    )
    assert code != 0 and '"k9"' in err, (out, err)
    await _assert_rejected_and_alive(worker, session, len(cases))
    await _finish(worker, session)


# -- 5. a zlib bomb --------------------------------------------------------------------------------------


def _memory_mb(pid: int) -> dict[str, float]:
    """The process's resident memory now (VmRSS) and at its peak (VmHWM), in MB."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {k: int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM")}


@pytest.mark.parametrize("name", ["sealed", "store", "secret"])
async def test_a_zlib_bomb_is_refused_not_inflated(dev_server, workers, name):
    """97 KB of zlib that inflates to 100 MB, sent inline: refused at Temporal's 2 MiB limit (and
    room for metadata) whether or not the worker has a payload store, whose own payloads alone may
    inflate further; the worker's memory does not grow by the bomb."""
    from temporalio.api.common.v1 import Payload

    worker = workers[name]
    session = await worker.start()
    inner = Payload(metadata={"encoding": b"json/plain"}, data=b'"' + b"a" * 100_000_000 + b'"')
    bomb = zlib.compress(inner.SerializeToString(), 9)
    assert len(bomb) < 200_000
    before = _memory_mb(worker.proc.pid)
    await _signal(dev_server, session, "--input-meta", "encoding=binary/zlib", "--input-base64", "--input", _b64(bomb))
    state = await _assert_rejected_and_alive(worker, session, 1)
    after = _memory_mb(worker.proc.pid)
    reason = state["rejected"][-1]["reason"]
    assert "sent inline (not through the payload store) inflates to more than 2,162,688 bytes" in reason, reason
    print(f"{name}: bomb of {len(bomb):,} bytes; worker RSS {before} -> {after} MB")
    assert after["VmHWM"] - before["VmHWM"] < 50, (before, after)  # inflating it would add 100 MB
    await _finish(worker, session)


# -- 6. a valid claim of another session's payload --------------------------------------------------------


async def test_a_reference_to_another_sessions_stored_payload_is_never_previewed(dev_server, workers):
    """The file store is shared and content-addressed: a valid digest of another session's input,
    signalled as a claim-check reference, resolves; its rejection shows no part of that input."""
    worker = workers["store"]
    store = worker.env["GECKO_PAYLOAD_STORE"][len("file://") :]
    before = {f for _, _, names in os.walk(store) for f in names}
    secret = "secret-of-another-session-" + "s" * 400_000  # over the store's 256 KiB threshold
    other = f"redteam-{uuid.uuid4().hex[:8]}"
    await (await worker.client()).start_workflow(
        "GeckoWorkflow",
        RunParams(spec=hostile.wf.compile(), input=json.dumps(secret)),
        id=other,
        task_queue=worker.queue,
    )
    for _ in range(200):
        digests = {f for _, _, names in os.walk(store) for f in names} - before
        if digests:
            break
        await asyncio.sleep(0.05)
    [digest] = digests
    session = await worker.start()
    await _signal(dev_server, session, "--input", forged_reference(digest), "--input-meta", f"encoding={REFERENCE}")
    state = await _assert_rejected_and_alive(worker, session, 1)
    shown = json.dumps(state)
    assert "secret-of-another-session" not in shown and "sss" not in shown, state["rejected"]
    assert state["rejected"][-1]["request"] == '"<a value from the payload store: not shown>"', state["rejected"]
    await _finish(worker, session)


# -- 2b. the run's own payloads still fail the task, naming the key id --------------------------------


@pytest.mark.long
@pytest.mark.fails_tasks("a worker without the run's key cannot read its history: the task fails naming the key id")
async def test_a_worker_with_the_codec_but_not_the_runs_key_fails_the_task_naming_it(dev_server, workers, tmp_path):
    """Undecodable payloads from outside are rejected; the run's own input under a key this worker
    lacks still fails the workflow task (never the run), and a worker with the key then goes on."""
    from tests.integration.test_encryption import _first_workflow_task_failure

    procs = Procs(tmp_path)
    other = "k2:" + base64.b64encode(os.urandom(32)).decode()
    try:
        keyless = Worker(
            procs, dev_server.address, "rotated", {"GECKO_ENCRYPTION_KEY": other, "GECKO_PAYLOAD_STORE": "none"}
        )
        keyless.proc.wait_for("worker ready")
        starter = Worker.__new__(Worker)  # a client with key k1, starting on the keyless worker's queue
        starter.queue, starter.address = keyless.queue, dev_server.address
        starter.env = {"GECKO_ENCRYPTION_KEY": KEY, "GECKO_PAYLOAD_STORE": "none"}
        session = f"redteam-{uuid.uuid4().hex[:8]}"
        client = await starter.client()
        handle = await client.start_workflow(
            "GeckoWorkflow",
            RunParams(spec=hostile.wf.compile(), input='"decode"'),
            id=session,
            task_queue=starter.queue,
        )
        failure = await _first_workflow_task_failure(handle)
        assert 'encrypted with key id "k1", which this process does not have (its key ids: "k2")' in failure, failure
        keyless.proc.stop()
        keyed = Worker(
            procs, dev_server.address, "rotated", {"GECKO_ENCRYPTION_KEY": KEY, "GECKO_PAYLOAD_STORE": "none"}
        )
        keyed.proc.wait_for("worker ready")
        for _ in range(600):
            if (await keyed.state(session, within=60))["waiting"]:
                break
            await asyncio.sleep(0.1)
        await _finish(keyed, session)
    finally:
        procs.close()


# -- 3. a corrupt store entry of the run's own history ------------------------------------------------


@pytest.mark.long
@pytest.mark.fails_tasks("a store file changed on disk fails the task naming it, until the file is restored")
async def test_a_corrupt_store_entry_says_which_session_key_and_file_and_recovers(dev_server, tmp_path):
    import subprocess
    import sys
    import time
    from pathlib import Path

    from tests.integration.test_encryption import _first_workflow_task_failure

    procs = Procs(tmp_path)
    store = tmp_path / "store"
    env = {"GECKO_PAYLOAD_STORE": f"file://{store}"}
    try:
        first = Worker(procs, dev_server.address, "corrupt", env)
        first.proc.wait_for("worker ready")
        session = f"redteam-{uuid.uuid4().hex[:8]}"
        big = json.dumps("w" * 400_000)  # a start input over the store's 256 KiB threshold
        handle = await (await first.client()).start_workflow(
            "GeckoWorkflow", RunParams(spec=hostile.wf.compile(), input=big), id=session, task_queue=first.queue
        )
        for _ in range(600):
            if (await first.state(session))["waiting"]:
                break
            await asyncio.sleep(0.05)
        written = [p for p in Path(store).rglob("*") if p.is_file() and b"w" * 1000 in p.read_bytes()]
        stored = min(written, key=lambda p: p.stat().st_mtime_ns)  # the start input, written first
        good = stored.read_bytes()
        first.proc.kill()  # a new worker must replay the history, start input included
        stored.write_bytes(good[:100] + bytes([good[100] ^ 1]) + good[101:])
        second = Worker(procs, dev_server.address, "corrupt", env)
        second.proc.wait_for("worker ready")
        await _signal(dev_server, session, "--input", '{"node": "Nope"}')  # a new workflow task
        failure = await _first_workflow_task_failure(handle, within=60)
        for part in (f"session {session}", str(stored), "changed on disk", stored.name[:12]):
            assert part in failure, (part, failure)

        cli = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "gecko_temporal", "answer", session, "Gate1", "--value", '"x"'],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "TEMPORAL_ADDRESS": dev_server.address, **env},
        )
        assert cli.returncode == 1 and "Traceback" not in cli.stderr, cli.stderr
        assert len(cli.stderr.strip().splitlines()) == 1, cli.stderr

        stored.write_bytes(good)  # restored: the run goes on by itself
        began = time.monotonic()
        for _ in range(1200):
            try:
                if (await second.state(session, within=10))["waiting"]:
                    break
            except AssertionError:
                await asyncio.sleep(0.5)
        print(f"recovered {time.monotonic() - began:.1f} s after the file was restored")
        await _finish(second, session)
    finally:
        procs.close()


# -- 6. the codec server: refuse first, read later; bounded threads; one bad payload is not the page's --


def _proc_status(pid: int, field: str) -> int:
    from pathlib import Path

    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def _raw(port: int, head: bytes, body: bytes = b"", wait: float = 10.0) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(head + body)
        reply = b""
        try:
            while b"\r\n\r\n" not in reply:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        except OSError:
            pass
        return reply


@pytest.mark.long
@pytest.mark.filterwarnings("ignore::pytest.PytestWarning")
def test_the_codec_server_refuses_before_reading_and_bounds_its_threads(tmp_path):
    import socket
    import time

    from gecko_temporal.ops import codec_server
    from gecko_temporal.temporal.embedded import free_port

    port = free_port()
    procs = Procs(tmp_path)
    server = procs.command("codec-server", "--port", str(port), "--token", "t", env={"GECKO_ENCRYPTION_KEY": KEY})
    try:
        server.wait_for("codec server:")
        pid = server.pid
        before = _proc_status(pid, "VmRSS")
        head = b"POST /decode HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
        # 150 MB, no token: 401 before the body is read (it used to be read whole first: +50 MB).
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(head % 150_000_000)
            sent = 0
            try:
                chunk = b"x" * 1_000_000
                while sent < 150_000_000:
                    sock.sendall(chunk)
                    sent += len(chunk)
            except OSError:
                pass  # the server answered and closed: the rest of the upload is refused
            reply = sock.recv(200)
        assert reply.startswith(b"HTTP/1.1 401") or sent < 150_000_000, reply
        assert _proc_status(pid, "VmRSS") - before < 20_000, "the unauthenticated body was read into memory"
        auth = b"POST /decode HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nContent-Length: %s\r\n\r\n"
        assert _raw(port, auth % b"-1").startswith(b"HTTP/1.1 400")
        assert _raw(port, auth % b"abc").startswith(b"HTTP/1.1 400")
        # Many connections that announce a body and never send it: threads stay bounded.
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2 * codec_server.MAX_CONNECTIONS)]
        for s in idle:
            s.sendall(auth % b"10")
        time.sleep(1.0)
        threads = _proc_status(pid, "Threads")
        assert threads <= codec_server.MAX_CONNECTIONS + 4, threads
        for s in idle:
            s.close()
        # A batch with one short ciphertext under a known key: 200, that payload as it came, the rest decoded.
        from temporalio.api.common.v1 import Payload, Payloads

        from gecko_temporal.temporal.payloads import GeckoCodec, parse_keys

        good = GeckoCodec(parse_keys(KEY)).encode_sync([Payload(metadata={"encoding": b"json/plain"}, data=b'"ok"')])[0]
        short = Payload(metadata={"encoding": b"binary/encrypted", "encryption-key-id": b"k1"}, data=b"tiny")
        from google.protobuf import json_format

        body = json_format.MessageToJson(Payloads(payloads=[short, good])).encode()
        for _ in range(100):
            reply = _raw(port, auth % str(len(body)).encode(), body)
            if reply.startswith(b"HTTP/1.1 200"):
                break
            time.sleep(0.2)  # slots freed as the idle connections close
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        assert "Traceback" not in server.output(), server.output()
    finally:
        procs.close()


# -- 7. NaN and Infinity: floats, tagged in strict JSON (numpy/pandas pipelines make NaN daily) -------


def _nan_stats(x, context):
    context.state["score"] = float("nan")
    context.state["bounds"] = [float("-inf"), float("inf")]
    return {"mean": float("nan"), "max": float("inf"), "input": x}


def _nan_read(answer, context):
    stats = context.history["Stats"]
    return {
        "stats": stats,
        "answer": answer,
        "score": context.state["score"],
        "bounds": context.state["bounds"],
        "types": sorted({type(v).__name__ for v in [stats["mean"], stats["max"], answer, context.state["score"]]}),
    }


def _is_nan(value) -> bool:
    return isinstance(value, float) and value != value


def _payload_texts(node):
    """The text of every json/plain payload in a history as `temporal workflow show --output json` prints it."""
    if isinstance(node, dict):
        encoding = node.get("metadata", {}).get("encoding") if isinstance(node.get("metadata"), dict) else None
        if encoding is not None and "data" in node and base64.b64decode(encoding) == b"json/plain":
            yield base64.b64decode(node["data"]).decode()
        for value in node.values():
            yield from _payload_texts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _payload_texts(value)


def _strict(text: str):
    def refuse(token: str):
        raise AssertionError(f"not strict JSON ({token}), which the Go CLI and the UI cannot read: {text[:300]}")

    return json.loads(text, parse_constant=refuse)


async def test_nan_and_infinity_round_trip_through_output_state_history_answers_and_result(dev_server):
    from gecko_temporal import WaitForInput, Workflow

    wf = Workflow("NaNRoundTrip")
    wf.add_node("Stats", _nan_stats)
    wf.add_node("Gate", WaitForInput("a number?"))
    wf.add_node("Read", _nan_read)
    wf.add_edge("Stats", "Gate").add_edge("Gate", "Read").set_entry_point("Stats")
    session = f"redteam-nan-{uuid.uuid4().hex[:8]}"
    handle = await wf.start(float("-inf"), session_id=session)
    for _ in range(600):
        state = await handle.state()
        if state["waiting"]:
            break
        await asyncio.sleep(0.05)
    assert state["state"] == {"score": "nan", "bounds": ["-inf", "inf"]}, state  # people read text
    # An outside client's 1e999 (the Go CLI sends it as written; Python reads it as inf): accepted as inf.
    code, _, err = await temporal(
        dev_server, "workflow", "signal", "--workflow-id", session, "--name", "gecko_answer",
        "--input", '{"node": "Gate", "value": 1e999}',
    )  # fmt: skip
    assert code == 0, err
    result = await asyncio.wait_for(handle.result(), 60)
    assert _is_nan(result["stats"]["mean"]) and result["stats"]["max"] == float("inf")
    assert result["stats"]["input"] == float("-inf") and result["answer"] == float("inf")
    assert _is_nan(result["score"]) and result["bounds"] == [float("-inf"), float("inf")]
    assert result["types"] == ["float"]
    assert (await handle.state())["rejected"] == []

    # The Go CLI (strict JSON) still reads the run: its history, and its gecko_state query.
    code, out, err = await temporal(dev_server, "workflow", "show", "--workflow-id", session, "--output", "json")
    assert code == 0, err
    payloads = list(_payload_texts(_strict(out)))  # the UI shows each json/plain payload parsed
    assert len(payloads) > 5 and any('"__gecko__":"float"' in text for text in payloads)
    for text in payloads:
        _strict(text)
    code, out, err = await temporal(
        dev_server, "workflow", "query", "--workflow-id", session, "--name", "gecko_state", "--output", "json"
    )
    assert code == 0, err
    queried = _strict(out)["queryResult"][0]
    assert queried["status"] == "completed" and queried["state"]["score"] == "nan", queried
    # A literal NaN is not JSON: the Go CLI itself refuses to send it (nothing reaches the run).
    code, _, err = await temporal(
        dev_server, "workflow", "signal", "--workflow-id", session, "--name", "gecko_answer",
        "--input", '{"node": "Gate", "value": NaN}',
    )  # fmt: skip
    assert code != 0, "the temporal CLI sent a literal NaN"


async def test_a_rejected_signal_is_logged_without_its_content(session_id, caplog):
    """A rejected request is listed, previewed, in gecko_state only: the worker's log line names the
    signal and the reason, never the request (with encryption on it would be its plaintext)."""
    import logging

    from gecko_temporal import WaitForInput, Workflow

    caplog.set_level(logging.WARNING)
    wf = Workflow("RejectLog").add_node("Review", WaitForInput("ok?")).set_entry_point("Review")
    handle = await wf.start(session_id=session_id)
    secret = "sk-live-7f3a9c-do-not-log"
    await handle.temporal_handle.signal("gecko_next", {"node": "Nowhere", "input": secret})
    for _ in range(200):
        state = await handle.state()
        if state["rejected_jumps"]:
            break
        await asyncio.sleep(0.05)
    assert secret in json.dumps(state["rejected_jumps"])  # listed, previewed, where people look
    lines = [r.getMessage() for r in caplog.records if "rejected gecko_next" in r.getMessage()]
    assert lines and all(secret not in line for line in lines), lines
    await handle.answer("Review", True)
    assert await handle.result() is True
