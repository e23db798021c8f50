"""Whether a run moves to the current version's graph at its continue-as-new. Pure.

A run of a graph built with ``Workflow(upgrade="at-continue-as-new")`` and pinned to a Worker
Deployment version asks, each time it continues as new, which version new runs start on. When that
is another version, :func:`decide_upgrade` compares the graph the run follows with the graph that
version published, *from the point the run is at*: the run's snapshot (what the next run starts
from) names the nodes it still needs. The next run then starts on the new version
(auto-upgrade) and follows its graph, or stays pinned where it is and says why.

From a continue-as-new point, a change is unsafe only when the snapshot refers to what changed:

- a node the run still needs (it has inputs waiting, a jump or Send queued, a wait or a partial
  layer carried over) is renamed, removed, became another kind, or its Team lost or gained members;
- a node with inputs waiting was re-wired (its inputs were gathered under the old edges);
- an output model gained required fields, and the run already holds outputs of that node.

Everything else is what the move is for: new and changed bodies, added nodes, new router targets,
changed options and signatures, a new entry point (the run is past it), reordered Team members.
A node renamed that the run has already left behind is safe, but its past output stays in
``context.history`` under the old name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gecko_temporal.core.spec import GraphSpec
from gecko_temporal.core.versions import (
    EDGES_CHANGED,
    KIND_CHANGED,
    NODE_REMOVED,
    NODE_RENAMED,
    OUTPUT_SCHEMA,
    TEAM_CHANGED,
    Change,
    UpgradeReport,
    check_specs,
    check_upgrade,
    fingerprint,
)

#: Changes that leave a node the run still needs with nothing (or something else) to run.
_LOSES_A_NEEDED_NODE = {NODE_RENAMED, NODE_REMOVED, KIND_CHANGED, TEAM_CHANGED}


def needed_nodes(snapshot: dict[str, Any]) -> set[str]:
    """The nodes a continued run's snapshot (``RunSnapshot.to_plain()``) refers to for what is
    still ahead: nodes with inputs waiting and the nodes that delivered them, queued jumps and
    Sends, the tasks of a layer carried over, WaitForInput answers not yet taken."""
    sched = snapshot.get("scheduler") or {}
    needed: set[str] = set()
    for node, delivered in (sched.get("inbox") or {}).items():
        needed.add(node)
        needed.update(delivered or {})
    for queued in [*(sched.get("jumps") or []), *(sched.get("sends") or [])]:
        needed.add(queued["node"])
    partial = snapshot.get("partial_layer") or {}
    needed.update(task[0] for task in partial.get("tasks") or [])
    needed.update(snapshot.get("answers") or {})
    return needed


def held_outputs(snapshot: dict[str, Any]) -> set[str]:
    """Nodes whose outputs the run carries on (``context.history``)."""
    return set((snapshot.get("scheduler") or {}).get("outputs") or {})


def judge(
    report: UpgradeReport, needed: Iterable[str], inputs_waiting: Iterable[str], held: Iterable[str]
) -> UpgradeReport:
    """``report`` (the run's graph -> the new one) judged from a continue-as-new point (module doc)."""
    needed, waiting, held = set(needed), set(inputs_waiting), set(held)
    judged = []
    for change in report.changes:
        top = change.node.split("/")[0]
        why = None
        if change.kind in _LOSES_A_NEEDED_NODE and top in needed:
            why = "this run still needs it"
        elif change.kind == EDGES_CHANGED and top in waiting:
            why = "this run gathered its inputs under the old edges"
        elif change.kind == OUTPUT_SCHEMA and top in held:
            why = "this run holds outputs of it written by the old code"
        elif change.kind == OUTPUT_SCHEMA and not change.safe:
            judged.append(Change(change.kind, change.node, True, change.detail + " (this run holds none)"))
            continue
        if why is not None:
            judged.append(Change(change.kind, change.node, False, f"{why}: {change.detail}"))
        else:
            judged.append(Change(change.kind, change.node, True, change.detail))
    return UpgradeReport(report.old, report.new, judged)


def judge_at(report: UpgradeReport, snapshot: dict[str, Any]) -> UpgradeReport:
    """``report`` judged from the point the continued run's ``snapshot`` is at: what it still needs,
    the nodes with inputs waiting, the outputs it holds (see :func:`judge`)."""
    waiting = (snapshot.get("scheduler") or {}).get("inbox") or {}
    return judge(report, needed_nodes(snapshot), waiting, held_outputs(snapshot))


@dataclass(frozen=True)
class Candidate:
    """A version new runs may start on, and the graph it published for this run's graph key
    (``spec`` None when it published none). ``code``/``schemas`` as in a Fingerprint, if published."""

    build_id: str
    graph: str | None = None
    spec: GraphSpec | None = None
    code: dict[str, str] = field(default_factory=dict)
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    problem: str | None = None  # why it published no usable graph


@dataclass(frozen=True)
class UpgradeDecision:
    """Move to ``target`` at this continue-as-new, or stay; ``reasons`` say why a run stays."""

    move: bool
    target: str | None
    graph: str | None
    reasons: list[str]
    changes: list[str] = field(default_factory=list)

    def to_plain(self) -> dict[str, Any]:
        """What ``gecko_state["version"]["upgrade"]`` shows."""
        return {
            "move": self.move,
            "target": self.target,
            "graph": self.graph,
            "reasons": list(self.reasons),
            "changes": list(self.changes),
        }


def decide_upgrade(
    spec: GraphSpec,
    code: dict[str, str],
    schemas: dict[str, dict[str, Any]],
    pinned_to: str,
    snapshot: dict[str, Any],
    candidates: list[Candidate],
) -> UpgradeDecision | None:
    """Whether the run (following ``spec``, whose node code hashes are ``code``, pinned to build id
    ``pinned_to``) moves at this continue-as-new to the version(s) new runs start on: ``candidates``
    (the current version, and a ramping one if any: Temporal picks between them, so each must be
    safe). None when there is nothing to move to (every candidate is where the run is)."""
    others = [c for c in candidates if c.build_id != pinned_to]
    if not others:
        return None
    target = others[0]
    reasons: list[str] = []
    lines: list[str] = []
    old = fingerprint(spec, code, schemas)
    for c in others:
        if c.spec is None:
            reasons.append(
                f"version {c.build_id} published no graph for this run: "
                f"{c.problem or 'its workers have not started, or run an older gecko_temporal'}"
            )
            continue
        if c.spec.key != spec.key or c.spec.name != spec.name:
            reasons.append(
                f'version {c.build_id} serves workflow "{c.spec.name}" under "{c.spec.key}", not "{spec.name}" '
                f'under "{spec.key}"'
            )
            continue
        new = fingerprint(c.spec, c.code, c.schemas)
        report = check_upgrade(old, new, spec, c.spec) if code and c.code else check_specs(spec, c.spec)
        verdict = judge_at(report, snapshot)
        lines.extend(f"{c.build_id}: {change.line()}" for change in verdict.changes)
        reasons.extend(f"version {c.build_id}: {x.node}: {x.kind} ({x.detail})" for x in verdict.unsafe)
    return UpgradeDecision(not reasons, target.build_id, target.graph, reasons, lines)
