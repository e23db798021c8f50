"""The red-team files' common check (issue 28: "no row leaves a failed workflow task"): after each
test, every workflow run the test started on the dev server is read, and a workflow task that
failed fails the test, naming the run, the cause and the message.

Two causes are Temporal's own bookkeeping, not a run wedged: a reset ends the task it resets
(``RESET_WORKFLOW``), and a task whose completion raced a new signal is redone with it
(``UNHANDLED_COMMAND``). A test whose point is a failing task (a worker that lacks the run's key,
a store file changed on disk) says so with ``@pytest.mark.fails_tasks("why")``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio.api.enums.v1 import WorkflowTaskFailedCause
from temporalio.client import Client

BOOKKEEPING = {
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW,
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND,
}


async def failed_tasks(address: str, since: datetime) -> list[str]:
    """The workflow tasks that failed in the runs started at ``since`` or later (one line each)."""
    client = await Client.connect(address)
    stamp = (since - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    found = []
    async for run in client.list_workflows(f'StartTime >= "{stamp}"'):
        history = await client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
        for event in history.events:
            if not event.HasField("workflow_task_failed_event_attributes"):
                continue
            failed = event.workflow_task_failed_event_attributes
            if failed.cause in BOOKKEEPING:
                continue
            cause = WorkflowTaskFailedCause.Name(failed.cause)
            found.append(f"{run.id} (run {run.run_id[:8]}): {cause}: {failed.failure.message[:200]}")
    return found


def no_failed_tasks(request: Any, dev_server: Any) -> Iterator[None]:
    """An autouse fixture's body: the test runs, then its runs are read (see the module doc)."""
    since = datetime.now(timezone.utc)
    yield
    if request.node.get_closest_marker("fails_tasks") is not None:
        return
    found = asyncio.run(failed_tasks(dev_server.address, since))
    assert not found, "workflow tasks failed:\n" + "\n".join(found[:10])
