"""A graph's version: its fingerprint, and which differences between two versions are safe. Pure.

**The fingerprint** of a compiled graph is a SHA-256 over one canonical JSON document (keys sorted,
no spaces, UTF-8)::

    {"format": 1,
     "graph": <the compact spec (GraphSpec.to_plain) without its "key">,
     "code": {<node>: <code hash>, <node>/<member>: <code hash>, <subgraph key>/<node>: ...}}

A node's *code hash* (``core/code_hash.py``, the one the node cache uses too) is the SHA-256 of
the source text of what runs for it (its function, the class of a callable object or agent, its
router, a Team's ``input_mapper``) and of the plain module-level constants a function reads. Its
first 12 hex digits are the *graph id* shown in ``gecko_state`` and logs. So the fingerprint
changes when the shape, a node option or any node's code changes, and never when only code
outside the nodes does.

**The upgrade check** (:func:`check_upgrade`) lists every difference between an old and a new
version of one graph as a :class:`Change`: what kind, which node, and whether a run started on the
old version may go on on the new one from any point (``safe``) or not. ``gecko-temporal
check-upgrade`` prints it; workers run the structural part against the graph each run carries.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gecko_temporal.core.build.nodes import NodeCode
from gecko_temporal.core.code_hash import code_hash
from gecko_temporal.core.spec import KIND_SUBGRAPH, KIND_TEAM, GraphSpec, NodeSpec

if TYPE_CHECKING:
    from gecko_temporal.core.build.graph import Workflow

FORMAT = 1
ID_LENGTH = 12

# Kinds of change, as check_upgrade names them.
NODE_ADDED = "node added"
NODE_REMOVED = "node removed"
NODE_RENAMED = "node renamed"
BODY_CHANGED = "body changed"
SIGNATURE_CHANGED = "signature changed"
KIND_CHANGED = "kind changed"
EDGES_CHANGED = "edges changed"
NEW_TARGETS = "new router targets"
TEAM_CHANGED = "team membership changed"
TEAM_REORDERED = "team members reordered"
OUTPUT_SCHEMA = "output schema changed"
OPTIONS_CHANGED = "options changed"
ENTRY_CHANGED = "entry point changed"


def _sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def node_code_hashes(tables: dict[str, dict[str, NodeCode]], top: str) -> dict[str, str]:
    """``{node: hash}`` for every node of the graph ``top`` and, as ``key/node``, of its subgraphs
    (``tables``: graph key -> node table); Team members as ``node/member``."""
    hashes: dict[str, str] = {}
    for key in sorted(tables):
        prefix = "" if key == top else key[len(top) + 1 :] + "/"
        for name, node in tables[key].items():
            parts = [node.kind]
            if node.callee is not None:
                parts.append(code_hash(node.callee.call))
            if node.router is not None:
                parts.append("router:" + code_hash(node.router.call))
            if node.input_mapper is not None:
                parts.append("input_mapper:" + code_hash(node.input_mapper))
            hashes[prefix + name] = _sha("\n".join(parts))
            for member in node.members:
                hashes[f"{prefix}{name}/{member.name}"] = code_hash(member.callee.call)
    return hashes


def output_schemas(tables: dict[str, dict[str, NodeCode]], top: str) -> dict[str, dict[str, Any]]:
    """The JSON schema of each node's pydantic output model (its return annotation), by node."""
    schemas: dict[str, dict[str, Any]] = {}
    table = tables.get(top, {})
    seen: dict[int, Any] = {}  # one function often serves many nodes
    for name, node in table.items():
        if node.callee is None:
            continue
        call = node.callee.call
        if id(call) not in seen:
            try:  # annotations as strings (from __future__ import annotations) resolved in their module
                seen[id(call)] = inspect.signature(call, eval_str=True).return_annotation
            except Exception:
                seen[id(call)] = None
        returns = seen[id(call)]
        schema = getattr(returns, "model_json_schema", None)
        if inspect.isclass(returns) and callable(schema):
            try:
                schemas[name] = schema()
            except Exception:  # a model pydantic cannot describe: treated as having no schema
                continue
    return schemas


