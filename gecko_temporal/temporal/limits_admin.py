"""Reading and changing named limits and tenant weights on the server (``gecko-temporal limits``).

Everything here is the task queues' own config on the Temporal server, so a change holds for every
run and worker at once and survives any restart: a queue's rate limit set here overrides the one
its workers declare (``Limit(per_second=...)``) until it is reset; tenant weights are the queue's
fairness-key weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import RateLimit, TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, UpdateTaskQueueConfigRequest
from temporalio.client import Client

_ACTIVITY = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
_IDENTITY = "gecko-temporal limits"


async def describe_queue(client: Client, queue: str) -> dict[str, Any]:
    """A task queue's activity side as ``limits`` shows it: the rate in force and where it comes
    from, an override set here, tenant weights, the backlog, pollers and dispatch rate."""
    got = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=queue),
            task_queue_type=_ACTIVITY,
            report_stats=True,
            report_config=True,
        )
    )
    config = got.config
    effective = got.effective_rate_limit if got.HasField("effective_rate_limit") else None
    override = (
        config.queue_rate_limit.rate_limit.requests_per_second
        if config.HasField("queue_rate_limit") and config.queue_rate_limit.HasField("rate_limit")
        else None
    )
    tenant_cap = (
        config.fairness_keys_rate_limit_default.rate_limit.requests_per_second
        if config.HasField("fairness_keys_rate_limit_default")
        and config.fairness_keys_rate_limit_default.HasField("rate_limit")
        else None
    )
    source = effective.rate_limit_source if effective is not None else 0
    return {
        "queue": queue,
        "per_second": effective.requests_per_second if effective is not None and source else None,
        "source": _SOURCES.get(source, "none"),
        "override": override,
        "per_tenant": tenant_cap,
        "weights": dict(config.fairness_weight_overrides),
        "backlog": got.stats.approximate_backlog_count,
        "pollers": len(got.pollers),
        "dispatch_rate": round(got.stats.tasks_dispatch_rate, 3),
    }


_SOURCES = {1: "set here (gecko-temporal limits set)", 2: "declared by workers (Limit per_second)", 3: "system"}


async def _update(client: Client, queue: str, **fields: Any) -> None:
    await client.workflow_service.update_task_queue_config(
        UpdateTaskQueueConfigRequest(
            namespace=client.namespace, identity=_IDENTITY, task_queue=queue, task_queue_type=_ACTIVITY, **fields
        )
    )


async def set_rate(client: Client, queue: str, per_second: float | None, reason: str = "") -> None:
    """Override the queue's rate (starts per second over every run); None: back to the workers'."""
    update = UpdateTaskQueueConfigRequest.RateLimitUpdate(reason=reason or "gecko-temporal limits set")
    if per_second is not None:
        update.rate_limit.CopyFrom(RateLimit(requests_per_second=per_second))
    await _update(client, queue, update_queue_rate_limit=update)


async def set_tenant_cap(client: Client, queue: str, per_second: float | None) -> None:
    """Cap each tenant's starts per second on the queue (its fairness keys' default rate)."""
    update = UpdateTaskQueueConfigRequest.RateLimitUpdate(reason="gecko-temporal limits set --per-tenant")
    if per_second is not None:
        update.rate_limit.CopyFrom(RateLimit(requests_per_second=per_second))
    await _update(client, queue, update_fairness_key_rate_limit_default=update)


async def set_weights(client: Client, queue: str, weights: dict[str, float], unset: Sequence[str] = ()) -> None:
    """Set tenants' fairness weights on the queue (``unset``: back to weight 1)."""
    await _update(client, queue, set_fairness_weight_overrides=weights, unset_fairness_weight_overrides=list(unset))
