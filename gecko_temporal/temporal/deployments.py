"""Worker Deployment versions as an operator sees them: promote one, ramp one, and count each
version's runs so old workers are stopped only once their runs are done.

A worker started with a build id serves version ``BUILD_ID`` of the Worker Deployment named after
its task queue (``temporal/worker.py``). Temporal records on every run the version it is pinned to
(the built-in ``TemporalWorkerDeploymentVersion`` search attribute, ``DEPLOYMENT:BUILD_ID``), so
runs are listed and counted by version without attributes of our own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import VersioningBehavior
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.service import RPCError

from gecko_temporal.core.errors import GeckoError
from gecko_temporal.core.spec import GraphSpec
from gecko_temporal.protocol import GRAPH_METADATA_PREFIX, STATUS_ATTRIBUTE, UPGRADE_ACTIVITY, WORKFLOW_TYPE
from gecko_temporal.temporal import versions
from gecko_temporal.temporal.compat import handle_client

log = logging.getLogger(__name__)

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


async def _pin(client: Client, session: str, run_id: str, deployment: str, build_id: str) -> None:
    """Pin one run to version ``deployment:build_id`` (a versioning override): its next workflow
    task, nodes and children go to that version's workers, which replay it on their graph."""
    from google.protobuf.field_mask_pb2 import FieldMask
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.deployment.v1 import WorkerDeploymentVersion
    from temporalio.api.workflow.v1 import VersioningOverride, WorkflowExecutionOptions
    from temporalio.api.workflowservice.v1 import UpdateWorkflowExecutionOptionsRequest

    override = VersioningOverride(
        pinned=VersioningOverride.PinnedOverride(
            behavior=VersioningOverride.PinnedOverrideBehavior.PINNED_OVERRIDE_BEHAVIOR_PINNED,
            version=WorkerDeploymentVersion(deployment_name=deployment, build_id=build_id),
        )
    )
    await client.workflow_service.update_workflow_execution_options(
        UpdateWorkflowExecutionOptionsRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=session, run_id=run_id),
            workflow_execution_options=WorkflowExecutionOptions(versioning_override=override),
            update_mask=FieldMask(paths=["versioning_override"]),
        )
    )


async def run_graph(client: Client, session: str) -> tuple[GraphSpec, str]:
    """(the graph the session's current run carries, that run's id), read from its start event."""
    handle = client.get_workflow_handle(session)
    described = await handle.describe()
    if described.status is None or described.status.name != "RUNNING":
        state = described.status.name.lower() if described.status else "unknown"
        raise GeckoError(f'session "{session}" is {state}: only a running session can move to other code')
    async for event in handle.fetch_history_events():
        attrs = event.workflow_execution_started_event_attributes
        values = await client.data_converter.decode(list(attrs.input.payloads))
        plain = values[0] if values else None
        if not isinstance(plain, dict) or not isinstance(plain.get("spec"), dict):
            raise GeckoError(f'session "{session}" is not a gecko_temporal run (its input carries no graph)')
        return GraphSpec.from_plain(plain["spec"]), described.run_id
    raise GeckoError(f'session "{session}" has no history')


