"""How the workflow runs one node's work through Temporal: an activity, a Team's members, a
subgraph's child run; and how it reads what Temporal raises when that work fails.

Workflow code (it runs in the workflow sandbox, called from ``GeckoWorkflow``). Decisions stay in
the pure core: ``TeamRun`` decides a Team, ``handoff.py`` builds the child's input, ``failure.py``
words every failure; this module only issues the commands and unpacks Temporal's exceptions.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, TypedSearchAttributes
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    TerminatedError,
    WorkflowAlreadyStartedError,
)
from temporalio.exceptions import TimeoutError as TemporalTimeout

from gecko_temporal.temporal import flow

with workflow.unsafe.imports_passed_through():
    from gecko_temporal.core.run import failure
    from gecko_temporal.core.run.failure import NodeFailed, RunFailure
    from gecko_temporal.core.spec import MemberSpec, NodeOutput, NodeSpec, RetrySpec
    from gecko_temporal.core.team_run import MemberDone, TeamFailed, TeamRun
    from gecko_temporal.core.window import Window
    from gecko_temporal.protocol import WORKFLOW_TYPE


def retry_policy(r: RetrySpec) -> RetryPolicy:
    return RetryPolicy(
        maximum_attempts=r.maximum_attempts,
        initial_interval=timedelta(seconds=r.initial_interval),
        backoff_coefficient=r.backoff_coefficient,
        maximum_interval=timedelta(seconds=r.maximum_interval) if r.maximum_interval else None,
        non_retryable_error_types=list(r.non_retryable_error_types) or None,
    )


def error_of(exc: BaseException) -> tuple[str, str]:
    """(type, message) of what made an activity fail, as the user's code raised it."""
    cause = exc.cause if isinstance(exc, ActivityError) and exc.cause is not None else exc
    if isinstance(cause, ApplicationError):
        return cause.type or "ApplicationError", cause.message
    if isinstance(cause, TemporalTimeout):
        earlier = cause.cause  # the previous attempt's failure, when the server attached it
        return failure.activity_timeout(
            cause.type.name if cause.type else None,
            cause.message,
            (earlier.type or "ApplicationError", earlier.message) if isinstance(earlier, ApplicationError) else None,
        )
    if isinstance(cause, (CancelledError, asyncio.CancelledError)):
        return "CancelledError", "cancelled"
    return type(cause).__name__, str(cause)


def failure_text(exc: BaseException) -> str:
    """How the stream tells a node's failure."""
    return failure.failure_text(exc, error_of(exc))


def child_failure(exc: BaseException, node: str, session: str, child: str) -> NodeFailed:
    """A subgraph node's failure, read from how Temporal says its child run ended."""
    cause = exc.cause if isinstance(exc, ChildWorkflowError) and exc.cause is not None else exc
    if isinstance(cause, ApplicationError):
        details = cause.details[0] if cause.details else None
        return failure.child_failure(
            node, session, child, failure.CHILD_FAILED, cause.type or "", cause.message, details
        )
    for kind, ended in (
        (CancelledError, failure.CHILD_CANCELLED),
        (TerminatedError, failure.CHILD_TERMINATED),
        (TemporalTimeout, failure.CHILD_TIMED_OUT),
    ):
        if isinstance(cause, kind):
            return failure.child_failure(node, session, child, ended)
    return failure.child_failure(node, session, child, failure.CHILD_OTHER, type(cause).__name__, str(cause))


def raised(f: RunFailure) -> ApplicationError:
    """A failed run's error: non-retryable, typed so the client raises the matching GeckoError."""
    return ApplicationError(f.message, *(() if f.details is None else (f.details,)), type=f.type, non_retryable=True)


def abandon(fut: asyncio.Future[Any]) -> None:
    """Cancel an activity we no longer wait for; its late failure is expected, not an error."""
    fut.cancel()
    fut.add_done_callback(lambda f: f.cancelled() or f.exception())


async def _node_output(pending: Awaitable[Any], events: Any = None) -> dict[str, Any]:
    plain: dict[str, Any] = await pending
    if events is not None and isinstance(plain, dict) and plain.get("emitted"):
        events.publish_emitted(plain["emitted"])  # a local node's context.emit events (see _stream)
    return plain


