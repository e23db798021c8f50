"""What a node sees of the run when it asks for ``context``. Pure: no temporalio import."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from gecko_temporal.core import codec, usage
from gecko_temporal.core.effects import Effects
from gecko_temporal.core.errors import EffectError, InterruptError, SerializationError, StateKeyError
from gecko_temporal.core.state import StateView, after_own_writes

_NO_DEFAULT = object()
INTERRUPT_PAYLOAD_LIMIT = 1024 * 1024  # JSON characters: a payload is for a person (and gecko_state) to read


class NodeInterrupted(BaseException):
    """Raised by ``context.interrupt()`` to end the node's activity until someone answers.

    A BaseException, so a node's ``except Exception`` does not swallow it (do not catch it: the
    node would go on without the answer). ``fields`` is what the workflow needs to wait.
    """

    def __init__(self, fields: dict[str, Any]) -> None:
        super().__init__(f"node interrupted (interrupt {fields['index']})")
        self.fields = fields


class History(Mapping[str, Any]):
    """Read-only latest output of every node that already ran, decoded on first read."""

    def __init__(self, encoded: Mapping[str, str], *, node: str = "", limited_to: Any | None = None) -> None:
        self._encoded = encoded
        self._decoded: dict[str, Any] = {}
        self._node = node
        self._limited_to = None if limited_to is None else frozenset(limited_to)

    def __getitem__(self, node: str) -> Any:
        if node not in self._decoded:
            if self._limited_to is not None and node not in self._limited_to:
                raise StateKeyError(
                    f'node "{self._node}" read context.history["{node}"] but declared history='
                    f"{sorted(self._limited_to)}; add it there or drop history= to receive every output"
                )
            if node not in self._encoded:
                raise KeyError(
                    f'node "{node}" has not run yet in this session (ran: {", ".join(self._encoded) or "none"})'
                )
            self._decoded[node] = codec.decode(self._encoded[node])
        return self._decoded[node]

    def __iter__(self) -> Iterator[str]:
        return iter(self._encoded)

    def __len__(self) -> int:
        return len(self._encoded)


class WorkflowContext:
    """The run as one node sees it.

    ``state`` is the shared state (copy-on-read; assign a value back to change it), ``history``
    the latest output of each node that ran, ``input`` the run's input, ``session_id`` the run's
    id (the Temporal workflow id), ``node`` this node's name and ``step`` its execution number.
    """

    def __init__(
        self,
        *,
        state: StateView,
        history: History,
        input: Any,
        session_id: str,
        node: str,
        step: int,
        member: str | None = None,
        resume: list[str] | None = None,
        emitter: Callable[[Any], None] | None = None,
        effects: Effects | None = None,
    ) -> None:
        self.state = state
        self.history = history
        self.input = input
        self.session_id = session_id
        self.node = node
        self.step = step
        self.member = member
        self._resume = list(resume or ())  # answers to this execution's interrupts so far (JSON text)
        self._interrupts = 0  # interrupt() calls so far in this attempt
        self._emitter = emitter
        self._effects = effects

    def emit(self, data: Any) -> None:
        """Publish ``data`` on the run's event stream now, as a ``custom`` event (e.g. a token).

        Works in sync nodes (from their thread) and async ones, Team members too; readers of
        ``handle.stream()`` see it while the node still runs. Events are sent in small batches, and
        all are sent before the node's result. Raises SerializationError for data that is not JSON-like.
        """
        if self._emitter is None:
            return  # outside a worker (a node called directly): nobody to tell
        self._emitter(data)

    def report_usage(
        self,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost_usd: float | None = None,
        model: str | None = None,
    ) -> None:
        """Record one model call's tokens and cost for this node (rolled up in ``gecko_state["usage"]``).

        Without ``cost_usd``, the cost comes from ``model``'s price (``gecko_temporal.set_price``);
        with neither, the tokens count and the cost stays unknown (never guessed)."""
        usage.report(input_tokens, output_tokens, cost_usd, model)

    def interrupt(self, payload: Any = None, *, timeout: float | None = None, default: Any = _NO_DEFAULT) -> Any:
        """Pause the run until a person answers; return the answer.

        The first time, this ends the node's activity: the run waits durably (no activity runs),
        ``gecko_state["waiting"][node]`` shows ``payload``, and ``handle.answer(node, value)`` (or
        the ``gecko_answer`` signal, or ``gecko-temporal answer``) resumes it. The node then runs
        again **from its start** with the same input and state, and this call returns the answer.
        The i-th call in one node returns the i-th answer, so code before an interrupt runs once
        per answer: keep side effects after the last interrupt, or make them idempotent.
        ``timeout`` (seconds) bounds the wait: then ``default`` is the answer if given, else the
        run fails naming the node. Team members cannot interrupt.
        """
        where = f'node "{self.node}"'
        if self.member is not None:
            raise InterruptError(
                f'{where} member "{self.member}" called context.interrupt(): Team members '
                "cannot interrupt (their siblings would have to wait or re-run too); interrupt "
                "in a node before or after the Team, or use a WaitForInput node"
            )
        index = self._interrupts
        self._interrupts += 1
        if index < len(self._resume):
            return codec.decode(self._resume[index])
        if timeout is not None and not (
            isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0
        ):
            raise InterruptError(
                f"{where}: context.interrupt(timeout=...) must be a positive number of seconds, got {timeout!r}"
            )
        try:
            text = codec.encode(payload, what=f"the payload of context.interrupt() in {where}")
            default_text = (
                None
                if default is _NO_DEFAULT
                else codec.encode(default, what=f"the default of context.interrupt() in {where}")
            )
        except SerializationError as exc:
            raise InterruptError(str(exc)) from None
        if len(text) > INTERRUPT_PAYLOAD_LIMIT:
            raise InterruptError(
                f"the payload of context.interrupt() in {where} is {len(text):,} characters of "
                f"JSON, over {INTERRUPT_PAYLOAD_LIMIT:,}; show a person a summary or a file path"
            )
        raise NodeInterrupted({"payload": text, "index": index, "timeout": timeout, "default": default_text})

    def once(self, key: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` at most once per ``key`` in this node execution; return its result.

        A node execution is this step of the node (one Send instance, one Team member) in this
        session: its retries, a crash of its worker and its re-runs after ``interrupt()`` share it. The
        result is recorded durably before ``once`` returns, and a later attempt gets the recorded
        result (as JSON data arrives: a tuple as a list) without calling ``fn``. An ``fn`` that
        raises records nothing, so the next attempt calls it again. One window remains: a crash
        after ``fn`` returned and before its record landed runs it again. For an async ``fn``,
        ``await context.once(...)``. Needs a payload store (``GECKO_PAYLOAD_STORE=file:///dir`` or ``s3://...``;
        the embedded default has one); pass :meth:`idempotency_key` to APIs that take one too.
        """
        return self._need_effects("once").once(key, fn, args, kwargs)

    def idempotency_key(self, name: str = "") -> str:
        """A string that stays the same across this node execution's attempts and re-runs, and
        differs between executions (steps, Send instances, Team members, sessions) and names:
        give it to an API that deduplicates by key (a payment provider, a ticketing system)."""
        return self._need_effects("idempotency_key").scope.idempotency_key(name)

    def _need_effects(self, what: str) -> Effects:
        if self._effects is None:
            raise EffectError(
                f'node "{self.node}": context.{what}() works only while the node runs on a worker '
                "(this context was built outside one)"
            )
        return self._effects

    def __repr__(self) -> str:
        return f"WorkflowContext(session_id={self.session_id!r}, node={self.node!r}, step={self.step})"


