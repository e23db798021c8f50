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

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from temporalio import workflow

from gecko_temporal.core.spec import GraphSpec
from gecko_temporal.core.versions import Fingerprint, check_specs, workflow_fingerprint

if TYPE_CHECKING:
    from temporalio.common import WorkerDeploymentVersion

    from gecko_temporal.core.build.graph import Workflow

#: The key of a run's input that carries the fingerprint id of the graph its client compiled.
INPUT_KEY = "graph_version"


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
