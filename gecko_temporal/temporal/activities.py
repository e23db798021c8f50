"""Node and Team-member activities: the thin Temporal shell around user code.

One dynamic activity serves every node of every registered graph, so a worker can take graphs
registered after it started (the embedded worker does); the activity type stays readable in the
Temporal UI (``Pipeline.Node``). A graph is served as its node table (``nodes.NodeCode`` by node
name, from ``Workflow.node_table()``), never through the builder. Sync user code runs on the
runner's thread pool and async code on the worker's loop, so the loop is never blocked. While user code runs, the activity heartbeats on
its own: a crashed worker's node is retried after ``heartbeat_timeout``, and a cancelled one (a
Team RACE loser) learns of it at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import logging
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from temporalio import activity
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from gecko_temporal.core import codec, usage
from gecko_temporal.core.build.nodes import Callee, MemberCode, NodeCode
from gecko_temporal.core.context import (
    History,
    NodeInterrupted,
    WorkflowContext,
    breakpoint_before,
    keep_router_writes,
    router_context,
)
from gecko_temporal.core.errors import EffectError, GraphError, InterruptError, SerializationError
from gecko_temporal.core.flow_limits import Limit
from gecko_temporal.core.limits import PAYLOAD_LIMIT, json_size, output_problem, sends_problem
from gecko_temporal.core.spec import (
    END,
    KIND_FUNCTION,
    KIND_TEAM,
    MAX_SENDS,
    ROUTER,
    Jump,
    Next,
    NodeInput,
    NodeOutput,
    Send,
)
from gecko_temporal.core.state import ReducerError, StateView
from gecko_temporal.protocol import YIELD_ACTIVITY
from gecko_temporal.temporal import effects, flow_hooks, limits_tokens, tracing, values
from gecko_temporal.temporal.payloads import payload_limit_of

if TYPE_CHECKING:
    from gecko_temporal.core.build.graph import Workflow


class NodeCancelled(BaseException):
    """Raised inside a sync node's thread when its activity is cancelled (e.g. it lost a race)."""


# CPython 3.11 freezes every thread that runs under a trace or profile function (coverage,
# debuggers, profilers) at its next Python call for as long as an async exception waits for a
# thread stuck in a C call (time.sleep, a socket read): the worker's event loop among them.
_ASYNC_EXC_FREEZES_TRACED_THREADS = sys.version_info[:2] == (3, 11)


def _tracing() -> bool:
    return any(get() is not None for get in (sys.gettrace, sys.getprofile, threading.gettrace, threading.getprofile))


class _ThreadCall:
    """Run one sync call on a pool thread and allow cancelling it from the loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: int | None = None
        self._done = False
        self._cancelled = False

    def run(self, fn: Any, *args: Any) -> Any:
        with self._lock:
            if self._cancelled:  # cancelled while it waited for a pool thread: never start it
                self._done = True
                raise NodeCancelled()
            self._thread = threading.get_ident()
        try:
            return fn(*args)
        finally:
            with self._lock:
                self._done = True

    def cancel(self) -> None:
        """Raise NodeCancelled in the thread at its next bytecode (a long C call finishes first)."""
        with self._lock:
            self._cancelled = True
        if _ASYNC_EXC_FREEZES_TRACED_THREADS and _tracing():
            threading.Thread(target=self._offer_until_taken, name="gecko-cancel", daemon=True).start()
        else:
            self._set_async_exc(NodeCancelled)

    def _set_async_exc(self, exc: type | None) -> None:
        # Under the lock, so it lands inside run(), never in the pool's own code after run() returned.
        with self._lock:
            if self._thread is not None and not self._done:
                # ctypes passes a bare None as a NULL pointer, which clears a pending exception.
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self._thread), ctypes.py_object(exc) if exc is not None else None
                )

    def _offer_until_taken(self) -> None:
        # On 3.11 under tracing: offer the exception for 20 ms, then take it back and offer it again
        # 0.5 s later, so traced threads stall for moments instead of for the whole C call. Taking
        # it back needs a trick: a NULL exception clears the thread's pending one but leaves the
        # interpreter's "async exception pending" flag up; only a thread that handles one lowers
        # it, so this (untraced) thread gives itself one and handles it.
        sys.settrace(None)
        sys.setprofile(None)
        me = threading.get_ident()
        while not self._done:
            self._set_async_exc(NodeCancelled)
            time.sleep(0.02)
            if self._done:
                return
            self._set_async_exc(None)
            try:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(me), ctypes.py_object(_FlagReset))
                for _ in range(100):  # bytecode to handle it in
                    pass
            except _FlagReset:
                pass
            time.sleep(0.5)


class _FlagReset(BaseException):
    """Raised in the canceller thread by itself, to lower the interpreter's pending flag."""


