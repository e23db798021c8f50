"""Rewind: list a session's steps and restart it from one with Temporal's reset to the workflow task
that merged that step's layer (the old run stays in history). :class:`~gecko_temporal.temporal.client.RunHandle`'s
``steps()`` and ``rewind()`` call these."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from gecko_temporal.core import codec
from gecko_temporal.core.errors import RewindError, StateEditError
from gecko_temporal.protocol import REWOUND_SIGNAL, STEPS_QUERY


async def _run_chain(client: Client, handle: WorkflowHandle[Any, Any]) -> list[str]:
    """Run ids of the session's continue-as-new chain, newest first (at most 50)."""
    run_id = (await client.get_workflow_handle(handle.id).describe()).run_id  # the current run
    chain: list[str] = []
    while run_id and len(chain) < 50:
        chain.append(run_id)
        run = client.get_workflow_handle(handle.id, run_id=run_id)
        first = None
        async for event in run.fetch_history_events(page_size=1):
            first = event
            break
        started = first.workflow_execution_started_event_attributes if first is not None else None
        run_id = started.continued_execution_run_id if started is not None else ""
    return chain


async def session_steps(client: Client, handle: WorkflowHandle[Any, Any]) -> list[dict[str, Any]]:
    """The rewind points of every run of the session's continue-as-new chain, oldest first."""
    out: list[dict[str, Any]] = []
    try:
        chain = await _run_chain(client, handle)
    except RPCError as exc:
        raise RewindError(f'cannot read session "{handle.id}": {exc.message}') from None
    for run_id in reversed(chain):
        try:
            answer = await client.get_workflow_handle(handle.id, run_id=run_id).query(STEPS_QUERY)
        except Exception as exc:  # a run recorded before rewinds existed has no such query
            raise RewindError(
                f'run {run_id} of session "{handle.id}" did not list its steps: '
                f"{getattr(exc, 'message', exc)}; is a worker serving its task queue?"
            ) from None
        for point in answer.get("steps", []):
            out.append({**point, "run": answer.get("run"), "run_id": run_id})
    return out


async def rewind_session(
    client: Client, handle: WorkflowHandle[Any, Any], to_step: int, values: Any, delete: Any
) -> dict[str, Any]:
    """What :meth:`RunHandle.rewind <gecko_temporal.temporal.client.RunHandle.rewind>` does (see there)."""
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.enums.v1 import ResetReapplyExcludeType
    from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest

    if not isinstance(to_step, int) or isinstance(to_step, bool) or to_step < 0:
        raise RewindError(f"to_step must be a step number >= 0, got {to_step!r}")
    from gecko_temporal.core import control

    edit, problem = control.parse_edit(values, delete, [], "rewind") if (values or delete) else (None, None)
    if problem:
        raise StateEditError(f"rewind values rejected: {problem}")
    points = await session_steps(client, handle)
    matching = [p for p in points if p["step"] == to_step]
    if not matching:
        shown = sorted({p["step"] for p in points if p["rewindable"]})
        raise RewindError(
            f'session "{handle.id}" has no step {to_step} to rewind to (steps: '
            f"{_ranges(shown) or 'none'}); list them with gecko-temporal steps {handle.id}"
        )
    good = [p for p in matching if p["rewindable"]]
    if not good and not matching[-1]["nodes"]:  # only a run's start has it: step 0
        raise RewindError(
            f"step {to_step} is the start of the session: rewinding there is starting over; start a "
            "new session instead (start(..., state={...}) seeds its state)"
        )
    if not good:
        first = next(
            (
                p["step"]
                for p in reversed(points)
                if p["rewindable"] and p["run_id"] == matching[-1]["run_id"] and p["event"] == matching[-1]["event"]
            ),
            None,
        )
        raise RewindError(
            f"step {to_step} ran as a local activity in the same workflow task as step {first}; "
            f"a reset redoes a whole task: rewind to step {first} (its later local steps run again)"
        )
    point = good[-1]  # the newest run that has it (a run's start repeats the previous run's end)
    target = client.get_workflow_handle(handle.id, run_id=point["run_id"])
    history = await target.fetch_history()
    events = list(history.events)
    after = [e for e in events if e.event_id > point["event"]]
    done = next((e for e in after if e.HasField("workflow_task_completed_event_attributes")), None)
    if done is None:
        raise RewindError(
            f"step {to_step}: no completed workflow task after event {point['event']} in run "
            f"{point['run_id']}; wait a moment and try again"
        )
    # Updates taken in that task are written after its completion, so the reset drops them: redo them.
    redo = []
    for e in after:
        if e.event_id <= done.event_id:
            continue
        if e.HasField("workflow_task_scheduled_event_attributes") or e.HasField(
            "workflow_task_started_event_attributes"
        ):
            break
        if e.HasField("workflow_execution_update_accepted_event_attributes"):
            req = e.workflow_execution_update_accepted_event_attributes.accepted_request.input
            args = await client.data_converter.decode(list(req.args.payloads)) if req.args.payloads else []
            redo.append({"update": req.name, "args": args})
    info: dict[str, Any] = {"from_run": point["run_id"], "to_step": to_step, "redo": redo}
    if edit is not None:
        info["values"] = {k: codec.plain(v) for k, v in edit["values"].items()}
        info["delete"] = edit["delete"]
    request = ResetWorkflowExecutionRequest(
        namespace=client.namespace,
        workflow_execution=WorkflowExecution(workflow_id=handle.id, run_id=point["run_id"]),
        reason=f"gecko-temporal rewind to step {to_step}",
        workflow_task_finish_event_id=done.event_id,
        request_id=str(uuid.uuid4()),
        # A rewind goes back: answers, jumps and edits sent after that point are not replayed.
        reset_reapply_exclude_types=[
            ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL,
            ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_UPDATE,
        ],
    )
    try:
        response = await client.workflow_service.reset_workflow_execution(request)
        # The dev server (1.32) refuses a signal as a post-reset operation, so it follows the reset:
        # the new run waits for it at the reset point (GeckoWorkflow._after_reset).
        info["run"] = response.run_id  # only a signal sent after the reset can name the run it made
        await client.get_workflow_handle(handle.id, run_id=response.run_id).signal(REWOUND_SIGNAL, info)
    except RPCError as exc:
        raise RewindError(f'rewind of session "{handle.id}" to step {to_step} failed: {exc.message}') from None
    return {
        "session": handle.id,
        "run_id": response.run_id,
        "from_run": point["run_id"],
        "to_step": to_step,
        "nodes": point["nodes"],
        "reset_event": done.event_id,
        "redone_updates": len(redo),
    }


def _ranges(steps: list[int]) -> str:
    if len(steps) <= 12:
        return ", ".join(map(str, steps))
    return ", ".join(map(str, steps[:5])) + ", ..., " + ", ".join(map(str, steps[-5:]))
