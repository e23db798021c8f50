"""Build a graph, validate it, compile it to a :class:`GraphSpec`. Pure: no temporalio import.

Nodes are defined in :mod:`gecko_temporal.core.build.nodes` (``step``, ``StepOptions``, re-exported here);
:meth:`Workflow.compile` gives the spec that travels with each run, and
:meth:`Workflow.node_table` the user code a worker runs for each node.

Running a Workflow (``execute``/``start``) goes through :mod:`gecko_temporal.temporal.client`, imported
only when a run starts, so building and validating graphs never needs Temporal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gecko_temporal.core import codec
from gecko_temporal.core.budget import Budget, budget_of
from gecko_temporal.core.build import adapters
from gecko_temporal.core.build.nodedef import NodeDef, Router
from gecko_temporal.core.build.nodes import (
    DEFAULT_HEARTBEAT,
    DEFAULT_TIMEOUT,
    OPTION_NAMES,
    Callee,
    NodeCode,
    StepOptions,
    check_options,
    introspect,
    options_of,
    pass_input,
    step,
)
from gecko_temporal.core.build.runner import Runner, current_runner, use_runner
from gecko_temporal.core.build.team import Team
from gecko_temporal.core.build.validate import (
    check_reducers,
    check_routers,
    edge_sources,
    find_cycle,
    port_problems,
    structure_problems,
)
from gecko_temporal.core.build.wait import WaitForInput
from gecko_temporal.core.cache import refusal as cache_refusal
from gecko_temporal.core.errors import GraphError
from gecko_temporal.core.flow_limits import Limit, check_limits, node_limit_problem
from gecko_temporal.core.limits import name_problem
from gecko_temporal.core.spec import (
    DEFAULT_MAX_STEPS,
    DEFAULT_STEPS_PER_RUN,
    END,
    KIND_FUNCTION,
    KIND_SUBGRAPH,
    KIND_TEAM,
    KIND_WAIT,
    SCHEDULING_EAGER,
    SCHEDULING_LAYERED,
    START,
    UPGRADE_AT_CONTINUE_AS_NEW,
    GraphSpec,
    NodeSpec,
)
from gecko_temporal.core.window import check_max_parallel

if TYPE_CHECKING:
    from gecko_temporal.temporal.client import RunHandle


# Re-exported: where they were defined before nodes.py, and where users import them from.
__all__ = [
    "DEFAULT_HEARTBEAT",
    "DEFAULT_TIMEOUT",
    "Callee",
    "NodeDef",
    "Runner",
    "StepOptions",
    "Workflow",
    "introspect",
    "step",
    "use_runner",
]


class Workflow:
    """A Gecko Compose graph of nodes and edges that runs durably on Temporal.

    Build it with :meth:`add_node`, :meth:`add_edge` and :meth:`set_entry_point`; run it with
    :meth:`execute` (wait for the result) or :meth:`start` (get a handle). Pydantic models a node
    returns (and dataclasses and Enums) arrive downstream as the same class when that class is named by a node's return
    annotation, defined or imported in a node's module, or listed in ``types``; otherwise as
    their plain data (classes are never looked up by a name found in data).

    ``max_steps`` (default 10,000) bounds the node executions of a whole session, across
    continue-as-new, and stops a runaway loop with ``StepLimitError``. ``steps_per_run`` (default
    2,000) is how many node steps one Temporal run takes before it continues as new. The defaults
    let a ``Next`` loop run five runs; raise ``max_steps`` for longer loops. A ``max_steps`` below
    ``steps_per_run`` is fine: such a session ends before it would need a new run by step count.

    ``scheduling="layered"`` (the default) runs the graph in layers: a layer's nodes start together
    and the next layer starts when all of them have finished, so every node of a layer sees the same
    state and parallel writes merge in node order. ``scheduling="eager"`` starts each node as soon
    as its inputs are ready, so a fast branch never waits for an unrelated slow one; a node then sees
    the state as it was when it started, and writes merge as nodes finish.

    ``max_parallel`` caps the activities (nodes, Team members) a run keeps in flight; a wider layer
    runs through a sliding window, starting the next node as one finishes, and still completes as
    a whole. Default: 500 (Temporal allows 2,000 pending activities per run); a small value
    rate-limits, e.g., model calls.

    ``upgrade="at-continue-as-new"`` lets a run pinned to a Worker Deployment version move to the
    version new runs start on at its next continue-as-new, when the move is safe from that point
    (``core/run/upgrade.py``); otherwise it stays pinned and ``gecko_state["version"]`` says why.
    """

    def __init__(
        self,
        name: str,
        *,
        max_steps: int = DEFAULT_MAX_STEPS,
        steps_per_run: int = DEFAULT_STEPS_PER_RUN,
        task_queue: str | None = None,
        types: Sequence[type] = (),
        scheduling: str = SCHEDULING_LAYERED,
        reducers: Mapping[str, str | Callable[[Any, Any], Any]] | None = None,
        max_parallel: int | None = None,
        budget: Budget | dict[str, Any] | None = None,
        limits: Sequence[Limit] = (),
        interrupt_before: Sequence[str] = (),
        upgrade: str | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise GraphError(f"a Workflow needs a non-empty name, got {name!r}")
        too_long = name_problem("the Workflow name (the first part of its nodes' activity types)", f"{name}.x")
        if too_long:
            raise GraphError(too_long)
        if not isinstance(max_steps, int) or max_steps < 1:
            raise GraphError(f"max_steps must be an int >= 1, got {max_steps!r}")
        if not isinstance(steps_per_run, int) or steps_per_run < 1:
            raise GraphError(f"steps_per_run must be an int >= 1, got {steps_per_run!r}")
        if scheduling not in (SCHEDULING_LAYERED, SCHEDULING_EAGER):
            raise GraphError(f'scheduling must be "{SCHEDULING_LAYERED}" or "{SCHEDULING_EAGER}", got {scheduling!r}')
        self.scheduling = scheduling
        if upgrade not in (None, UPGRADE_AT_CONTINUE_AS_NEW):
            raise GraphError(f'upgrade must be "{UPGRADE_AT_CONTINUE_AS_NEW}" or None (stay pinned), got {upgrade!r}')
        self.upgrade = upgrade
        self.reducers = check_reducers(reducers)
        problem = check_max_parallel(max_parallel)
        if problem:
            raise GraphError(problem)
        self.max_parallel = max_parallel
        self.budget = budget_of(budget)  # flow control: what a run may spend before it pauses
        self.limits = check_limits(limits)  # named limits its nodes opt into (add_node(..., limit=))
        not_models = [t for t in types if not codec.revivable(t)]
        if not_models:
            raise GraphError(
                f"types= lists pydantic model, dataclass or Enum classes to revive between nodes, got {not_models!r}"
            )
        for model in types:
            codec.register_type(model)
        if isinstance(interrupt_before, str) or not all(isinstance(n, str) for n in interrupt_before):
            raise GraphError(f"interrupt_before is a list of node names, got {interrupt_before!r}")
        self.interrupt_before = tuple(interrupt_before)  # LangGraph's static breakpoints (checked at compile)
        self.name = name
        self.max_steps = max_steps
        self.steps_per_run = steps_per_run
        self.task_queue = task_queue
        self._nodes: dict[str, NodeDef] = {}
        self._edges: list[tuple[str, str]] = []
        self._edge_set: set[tuple[str, str]] = set()
        self._entry: str | None = None
        self._to_end: list[str] = []  # add_edge(node, END): nodes that end a path (checked at compile)
        self._routers: list[Router] = []
        self._compiled: dict[str, GraphSpec] = {}
        self._table: dict[str, NodeCode] | None = None

    # -- building ------------------------------------------------------------------------------
    def add_node(self, name: str | Callable[..., Any], node: Any = None, **options: Any) -> Workflow:
        """Add a node: a function (sync or async), lambda, ``@step`` function, agent, Team, or another
        Workflow (a subgraph: it runs as a Temporal child workflow, takes the node's input and
        returns its result as the node's output).

        ``add_node(step_fn)`` takes the name from ``@step(name=...)`` or the function's name.
        ``options`` are :class:`StepOptions` fields (timeout, retries, retry, heartbeat_timeout,
        local, reads, history, cache) and override the ones given to ``@step``.
        """
        label: str | Callable[..., Any] | None = name
        if node is None and not isinstance(name, str):
            node, label = name, None
        base: StepOptions = options_of(node) or StepOptions()
        if label is None:
            # an agent object (or llm.ainvoke) is named after the agent
            label = base.name or adapters.agent_name(node) or getattr(node, "__name__", None)
        if not isinstance(label, str) or not label.strip():
            raise GraphError(f"a node needs a non-empty str name, got {label!r}")
        name = label
        if name in self._nodes:
            raise GraphError(f'duplicate node "{name}": each node name may be added once')
        too_long = name_problem(f'the activity type of node "{name[:60]}"', self.activity_type(name))
        if too_long:
            raise GraphError(too_long)
        unknown = set(options) - OPTION_NAMES
        if unknown:
            raise GraphError(f'node "{name}": unknown option(s) {sorted(unknown)} (valid: {sorted(OPTION_NAMES)})')
        for listed in ("reads", "history"):
            if options.get(listed) is not None and not isinstance(options[listed], str):
                options[listed] = tuple(options[listed])
        opts = base.merged(**options)
        check_options(opts, where=f'node "{name}"')
        if isinstance(node, Team):
            self._nodes[name] = NodeDef(name, KIND_TEAM, node, opts)
        elif isinstance(node, WaitForInput):
            self._nodes[name] = NodeDef(name, KIND_WAIT, node, opts)
        elif isinstance(node, Workflow):
            given = sorted(k for k, v in options.items() if v is not None)
            if given:
                raise GraphError(
                    f'node "{name}" is a subgraph (workflow "{node.name}"): option(s) {given} apply to '
                    "function nodes only; the child run is bounded by the parent's timeout, and its own "
                    "nodes keep their own options"
                )
            self._nodes[name] = NodeDef(name, KIND_SUBGRAPH, node, opts)
        else:
            callee = introspect(node, where=f'node "{name}"')
            self._nodes[name] = NodeDef(name, KIND_FUNCTION, node, opts, callee)
        added = self._nodes[name]
        context = added.callee is not None and added.callee.context_param is not None
        refused = cache_refusal(name, added.kind, node, opts.cache, context, opts.reads)
        if refused:
            del self._nodes[name]
            raise GraphError(refused)
        self._changed()
        return self

    def add_edge(self, source: str | Sequence[str], target: str) -> Workflow:
        """Run ``target`` after ``source`` (and after its other live predecessors).

        As in LangGraph: ``add_edge(START, node)`` makes ``node`` an entry point (several are
        allowed); ``add_edge(node, END)`` says the path ends there; ``add_edge(["a", "b"], "c")``
        runs ``c`` once both ``a`` and ``b`` have run (a join over those edges)."""
        if isinstance(source, (list, tuple)) or not isinstance(source, str) or not isinstance(target, str):
            for one in edge_sources(source, target):  # LangGraph's waiting edge: a join over these edges
                self.add_edge(one, target)
            return self
        if source == START and START not in self._nodes:  # one entry: no START node; a second adds it
            if self._entry in (None, target):
                return self.set_entry_point(target)
            self._start_node()
        if target == END:
            self._to_end.append(source)
            self._changed()
            return self
        if (source, target) in self._edge_set:  # a set: a list scan made 20,000 edges take 6 s
            raise GraphError(f'duplicate edge "{source}" -> "{target}"')
        self._edges.append((source, target))
        self._edge_set.add((source, target))
        self._changed()
        return self

    def add_conditional_edges(
        self, source: str, router: Callable[..., Any], path_map: Mapping[Any, str] | Sequence[str] | None = None
    ) -> Workflow:
        """After ``source`` runs, ``router`` decides where the run goes (LangGraph's conditional edges).

        ``router`` receives ``source``'s output (and ``context`` if it has that parameter, as nodes
        do) and runs in ``source``'s activity right after it. It returns a path-map key (a node name
        when there is no ``path_map``), ``END``, a list of those, or ``Send`` objects (one node
        instance each, in parallel). ``path_map`` maps what the router returns to node names (or
        ``END``); a list of node names maps each to itself. Static edges from ``source`` still run;
        a ``Next`` returned by ``source`` wins over both.
        """
        if source == START:  # LangGraph's conditional entry point: routes from a pass-through START node
            self._start_node()
        name = getattr(router, "__name__", None) or type(router).__name__
        callee = introspect(router, where=f'the router of node "{source}"')
        mapped: dict[Any, str] | None = None
        if path_map is not None:
            if isinstance(path_map, Mapping):
                mapped = dict(path_map)
            elif isinstance(path_map, (list, tuple)):
                mapped = {n: n for n in path_map}
            else:
                raise GraphError(
                    f'the path map of node "{source}" must be a dict or a list of node names, '
                    f"got {type(path_map).__name__}"
                )
        annotation = getattr(callee.call, "__annotations__", {}).get("return", "")
        sends = "Send" in (annotation if isinstance(annotation, str) else repr(annotation))
        self._routers.append(Router(source, name, callee, mapped, sends))
        self._changed()
        return self

    def set_entry_point(self, name: str) -> Workflow:
        """Start every run at node ``name``; it receives the run's ``input_data``."""
        self._entry = name
        self._changed()
        return self

    def set_conditional_entry_point(
        self, router: Callable[..., Any], path_map: Mapping[Any, str] | Sequence[str] | None = None
    ) -> Workflow:
        """LangGraph's conditional entry point: ``add_conditional_edges(START, router, path_map)``."""
        return self.add_conditional_edges(START, router, path_map)

    def _start_node(self) -> None:
        """Put a pass-through node named START first (it runs first, merges first), in front of
        the entry point: several entries and conditional entry points leave from it."""
        if START in self._nodes:
            return
        first = self._entry
        start = NodeDef(
            START, KIND_FUNCTION, pass_input, StepOptions(local=True), introspect(pass_input, where="START")
        )
        self._nodes = {START: start, **self._nodes}
        self._entry = START
        if first is not None:
            self.add_edge(START, first)
        self._changed()

    def _changed(self) -> None:
        self._compiled.clear()
        self._table = None

    @property
    def nodes(self) -> dict[str, NodeDef]:
        return dict(self._nodes)

    @property
    def edges(self) -> list[tuple[str, str]]:
        return list(self._edges)

    # -- compiling -----------------------------------------------------------------------------
    def compile(self, key: str | None = None) -> GraphSpec:
        """Validate the graph and return its serializable spec; raise GraphError listing every problem."""
        return self._compile(key or self.name, ())

    def _compile(self, key: str, outer: tuple[Workflow, ...]) -> GraphSpec:
        """``outer``: the Workflows that contain this one as a subgraph, outermost first."""
        if key in self._compiled:
            return self._compiled[key]
        names = list(self._nodes)
        problems, successors, predecessors = structure_problems(self.name, self._nodes, self._entry, self._edges)
        problems.extend(port_problems(self._nodes, self._to_end, self.interrupt_before))
        children = self._compile_subgraphs(key, outer, problems)
        routers = check_routers(self._nodes, self._routers, problems)
        problems += [p for d in self._nodes.values() for p in [node_limit_problem(d, self.limits)] if p]
        cycle = find_cycle(names, successors)
        if cycle:
            problems.append(
                "static cycle "
                + " -> ".join(f'"{n}"' for n in cycle)
                + ": edges must form a DAG; loop with Next(node=...) instead"
            )
        if problems:
            raise GraphError(
                f'invalid workflow "{self.name}" ({len(problems)} problem{"s" * (len(problems) > 1)}): '
                + "; ".join(problems),
                problems,
            )
        order = {n: i for i, n in enumerate(names)}
        nodes = [
            self._node_spec(
                d,
                sorted(successors[d.name], key=order.__getitem__),  # every successor is a node here
                predecessors[d.name],
                routers.get(d.name),
                children.get(d.name),
            )
            for d in self._nodes.values()
        ]
        long_names = [
            p
            for n in nodes
            for t in [n.activity_type, *(m.activity_type for m in (n.team.members if n.team else ()))]
            for p in [name_problem(f'the activity type of node "{n.name[:60]}"', t)]
            if p
        ]
        if long_names:
            raise GraphError(f'invalid workflow "{self.name[:60]}": ' + "; ".join(long_names), long_names)
        spec = GraphSpec(
            name=self.name,
            key=key,
            entry=self._entry or "",
            nodes=nodes,
            max_steps=self.max_steps,
            steps_per_run=self.steps_per_run,
            scheduling=self.scheduling,
            max_parallel=self.max_parallel,
            upgrade=self.upgrade,
            **({"reducers": dict(self.reducers)} if self.reducers else {}),
        )
        if not children:  # a child may change after this graph compiled: compile those afresh each time
            self._compiled[key] = spec
        return spec

    def _compile_subgraphs(self, key: str, outer: tuple[Workflow, ...], problems: list[str]) -> dict[str, GraphSpec]:
        """Compile each subgraph node's Workflow under ``key/node``; a subgraph that contains one of
        its containers (A runs B runs A) is a problem, as is any problem of a child graph."""
        chain = (*outer, self)
        children: dict[str, GraphSpec] = {}
        for d in self._nodes.values():
            if d.kind != KIND_SUBGRAPH:
                continue
            child: Workflow = d.obj
            if any(child is w for w in chain):
                path = " -> ".join(f'"{w.name}"' for w in chain[[id(w) for w in chain].index(id(child)) :])
                problems.append(
                    f'subgraph cycle: node "{d.name}" of "{self.name}" runs "{child.name}" again '
                    f'({path} -> "{child.name}"); a workflow cannot contain itself, loop with Next instead'
                )
                continue
            try:
                children[d.name] = child._compile(f"{key}/{d.name}", chain)
            except GraphError as exc:
                problems.extend(f'subgraph node "{d.name}" (workflow "{child.name}"): {p}' for p in exc.problems)
        return children

    def subgraphs(self, key: str | None = None) -> dict[str, Workflow]:
        """The Workflows this graph runs as child workflows (nested ones too), by the graph key their
        runs carry (``key/node``): a worker that serves this graph serves their nodes under those keys."""
        return self._subgraphs_below(key or self.name, ())

    def _subgraphs_below(self, key: str, outer: tuple[Workflow, ...]) -> dict[str, Workflow]:
        found: dict[str, Workflow] = {}
        for d in self._nodes.values():  # a cycle fails compile(); never follow one here
            if d.kind == KIND_SUBGRAPH and not any(d.obj is w for w in (*outer, self)):
                found[f"{key}/{d.name}"] = d.obj
                found.update(d.obj._subgraphs_below(f"{key}/{d.name}", (*outer, self)))
        return found

    def node_table(self) -> dict[str, NodeCode]:
        """The user code a worker runs for each node, by node name (built again only after a change)."""
        if self._table is None:
            routers = {r.source: r for r in self._routers}
            names = list(self._nodes)
            self._table = {
                d.name: d.code(routers.get(d.name), names, self.reducers, d.name in self.interrupt_before)
                for d in self._nodes.values()
            }
        return self._table

    def activity_type(self, node: str, member: str | None = None) -> str:
        """The Temporal activity type of a node (``"Pipeline.Node"``) or Team member."""
        return f"{self.name}.{node}" + (f".{member}" if member else "")

    def _node_spec(
        self,
        d: NodeDef,
        successors: list[str],
        predecessors: list[str],
        router: Router | None = None,
        subgraph: GraphSpec | None = None,
    ) -> NodeSpec:
        o = d.options
        routing: dict[str, Any] = {}
        if router is not None:  # only then: specs of graphs without routers stay as they were
            order = {n: i for i, n in enumerate(self._nodes)}
            routing = dict(
                router=router.name,
                route_targets=sorted(router.targets(), key=order.__getitem__) if router.path_map is not None else None,
            )

        def spec(**kind_fields: Any) -> NodeSpec:  # the fields every kind has, and the kind's own
            return NodeSpec(
                name=d.name,
                kind=d.kind,
                activity_type=self.activity_type(d.name),
                predecessors=predecessors,
                successors=successors,
                start_to_close_timeout=o.timeout or DEFAULT_TIMEOUT,
                heartbeat_timeout=None if o.local else (o.heartbeat_timeout or DEFAULT_HEARTBEAT),
                retry=o.retry_spec(),
                local=o.local,
                reads=list(o.reads) if o.reads is not None else None,
                history=list(o.history) if o.history is not None else None,
                limit=o.limit,
                **kind_fields,
            )

        if d.kind == KIND_TEAM:
            return spec(team=d.obj.team_spec(self, d.name, o))
        if d.kind == KIND_WAIT:
            return spec(**d.obj.spec_fields())
        if d.kind == KIND_SUBGRAPH:
            return spec(subgraph=subgraph)
        assert d.callee is not None
        takes_context = d.callee.context_param is not None or (
            router is not None and router.callee.context_param is not None
        )  # the router's context is the node's
        return spec(takes_context=takes_context, **routing)

    # -- drawing -------------------------------------------------------------------------------
    def draw_mermaid(self) -> str:
        """A Mermaid flowchart of the graph: edges, conditional edges labelled with their path-map
        keys, fan-outs (routers annotated ``-> list[Send]``) marked "Send", Teams as blocks."""
        from gecko_temporal.core.build.mermaid import draw

        return draw(self.name, self._entry, list(self._nodes.values()), self._edges, self._routers)

    # -- running (needs Temporal; imported lazily so building graphs never does) ---------------
    async def execute(
        self,
        input_data: Any = None,
        *,
        session_id: str | None = None,
        timeout: float | None = None,
        max_steps: int | None = None,
        state: dict[str, Any] | None = None,
        budget: Budget | dict[str, Any] | None = None,
        tenant: str | None = None,
    ) -> Any:
        """Run the graph durably on Temporal and return the output of the node that ran last.

        ``session_id`` is the Temporal workflow id (generated when omitted); ``timeout`` bounds the
        whole run in seconds and raises WorkflowTimeoutError. Node failures raise NodeError.
        ``state`` seeds ``context.state`` before the entry node runs (a dict of JSON values).
        ``budget`` (overrides the Workflow's) pauses the run when its usage reaches it; ``tenant``
        tags the run (fairness between tenants, ``gecko-temporal list --tenant``).
        """
        handle = await self.start(
            input_data,
            session_id=session_id,
            timeout=timeout,
            max_steps=max_steps,
            state=state,
            budget=budget,
            tenant=tenant,
        )
        return await handle.result()

    async def start(
        self,
        input_data: Any = None,
        *,
        session_id: str | None = None,
        timeout: float | None = None,
        max_steps: int | None = None,
        state: dict[str, Any] | None = None,
        budget: Budget | dict[str, Any] | None = None,
        tenant: str | None = None,
    ) -> RunHandle:
        """Start a run and return its handle (``.id``, ``await .result()``, ``.state()``, ...).
        ``state`` seeds ``context.state`` (a dict of JSON values); ``budget`` and ``tenant`` as in
        :meth:`execute`."""
        return await current_runner().start(
            self,
            input_data,
            session_id=session_id,
            timeout=timeout,
            max_steps=max_steps,
            state=state,
            budget=budget,
            tenant=tenant,
        )

    async def get_handle(self, session_id: str) -> RunHandle:
        """Return a handle on an existing run of this workflow."""
        return await current_runner().get_handle(session_id, workflow=self)
