"""Token limits on Temporal: one limiter workflow per limit, and the node's side of it.

The limiter (``GeckoTokenLimit``, id ``gecko-tokens:<limit queue>``) runs on the limit's task queue,
served by every worker that serves the limit. It holds a :class:`TokenWindow` as workflow state, so
the minute's count survives any worker's crash and is the same for every run and worker. A limited
node's activity reserves through an update (update-with-start: the first node creates the limiter),
and settles through a signal after its call; a node told to wait fails its attempt as ``RetryAfter``
(``core/flow.py``): the run waits on a durable timer, holding no worker slot, and the attempt does
not count toward the node's retries.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from temporalio import activity, workflow
from temporalio.common import WorkflowIDConflictPolicy

with workflow.unsafe.imports_passed_through():
    from gecko_temporal.core import flow
    from gecko_temporal.core.errors import ServerError
    from gecko_temporal.core.flow_limits import LIMIT_QUEUE_INFIX, Limit
    from gecko_temporal.core.flow_tokens import TokenWindow, limiter_id
    from gecko_temporal.temporal import flow_hooks

_log = logging.getLogger("gecko_temporal.worker")
#: The limiter moves to a new run (continue-as-new) past this many events, long before Temporal's limits.
_HISTORY_EVENTS = 4000
#: The suffix of a node's activity id started again after a rate limit (temporal/flow.py).
_RESTART = re.compile(r"\.r\d+$")


@workflow.defn(name="GeckoTokenLimit")
class TokenLimiter:
    """The token window of one limit (see the module docstring)."""

    @workflow.init
    def __init__(self, state: dict[str, Any]) -> None:
        # In __init__, not run(): an update delivered with the start is handled before run() begins.
        self.window = TokenWindow.from_plain(state.get("window"))
        per_minute = state.get("tokens_per_minute")
        self.tokens_per_minute: int | None = per_minute if isinstance(per_minute, int) else None
        # `gecko-temporal limits set NAME --tokens-per-minute N`: wins over what the nodes' code
        # declares until `limits reset NAME`, for every run and worker (it lives here, in history)
        override = state.get("override")
        self.override: int | None = override if isinstance(override, int) and override >= 1 else None

    @workflow.run
    async def run(self, state: dict[str, Any]) -> None:
        await workflow.wait_condition(
            lambda: (
                workflow.info().is_continue_as_new_suggested()
                or workflow.info().get_current_history_length() > _HISTORY_EVENTS
            )
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            {"window": self.window.to_plain(), "tokens_per_minute": self.tokens_per_minute, "override": self.override}
        )

    @workflow.update
    def reserve(self, ask: dict[str, Any]) -> dict[str, Any]:
        """``{"id", "waiter", "tokens_per_minute", "estimate"}`` -> ``{"granted": n}`` or ``{"wait": s}``."""
        self.tokens_per_minute = int(ask["tokens_per_minute"])
        now = workflow.now().timestamp()
        per_minute = self.override or self.tokens_per_minute
        return self.window.reserve(ask["id"], ask["waiter"], per_minute, ask.get("estimate"), now)

    @reserve.validator
    def _check(self, ask: dict[str, Any]) -> None:
        per_minute = ask.get("tokens_per_minute") if isinstance(ask, dict) else None
        if not isinstance(per_minute, int) or per_minute < 1 or not isinstance(ask.get("id"), str):
            raise ValueError(f"a token reservation needs an id and tokens_per_minute >= 1, got {ask!r}")

    @workflow.signal
    def settle(self, spent: dict[str, Any]) -> None:
        """``{"id", "tokens"}``: the reservation's real usage."""
        tokens = spent.get("tokens") if isinstance(spent, dict) else None
        if isinstance(tokens, int) and isinstance(spent.get("id"), str):
            self.window.settle(spent["id"], tokens)

    @workflow.update
    def set_tokens_per_minute(self, per_minute: int | None) -> dict[str, Any]:
        """Override the limit at run time (None: back to what the code declares); returns its use."""
        self.override = per_minute
        return self.use()

    @set_tokens_per_minute.validator
    def _check_override(self, per_minute: int | None) -> None:
        if per_minute is not None and (
            not isinstance(per_minute, int) or isinstance(per_minute, bool) or per_minute < 1
        ):
            raise ValueError(f"tokens_per_minute must be a whole number >= 1 (or null to reset), got {per_minute!r}")

    @workflow.query
    def use(self) -> dict[str, Any]:
        """The limit's live use (``gecko-temporal limits``)."""
        shown = self.window.shown(self.override or self.tokens_per_minute, workflow.now().timestamp())
        return {**shown, "declared": self.tokens_per_minute, "override": self.override}


