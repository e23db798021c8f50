"""The compiled graph and the values that cross the workflow/activity boundary.

The graph, node inputs and outputs, the run's parameters and its continue-as-new
:class:`RunSnapshot` are plain dataclasses so they serialize with Temporal's default JSON converter
and travel as workflow input: a running pipeline keeps the graph it started with, whatever code is
deployed later. ``Next`` and ``MemberResult`` are the pydantic values user code sees on either
side. No ``temporalio`` import here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel

from gecko_temporal.core import codec
from gecko_temporal.core.limits import PAYLOAD_LIMIT

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_D = TypeVar("_D", bound="DataclassInstance")


def _build(cls: type[_D], data: dict[str, Any], **nested: Any) -> _D:
    """``cls`` from its plain-dict form, with ``nested`` fields already rebuilt; keys it does not
    know (from a newer client) are ignored."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known and k not in nested}, **nested)


#: Node kinds the interpreter knows.
KIND_FUNCTION = "function"
KIND_TEAM = "team"
KIND_WAIT = "wait"
KIND_SUBGRAPH = "subgraph"  # another Workflow, run as a child GeckoWorkflow (NodeSpec.subgraph)


@dataclass(frozen=True)
class RetrySpec:
    """Retry policy of one node or Team member (seconds)."""

    maximum_attempts: int = 3
    initial_interval: float = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval: float | None = None
    non_retryable_error_types: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MemberSpec:
    """One member of a Team: its display name and how its activity runs."""

    name: str
    activity_type: str
    start_to_close_timeout: float
    heartbeat_timeout: float | None
    retry: RetrySpec
    takes_context: bool = False
    limit: str | None = None  # its own named Limit (Team(member_limits=) or its @step(limit=)), if any


@dataclass(frozen=True)
class TeamSpec:
    """How a Team node runs its members (strategy is an ExecutionStrategy value)."""

    strategy: str
    members: list[MemberSpec]
    quorum: int = 1
    max_concurrency: int | None = None


@dataclass(frozen=True)
class NodeSpec:
    """One node of the compiled graph."""

    name: str
    kind: str
    activity_type: str
    predecessors: list[str]
    successors: list[str]
    takes_context: bool = False
    reads: list[str] | None = None
    history: list[str] | None = None  # nodes whose outputs are shipped to it; None = all
    local: bool = False
    start_to_close_timeout: float = 300.0
    heartbeat_timeout: float | None = 5.0
    retry: RetrySpec = field(default_factory=RetrySpec)
    team: TeamSpec | None = None
    wait_timeout: float | None = None
    wait_default: str | None = None  # encoded value a timed-out wait yields; None means fail
    wait_prompt: str = ""
    # A subgraph node's compiled child graph: it travels inside the parent's spec, so a running
    # pipeline keeps the child graph it started with. Left out of the plain form when None, so
    # specs of graphs without subgraphs stay the same bytes (RunParams.to_plain).
    subgraph: GraphSpec | None = None
    # Conditional edges (add_conditional_edges): the router's name, and the nodes it may route or
    # Send to (None: any node). Both None when the node has no router.
    router: str | None = None
    route_targets: list[str] | None = None
    limit: str | None = None  # the named Limit its activities go through (flow control), if any


# A session's step bound must leave room for continue-as-new by step count: a loop as the long-runs
# docs describe runs for several runs (here five) before the runaway guard stops it.
DEFAULT_STEPS_PER_RUN = 2_000
DEFAULT_MAX_STEPS = 5 * DEFAULT_STEPS_PER_RUN