def router_context(
    context: WorkflowContext | None, base: Mapping[str, str], reducers: Mapping[str, str] | None
) -> WorkflowContext | None:
    """The context a router reads when its node wrote a reduced key: the state after the node's
    update went through the reducers (LangGraph's rule), not the node's contribution alone. None
    when the node's own context already is that (no reduced key written). May raise ReducerError."""
    if context is None or not reducers:
        return None
    delta = context.state.delta()
    if not any(key in reducers for key in delta.writes):
        return None
    routed = copy.copy(context)
    routed.state = StateView(after_own_writes(base, delta, reducers, node=context.node), node=context.node)
    return routed


def keep_router_writes(context: WorkflowContext, routed: WorkflowContext, reducers: Mapping[str, str]) -> None:
    """What a router wrote or deleted in its own view lands in the node's (reduced keys stay the
    node's contribution: the router saw their combined value)."""
    delta = routed.state.delta()
    for key in delta.writes:
        if key not in reducers:
            context.state[key] = routed.state[key]
    for key in delta.deletes:
        if key in context.state:
            del context.state[key]


def breakpoint_before(node: str, resume: list[str] | None) -> tuple[dict[str, Any] | None, list[str] | None]:
    """A static breakpoint (LangGraph's ``interrupt_before``) on ``node``: (the interrupt to wait in,
    None) before anyone answered it; once answered, (None, the answers left for the node's own
    ``context.interrupt()`` calls). The node's code never runs before the answer."""
    if not resume:
        payload = codec.encode({"breakpoint": "before", "node": node})
        return {"payload": payload, "index": 0, "timeout": None, "default": None}, None
    return None, resume[1:]