@dataclass(frozen=True)
class Reservation:
    """A granted reservation, settled after the node's call."""

    limiter: str
    id: str
    tokens: int


def _limit_of(limits: dict[str, Limit]) -> tuple[Limit, str] | None:
    """The token limit the running activity is under (from its task queue), and that queue."""
    queue = activity.info().task_queue
    _, sep, name = queue.rpartition(LIMIT_QUEUE_INFIX)
    limit = limits.get(name) if sep else None
    if limit is None or limit.tokens_per_minute is None:
        return None
    return limit, queue


async def reserve(limits: dict[str, Limit], where: str, spent: dict[str, Any] | None = None) -> Reservation | None:
    """Reserve the running node's estimate on its token limit; None when it has none. When the
    minute is full, raise the RetryAfter failure that makes the run try again after the wait
    (carrying ``spent``: earlier failed attempts' usage, which the restart would not see)."""
    found = _limit_of(limits)
    if found is None:
        return None
    limit, queue = found
    info = activity.info()
    waiter = f"{info.workflow_id}/{_RESTART.sub('', info.activity_id)}"  # the same across rate-limited restarts
    reservation = f"{info.workflow_run_id}/{info.activity_id}/{info.attempt}"
    ask = {
        "id": reservation,
        "waiter": waiter,
        "tokens_per_minute": limit.tokens_per_minute,
        "estimate": limit.estimate_tokens,
    }
    client = activity.client()
    limiter = limiter_id(queue)
    start = workflow_start(limiter, queue)
    answer = await _heartbeating(
        client.execute_update_with_start_workflow(TokenLimiter.reserve, ask, start_workflow_operation=start)
    )
    if "granted" in answer:
        return Reservation(limiter, reservation, int(answer["granted"]))
    wait = float(answer["wait"])
    _log.info("%s waits %.3g s for tokens on limit %r", where, wait, limit.name)
    failure = flow_hooks.rate_limited(flow.RetryAfter(wait, f"token limit {limit.name!r} is used up"), where, spent)
    assert failure is not None
    raise failure


async def _heartbeating(call: Awaitable[Any]) -> Any:
    """Await ``call``, heartbeating meanwhile: the limiter may take seconds to answer (its worker was
    killed and its task moves to another), longer than the node's heartbeat timeout."""
    task = asyncio.ensure_future(call)
    timeout = activity.info().heartbeat_timeout
    interval = timeout.total_seconds() / 3 if timeout else None
    while True:
        done, _ = await asyncio.wait({task}, timeout=interval)
        if done:
            return task.result()
        activity.heartbeat()


def workflow_start(limiter: str, queue: str) -> Any:
    """The start of a limit's limiter, for update-with-start (an existing one is used)."""
    from temporalio.client import WithStartWorkflowOperation

    return WithStartWorkflowOperation(
        TokenLimiter.run,
        {},
        id=limiter,
        task_queue=queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def settle(reservation: Reservation | None, reported: dict[str, Any] | None, earlier: int = 0) -> None:
    """Settle ``reservation`` at the usage the node reported (0 when none), less the ``earlier``
    attempts' tokens it carries (they settled their own). Best effort: a lost settle leaves the
    estimate in its minute, which then ends by itself."""
    if reservation is None:
        return
    tokens = max(0, int((reported or {}).get("tokens", 0)) - earlier)
    try:
        handle = activity.client().get_workflow_handle(reservation.limiter)
        await asyncio.wait_for(handle.signal(TokenLimiter.settle, {"id": reservation.id, "tokens": tokens}), 10)
    except Exception as exc:  # never fail a node that did its work over its accounting
        _log.warning("could not settle %d tokens on %s: %s", tokens, reservation.limiter, exc)


async def set_tokens_per_minute(
    client: Any, queue: str, per_minute: int | None, within: float = 15.0
) -> dict[str, Any]:
    """Set (or, with None, reset) the token limit on ``queue`` at run time, for every run and worker;
    starts the limit's limiter if no node has used it yet. Returns the limit's use."""
    start = workflow_start(limiter_id(queue), queue)
    call = client.execute_update_with_start_workflow(
        TokenLimiter.set_tokens_per_minute, per_minute, start_workflow_operation=start
    )
    try:
        return dict(await asyncio.wait_for(call, within))
    except asyncio.TimeoutError:
        raise ServerError(
            f"no worker on task queue {queue} answered within {within:g} s: start a worker that serves a "
            "workflow declaring this token limit, then set it again"
        ) from None


async def use_of(client: Any, queue: str) -> dict[str, Any] | None:
    """The live use of a limit's tokens (None when its limiter never ran)."""
    try:
        handle = client.get_workflow_handle(limiter_id(queue))
        return dict(await asyncio.wait_for(handle.query(TokenLimiter.use), 10))
    except Exception:
        return None