_log = logging.getLogger("gecko_temporal.worker")


def _fail(
    message: str, type_: str, non_retryable: bool = True, expected: bool = True, spent: dict[str, Any] | None = None
) -> ApplicationError:
    # Expected failures are BENIGN: the SDK then logs them at DEBUG instead of a traceback per attempt.
    return ApplicationError(
        message,
        *(({"usage": spent},) if spent else ()),  # what the attempt spent counts (temporal/flow.py)
        type=type_,
        non_retryable=non_retryable,
        category=ApplicationErrorCategory.BENIGN if expected else ApplicationErrorCategory.UNSPECIFIED,
    )


def safe_str(exc: BaseException) -> str:
    """``str(exc)``, or a placeholder when the exception's own __str__ raises."""
    try:
        return str(exc)
    except Exception as inner:
        return f"<{type(exc).__name__}.__str__ raised {type(inner).__name__}>"


def _node_failure(exc: Exception, where: str, spent: dict[str, Any] | None = None) -> ApplicationError:
    """What user code raised, as the activity's failure: type and message kept (retries and
    non_retryable_error_types see the same type name), the user's traceback kept for the UI, and
    one line in the worker's log instead of the SDK's traceback per attempt."""
    info = activity.info()
    message = safe_str(exc)
    _log.warning(
        "%s failed (attempt %d of %s, %s): %s: %s",
        where,
        info.attempt,
        _attempts(info),
        info.workflow_id,
        type(exc).__name__,
        message,
    )
    if _log.isEnabledFor(logging.DEBUG):
        _log.debug("%s traceback:\n%s", where, "".join(traceback.format_tb(exc.__traceback__)))
    failure = _fail(message, type(exc).__name__, non_retryable=False, spent=spent)
    return failure.with_traceback(exc.__traceback__)


def _attempts(info: Any) -> str:
    policy = getattr(info, "retry_policy", None)
    most = getattr(policy, "maximum_attempts", 0) if policy is not None else 0
    return str(most) if most else "unlimited"