#: Layered: a layer's nodes start together and the next layer waits for all of them (super-steps).
SCHEDULING_LAYERED = "layered"
#: Eager: a node starts as soon as its inputs are ready, whatever else is still running.
SCHEDULING_EAGER = "eager"
#: Workflow(upgrade=...): a pinned run moves to the current version at its next continue-as-new
#: when core/run/upgrade.py finds the move safe from that point.
UPGRADE_AT_CONTINUE_AS_NEW = "at-continue-as-new"


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
    reducers: dict[str, str] = field(default_factory=dict)  # state key -> reducer name (state.REDUCERS)
    max_parallel: int | None = None  # activities in flight at most; None: window.DEFAULT_MAX_PARALLEL
    upgrade: str | None = None  # UPGRADE_AT_CONTINUE_AS_NEW, or None: a pinned run stays on its version

    def node(self, name: str) -> NodeSpec:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def to_plain(self) -> dict[str, Any]:
        """The compact plain form a run carries (see :func:`compact_spec`)."""
        return compact_spec(self)

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> GraphSpec:
        """Rebuild from the plain dict it travels as, in a fraction of the converter's time: the
        compact form of :meth:`to_plain`, or the full form (every field of every node) that runs
        started before it carry."""
        if data.get("format") == COMPACT_FORMAT:
            data = expand_spec(data)

        def member(m: dict[str, Any]) -> MemberSpec:
            return _build(MemberSpec, m, retry=_build(RetrySpec, m["retry"]))

        def node(n: dict[str, Any]) -> NodeSpec:
            team = n.get("team")
            child = n.get("subgraph")
            return _build(
                NodeSpec,
                n,
                retry=_build(RetrySpec, n.get("retry") or {}),
                team=_build(TeamSpec, team, members=[member(m) for m in team["members"]]) if team else None,
                subgraph=GraphSpec.from_plain(child) if child else None,
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
    if isinstance(value, GraphSpec):  # a subgraph node's child graph: compact too
        return compact_spec(value)
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
    if spec.upgrade is None:  # absent unless set: graphs without it keep their plain form and fingerprint
        del plain["upgrade"]
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
    member: int | None = None
    state: dict[str, str] | None = None  # only for nodes that take a context
    history: dict[str, str] | None = None
    run_input: str | None = None
    payload_limit: int | None = None  # the run's (RunParams.payload_limit); None: Temporal's 2 MiB

    def to_plain(self, activity_type: str | None = None) -> dict[str, Any]:
        """The plain dict it travels as, holding only what the activity cannot know by itself
        (:meth:`from_plain` restores the rest):

        - optional fields that are None stay out (they were ~80 of a trivial node's 230 bytes);
        - ``session_id`` stays out: it is always the id of the workflow that schedules the activity;
        - ``graph`` stays out when ``activity_type`` is ``"{graph}.{node}"``, as a plain node's is.

        Every scheduled event of a run carries this, so each byte counts once per node run.
        """
        plain = {k: v for k, v in vars(self).items() if v is not None}
        del plain["session_id"]
        if activity_type == f"{self.graph}.{self.node}":
            del plain["graph"]
        return plain

    @staticmethod
    def from_plain(plain: dict[str, Any], activity_type: str, workflow_id: str) -> NodeInput:
        """The input an activity of type ``activity_type``, scheduled by workflow ``workflow_id``,
        received as ``plain`` (the form of :meth:`to_plain`, or the full one older runs send)."""
        plain = dict(plain)
        plain.setdefault("session_id", workflow_id)
        if "graph" not in plain:
            node = plain.get("node")
            if not isinstance(node, str) or not activity_type.endswith(f".{node}"):
                raise ValueError(
                    f"a node input without its graph must come to an activity named GRAPH.{node}, not {activity_type!r}"
                )
            plain["graph"] = activity_type[: -len(node) - 1]
        return (ResumedNodeInput if "resume" in plain else NodeInput)(**plain)


@dataclass
class ResumedNodeInput(NodeInput):
    """A node's input when it runs again after ``context.interrupt()``: ``resume`` holds the answers
    given so far (encoded JSON text, in order). A subclass, so inputs of other nodes keep their
    exact fields (and workers that predate interrupts never see the key)."""

    resume: list[str] = field(default_factory=list)


@dataclass
class NodeOutput:
    """What one node activity returns: its output, an optional jump, and its state delta."""

    value: str
    jump: Jump | None = None
    writes: dict[str, str] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)  # targets its router chose (conditional edges)
    sends: list[Jump] = field(default_factory=list)  # Send objects from its router or itself: one instance each
    # Set when the node called context.interrupt(): {"payload": JSON text, "index": i, "timeout": s or
    # None, "default": JSON text or None}; value, jump and state writes are then void (it runs again).
    interrupt: dict[str, Any] | None = None
    cached: bool = False  # the node's cache had this output: its function did not run (core/cache.py)
    usage: dict[str, Any] | None = None  # what the node reported (usage.Usage plain), if anything

    def to_plain(self) -> dict[str, Any]:
        """The plain dict it travels as: what ``dataclasses.asdict`` gives (the converter sorts keys,
        so the JSON is the same bytes), without asdict's recursive deep copy of every value."""
        plain: dict[str, Any] = {"value": self.value}
        # Empty fields stay out (every completed event carried '"deletes":[],"jump":null,"writes":{}');
        # from_plain reads a missing one as empty, and so did every earlier version of it.
        jump = self.jump
        if jump is not None:
            plain["jump"] = {"node": jump.node, "input": jump.input, "source": jump.source}
        if self.writes:
            plain["writes"] = dict(self.writes)
        if self.deletes:
            plain["deletes"] = list(self.deletes)
        if self.routes:  # only when used: outputs of graphs without routers stay as they were
            plain["routes"] = list(self.routes)
        if self.sends:
            plain["sends"] = [{"node": j.node, "input": j.input, "source": j.source} for j in self.sends]
        if self.interrupt is not None:  # only then: other outputs keep their exact bytes
            plain["interrupt"] = dict(self.interrupt)
        if self.cached:
            plain["cached"] = True
        if self.usage is not None:  # likewise
            plain["usage"] = dict(self.usage)
        return plain

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> NodeOutput:
        """Rebuild from the plain dict it travels as (cheaper than the converter's reflection)."""
        jump = data.get("jump")
        return cls(
            value=data["value"],
            jump=Jump(**jump) if jump else None,
            writes=data.get("writes") or {},
            deletes=data.get("deletes") or [],
            routes=data.get("routes") or [],
            sends=[Jump(**j) for j in data.get("sends") or ()],
            interrupt=data.get("interrupt"),
            cached=data.get("cached") is True,
            usage=data.get("usage"),
        )


