"""The compiled graph and the values that cross the workflow/activity boundary.

The graph, node inputs and outputs, the run's parameters and its continue-as-new
:class:`RunSnapshot` are plain dataclasses so they serialize with Temporal's default JSON converter
and travel as workflow input: a running pipeline keeps the graph it started with, whatever code is
deployed later. ``Next`` and ``MemberResult`` are the pydantic values user code sees on either
side. No ``temporalio`` import here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal, Optional

from pydantic import BaseModel

from . import _codec
from .limits import PAYLOAD_LIMIT

def _build(cls: Any, data: dict[str, Any], **nested: Any) -> Any:
    """``cls`` from its plain-dict form, with ``nested`` fields already rebuilt; keys it does not
    know (from a newer client) are ignored."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known and k not in nested}, **nested)


#: Node kinds the interpreter knows.
KIND_FUNCTION = "function"
KIND_TEAM = "team"
KIND_WAIT = "wait"


@dataclass(frozen=True)
class RetrySpec:
    """Retry policy of one node or Team member (seconds)."""

    maximum_attempts: int = 3
    initial_interval: float = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval: Optional[float] = None
    non_retryable_error_types: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MemberSpec:
    """One member of a Team: its display name and how its activity runs."""

    name: str
    activity_type: str
    start_to_close_timeout: float
    heartbeat_timeout: Optional[float]
    retry: RetrySpec
    takes_context: bool = False


@dataclass(frozen=True)
class TeamSpec:
    """How a Team node runs its members (strategy is an ExecutionStrategy value)."""

    strategy: str
    members: list[MemberSpec]
    quorum: int = 1
    max_concurrency: Optional[int] = None


@dataclass(frozen=True)
class NodeSpec:
    """One node of the compiled graph."""

    name: str
    kind: str
    activity_type: str
    predecessors: list[str]
    successors: list[str]
    takes_context: bool = False
    reads: Optional[list[str]] = None
    history: Optional[list[str]] = None  # nodes whose outputs are shipped to it; None = all
    local: bool = False
    start_to_close_timeout: float = 300.0
    heartbeat_timeout: Optional[float] = 5.0
    retry: RetrySpec = field(default_factory=RetrySpec)
    team: Optional[TeamSpec] = None
    wait_timeout: Optional[float] = None
    wait_default: Optional[str] = None  # encoded value a timed-out wait yields; None means fail
    wait_prompt: str = ""


# A session's step bound must leave room for continue-as-new by step count: a loop as the long-runs
# docs describe runs for several runs (here five) before the runaway guard stops it.
DEFAULT_STEPS_PER_RUN = 2_000
DEFAULT_MAX_STEPS = 5 * DEFAULT_STEPS_PER_RUN


#: Layered: a layer's nodes start together and the next layer waits for all of them (super-steps).
SCHEDULING_LAYERED = "layered"
#: Eager: a node starts as soon as its inputs are ready, whatever else is still running.
SCHEDULING_EAGER = "eager"


@dataclass(frozen=True)
class GraphSpec:
    """A validated, immutable, serializable graph: what the one GeckoWorkflow interprets."""

    name: str
    key: str  # what workers look node code up by; the Workflow's name unless two share it
    entry: str
    nodes: list[NodeSpec]
    max_steps: int = DEFAULT_MAX_STEPS  # node steps of the whole session, counted across continue-as-new
    steps_per_run: int = DEFAULT_STEPS_PER_RUN  # continue-as-new after this many node steps in one run
    scheduling: str = "layered"  # SCHEDULING_LAYERED or SCHEDULING_EAGER (absent in older runs: layered)
    max_parallel: Optional[int] = None  # activities in flight at most; None: window.DEFAULT_MAX_PARALLEL

    def node(self, name: str) -> NodeSpec:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def to_plain(self) -> dict[str, Any]:
        """The compact plain form a run carries (see :func:`compact_spec`)."""
        return compact_spec(self)

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> "GraphSpec":
        """Rebuild from the plain dict it travels as, in a fraction of the converter's time: the
        compact form of :meth:`to_plain`, or the full form (every field of every node) that runs
        started before it carry."""
        if data.get("format") == COMPACT_FORMAT:
            data = expand_spec(data)
        def member(m: dict[str, Any]) -> MemberSpec:
            return _build(MemberSpec, m, retry=_build(RetrySpec, m["retry"]))

        def node(n: dict[str, Any]) -> NodeSpec:
            team = n.get("team")
            return _build(
                NodeSpec, n, retry=_build(RetrySpec, n.get("retry") or {}),
                team=_build(TeamSpec, team, members=[member(m) for m in team["members"]]) if team else None,
            )

        return _build(cls, data, nodes=[node(n) for n in data["nodes"]])