async def migrate(
    client: Client,
    session: str,
    build_id: str,
    new_spec: GraphSpec,
    *,
    deployment: str | None = None,
    from_step: int | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Move one running session to version ``build_id`` whose graph is ``new_spec``: checked first
    (:func:`~gecko_temporal.core.versions.check_migration`; unsafe is refused unless ``force``),
    then pinned there; with ``from_step`` the session is first rewound to that step (a Temporal
    reset: the old run is kept). The version's workers replay it on their graph and go on."""
    from gecko_temporal.core.versions import check_migration, check_specs
    from gecko_temporal.temporal.rewind import rewind_session, session_steps

    deployment = deployment or default_deployment()
    known = {r.build_id for r in await version_rows(client, deployment)}
    if build_id not in known:
        raise GeckoError(
            f'deployment "{deployment}" has no version "{build_id}" (versions: {", ".join(sorted(known)) or "none"}); '
            f"start its workers with --build-id {build_id} first"
        )
    old_spec, run_id = await run_graph(client, session)
    handle = client.get_workflow_handle(session)
    if from_step is not None:
        reached = {n for p in await session_steps(client, handle) if p["step"] <= from_step for n in p["nodes"]}
    else:
        state = await handle.query("gecko_state")
        reached = {*state.get("completed", []), *state.get("running", []), *(state.get("waiting") or {})}
    report = check_migration(check_specs(old_spec, new_spec), reached)
    if not report.safe and not force:
        reasons = "; ".join(f"{c.node}: {c.kind} ({c.detail})" for c in report.unsafe)
        raise GeckoError(
            f'session "{session}" cannot move to version {build_id} safely: {reasons}. Pick an earlier '
            "--from-step, or --force to move it anyway (its next task may then fail as non-deterministic)"
        )
    await _pin(client, session, run_id, deployment, build_id)
    moved: dict[str, Any] = {"session": session, "version": build_id, "deployment": deployment, "run_id": run_id}
    if from_step is not None:
        rewound = await rewind_session(client, handle, from_step, None, None)
        await _pin(client, session, rewound["run_id"], deployment, build_id)
        moved.update(run_id=rewound["run_id"], from_run=run_id, from_step=from_step)
    moved["changes"] = [c.line() for c in report.changes]
    return moved


# --- what a versioned worker publishes, and what a run asks at continue-as-new ---------------------


def _metadata_key(key: str) -> str:
    return GRAPH_METADATA_PREFIX + key


async def publish_graphs(client: Client, version: WorkerDeploymentVersion, task_queue: str) -> list[str]:
    """Publish each top-level graph the worker on ``task_queue`` serves in the metadata of its
    version (``gecko.graph.KEY``: compact spec, fingerprint id, code hashes and output schemas when
    they fit), where a run deciding whether to move here at continue-as-new reads it. Return the keys."""
    from temporalio.api.common.v1 import Payload
    from temporalio.api.deployment.v1 import WorkerDeploymentVersion as VersionProto
    from temporalio.api.workflowservice.v1 import UpdateWorkerDeploymentVersionMetadataRequest

    graphs = versions.served_graphs(task_queue)
    entries = {
        _metadata_key(key): Payload(
            metadata={"encoding": b"json/plain"}, data=json.dumps(versions.published_graph(graph)).encode()
        )
        for key, graph in graphs.items()
    }
    if entries:
        await client.workflow_service.update_worker_deployment_version_metadata(
            UpdateWorkerDeploymentVersionMetadataRequest(
                namespace=client.namespace,
                deployment_version=VersionProto(deployment_name=version.deployment_name, build_id=version.build_id),
                upsert_entries=entries,
            )
        )
    return sorted(graphs)


async def publish_when_known(
    client: Client, version: WorkerDeploymentVersion, task_queue: str, within: float = 120.0
) -> list[str]:
    """:func:`publish_graphs` once the server knows the version (after the worker's first poll),
    retrying for up to ``within`` seconds; logs what it published, or why it could not."""
    deadline = time.monotonic() + within
    while True:
        try:
            keys = await publish_graphs(client, version, task_queue)
            log.info("published graph(s) %s in the metadata of version %s", ", ".join(keys), version.build_id)
            return keys
        except RPCError as exc:
            if time.monotonic() > deadline:
                log.warning(
                    "could not publish this worker's graphs for version %s (%s): runs pinned elsewhere with "
                    'upgrade="at-continue-as-new" will not move here',
                    version.build_id,
                    exc.message,
                )
                return []
            await asyncio.sleep(0.5)


async def _candidates(client: Client, deployment: str, key: str) -> list[dict[str, Any]]:
    from temporalio.api.deployment.v1 import WorkerDeploymentVersion as VersionProto
    from temporalio.api.workflowservice.v1 import (
        DescribeWorkerDeploymentRequest,
        DescribeWorkerDeploymentVersionRequest,
    )

    described = await client.workflow_service.describe_worker_deployment(
        DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment)
    )
    routing = described.worker_deployment_info.routing_config
    build_ids = [routing.current_deployment_version.build_id, routing.ramping_deployment_version.build_id]
    found = []
    for build_id in dict.fromkeys(b for b in build_ids if b):  # current first, then a ramping one
        info = await client.workflow_service.describe_worker_deployment_version(
            DescribeWorkerDeploymentVersionRequest(
                namespace=client.namespace,
                deployment_version=VersionProto(deployment_name=deployment, build_id=build_id),
            )
        )
        entry = info.worker_deployment_version_info.metadata.entries.get(_metadata_key(key))
        found.append({"build_id": build_id, "graph": json.loads(entry.data) if entry is not None else None})
    return found


@activity.defn(name=UPGRADE_ACTIVITY)
async def upgrade_target(request: dict[str, Any]) -> dict[str, Any]:
    """The versions new runs of ``request["deployment"]`` start on (current, ramping) and the graph
    each published for ``request["key"]``, with this worker's own code hashes of that graph: all a
    run needs to decide, in history, whether it moves at its continue-as-new."""
    own = versions.own_graph(str(request["task_queue"]), str(request["key"]))
    try:
        candidates = await _candidates(activity.client(), str(request["deployment"]), str(request["key"]))
    except RPCError as exc:
        return {"problem": f"cannot describe deployment {request['deployment']!r}: {exc.message}", "own": own}
    return {"candidates": candidates, "own": own}


# --- at worker start: which open runs this worker could pick up but cannot serve --------------------