@dataclass
class RunSnapshot:
    """What a run carries across continue-as-new: enough to go on exactly where it was.

    It travels as ``RunParams.snapshot``, a plain dict whose keys recorded histories hold, so
    :meth:`to_plain` and :meth:`from_plain` keep that dict exactly (a missing key takes the
    default a first run starts with).
    """

    scheduler: dict[str, Any] | None = None  # Scheduler.snapshot(): inbox, jumps, outputs, step
    state: dict[str, str] = field(default_factory=dict)
    deadline: float | None = None  # workflow time the run's timeout ends at
    run: int = 1  # 1 for the first run, +1 at each continue-as-new
    completed: list[str] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)  # WaitForInput answers not yet taken
    layer: int = 0
    warned: list[str] = field(default_factory=list)  # nodes already warned about a large input
    edits: list[dict[str, Any]] = field(default_factory=list)  # state edits from outside (update_state, rewind)
    rewound_from: dict[str, Any] | None = None  # set in a session that was rewound (gecko_state shows it)
    # A layer too wide for one run's history, continued in the next run: {"tasks": [[node, input,
    # step, jumped], ...], "done": {task index: NodeOutput plain}} (absent otherwise).
    partial_layer: dict[str, Any] | None = None
    # Flow control (usage.UsageLedger plain): usage per node, the budget as raised, the tenant.
    flow: dict[str, Any] | None = None

    def to_plain(self) -> dict[str, Any]:
        plain = {
            "scheduler": self.scheduler,
            "state": self.state,
            "deadline": self.deadline,
            "run": self.run,
            "completed": self.completed,
            "rejected": self.rejected,
            "answers": self.answers,
            "layer": self.layer,
        }
        if self.warned:  # only when there is one: snapshots of runs that warned nobody stay as before
            plain["warned"] = self.warned
        if self.edits:  # likewise
            plain["edits"] = self.edits
        if self.rewound_from is not None:
            plain["rewound_from"] = self.rewound_from
        if self.partial_layer is not None:  # likewise
            plain["partial_layer"] = self.partial_layer
        if self.flow is not None:  # likewise
            plain["flow"] = self.flow
        return plain

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> RunSnapshot:
        return _build(cls, data)


