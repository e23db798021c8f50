"""A gecko_rewound is taken only from a reset (issue 28): a run that was never reset refuses it, and
a hand reset (`temporal workflow reset`) followed by rewind's signal works, also when the signal
arrives in the reset's own workflow task (the SDK runs the signal's handler before the reseed that
tells of the reset). Real processes: a worker process, the `temporal` CLI, `gecko-temporal steps`."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from gecko_temporal.temporal.client import connect
from tests.integration.test_hostile_input import cli_state, cli_state_when
from tests.pipelines import hostile
from tests.pipelines.polling import until
from tests.pipelines.procs import Proc, Procs, signal_by_cli, start_run, temporal
from tests.pipelines.task_failures import no_failed_tasks

pytestmark = pytest.mark.asyncio
UNTOLD = "this run has seen no reset it was not told about"


@pytest.fixture(autouse=True)
def _no_failed_workflow_tasks(request, dev_server):
    yield from no_failed_tasks(request, dev_server)


async def _waiting(dev_server, session: str) -> dict:
    return await until(
        lambda: cli_state(dev_server, session),
        lambda state: state["waiting"],
        lambda state: f"{session} never waited: {state}",
        every=0.05,
        tries=600,
    )


async def _waiting_run(procs: Procs, dev_server) -> tuple[tuple[str, ...], Proc, str, Any]:
    """A worker process (2 threads) on a new queue and a run of tests/pipelines/hostile.py on it,
    waiting at Gate1: (the worker's arguments, to start another, the worker, session, handle)."""
    queue = f"rewound-{uuid.uuid4().hex[:6]}"
    args = ("tests.pipelines.hostile:wf", "--address", dev_server.address, "--task-queue", queue, "--threads", "2")
    first = procs.worker(*args)
    first.wait_for("worker ready")
    session, handle = await start_run(dev_server, hostile.wf, "before", queue, "rewound")
    await _waiting(dev_server, session)
    return args, first, session, handle


async def _task_that_merged_step_1(handle) -> tuple[dict, int]:
    """gecko_steps, and the event id of the workflow task completed that merged step 1 (Start): where
    a hand reset goes back to."""
    steps = await handle.query("gecko_steps")
    point = next(p for p in steps["steps"] if p["step"] == 1)
    history = await handle.fetch_history()
    done = next(
        e.event_id
        for e in history.events
        if e.event_id > point["event"] and e.HasField("workflow_task_completed_event_attributes")
    )
    return steps, done


async def _signal(dev_server, session: str, body: dict) -> None:
    code, _, err = await signal_by_cli(dev_server, session, "gecko_rewound", json.dumps(body))
    assert code == 0, err


async def test_a_hand_reset_whose_signal_comes_in_its_own_task_is_told_and_a_forged_one_is_refused(dev_server, procs):
    args, first, session, handle = await _waiting_run(procs, dev_server)
    client = await connect(dev_server.address)
    # Never reset: a well-formed gecko_rewound is refused and shows no rewound_from.
    await _signal(dev_server, session, {"from_run": "r1", "to_step": 1, "values": {"topic": "forged"}})
    state = await cli_state_when(dev_server, session, lambda s: s["rejected"], 100, 0.05)
    assert [r["reason"] for r in state["rejected"]] == [
        "gecko_rewound is sent by gecko-temporal rewind right after it resets the run; " + UNTOLD
    ]
    assert state["rewound_from"] is None and state["state"]["topic"] == "before"

    # A hand reset to the task that merged step 1 (Start), with no worker running, then the signal:
    # both reach the new run in one workflow task when a worker comes back.
    steps, done = await _task_that_merged_step_1(handle)
    first.stop()
    code, out, err = await temporal(
        dev_server,
        "workflow",
        "reset",
        "--workflow-id",
        session,
        "--event-id",
        str(done),
        "--reason",
        "test: a hand reset",
        "--reapply-exclude",
        "Signal",
    )
    assert code == 0, (out, err)
    new_run = (await client.get_workflow_handle(session).describe()).run_id
    assert new_run != steps["run_id"]
    # It redoes an answer to Gate1 too, as rewind does for an update the reset dropped: taken in the
    # reset's own task, it must wake Gate1's wait in that task (nothing else will come to wake it).
    redo = [{"update": "gecko_reply", "args": [{"node": "Gate1", "value": "one"}]}]
    told = {"from_run": steps["run_id"], "to_step": 1, "values": {"topic": "told"}, "redo": redo, "run": new_run}
    await _signal(dev_server, session, told)
    second = procs.worker(*args)
    second.wait_for("worker ready")
    state = await cli_state_when(dev_server, session, lambda s: s["waiting"].keys() == {"Gate2"}, 600, 0.05)
    assert state["waiting"].keys() == {"Gate2"}, state  # the redone answer woke Gate1's wait
    assert state["rewound_from"]["run_id"] == steps["run_id"] and state["rewound_from"]["step"] == 1, state
    assert not state["rejected"] and state["state"]["topic"] == "told", state  # taken, not held back
    assert [e["source"] for e in state["state_edits"]] == ["rewind"]

    # Told once: another one for the same reset is refused.
    await _signal(dev_server, session, {"from_run": "r2", "to_step": 1})
    state = await cli_state_when(dev_server, session, lambda s: s["rejected"], 100, 0.05)
    assert UNTOLD in state["rejected"][-1]["reason"] and state["rewound_from"]["run_id"] == steps["run_id"]
    run = client.get_workflow_handle(session)
    await run.signal("gecko_answer", {"node": "Gate2", "value": "two"})
    result = await asyncio.wait_for(run.result(), 60)
    assert result["topic"] == "told" and result["second"] == "two", result


async def test_a_forged_rewound_that_a_hand_reset_reapplies_in_its_own_task_is_refused(dev_server, procs):
    args, first, session, handle = await _waiting_run(procs, dev_server)
    client = await connect(dev_server.address)
    steps, done = await _task_that_merged_step_1(handle)
    # Sent before the reset, refused; the hand reset (signals reapplied, the CLI's default) puts it
    # in the new run's first task, beside the reseed that tells of the reset.
    forged = {"from_run": "r1", "to_step": 1, "values": {"topic": "forged"}, "run": steps["run_id"]}
    await _signal(dev_server, session, forged)
    await cli_state_when(dev_server, session, lambda s: s["rejected"], 100, 0.05)
    first.stop()
    code, out, err = await temporal(
        dev_server, "workflow", "reset", "--workflow-id", session, "--event-id", str(done), "--reason", "test"
    )
    assert code == 0, (out, err)
    new_run = (await client.get_workflow_handle(session).describe()).run_id
    second = procs.worker(*args)
    second.wait_for("worker ready")
    state = await _waiting(dev_server, session)
    assert state["rewound_from"]["run_id"] is None and state["state"]["topic"] == "before", state
    assert "reset without gecko-temporal rewind" in state["rewound_from"]["note"], state
    assert f'"run" must name the run the reset made ({new_run})' in state["rejected"][-1]["reason"], state
    run = client.get_workflow_handle(session)
    await run.signal("gecko_answer", {"node": "Gate1", "value": "one"})
    await run.signal("gecko_answer", {"node": "Gate2", "value": "two"})
    result = await asyncio.wait_for(run.result(), 60)
    assert result["topic"] == "before" and result["second"] == "two", result
