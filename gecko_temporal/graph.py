"""Build a graph, validate it, compile it to a :class:`GraphSpec`. Pure: no temporalio import.

Running a Workflow (``execute``/``start``) goes through :mod:`gecko_temporal.client`, imported
only when a run starts, so building and validating graphs never needs Temporal.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, TypeVar, Union

from pydantic import BaseModel

from . import _codec
from .context import WorkflowContext
from .errors import GraphError, suggest
from .spec import (DEFAULT_MAX_STEPS, DEFAULT_STEPS_PER_RUN, KIND_FUNCTION, KIND_TEAM, KIND_WAIT, GraphSpec, MemberSpec,
                   NodeSpec, RetrySpec, TeamSpec)

if TYPE_CHECKING:
    from .client import RunHandle
    from .team import Team
    from .wait import WaitForInput

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_TIMEOUT = 300.0  # start-to-close seconds for one node attempt
DEFAULT_HEARTBEAT = 5.0  # a crashed worker's node is retried within about this long


@dataclass(frozen=True)
class StepOptions:
    """Per-node settings, from ``@step(...)`` or ``add_node(..., **options)``.

    ``timeout``: seconds one attempt may take (start-to-close). ``retries``: attempts in all
    (1 = no retry). ``retry``: a full :class:`RetryPolicy` (overrides ``retries``).
    ``heartbeat_timeout``: seconds without a heartbeat before a node counts as lost (its worker
    died) and is retried; nodes heartbeat on their own while they run. ``local``: run as a
    Temporal local activity (light, short, idempotent work only). ``reads``: the state keys the
    node reads; only those are shipped to it. ``history``: the nodes whose latest output it reads
    through ``context.history``; only those are shipped (by default all are).
    """

    name: Optional[str] = None
    timeout: Optional[float] = None
    retries: Optional[int] = None
    retry: Optional[RetrySpec] = None
    heartbeat_timeout: Optional[float] = None
    local: bool = False
    reads: Optional[tuple[str, ...]] = None
    history: Optional[tuple[str, ...]] = None

    def merged(self, **overrides: Any) -> "StepOptions":
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def retry_spec(self) -> RetrySpec:
        if self.retry is not None:
            return self.retry
        if self.retries is not None:
            return RetrySpec(maximum_attempts=self.retries)
        return RetrySpec()


_OPTIONS_ATTR = "__gecko_step__"
_OPTION_NAMES = {f for f in StepOptions.__dataclass_fields__ if f != "name"}


def step(
    fn: Optional[F] = None,
    *,
    name: Optional[str] = None,
    timeout: Optional[float] = None,
    retries: Optional[int] = None,
    retry: Optional[RetrySpec] = None,
    heartbeat_timeout: Optional[float] = None,
    local: bool = False,
    reads: Optional[list[str]] = None,
    history: Optional[list[str]] = None,
) -> Any:
    """Mark a function (sync or async) as a node, optionally naming it and setting its policies.

    Use bare (``@step``) or with arguments (``@step(name="Fetcher", retries=1)``); the function
    stays callable as before.
    """
    options = StepOptions(
        name=name, timeout=timeout, retries=retries, retry=retry, heartbeat_timeout=heartbeat_timeout,
        local=local, reads=tuple(reads) if reads is not None else None,
        history=tuple(history) if history is not None else None,
    )
    _check_options(options, where="@step")

    def mark(f: F) -> F:
        if not callable(f):
            raise GraphError(f"@step decorates functions, got {type(f).__name__} {f!r}")
        setattr(f, _OPTIONS_ATTR, options)
        return f

    return mark(fn) if fn is not None else mark


def _check_options(o: StepOptions, where: str) -> None:
    problems = []
    for label, value in (("timeout", o.timeout), ("heartbeat_timeout", o.heartbeat_timeout)):
        if value is not None and not (isinstance(value, (int, float)) and value > 0):
            problems.append(f"{label} must be a positive number of seconds, got {value!r}")
    if o.retries is not None and not (isinstance(o.retries, int) and o.retries >= 1):
        problems.append(f"retries counts attempts and must be an int >= 1, got {o.retries!r}")
    if o.reads is not None and not all(isinstance(k, str) for k in o.reads):
        problems.append(f"reads must be a list of str state keys, got {list(o.reads)!r}")
    if o.history is not None and not all(isinstance(k, str) for k in o.history):
        problems.append(f"history must be a list of node names, got {list(o.history)!r}")
    if problems:
        raise GraphError(f"{where}: " + "; ".join(problems), problems)


@dataclass
class Callee:
    """How to call one piece of user code: sync or async, with input and/or context."""

    call: Callable[..., Any]
    is_async: bool
    takes_input: bool
    context_param: Optional[str]

    def invoke(self, data: Any, context: Optional[WorkflowContext]) -> Any:
        args = (data,) if self.takes_input else ()
        kwargs = {self.context_param: context} if self.context_param else {}
        return self.call(*args, **kwargs)


def _is_context_param(p: inspect.Parameter) -> bool:
    ann = p.annotation
    return p.name == "context" or ann is WorkflowContext or ann == "WorkflowContext"


def introspect(obj: Any, where: str) -> Callee:
    """Work out how to call ``obj`` (function, lambda, callable object, or agent with ``run``)."""
    target = obj
    run = getattr(obj, "run", None)
    if not inspect.isroutine(obj) and not isinstance(obj, functools.partial) and callable(run):
        target = run  # an agent object: call its run method
    if not callable(target):
        raise GraphError(
            f"{where} must be a function, a callable object or an object with a run() method; "
            f"got {type(obj).__name__} {obj!r}"
        )
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError) as exc:
        raise GraphError(f"{where}: cannot read the signature of {target!r}: {exc}") from None
    context_param = None
    positional: list[inspect.Parameter] = []
    problems = []
    for p in sig.parameters.values():
        if _is_context_param(p) and p.kind is not p.VAR_POSITIONAL and p.kind is not p.VAR_KEYWORD:
            if p.kind is p.POSITIONAL_ONLY:
                problems.append(f"parameter {p.name!r} must be passable by keyword to receive the context")
            context_param = p.name
        elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL):
            positional.append(p)
        elif p.kind is p.KEYWORD_ONLY and p.default is p.empty:
            problems.append(f"keyword-only parameter {p.name!r} has no default and would never be given")
    required = [p for p in positional if p.default is p.empty and p.kind is not p.VAR_POSITIONAL]
    if len(required) > 1:
        names = ", ".join(p.name for p in required)
        problems.append(
            f"takes {len(required)} required positional parameters ({names}) but a node receives one "
            "input (use one parameter, e.g. a dict, plus optionally `context`)"
        )
    if problems:
        raise GraphError(f"{where}: " + "; ".join(problems), [f"{where}: {p}" for p in problems])
    is_async = inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)
    )
    _codec.register_types_of(target)  # the models this code returns may be revived downstream
    if target is not obj:
        _codec.register_types_of(obj)
    return Callee(call=target, is_async=is_async, takes_input=bool(positional), context_param=context_param)


@dataclass
class NodeDef:
    """A node as the builder holds it: its user code and options."""

    name: str
    kind: str
    obj: Any
    options: StepOptions
    callee: Optional[Callee] = None


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
    """

    def __init__(self, name: str, *, max_steps: int = DEFAULT_MAX_STEPS, steps_per_run: int = DEFAULT_STEPS_PER_RUN,
                 task_queue: Optional[str] = None, types: Sequence[type] = ()) -> None:
        if not isinstance(name, str) or not name.strip():
            raise GraphError(f"a Workflow needs a non-empty name, got {name!r}")
        if not isinstance(max_steps, int) or max_steps < 1:
            raise GraphError(f"max_steps must be an int >= 1, got {max_steps!r}")
        if not isinstance(steps_per_run, int) or steps_per_run < 1:
            raise GraphError(f"steps_per_run must be an int >= 1, got {steps_per_run!r}")
        not_models = [t for t in types if not _codec.revivable(t)]
        if not_models:
            raise GraphError("types= lists pydantic model, dataclass or Enum classes to revive between nodes, "
                             f"got {not_models!r}")
        for model in types:
            _codec.register_type(model)
        self.name = name
        self.max_steps = max_steps
        self.steps_per_run = steps_per_run
        self.task_queue = task_queue
        self._nodes: dict[str, NodeDef] = {}
        self._edges: list[tuple[str, str]] = []
        self._entry: Optional[str] = None
        self._compiled: dict[str, GraphSpec] = {}

    # -- building ------------------------------------------------------------------------------
    def add_node(self, name: Union[str, Callable[..., Any]], node: Any = None, **options: Any) -> "Workflow":
        """Add a node: a function (sync or async), lambda, ``@step`` function, agent, or Team.

        ``add_node(step_fn)`` takes the name from ``@step(name=...)`` or the function's name.
        ``options`` are :class:`StepOptions` fields (timeout, retries, retry, heartbeat_timeout,
        local, reads, history) and override the ones given to ``@step``.
        """
        from .team import Team
        from .wait import WaitForInput

        if node is None and not isinstance(name, str):
            node, name = name, None
        base: StepOptions = getattr(node, _OPTIONS_ATTR, None) or StepOptions()
        if name is None:
            name = base.name or getattr(node, "__name__", None)
        if not isinstance(name, str) or not name.strip():
            raise GraphError(f"a node needs a non-empty str name, got {name!r}")
        if name in self._nodes:
            raise GraphError(f'duplicate node "{name}": each node name may be added once')
        unknown = set(options) - _OPTION_NAMES
        if unknown:
            raise GraphError(
                f'node "{name}": unknown option(s) {sorted(unknown)} (valid: {sorted(_OPTION_NAMES)})'
            )
        for listed in ("reads", "history"):
            if options.get(listed) is not None and not isinstance(options[listed], str):
                options[listed] = tuple(options[listed])
        opts = base.merged(**options)
        _check_options(opts, where=f'node "{name}"')
        if isinstance(node, Team):
            self._nodes[name] = NodeDef(name, KIND_TEAM, node, opts)
        elif isinstance(node, WaitForInput):
            self._nodes[name] = NodeDef(name, KIND_WAIT, node, opts)
        else:
            callee = introspect(node, where=f'node "{name}"')
            self._nodes[name] = NodeDef(name, KIND_FUNCTION, node, opts, callee)
        self._compiled.clear()
        return self

    def add_edge(self, source: str, target: str) -> "Workflow":
        """Run ``target`` after ``source`` (and after its other live predecessors)."""
        if (source, target) in self._edges:
            raise GraphError(f'duplicate edge "{source}" -> "{target}"')
        self._edges.append((source, target))
        self._compiled.clear()
        return self

    def set_entry_point(self, name: str) -> "Workflow":
        """Start every run at node ``name``; it receives the run's ``input_data``."""
        self._entry = name
        self._compiled.clear()
        return self

    @property
    def nodes(self) -> dict[str, NodeDef]:
        return dict(self._nodes)

    @property
    def edges(self) -> list[tuple[str, str]]:
        return list(self._edges)

    # -- compiling -----------------------------------------------------------------------------
    def compile(self, key: Optional[str] = None) -> GraphSpec:
        """Validate the graph and return its serializable spec; raise GraphError listing every problem."""
        key = key or self.name
        if key in self._compiled:
            return self._compiled[key]
        problems: list[str] = []
        names = list(self._nodes)
        if not names:
            problems.append(f'workflow "{self.name}" has no nodes: add one with add_node()')
        if self._entry is None:
            if names:
                problems.append(f'workflow "{self.name}" has no entry point: call set_entry_point("{names[0]}")')
        elif self._entry not in self._nodes:
            problems.append(f'entry point "{self._entry}" is not a node{suggest(self._entry, names)}')
        successors: dict[str, list[str]] = {n: [] for n in names}
        predecessors: dict[str, list[str]] = {n: [] for n in names}
        for source, target in self._edges:
            bad = [n for n in (source, target) if n not in self._nodes]
            for n in bad:
                problems.append(f'edge "{source}" -> "{target}": no node named "{n}"{suggest(n, names)}')
            if source == target:
                problems.append(f'edge "{source}" -> "{target}" loops on itself; use Next to repeat a node')
            elif not bad:
                successors[source].append(target)
                predecessors[target].append(source)
        for d in self._nodes.values():
            for ref in d.options.history or ():
                if ref not in self._nodes:
                    problems.append(f'node "{d.name}": history=[...] names no node "{ref}"{suggest(ref, names)}')
        cycle = _find_cycle(names, successors)
        if cycle:
            problems.append(
                "static cycle " + " -> ".join(f'"{n}"' for n in cycle)
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
            self._node_spec(d, sorted(successors[d.name], key=order.get), predecessors[d.name])
            for d in self._nodes.values()
        ]
        spec = GraphSpec(
            name=self.name, key=key, entry=self._entry or "", nodes=nodes,
            max_steps=self.max_steps, steps_per_run=self.steps_per_run,
        )
        self._compiled[key] = spec
        return spec

    def activity_type(self, node: str, member: Optional[str] = None) -> str:
        """The Temporal activity type of a node (``"Pipeline.Node"``) or Team member."""
        return f"{self.name}.{node}" + (f".{member}" if member else "")

    def _node_spec(self, d: NodeDef, successors: list[str], predecessors: list[str]) -> NodeSpec:
        o = d.options
        common = dict(
            name=d.name, kind=d.kind, activity_type=self.activity_type(d.name),
            predecessors=predecessors, successors=successors,
            start_to_close_timeout=o.timeout or DEFAULT_TIMEOUT,
            heartbeat_timeout=None if o.local else (o.heartbeat_timeout or DEFAULT_HEARTBEAT),
            retry=o.retry_spec(), local=o.local, reads=list(o.reads) if o.reads is not None else None,
            history=list(o.history) if o.history is not None else None,
        )
        if d.kind == KIND_TEAM:
            return NodeSpec(**common, team=d.obj.team_spec(self, d.name, o))
        if d.kind == KIND_WAIT:
            return NodeSpec(**common, **d.obj.spec_fields())
        assert d.callee is not None
        return NodeSpec(**common, takes_context=d.callee.context_param is not None)

    # -- running (needs Temporal; imported lazily so building graphs never does) ---------------
    async def execute(self, input_data: Any = None, *, session_id: Optional[str] = None,
                      timeout: Optional[float] = None, max_steps: Optional[int] = None) -> Any:
        """Run the graph durably on Temporal and return the output of the node that ran last.

        ``session_id`` is the Temporal workflow id (generated when omitted); ``timeout`` bounds the
        whole run in seconds and raises WorkflowTimeoutError. Node failures raise NodeError.
        """
        handle = await self.start(input_data, session_id=session_id, timeout=timeout, max_steps=max_steps)
        return await handle.result()

    async def start(self, input_data: Any = None, *, session_id: Optional[str] = None,
                    timeout: Optional[float] = None, max_steps: Optional[int] = None) -> "RunHandle":
        """Start a run and return its handle (``.id``, ``await .result()``, ``.state()``, ...)."""
        from . import client

        return await client.start(self, input_data, session_id=session_id, timeout=timeout, max_steps=max_steps)

    async def get_handle(self, session_id: str) -> "RunHandle":
        """Return a handle on an existing run of this workflow."""
        from . import client

        return await client.get_handle(session_id, workflow=self)


def _find_cycle(names: list[str], successors: dict[str, list[str]]) -> list[str]:
    """Return one static cycle as a node path (first node repeated at the end), or []."""
    color = {n: 0 for n in names}  # 0 new, 1 on the stack, 2 done
    for root in names:
        if color[root]:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path = [root]
        color[root] = 1
        while stack:
            node, i = stack[-1]
            succ = successors[node]
            if i < len(succ):
                stack[-1] = (node, i + 1)
                nxt = succ[i]
                if color[nxt] == 1:
                    return path[path.index(nxt):] + [nxt]
                if color[nxt] == 0:
                    color[nxt] = 1
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                color[node] = 2
                stack.pop()
                path.pop()
    return []
