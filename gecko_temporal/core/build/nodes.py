"""Node definitions: how user code becomes a node. Pure: no temporalio import.

``@step`` and :class:`StepOptions` set a node's policies; :func:`introspect` works out how to call
a function, callable object or agent (:class:`Callee`). Both the builder (``graph.py``) and Team
(``team.py``) build on this module, and what a worker runs for each node of a compiled graph is a
:class:`NodeCode` table, so workers never reach into the builder.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from gecko_temporal.core import codec
from gecko_temporal.core.build import adapters
from gecko_temporal.core.cache import CachePolicy
from gecko_temporal.core.context import WorkflowContext
from gecko_temporal.core.errors import GraphError
from gecko_temporal.core.spec import RetrySpec

__all__ = [
    "DEFAULT_HEARTBEAT",
    "DEFAULT_TIMEOUT",
    "OPTION_NAMES",
    "Callee",
    "MemberCode",
    "NodeCode",
    "StepOptions",
    "check_options",
    "introspect",
    "options_of",
    "pass_input",
    "step",
]

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
    through ``context.history``; only those are shipped (by default all are). ``cache``: a
    :class:`CachePolicy` reusing the node's output across runs (see ``core/cache.py``).
    """

    name: str | None = None
    timeout: float | None = None
    retries: int | None = None
    retry: RetrySpec | None = None
    heartbeat_timeout: float | None = None
    local: bool = False
    reads: tuple[str, ...] | None = None
    history: tuple[str, ...] | None = None
    cache: CachePolicy | None = None
    limit: str | None = None  # a named Limit of the Workflow (flow control): its task queue and rate

    def merged(self, **overrides: Any) -> StepOptions:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def retry_spec(self) -> RetrySpec:
        if self.retry is not None:
            return self.retry
        if self.retries is not None:
            return RetrySpec(maximum_attempts=self.retries)
        return RetrySpec()


_OPTIONS_ATTR = "__gecko_step__"
#: The options ``add_node(..., **options)`` accepts (every StepOptions field but the name).
OPTION_NAMES = frozenset(f for f in StepOptions.__dataclass_fields__ if f != "name")


def options_of(obj: Any) -> StepOptions | None:
    """The options ``@step`` gave ``obj``, or None when it is no ``@step`` function."""
    return getattr(obj, _OPTIONS_ATTR, None)


def step(
    fn: F | None = None,
    *,
    name: str | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    retry: RetrySpec | None = None,
    heartbeat_timeout: float | None = None,
    local: bool = False,
    reads: list[str] | None = None,
    history: list[str] | None = None,
    cache: CachePolicy | None = None,
    limit: str | None = None,
) -> Any:
    """Mark a function (sync or async) as a node, optionally naming it and setting its policies.

    Use bare (``@step``) or with arguments (``@step(name="Fetcher", retries=1)``); the function
    stays callable as before.
    """
    options = StepOptions(
        name=name,
        timeout=timeout,
        retries=retries,
        retry=retry,
        heartbeat_timeout=heartbeat_timeout,
        local=local,
        reads=tuple(reads) if reads is not None else None,
        history=tuple(history) if history is not None else None,
        cache=cache,
        limit=limit,
    )
    check_options(options, where="@step")

    def mark(f: F) -> F:
        if not callable(f):
            raise GraphError(f"@step decorates functions, got {type(f).__name__} {f!r}")
        try:
            setattr(f, _OPTIONS_ATTR, options)
        except AttributeError:  # a bound method or builtin (e.g. llm.ainvoke): mark a thin wrapper
            f = _wrapper(f)
            setattr(f, _OPTIONS_ATTR, options)
        return f

    return mark(fn) if fn is not None else mark


