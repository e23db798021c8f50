"""Worker Deployment versions as an operator sees them: promote one, ramp one, and count each
version's runs so old workers are stopped only once their runs are done.

A worker started with a build id serves version ``BUILD_ID`` of the Worker Deployment named after
its task queue (``temporal/worker.py``). Temporal records on every run the version it is pinned to
(the built-in ``TemporalWorkerDeploymentVersion`` search attribute, ``DEPLOYMENT:BUILD_ID``), so
runs are listed and counted by version without attributes of our own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from gecko_temporal.core.errors import GeckoError
from gecko_temporal.protocol import STATUS_ATTRIBUTE, WORKFLOW_TYPE
from gecko_temporal.temporal.compat import handle_client

VERSION_ATTRIBUTE = "TemporalWorkerDeploymentVersion"  # Temporal's own: "DEPLOYMENT:BUILD_ID"
DEFAULT_TASK_QUEUE = "gecko-temporal"


def default_deployment() -> str:
    """The deployment a worker with no --deployment joins: its task queue's name."""
    return os.environ.get("GECKO_TASK_QUEUE") or DEFAULT_TASK_QUEUE


def version_query(deployment: str, build_id: str) -> str:
    return f"{VERSION_ATTRIBUTE} = {_quote(f'{deployment}:{build_id}')}"


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def promote(client: Client, build_id: str, deployment: str | None = None, ramp: float | None = None) -> str:
    """Make ``build_id`` the version new runs start on (or, with ``ramp``, that percentage of them);
    return a line saying what changed. Runs already going stay on their version."""
    from temporalio.api.workflowservice.v1 import (
        SetWorkerDeploymentCurrentVersionRequest,
        SetWorkerDeploymentRampingVersionRequest,
    )

    deployment = deployment or default_deployment()
    try:
        if ramp is not None:
            if not 0 <= ramp <= 100:
                raise GeckoError(f"--ramp must be a percentage from 0 to 100, got {ramp:g}")
            await client.workflow_service.set_worker_deployment_ramping_version(
                SetWorkerDeploymentRampingVersionRequest(
                    namespace=client.namespace, deployment_name=deployment, build_id=build_id, percentage=ramp
                )
            )
            return f"{deployment}: {ramp:g}% of new runs start on version {build_id}"
        answer = await client.workflow_service.set_worker_deployment_current_version(
            SetWorkerDeploymentCurrentVersionRequest(
                namespace=client.namespace, deployment_name=deployment, build_id=build_id
            )
        )
    except RPCError as exc:
        raise GeckoError(
            f'cannot promote version "{build_id}" of deployment "{deployment}": {exc.message}; start a worker '
            f"with --build-id {build_id} (and --deployment {deployment} if its task queue is another) first, "
            "and check `gecko-temporal versions`"
        ) from None
    before = answer.previous_deployment_version.build_id or "unversioned workers"
    return f"{deployment}: new runs start on version {build_id} (was: {before})"


@dataclass
class VersionRow:
    deployment: str
    build_id: str
    status: str  # current, ramping, draining, drained, inactive
    open: int
    running: int
    waiting: int

    def to_plain(self) -> dict[str, Any]:
        return dict(vars(self))


async def _count(client: Client, query: str) -> int:
    return (await client.count_workflows(f"WorkflowType = '{WORKFLOW_TYPE}' AND {query}")).count


async def version_rows(client: Client, deployment: str | None = None) -> list[VersionRow]:
    """Every version of every deployment (or of ``deployment``), with its open runs counted:
    ``open`` (not finished), ``running`` and ``waiting`` (GeckoStatus; waiting = for a person)."""
    from temporalio.api.workflowservice.v1 import DescribeWorkerDeploymentRequest, ListWorkerDeploymentsRequest

    names: list[str] = []
    token = b""
    while True:
        page = await client.workflow_service.list_worker_deployments(
            ListWorkerDeploymentsRequest(namespace=client.namespace, next_page_token=token)
        )
        names.extend(d.name for d in page.worker_deployments)
        token = page.next_page_token
        if not token:
            break
    if deployment is not None:
        if deployment not in names:
            raise GeckoError(
                f'no Worker Deployment named "{deployment}" (there are: {", ".join(names) or "none"}); '
                "a worker started with --build-id creates it"
            )
        names = [deployment]
    rows = []
    for name in sorted(names):
        described = await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=name)
        )
        for summary in described.worker_deployment_info.version_summaries:
            build_id = summary.deployment_version.build_id
            status = _status_name(summary.status)
            where = version_query(name, build_id) + " AND ExecutionStatus = 'Running'"
            rows.append(
                VersionRow(
                    name,
                    build_id,
                    status,
                    await _count(client, where),
                    await _count(client, f"{where} AND {STATUS_ATTRIBUTE} = 'running'"),
                    await _count(client, f"{where} AND {STATUS_ATTRIBUTE} = 'waiting'"),
                )
            )
    return rows


def _status_name(status: Any) -> str:
    from temporalio.api.enums.v1 import WorkerDeploymentVersionStatus

    return WorkerDeploymentVersionStatus.Name(status).removeprefix("WORKER_DEPLOYMENT_VERSION_STATUS_").lower()


async def resolve_version(client: Client, build_id: str, deployment: str | None = None) -> str:
    """The query that selects runs pinned to ``build_id`` (``DEPLOYMENT:ID`` names one deployment;
    a bare ID matches it in every deployment that has it)."""
    if ":" in build_id:
        name, _, bid = build_id.partition(":")
        return version_query(name, bid)
    if deployment:
        return version_query(deployment, build_id)
    rows = await version_rows(client)
    matches = sorted({r.deployment for r in rows if r.build_id == build_id})
    if not matches:
        known = ", ".join(sorted({f"{r.deployment}:{r.build_id}" for r in rows})) or "none"
        raise GeckoError(f'no Worker Deployment has a version "{build_id}" (versions: {known})')
    return "(" + " OR ".join(version_query(m, build_id) for m in matches) + ")"


async def refusal(handle: Any) -> str | None:
    """Why the run's workflow tasks keep failing (e.g. no worker may serve its graph, so it waits),
    or None when its last task did not fail. Read from the last WorkflowTaskFailed event."""
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.enums.v1 import EventType
    from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest

    described = await handle.describe()
    pending = described.raw_description.pending_workflow_task
    if pending.attempt <= 1:
        return None
    client = handle_client(handle)
    page = await client.workflow_service.get_workflow_execution_history_reverse(
        GetWorkflowExecutionHistoryReverseRequest(
            namespace=client.namespace,
            execution=WorkflowExecution(workflow_id=handle.id),
            maximum_page_size=20,
        )
    )
    for event in page.history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            message = event.workflow_task_failed_event_attributes.failure.message
            return f"{message} (workflow task attempt {pending.attempt})"
    return f"its workflow task failed {pending.attempt - 1} time(s)"