@dataclass(frozen=True)
class Fingerprint:
    """One version of a graph: its structure, each node's code hash, and the id of both."""

    graph: dict[str, Any]  # the compact spec without its key
    code: dict[str, str]
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def document(self) -> str:
        """The canonical JSON the fingerprint is the hash of (see the module doc)."""
        return json.dumps(
            {"format": FORMAT, "graph": self.graph, "code": self.code},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @property
    def sha256(self) -> str:
        return _sha(self.document)

    @property
    def id(self) -> str:
        """The short id (12 hex digits) shown in gecko_state, logs and ``check-upgrade``."""
        return self.sha256[:ID_LENGTH]

    @property
    def shape_id(self) -> str:
        """The id of the structure alone: equal when only node code differs."""
        return _sha(json.dumps(self.graph, sort_keys=True, separators=(",", ":")))[:ID_LENGTH]


def fingerprint(spec: GraphSpec, code: dict[str, str], schemas: dict[str, dict[str, Any]] | None = None) -> Fingerprint:
    """The fingerprint of ``spec`` with the node code hashes ``code`` (:func:`node_code_hashes`)."""
    return Fingerprint(graph=spec_shape(spec), code=dict(code), schemas=dict(schemas or {}))


def spec_shape(spec: GraphSpec) -> dict[str, Any]:
    """The compact spec without its key (the key only says where a worker finds the code)."""
    plain = spec.to_plain()
    plain.pop("key", None)
    _drop_keys(plain)
    return plain


def _drop_keys(plain: dict[str, Any]) -> None:
    # A child graph sits in its node, or in the compact form's defaults when most nodes share it.
    for node in [*plain.get("nodes", ()), plain.get("defaults") or {}]:
        child = node.get("subgraph")
        if isinstance(child, dict):
            child.pop("key", None)
            _drop_keys(child)


# --- the upgrade check ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One difference between two versions of a graph, and whether runs may cross it."""

    kind: str
    node: str
    safe: bool
    detail: str

    def line(self) -> str:
        return f"{'safe  ' if self.safe else 'UNSAFE'} {self.kind:<26} {self.node}: {self.detail}"


@dataclass(frozen=True)
class UpgradeReport:
    """Every :class:`Change` from ``old`` to ``new``; ``safe`` when none is unsafe."""

    old: str
    new: str
    changes: list[Change]

    @property
    def safe(self) -> bool:
        return all(c.safe for c in self.changes)

    @property
    def unsafe(self) -> list[Change]:
        return [c for c in self.changes if not c.safe]

    def text(self) -> str:
        head = f"{self.old} -> {self.new}: "
        if not self.changes:
            return head + "identical (same structure and code)"
        verdict = "safe for runs in flight" if self.safe else f"{len(self.unsafe)} unsafe change(s)"
        return "\n".join([head + verdict, *("  " + c.line() for c in self.changes)])

    def to_plain(self) -> dict[str, Any]:
        return {
            "old": self.old,
            "new": self.new,
            "safe": self.safe,
            "changes": [{"kind": c.kind, "node": c.node, "safe": c.safe, "detail": c.detail} for c in self.changes],
        }


def _member_names(node: NodeSpec) -> list[str]:
    return [m.name for m in node.team.members] if node.team is not None else []


_OPTION_FIELDS = ("local", "start_to_close_timeout", "heartbeat_timeout", "retry", "reads", "history", "wait_timeout")


def check_upgrade(old: Fingerprint, new: Fingerprint, old_spec: GraphSpec, new_spec: GraphSpec) -> UpgradeReport:
    """Every difference from ``old`` to ``new`` (fingerprints and specs of one graph), classified.

    Unsafe: a node removed or renamed (a run waiting at it or bound for it has nowhere to go), a
    changed kind, signature or ``context`` use, rewired edges, new router targets, a Team member
    removed, renamed or added, an output model with new required fields (old values no longer
    validate), a new entry point. Safe: a node added downstream of the old graph, a body change
    (the new code runs from the node's next step; steps already run keep their outputs), Team
    members reordered (matched by name), changed options (timeouts, retries)."""
    changes = _node_changes(old_spec, new_spec, old.code, new.code, "")
    changes.extend(_schema_changes(old.schemas, new.schemas))
    return UpgradeReport(old.id, new.id, changes)


def check_specs(old_spec: GraphSpec, new_spec: GraphSpec) -> UpgradeReport:
    """The structural part of :func:`check_upgrade`, for when only the specs are at hand (a worker
    facing a run's graph): node code and output schemas are not compared."""
    return UpgradeReport("run", "worker", _node_changes(old_spec, new_spec, {}, {}, ""))


def _node_changes(
    old_spec: GraphSpec, new_spec: GraphSpec, old_code: dict[str, str], new_code: dict[str, str], prefix: str
) -> list[Change]:
    changes: list[Change] = []
    old_nodes = {n.name: n for n in old_spec.nodes}
    new_nodes = {n.name: n for n in new_spec.nodes}
    gone = [n for n in old_nodes if n not in new_nodes]
    added = [n for n in new_nodes if n not in old_nodes]
    renamed = _renames(gone, added, old_nodes, new_nodes, old_code, new_code, prefix)
    for old_name, new_name in renamed.items():
        changes.append(
            Change(
                NODE_RENAMED,
                prefix + old_name,
                False,
                f'now "{new_name}": a run waiting at or bound for "{old_name}" has no node of that name to go on with',
            )
        )
    for name in gone:
        if name not in renamed:
            changes.append(
                Change(NODE_REMOVED, prefix + name, False, "a run waiting at or bound for it has no node to go on with")
            )
    for name in added:
        if name in renamed.values():
            continue
        node = new_nodes[name]
        if node.predecessors:
            where = ", ".join(f'"{p}"' for p in node.predecessors)
            changes.append(
                Change(
                    NODE_ADDED,
                    prefix + name,
                    True,
                    f"downstream of {where}: runs not yet past it run it, runs already past it do not",
                )
            )
        else:
            changes.append(
                Change(NODE_ADDED, prefix + name, False, "no edge leads to it: only jumps the old code lacks reach it")
            )
    if renamed.get(old_spec.entry, old_spec.entry) != new_spec.entry:
        changes.append(Change(ENTRY_CHANGED, prefix + new_spec.entry, False, f'the entry point was "{old_spec.entry}"'))
    names = ({renamed.get(n, n) for n in old_nodes}, set(new_nodes))  # old names as the new graph calls them
    for name, old_node in old_nodes.items():
        new_node = new_nodes.get(renamed.get(name, name))
        if new_node is not None:
            changes.extend(_one_node(prefix, old_node, new_node, old_code, new_code, renamed, names))
    return changes


def _renames(
    gone: list[str],
    added: list[str],
    old_nodes: dict[str, NodeSpec],
    new_nodes: dict[str, NodeSpec],
    old_code: dict[str, str],
    new_code: dict[str, str],
    prefix: str,
) -> dict[str, str]:
    """Removed nodes that reappear under a new name: the same code, else the same kind in the same
    place (the same predecessors and successors among the other nodes): old name -> new name."""
    found: dict[str, str] = {}
    free = list(added)
    for name in gone:
        code = old_code.get(prefix + name)
        same = [a for a in free if code is not None and new_code.get(prefix + a) == code]
        if not same:
            old = old_nodes[name]
            same = [
                a
                for a in free
                if new_nodes[a].kind == old.kind
                and [p for p in new_nodes[a].predecessors if p in old_nodes] == old.predecessors
                and [s for s in old.successors if s in new_nodes]
                == [s for s in new_nodes[a].successors if s in old_nodes]
            ]
        if same:
            found[name] = same[0]
            free.remove(same[0])
    return found


def _one_node(
    prefix: str,
    before: NodeSpec,
    after: NodeSpec,
    old_code: dict[str, str],
    new_code: dict[str, str],
    renamed: dict[str, str],
    names: tuple[set[str], set[str]],
) -> list[Change]:
    changes: list[Change] = []
    where, now = prefix + before.name, prefix + after.name
    if before.kind != after.kind:
        return [Change(KIND_CHANGED, where, False, f"was a {before.kind} node, now a {after.kind} node")]
    if before.takes_context != after.takes_context:
        uses = "now takes" if after.takes_context else "no longer takes"
        changes.append(
            Change(
                SIGNATURE_CHANGED,
                where,
                False,
                f"{uses} a context parameter: the old graph ships it {'no' if after.takes_context else 'a'} state",
            )
        )
    if where in old_code and now in new_code and old_code[where] != new_code[now]:
        changes.append(Change(BODY_CHANGED, where, True, "its code changed; the new code runs from its next step"))
    # Edges among nodes both graphs have (renamed ones by their new name); a new node's own edges
    # are its NODE_ADDED change.
    old_names, new_names = names

    def mapped(nodes: list[str]) -> list[str]:
        return [renamed.get(n, n) for n in nodes if renamed.get(n, n) in new_names]

    lost = [s for s in before.successors if renamed.get(s, s) not in new_names]
    if (
        mapped(before.successors) != [s for s in after.successors if s in old_names]
        or mapped(before.predecessors) != [p for p in after.predecessors if p in old_names]
        or lost
    ):
        was = ", ".join(before.successors) or "nothing"
        to = ", ".join(after.successors) or "nothing"
        changes.append(Change(EDGES_CHANGED, where, False, f"edges rewired: led to {was}, now to {to}"))
    old_targets = [renamed.get(t, t) for t in before.route_targets or []]
    new_targets = [t for t in (after.route_targets or []) if t not in old_targets]
    if new_targets or (after.router is not None and before.router is None):
        shown = ", ".join(f'"{t}"' for t in new_targets) or "a router"
        changes.append(Change(NEW_TARGETS, where, False, f"may now route to {shown}, which runs of the old graph lack"))
    if before.kind == KIND_TEAM:
        changes.extend(_team_changes(where, now, before, after, old_code, new_code))
    for option in _OPTION_FIELDS:
        if getattr(before, option) != getattr(after, option):
            changes.append(
                Change(
                    OPTIONS_CHANGED, where, True, f"{option}: {getattr(before, option)!r} -> {getattr(after, option)!r}"
                )
            )
    if before.kind == KIND_SUBGRAPH and before.subgraph is not None and after.subgraph is not None:
        changes.extend(_node_changes(before.subgraph, after.subgraph, old_code, new_code, where + "/"))
    return changes


def _team_changes(
    where: str, now: str, before: NodeSpec, after: NodeSpec, old_code: dict[str, str], new_code: dict[str, str]
) -> list[Change]:
    old_members, new_members = _member_names(before), _member_names(after)
    changes: list[Change] = []
    gone = [m for m in old_members if m not in new_members]
    added = [m for m in new_members if m not in old_members]
    if gone or added:
        parts = []
        if gone:
            parts.append("removed or renamed " + ", ".join(f'"{m}"' for m in gone))
        if added:
            parts.append("added " + ", ".join(f'"{m}"' for m in added))
        changes.append(
            Change(
                TEAM_CHANGED,
                where,
                False,
                "; ".join(parts) + ": a Team running on the old graph starts its old members",
            )
        )
    elif old_members != new_members:
        changes.append(
            Change(TEAM_REORDERED, where, True, f"members now {', '.join(new_members)} (matched by name, not position)")
        )
    for m in new_members:
        old_key, new_key = f"{where}/{m}", f"{now}/{m}"
        if m in old_members and old_key in old_code and new_key in new_code and old_code[old_key] != new_code[new_key]:
            changes.append(Change(BODY_CHANGED, old_key, True, "the member's code changed"))
    return changes


def _schema_changes(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> list[Change]:
    changes: list[Change] = []
    for node in sorted(set(old) & set(new)):
        if old[node] == new[node]:
            continue
        old_props = set(old[node].get("properties") or {})
        required = [f for f in new[node].get("required") or [] if f not in old_props]
        if required:
            changes.append(
                Change(
                    OUTPUT_SCHEMA,
                    node,
                    False,
                    f"new required field(s) {', '.join(required)}: outputs the old code wrote no longer validate",
                )
            )
        else:
            changes.append(Change(OUTPUT_SCHEMA, node, True, "the output model changed; old outputs still validate"))
    return changes


def graph_fingerprint(spec: GraphSpec, tables: dict[str, dict[str, NodeCode]], top: str | None = None) -> Fingerprint:
    """The fingerprint of ``spec`` served with the node tables ``tables`` (graph key -> table)."""
    top = top or spec.key
    return fingerprint(spec, node_code_hashes(tables, top), output_schemas(tables, top))


def workflow_fingerprint(wf: Workflow, key: str | None = None) -> tuple[GraphSpec, Fingerprint]:
    """``wf`` compiled (under ``key``) and its fingerprint, its subgraphs' code included."""
    key = key or wf.name
    spec = wf.compile(key)
    tables = {key: wf.node_table(), **{k: sub.node_table() for k, sub in wf.subgraphs(key).items()}}
    return spec, graph_fingerprint(spec, tables, key)


#: Changes to a node a run already reached that a migration cannot cross: replaying the run's
#: history on the new graph would issue other commands (Temporal's non-determinism error) or
#: leave the run at a node the new graph lacks.
_REPLAY_BREAKING = {NODE_RENAMED, NODE_REMOVED, KIND_CHANGED, EDGES_CHANGED, ENTRY_CHANGED, TEAM_CHANGED}


def check_migration(report: UpgradeReport, reached: Iterable[str]) -> UpgradeReport:
    """``report`` (from the run's graph to the new one) judged for moving one run that has
    ``reached`` these nodes (ran, runs or waits at them): a change that breaks the replay of a
    reached node is unsafe; any change to a node still ahead is what the move is for, so safe."""
    seen = set(reached)
    judged = []
    for change in report.changes:
        top = change.node.split("/")[0]
        if top in seen and change.kind in _REPLAY_BREAKING:
            judged.append(
                Change(
                    change.kind, change.node, False, f"this run already reached it, so it cannot move: {change.detail}"
                )
            )
        elif change.kind == ENTRY_CHANGED:
            judged.append(Change(change.kind, change.node, False, change.detail))
        else:
            judged.append(Change(change.kind, change.node, True, change.detail))
    return UpgradeReport(report.old, report.new, judged)