class NodeRunner:
    """Runs the nodes of the graphs it serves: each graph is a node table (:class:`NodeCode` by
    node name), compiled from its Workflow once, never the builder itself."""

    def __init__(self, max_threads: int = 64) -> None:
        self.max_threads = max_threads
        self._pool = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="gecko-node")
        self._tables: dict[str, dict[str, NodeCode]] = {}  # graph key -> node table
        self._sources: dict[str, Workflow] = {}  # graph key -> the Workflow it came from
        self.limits: dict[str, Limit] = {}  # named limits this worker serves (limits_worker.py fills it)

    def register(self, wf: Workflow, key: str | None = None) -> str:
        """Serve ``wf`` under ``key`` (default its name); return the key its runs must carry.

        Registering the same Workflow again takes its current node table (nodes added since)."""
        key = key or wf.name
        served = {key: wf, **wf.subgraphs(key)}  # a subgraph's nodes run on the parent's workers
        for graph_key, graph in served.items():
            current = self._sources.get(graph_key)
            if current is not None and current is not graph:
                raise GraphError(
                    f'two different workflows are named "{graph_key}"; a worker dispatches nodes by workflow '
                    "name, so give each Workflow a unique name"
                )
        wf.compile(key)  # fail here, at registration, on an invalid graph
        for graph_key, graph in served.items():
            self._sources[graph_key] = graph
            self._tables[graph_key] = graph.node_table()
        return key

    def graphs(self) -> dict[str, Workflow]:
        """The Workflows served, by graph key."""
        return dict(self._sources)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- the one dynamic activity -----------------------------------------------------------
    def activity(self) -> Any:
        @activity.defn(dynamic=True)
        async def gecko_node(args: Sequence[RawValue]) -> dict[str, Any]:
            payload = args[0].payload if args else None
            if payload is None:
                raise _fail("a gecko node activity needs one NodeInput argument", "GraphError")
            # Built from a plain dict: the converter's reflection over dataclass hints costs ~20x more,
            # and even a ``dict`` type hint costs a conversion pass per node; the payload is JSON text.
            converter = activity.payload_converter()
            plain = converter.from_payload(payload)
            if not isinstance(plain, dict):
                plain = converter.from_payload(payload, dict)  # fails as it always did
            unpacked = await values.unpack(plain) if plain.get("refs") else None  # references (core/refs.py)
            if unpacked is not None:
                plain = unpacked.plain
            info = activity.info()
            try:
                node_input = NodeInput.from_plain(plain, info.activity_type, info.workflow_id or "")
            except (TypeError, ValueError) as exc:
                raise _fail(f"activity {info.activity_type}: malformed node input: {exc}", "GraphError") from None
            # Returned as the plain dict it travels as: the converter would turn the dataclass into one
            # with dataclasses.asdict (a deep copy of every value); the JSON is the same bytes.
            # A local node's context.emit events travel with its result (see _stream).
            emitted: list[dict[str, Any]] = []
            plain = (await self.run_node(node_input, emitted)).to_plain()
            if emitted:
                plain["emitted"] = emitted
            return values.pack(unpacked, plain) if unpacked is not None else plain

        return gecko_node

    def yield_activity(self) -> Any:
        @activity.defn(name=YIELD_ACTIVITY)
        async def gecko_yield() -> None:
            """Does nothing: the workflow schedules it to end a long workflow task (see _workflow)."""

        return gecko_yield

    def _lookup(self, inp: NodeInput) -> tuple[Callee, NodeCode | None, str, NodeCode | None]:
        """(code to call, its Team node or None, its display name, its function node or None)."""
        table = self._tables.get(inp.graph)
        if table is None:
            top = inp.graph.split("/")[0]  # a subgraph's nodes are served with the workflow that contains it
            whose = f' (a subgraph of "{top}")' if top != inp.graph else ""
            raise _fail(
                f'this worker does not serve workflow "{inp.graph}"{whose} (it serves: '
                f'{", ".join(self._tables) or "none"}); start the worker with the module of workflow "{top}"',
                "WorkerMissingGraph",
                non_retryable=False,
                expected=False,
            )
        node = table.get(inp.node)
        if node is None:
            raise _fail(f'workflow "{inp.graph}" has no node "{inp.node}" in this worker\'s code', "GraphError")
        if inp.member is None:
            if node.kind != KIND_FUNCTION or node.callee is None:
                raise _fail(f'node "{inp.node}" is a {node.kind} node, not a function', "GraphError")
            return node.callee, None, inp.node, node
        if node.kind != KIND_TEAM:
            raise _fail(f'node "{inp.node}" is not a Team', "GraphError")
        member = self._member(inp, node)
        return member.callee, node, member.name, None

    def _member(self, inp: NodeInput, team: NodeCode) -> MemberCode:
        """The Team member the activity type names (``Pipeline.Team.member``), never the one at the
        run's index: code that reordered or renamed members must not run one member as another."""
        prefix = f"{self._sources[inp.graph].name}.{inp.node}."
        kind = activity.info().activity_type
        if kind.startswith(prefix):
            name = kind[len(prefix) :]
            for member in team.members:
                if member.name == name:
                    return member
            raise _fail(
                f'Team "{inp.node}" has no member "{name}" in this worker\'s code (it has: '
                f"{', '.join(m.name for m in team.members)}); the run needs the code it started with",
                "GraphError",
            )
        if inp.member is None or not 0 <= inp.member < len(team.members):  # an activity type of no member
            raise _fail(f'Team "{inp.node}" has no member {inp.member}', "GraphError")
        return team.members[inp.member]

    async def run_node(self, inp: NodeInput, emitted: list[dict[str, Any]] | None = None) -> NodeOutput:
        callee, team, display, function = self._lookup(inp)
        reads = function.reads if function is not None else None
        history_names = function.history if function is not None else None
        where = f'node "{inp.node}"' + (f' member "{display}"' if team is not None else "")
        data = codec.decode(inp.input)
        if team is not None and team.input_mapper is not None:
            try:
                index = [m.name for m in team.members].index(display)  # its place in this code's Team
                data = await self._call(team.input_mapper, (data, index), is_async=_is_async(team.input_mapper))
            except Exception as exc:
                raise _fail(
                    f"input_mapper failed for {where}: {type(exc).__name__}: {safe_str(exc)}", "InputMapperError"
                ) from None

        resume = getattr(inp, "resume", None)
        if function is not None and function.breakpoint:  # interrupt_before: wait, then run as usual
            asked, resume = breakpoint_before(inp.node, resume)
            if asked is not None:
                return NodeOutput(value="null", interrupt=asked)
        view = None
        context = None
        emitter = None
        router = function.router if function is not None else None
        if callee.context_param is not None or (router is not None and router.context_param is not None):
            from gecko_temporal.temporal.streams import NodeEmitter

            emitter = NodeEmitter(inp.node, inp.step, display if team is not None else None, emitted)
            view = StateView(inp.state or {}, node=inp.node, limited_to=list(reads) if reads is not None else None)
            context = WorkflowContext(
                state=view,
                history=History(inp.history or {}, node=inp.node, limited_to=history_names),
                input=codec.decode(inp.run_input) if inp.run_input is not None else None,
                session_id=inp.session_id,
                node=inp.node,
                step=inp.step,
                member=display if team is not None else None,
                resume=resume,
                emitter=emitter.emit,
                effects=effects.node_effects(inp, await _first_run(), activity.client().data_converter),
            )
        cache = effects.node_cache(inp, function, data, context, activity.client().data_converter)
        if cache is not None and (hit := cache.hit()) is not None:
            if emitter is not None:
                await emitter.close()  # (a cache key function may have emitted)
            return hit  # the node's function does not run
        args = (data, context)
        meter = usage.start_meter()  # context.report_usage and agent adapters add to it
        earlier = flow_hooks.spent_before(meter)  # earlier failed attempts' usage was spent: it counts
        tokens = await limits_tokens.reserve(self.limits, where, meter.plain())  # a token limit's estimate
        try:
            with tracing.node_span(
                inp.graph,
                inp.node,
                inp.step,
                inp.session_id,
                activity.info().attempt,
                display if team is not None else None,
            ):
                result = await self._call(callee.invoke, args, is_async=callee.is_async)
        except ApplicationError:
            raise  # raised on purpose by the user's code, with its own type and retry choice
        except NodeInterrupted as interrupted:  # the run waits for an answer; the node runs again then
            if cache is not None:
                raise _fail(effects.INTERRUPT_REFUSED.format(node=inp.node), "EffectError") from None
            return NodeOutput(value="null", interrupt=interrupted.fields, usage=meter.plain())
        except (InterruptError, EffectError) as exc:  # misuse (bad payload, no record store): retrying cannot help
            raise _fail(str(exc), type(exc).__name__) from None
        except Exception as exc:
            spent = flow_hooks.keep_spent(meter)
            raise (flow_hooks.rate_limited(exc, where, spent) or _node_failure(exc, where, spent)) from None
        finally:
            await limits_tokens.settle(tokens, meter.plain(), earlier)  # what it spent, failed or not
            if emitter is not None:
                await emitter.close()  # what the node emitted reaches the run before its result

        routes: list[str] = []
        sends: list[Jump] = []
        try:
            if _is_send_list(result):  # a node's own fan-out: like Next, its successors and router are skipped
                items = [result] if isinstance(result, Send) else result
                if len(items) > MAX_SENDS:
                    raise _fail(_too_many_sends(where, len(items)), "TooManySends")
                size, limit = 0, _output_limit(inp)
                for i, s in enumerate(items):
                    text = codec.encode(s.arg, what=f"the Send {i} of {where}")
                    size += json_size(text) + len(s.node) + 16
                    problem = sends_problem(where, len(items), size, i, limit)
                    if problem:  # before encoding the rest: a worker must not hold gigabytes of them
                        raise _fail(problem, "PayloadTooLarge")
                    sends.append(Jump(node=s.node, input=text, source=inp.node))
            elif router is not None and function is not None and not isinstance(result, Next):
                try:  # LangGraph's routers see reduced keys combined with the node's update
                    routed = router_context(context, inp.state or {}, function.reducers)
                except ReducerError as exc:
                    raise _fail(str(exc), "ReducerError") from None
                try:
                    chosen = await self._call(router.invoke, (result, routed or context), is_async=router.is_async)
                    if routed is not None and context is not None and function.reducers:
                        keep_router_writes(context, routed, function.reducers)
                except ApplicationError:
                    raise
                except Exception as exc:  # like the node's own failure: retried by the node's policy
                    raise _node_failure(exc, f'router "{function.router_name}" of {where}') from None
                routes, sends = _resolve_routes(function, chosen, where)
        except SerializationError as exc:
            raise _fail(str(exc), "SerializationError") from None
        if len(sends) > MAX_SENDS:
            raise _fail(_too_many_sends(where, len(sends)), "TooManySends")

        try:
            jump = None
            if isinstance(result, Next):
                jump = Jump(
                    node=result.node, input=codec.encode(result.input, what=f"Next input from {where}"), source=inp.node
                )
            value = codec.encode(result, what=f"the output of {where}")
            delta = view.delta() if view is not None else None
        except SerializationError as exc:
            raise _fail(str(exc), "SerializationError") from None
        # Checked here, non-retryable: Temporal would fail it as retryable and every retry would too.
        problem = output_problem(
            where,
            value,
            delta.writes if delta else {},
            jump.input if jump else ("[" + ",".join(j.input for j in sends) + "]" if sends else ""),
            limit=_output_limit(inp),
        )
        if problem:
            raise _fail(problem, "PayloadTooLarge")
        out = NodeOutput(
            value=value,
            jump=jump,
            writes=delta.writes if delta else {},
            deletes=delta.deletes if delta else [],
            routes=routes,
            sends=sends,
            usage=meter.plain(),
        )
        if cache is not None:
            cache.keep(out)
        return out

    async def _call(self, fn: Any, args: tuple[Any, ...], *, is_async: bool) -> Any:
        """Call user code with automatic heartbeats; sync code goes to the thread pool."""
        heartbeat = None
        info = activity.info()
        if not info.is_local and info.heartbeat_timeout:
            heartbeat = asyncio.create_task(_heartbeat_every(info.heartbeat_timeout.total_seconds() / 3))
        try:
            if is_async:
                return await fn(*args)
            call = _ThreadCall()
            ctx = contextvars.copy_context()  # so activity.info()/heartbeat() work in user code
            future = asyncio.get_running_loop().run_in_executor(self._pool, ctx.run, call.run, fn, *args)
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                call.cancel()  # its late result, if any, is ignored
                future.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved: no log noise
                raise
        finally:
            if heartbeat is not None:
                heartbeat.cancel()