def start_activity(
    node: NodeSpec,
    how: NodeSpec | MemberSpec,
    arg: dict[str, Any],
    activity_id: str,
    events: Any,
    routing: dict[str, Any] | None = None,
) -> Awaitable[dict[str, Any]]:
    """Start the activity of ``node`` (or of one Team member), run as ``how`` says (the node or member);
    ``routing``: flow control's task queue (a named limit's) and priority (the tenant's fairness key).
    Its output comes as plain data (``RunDriver.expanded`` makes the NodeOutput)."""
    # Input and result travel as plain dicts: the converter's dataclass handling (a deep copy
    # on the way out, reflection over type hints on the way in) cost ~10x more per activity,
    # which a wide layer pays a thousand times in one workflow task. Same JSON either way.
    common: dict[str, Any] = dict(
        start_to_close_timeout=timedelta(seconds=how.start_to_close_timeout),
        retry_policy=retry_policy(how.retry),
        result_type=dict,
        activity_id=activity_id,
    )
    if routing:  # only runs with a limit or a tenant: other commands stay as they were
        common.update(routing)
    if node.local:
        first = workflow.execute_local_activity(how.activity_type, arg, **common)
    else:
        common["heartbeat_timeout"] = timedelta(seconds=how.heartbeat_timeout) if how.heartbeat_timeout else None
        first = workflow.execute_activity(how.activity_type, arg, **common)
    return _node_output(flow.rate_limited(first, node.local, how.activity_type, arg, common), events)


async def run_team(node: NodeSpec, member: Callable[[int], Awaitable[NodeOutput]]) -> tuple[NodeOutput, TeamRun]:
    """Run a Team node's members (``member(i)`` runs one); TeamRun decides who starts and who won.
    Return the Team's output and its finished TeamRun; raise NodeFailed when the Team failed."""
    assert node.team is not None
    run = TeamRun(node.team)
    running: dict[int, asyncio.Future[NodeOutput]] = {}
    while True:
        for i in run.start(workflow.now().timestamp()):
            running[i] = asyncio.ensure_future(member(i))
        if not running:
            break
        done, _ = await workflow.wait(list(running.values()), return_when=asyncio.FIRST_COMPLETED)
        finished = {}
        for i in [i for i, f in running.items() if f in done]:
            fut = running.pop(i)
            error = fut.exception()
            finished[i] = MemberDone(error=error_of(error)) if error is not None else MemberDone(fut.result())
        for i in run.finished(finished, workflow.now().timestamp()):
            abandon(running.pop(i))  # a loser: cancel its activity through Temporal
    try:
        return run.output(), run
    except TeamFailed as exc:
        raise NodeFailed(node.name, "TeamFailed", exc.message, exc.failures) from None


async def run_child(
    window: Window,
    node: str,
    child: dict[str, Any],
    session: str,
    name: str,
    attributes: TypedSearchAttributes | None,
) -> NodeOutput:
    """Run subgraph ``name`` as a child GeckoWorkflow (input ``child``) with id ``session``, on this
    task queue: its own history, continue-as-new and gecko_state. Its result is the node's output."""
    parent = workflow.info().workflow_id
    try:
        # Through the window like activities: max_parallel bounds what a run keeps in flight.
        result = await window.run(
            lambda: workflow.execute_child_workflow(
                WORKFLOW_TYPE,
                child,
                id=session,
                # Whatever ends the parent (cancel, timeout, terminate) cancels the child.
                parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                search_attributes=attributes,
                static_summary=f'subgraph "{name}", node "{node}" of session {parent}',
            )
        )
    except WorkflowAlreadyStartedError:
        raise failure.child_session_taken(node, session, name) from None
    except ChildWorkflowError as exc:
        raise child_failure(exc, node, session, name) from None
    # The child returns its result as plain JSON; the node's output travels as JSON text.
    return NodeOutput(value=json.dumps(result, separators=(",", ":"), ensure_ascii=False))