# --- the compact form of a spec ----------------------------------------------------------------
# A run carries its spec as its input, and Temporal refuses a payload over 2 MiB: every field of
# every node (~430 bytes a node) made graphs of 5,000 nodes unstartable. The compact form states
# each node field once, in "defaults" (the value most nodes have), and per node only what differs;
# edges are node indices, predecessors only when their order is not the one successors imply.
# Generic over NodeSpec's fields, so a field added later (with a default) needs no change here.

COMPACT_FORMAT = 2
_EDGE_FIELDS = ("name", "activity_type", "predecessors", "successors")


def _plain(value: Any) -> Any:
    """What ``value`` travels as (``dataclasses.asdict`` without its deep copies: 3x faster here)."""
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def compact_spec(spec: GraphSpec) -> dict[str, Any]:
    """``spec`` as the compact plain dict :meth:`GraphSpec.from_plain` reads back (exactly)."""
    index = {n.name: i for i, n in enumerate(spec.nodes)}
    node_fields = [f for f in fields(NodeSpec) if f.name not in _EDGE_FIELDS]
    rows = [{f.name: _plain(getattr(n, f.name)) for f in node_fields} for n in spec.nodes]
    # Every field's most common value is written out, even when it is the dataclass default: a
    # later release that changes a default must not change the graph of a run already going.
    defaults: dict[str, Any] = {}
    for f in node_fields:
        counts: dict[str, list[Any]] = {}
        for row in rows:
            seen = counts.setdefault(repr(row[f.name]), [0, row[f.name]])
            seen[0] += 1
        if counts:
            defaults[f.name] = max(counts.values(), key=lambda c: c[0])[1]  # ties: the first seen
    implied: dict[str, list[str]] = {n.name: [] for n in spec.nodes}
    for n in spec.nodes:
        for s in n.successors:
            implied.setdefault(s, []).append(n.name)
    nodes = []
    for n, row in zip(spec.nodes, rows):
        entry: dict[str, Any] = {"name": n.name}
        if n.activity_type != f"{spec.name}.{n.name}":
            entry["activity_type"] = n.activity_type
        if n.successors:
            entry["s"] = [index[s] for s in n.successors]
        if n.predecessors != implied.get(n.name):
            entry["p"] = [index[p] for p in n.predecessors]
        for f in node_fields:
            value = row[f.name]
            if value != defaults[f.name]:
                entry[f.name] = value
        nodes.append(entry)
    plain: dict[str, Any] = {"format": COMPACT_FORMAT}
    plain.update((f.name, _plain(getattr(spec, f.name))) for f in fields(GraphSpec) if f.name != "nodes")
    plain["defaults"] = defaults
    plain["nodes"] = nodes
    return plain


def expand_spec(data: dict[str, Any]) -> dict[str, Any]:
    """The full plain form (every node with every field it does not leave at its default) of a
    compact one: what :meth:`GraphSpec.from_plain` has always read."""
    names = [n["name"] for n in data["nodes"]]
    defaults = data.get("defaults") or {}
    predecessors: list[list[str]] = [[] for _ in names]
    for i, n in enumerate(data["nodes"]):
        for s in n.get("s", ()):
            predecessors[s].append(names[i])
    full = []
    for i, n in enumerate(data["nodes"]):
        node = {**defaults, **{k: v for k, v in n.items() if k not in ("s", "p")}}
        node.setdefault("activity_type", f"{data['name']}.{n['name']}")
        node["successors"] = [names[s] for s in n.get("s", ())]
        node["predecessors"] = [names[p] for p in n["p"]] if "p" in n else predecessors[i]
        full.append(node)
    rest = {k: v for k, v in data.items() if k not in ("format", "defaults", "nodes")}
    return {**rest, "nodes": full}


# --- values crossing the boundary -----------------------------------------------------------

@dataclass
class Jump:
    """A request to run ``node`` next with ``input`` (encoded JSON text)."""

    node: str
    input: str = "null"
    source: str = ""


@dataclass
class NodeInput:
    """What one node (or Team member) activity receives. Values are encoded JSON text."""

    graph: str
    node: str
    input: str
    session_id: str
    step: int
    member: Optional[int] = None
    state: Optional[dict[str, str]] = None  # only for nodes that take a context
    history: Optional[dict[str, str]] = None
    run_input: Optional[str] = None
    payload_limit: Optional[int] = None  # the run's (RunParams.payload_limit); None: Temporal's 2 MiB


