"""Flow control in the workflow: a node that was rate limited runs again after the delay it asked for.

Workflow code (it runs in the workflow sandbox). The activity fails a rate-limited attempt as a
non-retryable ``RetryAfter`` carrying the delay (``core/flow.py`` says why not ``next_retry_delay``);
here the run waits that long on a durable timer and starts the node's activity again under a new
id, with the retries its earlier attempts left (rate-limited attempts never count).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from gecko_temporal.core import flow, flow_limits
    from gecko_temporal.core.run.budget import BUDGET_WAIT, BudgetGate
    from gecko_temporal.core.run.person import PersonWait, WaitPaused
    from gecko_temporal.core.scheduler import Task
    from gecko_temporal.core.spec import NodeOutput
    from gecko_temporal.core.usage import Usage
    from gecko_temporal.protocol import CHILD_USAGE_SIGNAL


def _rate_limited(exc: BaseException) -> tuple[float, int] | None:
    """(delay, attempt) of a RetryAfter failure, else None."""
    cause = exc.cause if isinstance(exc, ActivityError) and exc.cause is not None else exc
    if not isinstance(cause, ApplicationError) or cause.type != flow.RETRY_AFTER_TYPE or not cause.details:
        return None
    delay = flow.delay_of(cause.details[0])
    attempt = cause.details[0].get("attempt") if isinstance(cause.details[0], dict) else None
    if delay is None:
        return None
    return delay, attempt if isinstance(attempt, int) and attempt > 0 else 1


def spent_of(exc: BaseException) -> dict[str, Any] | None:
    """The usage a failed node attempt carries (``usage`` in its failure's details), or None."""
    cause = exc.cause if isinstance(exc, ActivityError) and exc.cause is not None else exc
    details = cause.details if isinstance(cause, ApplicationError) else None
    first = details[0] if details else None
    spent = first.get("usage") if isinstance(first, dict) else None
    return spent if isinstance(spent, dict) else None


def _with_spent(plain: Any, spent: Usage) -> Any:
    """A node's result (its plain output) with what its rate-limited attempts spent added in."""
    if not spent.calls or not isinstance(plain, dict):
        return plain
    total = Usage.from_plain(plain.get("usage"))
    total.add(spent)
    return {**plain, "usage": total.to_plain()}


async def rate_limited(
    first: Awaitable[Any], local: bool, activity_type: str, arg: Any, options: dict[str, Any]
) -> Any:
    """Await ``first`` (a node's activity); while it fails rate limited, wait and start it again."""
    pending, restarts = first, 0
    policy: RetryPolicy = options["retry_policy"]
    base_id: str = options["activity_id"]
    spent = Usage()  # what rate-limited attempts spent before they were told to wait
    while True:
        try:
            return _with_spent(await pending, spent)
        except (ActivityError, ApplicationError) as exc:
            limited = _rate_limited(exc)
            if limited is None or restarts >= flow.MAX_RATE_LIMITED:
                raise
            delay, attempt = limited
            spent.add(Usage.from_plain(spent_of(exc)))
        restarts += 1
        if policy.maximum_attempts:  # the attempts that really failed before this one stay used
            left = max(1, policy.maximum_attempts - (attempt - 1))
            policy = dataclasses.replace(policy, maximum_attempts=left)
        options = {**options, "retry_policy": policy, "activity_id": f"{base_id}.r{restarts}"}
        if delay > 0:
            await workflow.sleep(timedelta(seconds=delay))
        if local:
            pending = workflow.execute_local_activity(activity_type, arg, **options)
        else:
            pending = workflow.execute_activity(activity_type, arg, **options)


class RunFlow:
    """A run's flow control in the workflow: the budget gate before each step, usage after each
    batch (stream events, the cost search attributes), and what gecko_state shows."""

    def __init__(self, drive: Any, events: Any) -> None:
        self._drive, self._events = drive, events
        self.gate = BudgetGate(drive.usage)
        self._shown_total: tuple[int, float] | None = None
        self._children: dict[str, dict[str, Any]] = {}  # child session -> the usage it reported
        events.usage_line = drive.usage.details_line()  # (a continued run shows what it carries)

    async def before_step(self, wait_for_person: Callable[[PersonWait, Task], Awaitable[str]], host: Any) -> None:
        """Hold the run while its usage has reached its budget (or fail it: BudgetExceeded). A long or
        flooded wait moves to a new run once nothing runs (``host.waits_may_pause``: see steps.py)."""
        while True:
            wait = self.gate.check()
            if wait is None:
                return
            step = self._drive.sched.step
            host.waits_may_pause = True  # between steps: no fan-out is half done
            try:
                answer = await wait_for_person(wait, Task(BUDGET_WAIT, wait.payload or "null", step))
            except WaitPaused:  # the history is full: switch runs once nothing runs, and wait on there
                self._drive.switching = True  # (usage and the budget travel in the snapshot)
                return
            finally:
                host.waits_may_pause = False
            self.gate.answered(answer)

    def after_batch(self, batch: list[tuple[Task, Any]]) -> None:
        """Publish each node's reported usage; keep the run's cost search attributes current."""
        ledger = self._drive.usage
        reported = False
        for task, out in batch:
            if out.usage:
                reported = True
                self._events.usage(task.node, task.step, {"node": out.usage, "run": ledger.total.to_plain()})
        if reported:
            self._usage_changed()

    def _usage_changed(self) -> None:
        ledger = self._drive.usage
        self._events.set_usage(ledger.total.tokens, ledger.total.cost_usd)
        self._events.usage_line = ledger.details_line()  # the UI's current details show it

    def failed(self, node: str, exc: BaseException) -> None:
        """A node failed for good: what its last attempts spent still counts (it was spent)."""
        if self._drive.usage.add(node, spent_of(exc)) is not None:
            self._usage_changed()

    def for_child(self, child: dict[str, Any]) -> dict[str, Any]:
        """A subgraph child run's input with this run's tenant, what is left of its budget, and the
        ask to report its usage back (``UsageLedger.child_flow``)."""
        return {**child, "flow": self._drive.usage.child_flow()}

    def child_spent(self, session: Any, spent: Any) -> None:
        """A child run reported what its session spent (CHILD_USAGE_SIGNAL); malformed: ignored."""
        if isinstance(session, str) and isinstance(spent, dict):
            self._children[session] = spent

    def with_child_usage(self, session: str, out: NodeOutput) -> NodeOutput:
        """The subgraph node's output, carrying what its child run reported it spent."""
        spent = self._children.pop(session, None)
        return dataclasses.replace(out, usage=spent) if spent else out

    async def report_to_parent(self) -> None:
        """A child run that was asked to (and spent anything) tells its parent what it spent."""
        ledger, parent = self._drive.usage, workflow.info().parent
        if ledger.report and ledger.total.calls and parent is not None:
            handle = workflow.get_external_workflow_handle(parent.workflow_id)
            try:
                await handle.signal(CHILD_USAGE_SIGNAL, args=[workflow.info().workflow_id, ledger.total.to_plain()])
            except Exception as exc:  # the parent is gone: the child's own result must not fail over it
                workflow.logger.warning("could not report this run's usage to its parent run: %s", exc)

    def routing(self, node: Any, how: Any = None) -> dict[str, Any]:
        """Where ``node``'s activities go (``how``: the Team member run, if one): its limit's task
        queue (a member's own limit, else the node's), with the tenant's fairness key."""
        options: dict[str, Any] = {}
        limit = getattr(how, "limit", None) or node.limit
        if limit is not None and not node.local:
            options["task_queue"] = flow_limits.limit_queue(workflow.info().task_queue, limit)
        tenant = self._drive.usage.tenant
        if tenant is not None:
            options["priority"] = Priority(fairness_key=tenant)
        return options

    def show(self, answer: dict[str, Any]) -> None:
        """Add ``usage`` (and the budget) to a gecko_state answer, once there is any."""
        ledger = self._drive.usage
        if ledger.nodes or ledger.budget:
            answer["usage"] = {**ledger.shown(), "budget": ledger.budget}
