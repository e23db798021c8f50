"""Finding and watching runs from outside: the Temporal UI's metadata, search attributes through the
real `temporal` CLI, and `gecko-temporal watch` / `list` as processes of their own."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import uuid

import pytest

from gecko_temporal import NodeError
from gecko_temporal.temporal.embedded import find_temporal_binary, free_port
from tests.pipelines import stream as pipelines
from tests.pipelines.procs import Procs


def temporal_cli(address: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [find_temporal_binary(), *args, "--address", address], capture_output=True, text=True, timeout=60
    )


async def listed(address: str, query: str) -> list[dict]:
    done = await asyncio.to_thread(temporal_cli, address, "workflow", "list", "--query", query, "-o", "json")
    assert done.returncode == 0, done.stderr
    text = done.stdout.strip()
    return json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines() if line]


async def eventually(check, what: str, tries: int = 100):
    """Visibility is eventually consistent: ask again until ``check`` holds (bounded by tries)."""
    last = None
    for _ in range(tries):
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: last saw {last!r}")


async def test_a_run_is_found_by_pipeline_and_status_with_the_temporal_cli(dev_server, session_id, tmp_path):
    gate = tmp_path / "gate"
    handle = await pipelines.gate.start(str(gate), session_id=session_id)
    pipeline = 'GeckoPipeline="StreamGate"'

    async def found(status: str):
        rows = await listed(dev_server.address, f'{pipeline} AND GeckoStatus="{status}"')
        return [r for r in rows if r["execution"]["workflowId"] == session_id]

    await eventually(lambda: found("running"), "running run listed")
    gate.write_text("open")
    await eventually(lambda: found("waiting"), "waiting run listed")
    await handle.answer("Review", "yes")
    assert await handle.result() == "yes"
    await eventually(lambda: found("completed"), "completed run listed")
    other = await listed(dev_server.address, 'GeckoPipeline="NoSuchPipeline"')
    assert all(r["execution"]["workflowId"] != session_id for r in other)


async def test_a_subgraphs_child_run_is_found_by_its_own_pipeline(dev_server, session_id):
    from gecko_temporal import Workflow

    child = Workflow("ObservedChild").add_node("Twice", lambda x: x * 2).set_entry_point("Twice")
    parent = Workflow("ObservedParent").add_node("Sub", child).set_entry_point("Sub")
    assert await parent.execute(21, session_id=session_id) == 42

    async def found():
        rows = await listed(dev_server.address, 'GeckoPipeline="ObservedChild" AND GeckoStatus="completed"')
        return [r for r in rows if r["execution"]["workflowId"] == f"{session_id}.Sub.1"]

    await eventually(found, "the child run listed under its own pipeline, completed")


async def test_the_ui_metadata_of_a_run(dev_server, session_id, tmp_path):
    """What the Temporal UI reads: summary, details, current details, and node activities named by node."""
    from temporalio.api.sdk.v1 import WorkflowMetadata

    gate = tmp_path / "gate"
    handle = await pipelines.gate.start(str(gate), session_id=session_id)
    th = handle.temporal_handle
    async for event in handle.stream():
        if event.type == "custom":
            break
    metadata = await th.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert "Running: Gate (step 1)" in metadata.current_details
    assert "0 of 2 nodes completed" in metadata.current_details
    gate.write_text("open")
    async for event in handle.stream():
        if event.type == "waiting":
            break
    metadata = await th.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert "Waiting for Review: Ship it?" in metadata.current_details
    await handle.answer("Review", "ok")
    await handle.result()

    described = await asyncio.to_thread(
        temporal_cli, dev_server.address, "workflow", "describe", "--workflow-id", session_id, "-o", "json"
    )
    config = json.loads(described.stdout)["executionConfig"]["userMetadata"]
    assert "StreamGate: 2 nodes, input " in json.dumps(config["summary"]) or "StreamGate: 2 nodes" in str(config)
    history = await th.fetch_history()
    scheduled = [
        (e.activity_task_scheduled_event_attributes, e.user_metadata)
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    # the timeline shows the node's activity type and id (run 1, step 1); no summary repeats them
    assert [(a.activity_type.name, a.activity_id, m.HasField("summary")) for a, m in scheduled] == [
        ("StreamGate.Gate", "1.1", False)
    ]
    description = await th.describe()
    assert await description.static_summary() == f"StreamGate: 2 nodes, input {json.dumps(str(gate))[1:-1]}"
    details = await description.static_details()
    assert "**Nodes** (2): Gate, Review" in details and "**Pipeline** StreamGate" in details


async def test_watch_and_list_as_processes(dev_server, session_id, tmp_path):
    gate = tmp_path / "gate"
    handle = await pipelines.gate.start(str(gate), session_id=session_id)
    procs = Procs(tmp_path)
    try:
        watch = procs.command("watch", session_id, "--address", dev_server.address)
        await asyncio.to_thread(watch.wait_for, "Gate: waiting for the gate")  # a custom event, live
        assert "finished Gate" not in watch.output()
        gate.write_text("open")
        await asyncio.to_thread(watch.wait_for, "waiting at Review: Ship it?")
        listing = procs.command(
            "list", "--pipeline", "StreamGate", "--status", "waiting", "--address", dev_server.address
        )
        assert await asyncio.to_thread(listing.popen.wait, 60) == 0
        line = next(ln for ln in listing.output().splitlines() if ln.startswith(session_id))
        assert "StreamGate" in line and "waiting" in line and "running" in line  # temporal status: running
        await handle.answer("Review", "yes")
        assert await asyncio.to_thread(watch.popen.wait, 60) == 0  # ends by itself with the run
        out = watch.output()
        assert "[1/2] finished Gate" in out and "run completed (2/2 nodes completed)" in out
        none = procs.command("list", "--pipeline", "NoSuchPipeline", "--address", dev_server.address)
        assert await asyncio.to_thread(none.popen.wait, 60) == 0 and "no sessions found" in none.output()
    finally:
        procs.close()


async def test_watch_of_a_failed_run_exits_1(dev_server, session_id, tmp_path):
    handle = await pipelines.failing.start("x", session_id=session_id)
    with pytest.raises(NodeError):
        await handle.result()
    procs = Procs(tmp_path)
    try:
        watch = procs.command("watch", session_id, "--address", dev_server.address, "--json")
        assert await asyncio.to_thread(watch.popen.wait, 60) == 1
        lines = [json.loads(ln) for ln in watch.output().splitlines() if ln.startswith("{")]
        assert [ln["type"] for ln in lines] == ["node_started", "node_finished", "run_finished"]
        assert lines[-1]["status"] == "failed"
        missing = procs.command("watch", "no-such-session", "--address", dev_server.address)
        assert await asyncio.to_thread(missing.popen.wait, 60) == 1
        assert 'no session "no-such-session"' in missing.output()
    finally:
        procs.close()


async def test_a_server_without_the_attributes_runs_with_one_warning(tmp_path, caplog, monkeypatch):
    """A plain `temporal server start-dev`: runs work and warn once; then the worker registers them."""
    from gecko_temporal import Workflow
    from gecko_temporal.temporal.client import connect
    from gecko_temporal.temporal.visibility import ensure_search_attributes
    from gecko_temporal.temporal.worker import GeckoWorker

    port = free_port()
    server = subprocess.Popen(
        [
            find_temporal_binary(),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    queue = f"plain-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{port}")
    monkeypatch.setenv("GECKO_TASK_QUEUE", queue)
    monkeypatch.setenv("GECKO_PAYLOAD_STORE", "none")
    worker = None
    try:
        client = None
        for _ in range(300):
            try:
                client = await connect()
                break
            except Exception:
                await asyncio.sleep(0.1)
        assert client is not None
        wf = Workflow("PlainServer").add_node("a", lambda x: x + 1).set_entry_point("a")
        worker = GeckoWorker(client, queue)
        worker.serve(wf)
        await worker.start()
        with caplog.at_level(logging.WARNING, logger="gecko_temporal"):
            assert await (await wf.start(1)).result() == 2
            assert await (await wf.start(2)).result() == 3
        warnings = [r.getMessage() for r in caplog.records if "search attributes" in r.getMessage()]
        assert len(warnings) == 1 and "temporal operator search-attribute create" in warnings[0]

        lines: list[str] = []

        class Out:
            def write(self, text: str) -> None:
                lines.append(text)

            def flush(self) -> None:
                pass

        assert await ensure_search_attributes(client, Out()) is True
        assert "registered search attributes GeckoPipeline, GeckoStatus" in "".join(lines)
        session = f"plain-{uuid.uuid4().hex[:6]}"

        async def start_with_attributes():
            handle = await wf.start(3, session_id=f"{session}-{uuid.uuid4().hex[:4]}")
            assert await handle.result() == 4
            attrs = (await handle.temporal_handle.describe()).search_attributes
            return attrs.get("GeckoPipeline") == ["PlainServer"]

        await eventually(start_with_attributes, "a run with GeckoPipeline after registering", tries=30)
    finally:
        if worker is not None:
            await worker.shutdown()
        server.terminate()
        server.wait(15)


async def test_run_shows_progress_and_the_ui_url(tmp_path):
    """`gecko-temporal run` on the embedded default with GECKO_UI=1: progress on stderr while it waits,
    the run's Temporal UI address, and the result as JSON on stdout."""
    procs = Procs(tmp_path)
    try:
        run = procs.command(
            "run", "tests.pipelines.stream:team", "--input", '"x"', "--session", "ui-run-1", env={"GECKO_UI": "1"}
        )
        assert await asyncio.to_thread(run.popen.wait, 120) == 0, run.output()
        out = run.output()
        assert "Temporal UI for ui-run-1: http://127.0.0.1:" in out and "/namespaces/default/workflows/ui-run-1" in out
        assert "[0/1] started Pair (step 1)" in out
        assert "  Pair/member_a: a:member_a" in out and "  Pair/member_b: b:member_b" in out
        assert "run completed (1/1 nodes completed)" in out
        # progress, then the result as strict JSON (a Team's MemberResults as their data)
        assert out.index("run completed") < out.index('"member": "member_a"')
    finally:
        procs.close()
