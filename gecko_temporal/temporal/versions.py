"""Which graph a run follows on this worker, and whether this worker may take it at all.

Every :class:`~gecko_temporal.temporal.worker.GeckoWorker` records here what it serves on its task
queue: its Worker Deployment version (None when unversioned) and, per graph key, the compiled spec
and its fingerprint (``core/versions.py``). GeckoWorkflow asks :func:`admit` once per run, before
it reads its input:

- **Pinned** (the worker has a build id): a run is pinned to the version it started on, so every
  workflow task, node, Team member and subgraph child of it runs on that version's workers. A
  first run follows *that version's graph*, whatever graph the starting client compiled (a client
  of v1 starting a run after v2 was promoted gets the v2 graph and v2 code; a v2 client starting
  while v1 is current gets v1's). Deterministic: every task of a pinned run runs this same code.
- **Unversioned**: the run follows the graph its client sent. A worker that does not serve the
  run's graph, or whose graph differs from it in a way :func:`~gecko_temporal.core.versions.check_specs`
  calls unsafe (a node or Team member the run may reach is missing, a changed kind or context use,
  rewired edges), raises :class:`RunRefused`: the workflow task fails, Temporal offers it again (to
  any worker on the queue), and the run waits, its pending task naming why, instead of failing.
  Node code that differs from the code the run started with (same structure) is logged as mixed
  code and shown in ``gecko_state["version"]``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError
from temporalio.workflow import ContinueAsNewVersioningBehavior

from gecko_temporal.core.run.upgrade import Candidate, UpgradeDecision, decide_upgrade
from gecko_temporal.core.spec import UPGRADE_AT_CONTINUE_AS_NEW, GraphSpec
from gecko_temporal.core.versions import Fingerprint, check_specs, workflow_fingerprint
from gecko_temporal.protocol import UPGRADE_ACTIVITY, UPGRADE_PATCH

if TYPE_CHECKING:
    from temporalio.common import WorkerDeploymentVersion

    from gecko_temporal.core.build.graph import Workflow

#: The key of a run's input that carries the fingerprint id of the graph its client compiled (in a
#: continued run: the graph the previous run followed).
INPUT_KEY = "graph_version"
#: The key of a continued run's input that carries what gecko_state["version"] said beyond the
#: graph: the client's graph, the version a run moved from, why it did not move.
NOTES_KEY = "version_notes"
_NOTES = ("client_graph", "upgraded_from", "upgrade")


#: Bytes of JSON a worker publishes per graph in its version's metadata (the dev server took 1 MB).
METADATA_LIMIT = 512 * 1024


class RunRefused(RuntimeError):
    """This worker cannot serve the run's graph: its workflow task fails and is offered again.

    Not a GeckoError, so it never fails the run (those are the workflow's failure types)."""


@dataclass
class Graph:
    spec: GraphSpec
    plain: dict[str, Any]
    fingerprint: Fingerprint


@dataclass
class Served:
    """What the worker on one task queue serves."""

    version: WorkerDeploymentVersion | None
    graphs: dict[str, Graph] = field(default_factory=dict)


_served: dict[str, Served] = {}
_lock = threading.Lock()
# (id of the Workflow, graph key) -> (its node table, its compiled spec, the fingerprint): a graph's
# fingerprint reads the source of each node, so it is computed again only after the graph changed.
_fingerprints: dict[tuple[int, str], tuple[Any, GraphSpec, Fingerprint]] = {}


def fingerprint_of(wf: Workflow, key: str | None = None) -> tuple[GraphSpec, Fingerprint]:
    """``wf`` compiled under ``key`` and its fingerprint (cached until the graph changes)."""
    key = key or wf.name
    table, spec = wf.node_table(), wf.compile(key)
    cached = _fingerprints.get((id(wf), key))
    if cached is not None and cached[0] is table and cached[1] is spec:
        return spec, cached[2]
    spec, fp = workflow_fingerprint(wf, key)
    _fingerprints[(id(wf), key)] = (table, spec, fp)
    return spec, fp


def register(task_queue: str, version: WorkerDeploymentVersion | None, wf: Workflow, key: str) -> Fingerprint:
    """Record that the worker on ``task_queue`` serves ``wf`` under ``key``; return its fingerprint."""
    graphs = {}
    for graph_key, graph in {key: wf, **wf.subgraphs(key)}.items():  # a child run carries its own key
        spec, fp = fingerprint_of(graph, graph_key)
        graphs[graph_key] = Graph(spec, spec.to_plain(), fp)
    with _lock:
        served = _served.setdefault(task_queue, Served(version))
        served.version = version
        served.graphs.update(graphs)
    return graphs[key].fingerprint


def forget(task_queue: str) -> None:
    """The worker on ``task_queue`` stopped."""
    with _lock:
        _served.pop(task_queue, None)


def admit(plain: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the input the run goes on with, its ``gecko_state["version"]``); raise RunRefused when this
    worker cannot serve it (see the module doc). Call in the workflow, before reading the input."""
    info = workflow.info()
    served = _served.get(info.task_queue)
    started_with = plain.get(INPUT_KEY)
    current = info.get_current_deployment_version()
    if current is not None and not current.deployment_name:  # an unversioned worker's default build id
        current = None
    version: dict[str, Any] = {
        "build_id": current.build_id if current is not None else None,
        "deployment": current.deployment_name if current is not None else None,
        "behavior": "pinned" if current is not None else "unversioned",
        "graph": started_with,
        "client_graph": started_with,
    }
    notes = plain.get(NOTES_KEY)
    if isinstance(notes, dict):  # a continued run: what the session's first run and moves said
        version.update((k, notes[k]) for k in _NOTES if k in notes)
    spec = plain.get("spec")
    key = spec.get("key") if isinstance(spec, dict) else None
    if (
        served is None or not isinstance(spec, dict) or not isinstance(key, str)
    ):  # a replayer, or no GeckoWorker here: as before
        return plain, version
    graph = served.graphs.get(key)
    if graph is None:
        top = key.split("/")[0]
        raise RunRefused(
            f'this worker does not serve workflow "{key}" (it serves: {", ".join(served.graphs) or "none"}); the '
            f'run waits for a worker started with the module of workflow "{top}"'
        )
    if started_with == graph.fingerprint.id or (started_with is None and spec == graph.plain):
        return plain, version  # (a continued run carries no graph id: its graph is this one)
    if current is not None:
        # Pinned: the run follows this version's graph. Every task of a pinned run runs on this
        # version, so this is deterministic; a run moved here (migrate) replays on it too.
        version["graph"] = graph.fingerprint.id
        if plain.get("spec") != graph.plain:
            version["followed"] = "worker"
            return {**plain, "spec": graph.plain}, version
        return plain, version
    version["worker_graph"] = graph.fingerprint.id
    report = check_specs(GraphSpec.from_plain(spec), graph.spec)
    if not report.safe:
        reasons = "; ".join(f"{c.node}: {c.kind} ({c.detail})" for c in report.unsafe)
        raise RunRefused(
            f'this worker\'s code for workflow "{key}" (graph {graph.fingerprint.id}) cannot serve this run, '
            f"started with graph {started_with or 'unknown'}: {reasons}. The run waits for a worker with "
            "its code; deploy with --build-id to pin runs to their version, or `gecko-temporal migrate` it"
        )
    if started_with is not None:
        version["mixed_code"] = True
        workflow.logger.warning(
            'run of "%s" started with graph %s goes on with this worker\'s code (graph %s): same structure, '
            "different node code; deploy with --build-id to keep each run on its own code",
            key,
            started_with,
            graph.fingerprint.id,
        )
    return plain, version


# --- continue-as-new: what the next run carries, and whether it moves to the current version --------


def carry(plain: dict[str, Any], version: dict[str, Any]) -> dict[str, Any]:
    """The next run's input with the graph this run follows (its fingerprint id) and the notes of
    ``gecko_state["version"]``: a continued run still knows the graph and code it started with."""
    carried = {k: version[k] for k in _NOTES if version.get(k) is not None}
    out = {**plain, NOTES_KEY: carried} if carried else dict(plain)
    if version.get("graph") is not None:
        out[INPUT_KEY] = version["graph"]
    return out


def may_upgrade(spec: GraphSpec, version: dict[str, Any]) -> bool:
    """Whether this run asks, at its continue-as-new, which version new runs start on: its graph
    says ``upgrade="at-continue-as-new"``, it is pinned, it is a session's top run (a subgraph
    child follows its parent's graph). Call in the workflow only: the patch gates the new command."""
    return (
        spec.upgrade == UPGRADE_AT_CONTINUE_AS_NEW
        and version.get("behavior") == "pinned"
        and "/" not in spec.key
        and workflow.patched(UPGRADE_PATCH)
    )


async def look_for_upgrade(spec: GraphSpec, version: dict[str, Any]) -> dict[str, Any] | None:
    """Ask (a local activity, recorded in history) which versions new runs start on and what graph
    each published; None when the run does not upgrade. Await it before the snapshot is taken, so
    anything arriving meanwhile lands in the snapshot."""
    if not may_upgrade(spec, version):
        return None
    try:
        found: dict[str, Any] = await workflow.execute_local_activity(
            UPGRADE_ACTIVITY,
            {"deployment": version["deployment"], "key": spec.key, "task_queue": workflow.info().task_queue},
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
        return found
    except ActivityError as exc:
        return {"problem": f"could not read which version new runs start on: {exc.cause or exc}"}


def next_version(
    found: dict[str, Any] | None, spec: GraphSpec, version: dict[str, Any], plain: dict[str, Any]
) -> tuple[dict[str, Any], ContinueAsNewVersioningBehavior | None]:
    """(the next run's input, its initial versioning behavior): auto-upgrade when the run moves to
    the version new runs start on (:func:`~gecko_temporal.core.run.upgrade.decide_upgrade`), else
    None (it stays pinned; ``gecko_state["version"]["upgrade"]`` and the log say why)."""
    if found is None:
        return carry(plain, version), None
    if found.get("problem"):
        decision: UpgradeDecision | None = UpgradeDecision(False, None, None, [str(found["problem"])])
    else:
        candidates = [_candidate(c) for c in found.get("candidates") or []]
        own = found.get("own") or {}
        snapshot = plain.get("snapshot") or {}
        decision = decide_upgrade(
            spec, own.get("code") or {}, own.get("schemas") or {}, version["build_id"], snapshot, candidates
        )
    if decision is None:
        version.pop("upgrade", None)
        return carry(plain, version), None
    if decision.move:
        workflow.logger.info(
            'run of "%s" moves from version %s to version %s at this continue-as-new',
            spec.key,
            version["build_id"],
            decision.target,
        )
        moved = {**version, "upgraded_from": {"build_id": version["build_id"], "graph": version.get("graph")}}
        moved.pop("upgrade", None)
        return carry(plain, moved), ContinueAsNewVersioningBehavior.AUTO_UPGRADE
    version["upgrade"] = decision.to_plain()  # gecko_state shows it now, and the next run carries it
    workflow.logger.warning(
        'run of "%s" stays on version %s at this continue-as-new: %s',
        spec.key,
        version["build_id"],
        "; ".join(decision.reasons),
    )
    return carry(plain, version), None


def _candidate(found: dict[str, Any]) -> Candidate:
    published = found.get("graph")
    if not isinstance(published, dict) or not isinstance(published.get("spec"), dict):
        return Candidate(str(found.get("build_id")), problem=found.get("problem"))
    return Candidate(
        str(found["build_id"]),
        graph=published.get("graph"),
        spec=GraphSpec.from_plain(published["spec"]),
        code=published.get("code") or {},
        schemas=published.get("schemas") or {},
        problem=published.get("problem"),
    )


def published_graph(graph: Graph, limit: int = METADATA_LIMIT) -> dict[str, Any]:
    """What a versioned worker publishes for one graph in its version's metadata: the compact spec,
    the fingerprint id, and (when it fits ``limit`` bytes of JSON) node code hashes and output
    schemas. A spec too big for ``limit`` is published as its id and a problem."""
    whole = {"format": 1, "graph": graph.fingerprint.id, "spec": graph.plain}
    full = {**whole, "code": graph.fingerprint.code, "schemas": graph.fingerprint.schemas}
    for candidate in (full, whole):
        if len(json.dumps(candidate)) <= limit:
            return candidate
    size = len(json.dumps(whole))
    return {
        "format": 1,
        "graph": graph.fingerprint.id,
        "problem": f"its graph is {size} bytes of JSON, over the {limit} bytes a version's metadata holds here",
    }


def own_graph(task_queue: str, key: str) -> dict[str, Any]:
    """The code hashes and output schemas of ``key`` as the worker on ``task_queue`` serves it."""
    served = _served.get(task_queue)
    graph = served.graphs.get(key) if served is not None else None
    if graph is None:
        return {}
    return {"graph": graph.fingerprint.id, "code": graph.fingerprint.code, "schemas": graph.fingerprint.schemas}


def served_graphs(task_queue: str) -> dict[str, Graph]:
    """The top-level graphs (no subgraph children) the worker on ``task_queue`` serves, by key."""
    served = _served.get(task_queue)
    return {k: g for k, g in (served.graphs.items() if served is not None else ()) if "/" not in k}