@dataclass
class RunParams:
    """The one GeckoWorkflow's input. ``snapshot`` is set when a run continues as new."""

    spec: GraphSpec
    input: str
    timeout: float | None = None
    snapshot: dict[str, Any] | None = None
    # What one payload may weigh: Temporal's 2 MiB, more when the starting client has a payload
    # store (payloads.py). Carried by the run so every replay checks sizes against the same bound.
    payload_limit: int = PAYLOAD_LIMIT
    state: dict[str, str] | None = None  # a first run's seeded state (start(..., state=...))
    stream: dict[str, Any] | None = None  # the event stream's tail a continued run carries
    flow: dict[str, Any] | None = None  # a first run's budget and tenant (start(..., budget=, tenant=))
    # The spec as this run received it: carried as is to the next run (never re-serialized).
    plain_spec: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> RunParams:
        return _build(cls, data, spec=GraphSpec.from_plain(data["spec"]), plain_spec=data["spec"])

    def to_plain(self) -> dict[str, Any]:
        """The plain dict it travels as, the spec in its compact form."""
        return {
            "spec": self.spec.to_plain(),
            "input": self.input,
            "timeout": self.timeout,
            "snapshot": self.snapshot,
            "payload_limit": self.payload_limit,
        }


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


# Wire tags name the module Next and Send lived in when histories were recorded (see MemberResult).
Next.__module__ = "gecko_temporal.spec"
codec.register_type(Next)

#: What a router returns to go nowhere (LangGraph's ``END``); also a valid path-map value.
END = "__end__"
#: Where a run starts (LangGraph's ``START``): ``add_edge(START, node)``, ``add_conditional_edges(START, ...)``.
START = "__start__"

#: Sends one node output (a router's or a node's own) may hold. Each becomes an activity, and
#: Temporal allows 2,000 pending activities per workflow.
MAX_SENDS = 1_000
#: The ``source`` of a Send its node's router made (checked against the path map), not the node itself.
ROUTER = "router"


class Send(BaseModel):
    """Run one instance of ``node`` with ``arg`` as its input; return a list of them to fan out.

    A router (or a node) returning ``[Send("Research", item) for item in items]`` runs one
    ``Research`` activity per Send, in parallel; ``Research``'s successors run once, after every
    instance, and receive the list of the instances' outputs in Send order.
    """

    model_config = {"frozen": True}

    node: str
    arg: Any = None

    def __init__(self, node: str, arg: Any = None, **kw: Any) -> None:
        super().__init__(node=node, arg=arg, **kw)


Send.__module__ = "gecko_temporal.spec"
codec.register_type(Send)


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
    error: MemberError | None = None
    duration: float = 0.0
    winner: bool = False

    @property
    def is_success(self) -> bool:
        return self.status == "succeeded"


# Their wire tag is "module:Class" (see _codec), and values already stored in state, outputs and
# recorded histories name gecko_temporal.team, their home before core/ existed: keep that name on the wire.
MemberError.__module__ = MemberResult.__module__ = "gecko_temporal.team"
codec.register_type(MemberError)
codec.register_type(MemberResult)
