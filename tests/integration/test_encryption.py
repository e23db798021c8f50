"""Encryption at rest on a real dev server: nothing secret in history, runs complete, and a worker
without the key fails clearly (naming the key id) instead of running."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from gecko_temporal import GeckoWorker, Workflow, connect
from gecko_temporal.temporal.client import find_temporal_binary
from gecko_temporal.temporal.payloads import data_converter

SECRET = "sk-live-" + uuid.uuid4().hex  # would be findable anywhere it leaked


def login(data: dict, context) -> str:
    context.state["api_key"] = data["api_key"]
    return "logged in"


def call_api(_, context) -> dict:
    return {"used": context.state["api_key"][-4:], "echo": context.state["api_key"]}


def pipeline() -> Workflow:
    return (
        Workflow("Secrets")
        .add_node("login", login)
        .add_node("call", call_api)
        .add_edge("login", "call")
        .set_entry_point("login")
    )


@pytest.fixture
def encrypted(dev_server, monkeypatch):
    """The process configured as a cluster client with encryption on (key id "k1")."""
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_server.address)
    monkeypatch.setenv("GECKO_TASK_QUEUE", f"secret-{uuid.uuid4().hex[:6]}")
    monkeypatch.setenv("GECKO_ENCRYPTION_KEY", "k1:" + base64.b64encode(os.urandom(32)).decode())
    return os.environ["GECKO_TASK_QUEUE"]


def _leaks(blob: bytes) -> bool:
    return SECRET.encode() in blob or SECRET[-12:].encode() in blob


def _show(dev_server, workflow_id: str, *extra: str, check: bool = False) -> subprocess.CompletedProcess:
    """``temporal workflow show --output json`` for ``workflow_id``, as a user runs it (``extra`` options after)."""
    return subprocess.run(
        [
            find_temporal_binary(),
            "workflow",
            "show",
            "--workflow-id",
            workflow_id,
            "--address",
            dev_server.address,
            "--output",
            "json",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=check,
    )


async def test_with_encryption_no_secret_reaches_history(encrypted, dev_server):
    wf = pipeline()
    worker = GeckoWorker(await connect(), task_queue=encrypted)
    worker.serve(wf)
    await worker.start()
    try:
        handle = await wf.start({"api_key": SECRET})
        assert await handle.result() == {"used": SECRET[-4:], "echo": SECRET}
        assert (await handle.state())["state"]["api_key"] == SECRET  # the query answer decrypts too
        history = await handle.temporal_handle.fetch_history()  # raw events, as stored
        assert not any(_leaks(event.SerializeToString()) for event in history.events)
        shown = _show(dev_server, handle.temporal_handle.id, check=True).stdout
        assert handle.temporal_handle.id and len(json.loads(shown)["events"]) > 5 and not _leaks(shown.encode())
        decoded = b"".join(base64.b64decode(d) for d in _values(json.loads(shown), "data"))
        assert not _leaks(decoded)  # not in any payload's data either, base64 or not
    finally:
        await worker.shutdown()


async def test_a_worker_without_the_key_fails_clearly(encrypted, dev_server):
    wf = pipeline()
    keyless_client = await Client.connect(dev_server.address, data_converter=data_converter({}))  # no key
    keyless = GeckoWorker(keyless_client, task_queue=encrypted)
    keyless.serve(wf)
    await keyless.start()
    try:
        handle = await wf.start({"api_key": SECRET})
        failure = await _first_workflow_task_failure(handle.temporal_handle)
        assert 'encrypted with key id "k1", which this process does not have' in failure
        assert "GECKO_ENCRYPTION_KEY" in failure
        await handle.temporal_handle.terminate("test over")
    finally:
        await keyless.shutdown()


async def _first_workflow_task_failure(handle, within: float = 15.0) -> str:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                failure = event.workflow_task_failed_event_attributes.failure
                messages = []
                while failure.message:  # "Failed decoding arguments: Payload ... could not be converted: <ours>"
                    messages.append(failure.message)
                    failure = failure.cause
                return ": ".join(messages)
            assert event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, "a missing key failed the run"
        await asyncio.sleep(0.3)
    events = [(e.event_type, str(e)[:300]) async for e in handle.fetch_history_events()]
    raise AssertionError(f"no workflow task failed: {events}")


def _payload_bytes(shown: str) -> bytes:
    out = b""
    for data in _values(json.loads(shown), "data"):
        try:
            out += base64.b64decode(data, validate=True) + b"\n"
        except ValueError:
            out += data.encode() + b"\n"
    return out


def _values(tree, key):
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == key and isinstance(v, str):
                yield v
            else:
                yield from _values(v, key)
    elif isinstance(tree, list):
        for v in tree:
            yield from _values(v, key)


async def test_codec_server_lets_the_temporal_cli_read_an_encrypted_run(encrypted, dev_server):
    from gecko_temporal.ops.codec_server import CodecServer
    from gecko_temporal.temporal.payloads import GeckoCodec

    wf = pipeline()
    worker = GeckoWorker(await connect(), task_queue=encrypted)
    worker.serve(wf)
    await worker.start()
    server = CodecServer(GeckoCodec.from_env(), token="let-me-in").start()
    try:
        handle = await wf.start({"api_key": SECRET})
        await handle.result()

        def show(*extra: str) -> subprocess.CompletedProcess:
            return _show(dev_server, handle.temporal_handle.id, *extra)

        readable = await asyncio.to_thread(show, "--codec-endpoint", server.url, "--codec-auth", "Bearer let-me-in")
        assert readable.returncode == 0, readable.stderr
        # Decoded by the codec server: the run's input and state read plainly (JSON output keeps
        # payload data base64, as the history API does).
        assert SECRET.encode() in _payload_bytes(readable.stdout), readable.stdout[:3000]
        # A wrong token is refused with 401 (test_codec_server_speaks_the_ui_protocol); the CLI then
        # retries until its deadline (about 10 s) and says "context deadline exceeded".
    finally:
        server.stop()
        await worker.shutdown()


def test_codec_server_speaks_the_ui_protocol():
    import urllib.request

    from gecko_temporal.ops.codec_server import CodecServer
    from gecko_temporal.temporal.payloads import GeckoCodec, parse_keys

    codec = GeckoCodec(parse_keys("k1:" + base64.b64encode(os.urandom(32)).decode()))
    server = CodecServer(codec, origins=["http://localhost:8233"], token="t").start()
    plain = {
        "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
        "data": base64.b64encode(b'{"api_key":"x"}').decode(),
    }

    def call(path: str, body: dict, token: str = "t", method: str = "POST"):
        request = urllib.request.Request(
            server.url + path,
            data=json.dumps(body).encode(),
            method=method,
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {token}",
                "Origin": "http://localhost:8233",
                "X-Namespace": "default",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                return reply.status, dict(reply.headers), json.loads(reply.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), json.loads(err.read() or b"null")

    try:
        status, headers, encoded = call("/encode", {"payloads": [plain]})
        assert status == 200 and headers["Access-Control-Allow-Origin"] == "http://localhost:8233"
        assert base64.b64decode(encoded["payloads"][0]["metadata"]["encoding"]) == b"binary/encrypted"
        status, _, decoded = call("/default/decode", encoded)  # namespace-prefixed paths work too
        assert status == 200 and decoded == {"payloads": [plain]}
        assert call("/decode", encoded, token="wrong")[0] == 401
        assert call("/decode", {"nope": 1})[0] == 400
        status, headers, _ = call("/decode", {}, method="OPTIONS")  # the browser's preflight
        assert status == 200 and "Authorization" in headers["Access-Control-Allow-Headers"]
    finally:
        server.stop()


def test_codec_server_shows_node_values_as_plain_json():
    """The UI shows a node's output as JSON, not as JSON text escaped inside JSON."""
    from temporalio.api.common.v1 import Payload

    from gecko_temporal.ops.codec_server import readable

    raw = json.dumps(
        {
            "value": '{"folder":"gecko_temporal","n":[1,2]}',
            "jump": {"node": "B", "input": '"go"'},
            "writes": {"report": '"# Report"'},
            "deletes": [],
        }
    ).encode()
    shown = readable(Payload(metadata={"encoding": b"json/plain"}, data=raw))
    assert json.loads(shown.data) == {
        "value": {"folder": "gecko_temporal", "n": [1, 2]},
        "jump": {"node": "B", "input": "go"},
        "writes": {"report": "# Report"},
        "deletes": [],
    }
    run_input = json.dumps(
        {"spec": {"name": "X", "nodes": []}, "input": '{"__gecko__":"datetime","data":"2026-01-01"}'}
    )
    assert (
        json.loads(readable(Payload(metadata={"encoding": b"json/plain"}, data=run_input.encode())).data)["input"]
        == "2026-01-01"
    )
    other = Payload(metadata={"encoding": b"json/plain"}, data=b'"just a string"')
    assert readable(other) is other