@dataclass
class NodeOutput:
    """What one node activity returns: its output, an optional jump, and its state delta."""

    value: str
    jump: Optional[Jump] = None
    writes: dict[str, str] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)

    def to_plain(self) -> dict[str, Any]:
        """The plain dict it travels as: what ``dataclasses.asdict`` gives (the converter sorts keys,
        so the JSON is the same bytes), without asdict's recursive deep copy of every value."""
        jump = self.jump
        return {"value": self.value,
                "jump": None if jump is None else {"node": jump.node, "input": jump.input, "source": jump.source},
                "writes": dict(self.writes), "deletes": list(self.deletes)}

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> "NodeOutput":
        """Rebuild from the plain dict it travels as (cheaper than the converter's reflection)."""
        jump = data.get("jump")
        return cls(value=data["value"], jump=Jump(**jump) if jump else None,
                   writes=data.get("writes") or {}, deletes=data.get("deletes") or [])


@dataclass
class RunSnapshot:
    """What a run carries across continue-as-new: enough to go on exactly where it was.

    It travels as ``RunParams.snapshot``, a plain dict whose keys recorded histories hold, so
    :meth:`to_plain` and :meth:`from_plain` keep that dict exactly (a missing key takes the
    default a first run starts with).
    """

    scheduler: Optional[dict[str, Any]] = None  # Scheduler.snapshot(): inbox, jumps, outputs, step
    state: dict[str, str] = field(default_factory=dict)
    deadline: Optional[float] = None  # workflow time the run's timeout ends at
    run: int = 1  # 1 for the first run, +1 at each continue-as-new
    completed: list[str] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)  # WaitForInput answers not yet taken
    layer: int = 0
    warned: list[str] = field(default_factory=list)  # nodes already warned about a large input
    # A layer too wide for one run's history, continued in the next run: {"tasks": [[node, input,
    # step, jumped], ...], "done": {task index: NodeOutput plain}} (absent otherwise).
    partial_layer: Optional[dict[str, Any]] = None

    def to_plain(self) -> dict[str, Any]:
        plain = {"scheduler": self.scheduler, "state": self.state, "deadline": self.deadline, "run": self.run,
                 "completed": self.completed, "rejected": self.rejected, "answers": self.answers,
                 "layer": self.layer}
        if self.warned:  # only when there is one: snapshots of runs that warned nobody stay as before
            plain["warned"] = self.warned
        if self.partial_layer is not None:  # likewise
            plain["partial_layer"] = self.partial_layer
        return plain

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> "RunSnapshot":
        return _build(cls, data)


@dataclass
class RunParams:
    """The one GeckoWorkflow's input. ``snapshot`` is set when a run continues as new."""

    spec: GraphSpec
    input: str
    timeout: Optional[float] = None
    snapshot: Optional[dict[str, Any]] = None
    # What one payload may weigh: Temporal's 2 MiB, more when the starting client has a payload
    # store (payloads.py). Carried by the run so every replay checks sizes against the same bound.
    payload_limit: int = PAYLOAD_LIMIT

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> "RunParams":
        return _build(cls, data, spec=GraphSpec.from_plain(data["spec"]))


# --- user-facing values ---------------------------------------------------------------------

class Next(BaseModel):
    """Returned by a node: jump to ``node`` and give it ``input`` (None when omitted).

    The jumping node's static successors are skipped; jumps may go backwards (agent loops).
    """

    model_config = {"frozen": True}

    node: str
    input: Any = None

    def __init__(self, node: str, input: Any = None, **kw: Any) -> None:
        super().__init__(node=node, input=input, **kw)


_codec.register_type(Next)


class MemberError(BaseModel):
    """Why a member failed or was cancelled."""

    type: str
    message: str


class MemberResult(BaseModel):
    """One member's outcome. A Team's output is always a list of these, in member order."""

    member: str
    index: int
    status: Literal["succeeded", "failed", "cancelled"]
    result: Any = None
    error: Optional[MemberError] = None
    duration: float = 0.0
    winner: bool = False

    @property
    def is_success(self) -> bool:
        return self.status == "succeeded"


# Their wire tag is "module:Class" (see _codec), and values already stored in state, outputs and
# recorded histories name gecko_temporal.team, their public home: keep that name on the wire.
MemberError.__module__ = MemberResult.__module__ = "gecko_temporal.team"
_codec.register_type(MemberError)
_codec.register_type(MemberResult)