async def _first_run() -> str:
    info = activity.info()
    return await effects.first_run_of(activity.client(), info.workflow_id or "", info.workflow_run_id or "")


def _output_limit(inp: Any) -> int:
    """The payload limit a node's output must fit: the run's, if this worker's converter can."""
    return min(inp.payload_limit or PAYLOAD_LIMIT, payload_limit_of(activity.client().data_converter))


def _too_many_sends(where: str, count: int) -> str:
    return (
        f"{where} returned {count} Sends; one node output may hold at most {MAX_SENDS} "
        "(each is an activity, and Temporal allows 2,000 pending activities per workflow): "
        "batch the items, e.g. one Send per chunk of items"
    )


def _is_send_list(value: Any) -> bool:
    return isinstance(value, Send) or (
        isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, Send) for v in value)
    )


def _resolve_routes(code: NodeCode, chosen: Any, where: str) -> tuple[list[str], list[Jump]]:
    """The targets and Sends a router's result names; fail the node (no retry) on anything else."""
    path_map = code.path_map or {}
    items = list(chosen) if isinstance(chosen, (list, tuple)) else [chosen]
    routes: dict[str, None] = {}
    sends: list[Jump] = []
    for item in items:
        if isinstance(item, Send):
            if item.node not in code.send_targets:
                raise _fail(
                    f'router "{code.router_name}" of {where} returned Send({item.node!r}, ...), but '
                    f'"{item.node}" is not a node it may send to (valid: '
                    f"{', '.join(sorted(code.send_targets)) or 'none'}); add it to the path map",
                    "RouterError",
                )
            sends.append(
                Jump(
                    node=item.node,
                    input=codec.encode(
                        item.arg, what=f'the Send {len(sends)} of router "{code.router_name}" of {where}'
                    ),
                    source=ROUTER,
                )
            )
            continue
        try:
            target = path_map.get(item)
        except TypeError:  # unhashable
            target = None
        if target is None:
            shown = repr(chosen) if len(repr(chosen)) <= 200 else repr(chosen)[:200] + "..."
            choices = ", ".join(f"{k!r}" + (f" -> {v}" if v != k else "") for k, v in path_map.items())
            raise _fail(
                f'router "{code.router_name}" of {where} returned {shown}, which names no target '
                f"(valid: {choices}, or Send objects)",
                "RouterError",
            )
        if target != END:
            routes[target] = None
    return list(routes), sends


def _is_async(fn: Any) -> bool:
    import inspect

    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(fn.__call__ if callable(fn) else None)


async def _heartbeat_every(interval: float) -> None:
    # The first beat waits one interval: a beat at the start tells the server nothing new (it just
    # started the activity) and cost one history-service write per node. Crash detection counts
    # from the start anyway, so a dead worker's node is retried after heartbeat_timeout as before.
    interval = max(0.1, interval)
    while True:
        await asyncio.sleep(interval)
        activity.heartbeat()
