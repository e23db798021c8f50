"""Valid jumps under load (issue 28, row 11): a worker process busy with a flood of ``gecko_next``
signals to many waiting runs, then with every queued jump, slows down but fails no node and loses no
run. ``benchmarks/jump_flood_benchmark.py`` runs the same drill at any size and reports timings."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from temporalio.api.enums.v1 import EventType

from gecko_temporal.core.control import KEEP_JUMPS
from gecko_temporal.core.spec import RunParams
from gecko_temporal.protocol import ANSWER_UPDATE, NEXT_SIGNAL, STATE_QUERY
from gecko_temporal.temporal.client import connect
from tests.pipelines.jumps import wf
from tests.pipelines.procs import Procs

RUNS, JUMPS = 20, 120  # 2,400 signals, 2,000 node runs after the answers (a run keeps 100 jumps)


@pytest.mark.long
async def test_a_flood_of_valid_jumps_on_a_busy_worker_fails_no_node_and_loses_no_run(dev_server, tmp_path):
    queue = f"jumps-{uuid.uuid4().hex[:6]}"
    procs = Procs(tmp_path)
    try:
        worker = procs.worker("tests.pipelines.jumps:wf", "--address", dev_server.address, "--task-queue", queue)
        await asyncio.to_thread(worker.wait_for, "worker ready", 120)
        client = await connect(dev_server.address)
        prefix = f"jumpflood-{uuid.uuid4().hex[:6]}"
        spec = wf.compile()
        handles = [
            await client.start_workflow(
                "GeckoWorkflow", RunParams(spec=spec, input=json.dumps("go")), id=f"{prefix}-{i}", task_queue=queue
            )
            for i in range(RUNS)
        ]
        for h in handles:
            while "Gate" not in (await h.query(STATE_QUERY))["waiting"]:
                await asyncio.sleep(0.1)
        pending = [h for _ in range(JUMPS) for h in handles]

        async def sender() -> None:
            while pending:
                await pending.pop().signal(NEXT_SIGNAL, {"node": "hold", "input": None})

        await asyncio.gather(*(sender() for _ in range(20)))
        for h in handles:
            await h.execute_update(ANSWER_UPDATE, {"node": "Gate", "value": "go"})
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 600)  # a failure bound
        assert results == [KEEP_JUMPS] * RUNS  # hold ran once per jump each run kept
        for h in handles:
            state = await h.query(STATE_QUERY)
            assert len(state["rejected"]) > 0  # the jumps over the limit were listed, not lost silently
            history = await h.fetch_history()
            failed = [
                e
                for e in history.events
                if e.event_type
                in (
                    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
                    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
                    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
                )
            ]
            assert failed == [], f"{h.id}: {failed[:3]}"
            retried = [
                e.activity_task_started_event_attributes.attempt
                for e in history.events
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
                and e.activity_task_started_event_attributes.attempt > 1
            ]
            assert retried == [], f"{h.id}: a node was retried under load"
    finally:
        procs.close()