@dataclass
class RunScan:
    """What a worker found at start among the open runs it could pick up (``GeckoWorker.scan``)."""

    scanned: int = 0
    unservable: list[dict[str, Any]] = field(default_factory=list)  # {"session", "run_id", "graph", "reasons"}
    capped: bool = False  # more runs were open than the scan reads
    problem: str | None = None  # the scan could not finish (timeout, server error)

    def to_plain(self) -> dict[str, Any]:
        return {**vars(self), "unservable": list(self.unservable)}


async def _run_input(client: Client, session: str, run_id: str) -> dict[str, Any] | None:
    """The input of one run (its first history event): graph, snapshot, graph id."""
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest

    page = await client.workflow_service.get_workflow_execution_history(
        GetWorkflowExecutionHistoryRequest(
            namespace=client.namespace,
            execution=WorkflowExecution(workflow_id=session, run_id=run_id),
            maximum_page_size=1,
        )
    )
    for event in page.history.events:
        attrs = event.workflow_execution_started_event_attributes
        values = await client.data_converter.decode(list(attrs.input.payloads))
        return values[0] if values and isinstance(values[0], dict) else None
    return None


def _pinned_to(execution: Any) -> tuple[str, str] | None:
    """(deployment, build id) a listed run is pinned to, or None (unversioned, or auto-upgrade)."""
    raw = execution.raw_info
    if not raw.HasField("versioning_info"):
        return None
    info = raw.versioning_info
    if info.behavior != VersioningBehavior.VERSIONING_BEHAVIOR_PINNED or not info.deployment_version.build_id:
        return None
    return info.deployment_version.deployment_name, info.deployment_version.build_id


async def scan_open_runs(
    client: Client, task_queue: str, version: WorkerDeploymentVersion | None, *, cap: int = 200
) -> RunScan:
    """Check the graph of each open run this worker could pick up (on its task queue, not pinned to
    another version unless its graph moves at continue-as-new) against the graphs it serves, reading
    at most ``cap`` runs, 100 a page. Pinned to this version: served as this version's graph."""
    from gecko_temporal.core.run.upgrade import judge_at
    from gecko_temporal.core.versions import check_specs

    graphs = versions.served_graphs(task_queue)
    scan = RunScan()
    query = f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' AND TaskQueue = {_quote(task_queue)}"
    async for execution in client.list_workflows(query, limit=cap + 1, page_size=100):
        if scan.scanned == cap:
            scan.capped = True
            break
        scan.scanned += 1
        plain = await _run_input(client, execution.id, execution.run_id)
        if plain is None or not isinstance(plain.get("spec"), dict):
            continue
        spec = GraphSpec.from_plain(plain["spec"])
        pinned = _pinned_to(execution)
        here = version is not None and pinned == (version.deployment_name, version.build_id)
        elsewhere = pinned is not None and not here
        if here or (elsewhere and spec.upgrade is None):
            continue  # pinned here, it follows this version's graph; pinned elsewhere, it stays there
        mine = graphs.get(spec.key.split("/")[0])
        if mine is None:
            reasons = [f'this worker does not serve workflow "{spec.key}" (it serves: {", ".join(graphs) or "none"})']
        else:
            report = check_specs(spec, mine.spec)
            if elsewhere:  # it would move here at a continue-as-new: judged from its snapshot
                report = judge_at(report, plain.get("snapshot") or {})
            reasons = [f"{c.node}: {c.kind} ({c.detail})" for c in report.unsafe]
        if reasons:
            row = {
                "session": execution.id,
                "run_id": execution.run_id,
                "graph": plain.get(versions.INPUT_KEY),
                "reasons": reasons,
            }
            scan.unservable.append(row)
            log.warning("this worker cannot serve open run %s: %s", execution.id, "; ".join(reasons))
    return scan


async def scan_in_background(
    client: Client, task_queue: str, version: WorkerDeploymentVersion | None, *, cap: int = 200, within: float = 20.0
) -> RunScan:
    """:func:`scan_open_runs`, bounded by ``within`` seconds, never raising: logs one summary line."""
    try:
        scan = await asyncio.wait_for(scan_open_runs(client, task_queue, version, cap=cap), within)
    except asyncio.TimeoutError:
        scan = RunScan(problem=f"the scan took over {within:g} s and stopped")
    except RPCError as exc:
        scan = RunScan(problem=f"the scan failed: {exc.message}")
    more = f" (first {cap}; more are open)" if scan.capped else ""
    log.log(
        logging.WARNING if scan.unservable or scan.problem else logging.INFO,
        "open runs on task queue %s: scanned %d%s, %d this worker cannot serve%s",
        task_queue,
        scan.scanned,
        more,
        len(scan.unservable),
        f"; {scan.problem}" if scan.problem else "",
    )
    return scan
