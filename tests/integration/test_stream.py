"""The run's event stream (RunHandle.stream, context.emit) on the real dev server.

Timing is never measured: that tokens arrive while their node runs is proven by causality (the
node cannot finish before the test, having read its first token, opens the gate it waits for).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.pipelines import stream as pipelines


async def _collect(handle, from_offset: int = 0) -> list:
    return [e async for e in handle.stream(from_offset=from_offset)]


async def test_a_sync_node_streams_tokens_that_arrive_before_it_finishes(dev_server, session_id, tmp_path):
    gate = tmp_path / "gate"
    handle = await pipelines.talker.start(str(gate), session_id=session_id)
    seen = []
    async for event in handle.stream():
        seen.append(event)
        if event.type == "custom" and event.data == "tok0":
            # The node blocks until this file exists: it is still running now.
            assert not any(e.type == "node_finished" for e in seen)
            gate.write_text("open")
    # The loop above ended by itself: the stream ends with the run.
    assert await handle.result() == "SAID"
    kinds = [(e.type, e.node, e.data if e.type == "custom" else e.status) for e in seen]
    assert kinds == [
        ("node_started", "Talk", None),
        ("custom", "Talk", "tok0"),
        ("custom", "Talk", "tok1"),
        ("custom", "Talk", {"done": True}),
        ("node_finished", "Talk", "completed"),
        ("node_started", "Shout", None),
        ("custom", "Shout", {"heard": "said"}),
        ("node_finished", "Shout", "completed"),
        ("run_finished", None, "completed"),
    ]
    assert [e.offset for e in seen] == list(range(len(seen)))
    finished = [e for e in seen if e.type == "node_finished"]
    assert all(e.duration is not None and e.duration >= 0 for e in finished)
    assert [e.step for e in finished] == [1, 2]
    assert (finished[-1].completed, finished[-1].total) == (2, 2)
    assert all(e.time for e in seen)
    assert seen[1].attempt == 1


async def test_resume_from_an_offset_and_read_a_finished_run(dev_server, session_id, tmp_path):
    gate = tmp_path / "gate"
    gate.write_text("open")
    handle = await pipelines.talker.start(str(gate), session_id=session_id)
    await handle.result()
    everything = await _collect(handle)  # after the end: read back from the closed run
    assert everything[-1].type == "run_finished" and len(everything) == 9
    rest = await _collect(handle, from_offset=everything[3].offset + 1)
    assert [(e.offset, e.type, e.data) for e in rest] == [(e.offset, e.type, e.data) for e in everything[4:]]


async def test_team_members_emit_with_their_member_name(dev_server, session_id):
    handle = await pipelines.team.start("x", session_id=session_id)
    events = await _collect(handle)
    custom = sorted((e.member, e.data) for e in events if e.type == "custom")
    assert custom == [("member_a", "a:member_a"), ("member_b", "b:member_b")]
    assert all(e.node == "Pair" for e in events if e.type == "custom")
    assert [r.result for r in await handle.result()] == ["a", "b"]


async def test_the_stream_follows_continue_as_new(dev_server, session_id):
    handle = await pipelines.looper.start(0, session_id=session_id)
    events = await _collect(handle)
    assert await handle.result() == {"turns": 7}
    turns = [e.data["turn"] for e in events if e.type == "custom"]
    assert turns == [1, 2, 3, 4, 5, 6, 7]  # every token once, in order, across three runs
    assert sorted({e.run for e in events if e.type != "custom"}) == [1, 2, 3]
    assert [e.offset for e in events] == list(range(len(events)))  # no gap, no repeat
    jumps = [e for e in events if e.type == "jump"]
    assert len(jumps) == 6 and all(e.data == {"to": "Turn"} for e in jumps)
    assert events[-1].type == "run_finished" and events[-1].status == "completed"
    assert events[-1].completed == 1 and events[-1].total == 1


async def test_a_failed_run_ends_its_stream_with_the_error(dev_server, session_id):
    handle = await pipelines.failing.start("x", session_id=session_id)
    events = await _collect(handle)
    assert [(e.type, e.status) for e in events] == [
        ("node_started", None),
        ("node_finished", "failed"),
        ("run_finished", "failed"),
    ]
    assert "ValueError: cannot handle 'x'" in events[1].error
    assert "cannot handle" in events[-1].error


async def test_a_cancelled_run_ends_its_stream_too(dev_server, session_id, tmp_path):
    handle = await pipelines.gate.start(str(tmp_path / "never"), session_id=session_id)
    reading = asyncio.ensure_future(_collect(handle))
    async for event in handle.stream():
        if event.type == "custom":
            break
    await handle.cancel()
    events = await asyncio.wait_for(reading, 60)
    assert events[-1].type == "run_finished" and events[-1].status == "cancelled"
    described = await handle.temporal_handle.describe()
    assert described.search_attributes["GeckoStatus"] == ["cancelled"]


async def test_a_jump_signal_shows_in_the_stream(dev_server, session_id, tmp_path):
    gate = tmp_path / "gate"
    handle = await pipelines.gate.start(str(gate), session_id=session_id)
    seen = []
    async for event in handle.stream():
        seen.append(event)
        if event.type == "custom":
            await handle.signal_jump("Review", "from outside")  # the gecko_next signal
            gate.write_text("open")
        if event.type == "waiting":
            await handle.answer("Review", "ok")
    assert await handle.result() == "ok"
    assert [(e.node, e.data) for e in seen if e.type == "jump"] == [(None, {"to": "Review"})]


async def test_emit_refuses_data_that_is_not_json_like(dev_server, session_id):
    from gecko_temporal import SerializationError, Workflow

    def bad(x, context):
        context.emit(object())

    wf = Workflow("StreamBadEmit").add_node("Bad", bad, retries=1).set_entry_point("Bad")
    handle = await wf.start(None, session_id=session_id)
    with pytest.raises(SerializationError, match=r"node \"Bad\" passed to context.emit contains a object"):
        await handle.result()


async def test_waiting_shows_in_the_stream_and_status(dev_server, session_id, tmp_path):
    gate = tmp_path / "gate"
    gate.write_text("open")
    handle = await pipelines.gate.start(str(gate), session_id=session_id)
    seen = []
    async for event in handle.stream():
        seen.append(event)
        if event.type == "waiting":
            assert event.node == "Review" and event.data == {"prompt": "Ship it?"}
            await handle.answer("Review", "yes")
    assert await handle.result() == "yes"
    assert [e.type for e in seen][-3:] == ["waiting", "node_finished", "run_finished"]
    assert json.dumps([e.data for e in seen])  # events are plain JSON


@pytest.mark.slow
async def test_a_reader_outlives_a_worker_crash(dev_server, session_id, tmp_path, monkeypatch):
    """SIGKILL the worker while its node streams; a new worker retries the node; the reader, which
    never stopped reading, sees the first attempt's token, the retry's, and the end of the run."""
    import uuid

    from tests.pipelines.procs import Procs

    queue = f"stream-crash-{uuid.uuid4().hex[:6]}"
    procs = Procs(tmp_path)
    try:
        first = procs.worker("tests.pipelines.stream:talker", "--address", dev_server.address, "--task-queue", queue)
        await asyncio.to_thread(first.wait_for, "worker ready")
        monkeypatch.setenv("TEMPORAL_ADDRESS", dev_server.address)
        monkeypatch.setenv("GECKO_TASK_QUEUE", queue)
        gate = tmp_path / "gate"
        handle = await pipelines.talker.start(str(gate), session_id=session_id)
        seen = []
        async for event in handle.stream():
            seen.append(event)
            if event.type == "custom" and event.data == "tok0" and event.attempt == 1:
                first.kill()  # mid-node: Talk waits for the gate
                procs.worker("tests.pipelines.stream:talker", "--address", dev_server.address, "--task-queue", queue)
            elif event.type == "custom" and event.data == "tok0":
                gate.write_text("open")  # the retry on the new worker may finish
        assert await handle.result() == "SAID"
        tokens = [(e.data, e.attempt) for e in seen if e.type == "custom" and e.node == "Talk"]
        assert tokens == [("tok0", 1), ("tok0", 2), ("tok1", 2), ({"done": True}, 2)]
        assert [e.type for e in seen].count("node_finished") == 2 and seen[-1].type == "run_finished"
        assert [e.offset for e in seen] == list(range(len(seen)))
    finally:
        procs.close()


async def test_malformed_stream_input_never_wedges_the_run(dev_server, session_id, tmp_path):
    """Anyone who may signal a run can publish on its stream: bad batches are rejected and listed,
    an unreadable payload reaches readers as an `unknown` event, bad polls are refused."""
    import base64
    import subprocess

    from temporalio.api.common.v1 import Payload

    from gecko_temporal.temporal.embedded import find_temporal_binary

    gate = tmp_path / "gate"
    handle = await pipelines.gate.start(str(gate), session_id=session_id)
    async for event in handle.stream():
        if event.type == "custom":
            break
    unreadable = base64.b64encode(
        Payload(metadata={"encoding": b"json/plain"}, data=b"{not json").SerializeToString()
    ).decode()
    publish = ["workflow", "signal", "--name", "__temporal_workflow_stream_publish", "--input"]
    commands = [
        (publish + ['"garbage"'], 0),
        (publish + ['{"items": [{"topic": "gecko", "data": "!!not base64"}], "publisher_id": "x", "sequence": 1}'], 0),
        (
            publish
            + [json.dumps({"items": [{"topic": "gecko", "data": unreadable}], "publisher_id": "y", "sequence": 1})],
            0,
        ),
        (["workflow", "update", "execute", "--name", "__temporal_workflow_stream_poll", "--input", '"x"'], 1),
    ]
    for args, code in commands:
        done = await asyncio.to_thread(
            subprocess.run,
            [find_temporal_binary(), *args, "--address", dev_server.address, "--workflow-id", session_id],
            capture_output=True,
            text=True,
        )
        assert done.returncode == code, (args, done.stderr)
    state = await handle.state()
    reasons = [r["reason"] for r in state["rejected"] if r["signal"] == "__temporal_workflow_stream_publish"]
    assert reasons == [
        "a stream publish takes one object {items, publisher_id, sequence}",
        "item data on topic 'gecko' is not base64 of a Payload",
        # Only the run writes its own events; from outside, only context.emit's "custom" ones.
        "item 0 on the run's own topic 'gecko' is not an event object; from outside only \"custom\" "
        "events (context.emit) may be published there",
    ]
    gate.write_text("open")
    seen = []
    async for event in handle.stream():
        seen.append(event)
        if event.type == "waiting":
            await handle.answer("Review", "fine")
    assert await handle.result() == "fine"
    assert not [e for e in seen if e.type == "unknown"]  # the unreadable item never entered the log
    assert seen[-1].type == "run_finished" and seen[-1].status == "completed"


async def test_an_outside_publisher_signalled_with_the_start_is_heard(dev_server, session_id, tmp_path):
    """A publish that arrives with the run's start (signal-with-start) reaches the stream: the SDK
    hands it to the stream's handler decoded as for a dynamic handler, which the run accepts."""
    from temporalio.contrib.workflow_streams import PublishEntry, PublishInput
    from temporalio.contrib.workflow_streams._types import _encode_payload

    from gecko_temporal.core.spec import RunParams
    from gecko_temporal.temporal.client import _prepare

    client, queue, key = await _prepare(pipelines.team)
    payload = client.data_converter.payload_converter.to_payloads([{"type": "custom", "data": "from outside"}])[0]
    await client.start_workflow(
        "GeckoWorkflow",
        RunParams(spec=pipelines.team.compile(key), input='"x"'),
        id=session_id,
        task_queue=queue,
        start_signal="__temporal_workflow_stream_publish",
        start_signal_args=[
            PublishInput(
                items=[PublishEntry(topic="gecko", data=_encode_payload(payload))], publisher_id="outside", sequence=1
            )
        ],
    )
    from gecko_temporal import get_handle

    handle = await get_handle(session_id)
    events = await _collect(handle)
    assert events[0].type == "custom" and events[0].data == "from outside"
    assert events[-1].type == "run_finished" and events[-1].status == "completed"
    assert (await handle.state())["rejected"] == []


async def test_local_nodes_emit_with_their_result(dev_server, session_id):
    """A local node runs inside a workflow task: a signal from it would make that task's completion
    fail and re-run the node forever. Its events travel with its result (no signal, no failed task)."""
    handle = await pipelines.local.start(1, session_id=session_id)
    events = await _collect(handle)
    assert await handle.result() == 3
    assert [(e.type, e.node, e.data) for e in events if e.type != "node_started"] == [
        ("custom", "L1", "local L1"),
        ("node_finished", "L1", None),
        ("custom", "L2", {"async": "L2"}),
        ("node_finished", "L2", None),
        ("run_finished", None, None),
    ]
    kinds = [e.WhichOneof("attributes") for e in (await handle.temporal_handle.fetch_history()).events]
    assert "workflow_task_failed_event_attributes" not in kinds
    assert "workflow_execution_signaled_event_attributes" not in kinds