def _wrapper(f: Any) -> Any:
    """A function that calls ``f`` and can carry attributes (bound methods cannot); signature, name
    and sync/async-ness are ``f``'s, and the node keeps the name of ``f``'s owner object."""
    if inspect.iscoroutinefunction(f):

        @functools.wraps(f)
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await f(*args, **kwargs)
    else:

        @functools.wraps(f)
        def call(*args: Any, **kwargs: Any) -> Any:
            return f(*args, **kwargs)

    owner_name = adapters.agent_name(f)
    if owner_name:
        call.__name__ = owner_name
    return call


def check_options(o: StepOptions, where: str) -> None:
    """Raise GraphError listing every invalid option; ``where`` names the node or decorator."""
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
    if o.cache is not None and not isinstance(o.cache, CachePolicy):
        problems.append(f"cache takes a CachePolicy(ttl=SECONDS, key=None), got {o.cache!r}")
    if problems:
        raise GraphError(f"{where}: " + "; ".join(problems), problems)


def _short_repr(obj: Any) -> str:
    try:
        text = repr(obj)
    except Exception:
        text = object.__repr__(obj)
    return text if len(text) <= 200 else text[:197] + "..."


@dataclass
class Callee:
    """How to call one piece of user code: sync or async, with input and/or context."""

    call: Callable[..., Any]
    is_async: bool
    takes_input: bool
    context_param: str | None

    def invoke(self, data: Any, context: WorkflowContext | None) -> Any:
        args = (data,) if self.takes_input else ()
        kwargs = {self.context_param: context} if self.context_param else {}
        return self.call(*args, **kwargs)


def _is_context_param(p: inspect.Parameter) -> bool:
    ann = p.annotation
    return p.name == "context" or ann is WorkflowContext or ann == "WorkflowContext"


def introspect(obj: Any, where: str) -> Callee:
    """Work out how to call ``obj`` (function, lambda, callable object, agent with ``run``, or an
    agent of a supported library: pydantic-ai, LangChain, OpenAI Agents SDK; see adapters.py)."""
    adapted = adapters.adapt(obj)
    if adapted is not None:
        obj = adapted
    target = obj
    run = getattr(obj, "run", None)
    if not inspect.isroutine(obj) and not isinstance(obj, functools.partial) and callable(run):
        target = run  # an agent object: call its run method
    if not callable(target):
        raise GraphError(
            f"{where} must be a function, a callable object or an object with a run() method; "
            f"got {type(obj).__name__} {_short_repr(obj)}.{adapters.unusable_hint(obj)}"
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
        target.__call__ if callable(target) else None
    )
    codec.register_types_of(target)  # the models this code returns may be revived downstream
    if target is not obj:
        codec.register_types_of(obj)
    return Callee(call=target, is_async=is_async, takes_input=bool(positional), context_param=context_param)


@dataclass(frozen=True)
class MemberCode:
    """One Team member as a worker runs it."""

    name: str  # display name, unique within its Team
    callee: Callee


@dataclass(frozen=True)
class NodeCode:
    """What a worker runs for one node of a compiled graph: the user's code, ready to call.

    A function node has ``callee`` (and the ``reads``/``history`` its context is limited to); a
    Team node has ``members`` and its ``input_mapper``; a WaitForInput node runs no code here.
    """

    name: str
    kind: str
    callee: Callee | None = None
    reads: tuple[str, ...] | None = None
    history: tuple[str, ...] | None = None
    members: tuple[MemberCode, ...] = ()
    input_mapper: Callable[[Any, int], Any] | None = None
    # Conditional edges from this node: the router, its display name, what each value it may return
    # leads to (a path-map key or node name -> node name, or END), and the nodes it may Send to.
    router: Callee | None = None
    router_name: str = ""
    path_map: dict[Any, str] | None = None
    send_targets: frozenset[str] = frozenset()
    cache: CachePolicy | None = None  # reuse outputs across runs (function nodes only)
    reducers: dict[str, str] | None = None  # the graph's: its router sees reduced keys combined
    breakpoint: bool = False  # LangGraph's interrupt_before: a person answers before the code runs


def pass_input(data: Any) -> Any:
    """The START node's code (several entries, a conditional entry point): it hands the run's input
    to every entry and to its router."""
    return data
