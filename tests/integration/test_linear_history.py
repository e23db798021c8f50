"""Issue 22: a run's history grows with what the run makes, not with steps x state. Counted in
bytes of real Temporal histories (every run of the continue-as-new chain), never timed.

Before references (core/refs.py) a 16-turn loop wrote about 4x the bytes of an 8-turn one and
tens of times its conversation: every node input shipped the whole state, every output wrote the
whole list back, a Next value held its input twice."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections import Counter

import pytest

from tests.pipelines import long_loop
from tests.pipelines.procs import Proc, Procs

pytestmark = pytest.mark.asyncio


async def history_bytes(handle) -> int:
    """Bytes of every event of every run of the session (following continue-as-new)."""
    th = handle.temporal_handle
    client, run_id, total = th._client, th.first_execution_run_id, 0
    while run_id:
        history = await client.get_workflow_handle(th.id, run_id=run_id).fetch_history()
        total += sum(e.ByteSize() for e in history.events)
        last = history.events[-1]
        cont = last.workflow_execution_continued_as_new_event_attributes
        run_id = (
            cont.new_execution_run_id if last.HasField("workflow_execution_continued_as_new_event_attributes") else ""
        )
    return total


def conversation_bytes(turns: int) -> int:
    return len(json.dumps(long_loop.conversation(turns), separators=(",", ":")))


async def _loop_bytes(wf, arg_of, turns: int, session: str) -> tuple[int, object]:
    handle = await wf.start(arg_of(turns), session_id=f"{session}-{turns}")
    result = await handle.result()
    payloads = (await handle.state())["payloads"]
    assert payloads["references"] is True and payloads["carried"] == 0  # one run: nothing carried over
    return await history_bytes(handle), result


async def test_state_loop_history_grows_linearly_with_the_conversation(session_id):
    small, big = [await _loop_bytes(long_loop.state_loop, lambda t: t, t, session_id) for t in (8, 16)]
    assert small[1] == 15 and big[1] == 31  # messages in the conversation: the loop ran to its end
    assert big[0] <= 2.3 * small[0], (small[0], big[0])  # doubling the turns about doubles the bytes
    assert big[0] <= 2.5 * conversation_bytes(16), (big[0], conversation_bytes(16))


async def test_input_output_loop_history_grows_linearly_and_holds_each_message_once(session_id):
    small, big = [await _loop_bytes(long_loop.io_loop, lambda t: {"turns": t}, t, session_id) for t in (8, 16)]
    assert big[1] == long_loop.conversation(16)  # the exact conversation, rebuilt from deltas
    assert big[0] <= 2.3 * small[0], (small[0], big[0])
    # the run's result is the conversation itself: history records it once more, as it must
    assert big[0] <= 3.5 * conversation_bytes(16), (big[0], conversation_bytes(16))


async def test_context_history_chain_ships_each_output_once(session_id):
    sizes = []
    for wf in (long_loop.chain8, long_loop.chain16):
        handle = await wf.start(None, session_id=f"{session_id}-{wf.name}")
        assert (await handle.result()).startswith(f"s{len(wf.compile().nodes) - 1:02d}")
        sizes.append(await history_bytes(handle))
    made16 = 16 * 20_003
    assert sizes[1] <= 2.3 * sizes[0], sizes  # was x3.5: node i received i earlier outputs
    assert sizes[1] <= 1.5 * made16, (sizes[1], made16)


async def test_nodes_in_a_process_without_the_run_resolve_references_by_asking_it(dev_server, tmp_path, monkeypatch):
    """The run's workflow lives in this process, every node in another (an activity-only worker):
    no node finds the run's value table beside it, so each reads its references through the
    gecko_values query (or its own cache of what it made), and the conversation still comes out exact."""
    from datetime import timedelta

    from temporalio.worker import Worker
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    from gecko_temporal.core.errors import GeckoError
    from gecko_temporal.temporal.client import connect
    from gecko_temporal.temporal.workflow import GeckoWorkflow

    log = tmp_path / "nodes.log"
    env = {"GECKO_LOOP_LOG": str(log)}
    queue = f"linear-{uuid.uuid4().hex[:6]}"
    procs = Procs(tmp_path)
    client = await connect(dev_server.address)
    workflows = Worker(
        client,
        task_queue=queue,
        workflows=[GeckoWorkflow],
        workflow_failure_exception_types=[GeckoError],
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=2),
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules("gecko_temporal")
        ),
    )
    try:
        args = ["tests.pipelines.long_loop:io_loop", dev_server.address, queue]
        nodes = Proc([sys.executable, "-m", "tests.pipelines.node_worker", *args], tmp_path / "nodes.out", env)
        procs.started.append(nodes)
        nodes.wait_for("activity worker ready", 120)
        monkeypatch.setenv("TEMPORAL_ADDRESS", dev_server.address)
        monkeypatch.setenv("GECKO_TASK_QUEUE", queue)
        async with workflows:
            # the node worker never saw the system message: its first node must ask the run for it
            system = {"role": "system", "content": "be brief " * 600}
            arg = {"turns": 10, "messages": [system]}
            handle = await long_loop.io_loop.start(arg, session_id=f"linear-split-{uuid.uuid4().hex[:8]}")
            assert await asyncio.wait_for(handle.result(), 120) == long_loop.io_loop_result(arg)
    finally:
        procs.close()
    ran = Counter(pid for _, pid in (line.split() for line in log.read_text().splitlines()))
    assert ran == Counter({str(nodes.pid): 19})  # every node ran in the other process
