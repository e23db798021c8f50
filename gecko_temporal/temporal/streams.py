"""The outside ends of a run's event stream: nodes publishing (``context.emit``) and readers
(``RunHandle.stream``), over ``temporalio.contrib.workflow_streams``.

A node's events go to its workflow as signals, batched (``GECKO_EMIT_INTERVAL``, default 0.2 s):
each batch costs one signal event plus one workflow task in history, however many events it
carries. Readers long-poll with updates: each answered poll costs history too (the update's
accepted/completed events), so a reader that is caught up waits inside its poll instead of polling.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import threading
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio import activity
from temporalio.client import (
    Client,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import RawValue
from temporalio.contrib.workflow_streams import PollInput, PollResult, WorkflowStreamClient
from temporalio.service import RPCError, RPCStatusCode

from gecko_temporal.core import codec, events, stream_guard
from gecko_temporal.core.errors import GeckoError
from gecko_temporal.protocol import EVENTS_TOPIC
from gecko_temporal.temporal.compat import STREAM_POLL_UPDATE, decode_stream_payload

_log = logging.getLogger("gecko_temporal.worker")
_TRANSIENT = {
    RPCStatusCode.FAILED_PRECONDITION,
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.ABORTED,
    RPCStatusCode.INTERNAL,
    RPCStatusCode.UNKNOWN,
}


BUSY_READ_SECONDS = 30.0  # a reader told the run is busy reads by query this long, then polls again


def _emit_interval() -> float:
    try:
        return max(0.02, float(os.environ.get("GECKO_EMIT_INTERVAL", "0.2")))
    except ValueError:
        return 0.2


class NodeEmitter:
    """``context.emit`` of one node attempt: thread-safe, batched, flushed before the node returns."""

    def __init__(self, node: str, step: int, member: str | None, collected: list[dict[str, Any]] | None = None) -> None:
        info = activity.info()
        # A local activity runs inside a workflow task: a signal from it lands during that task, and
        # the task's completion is then refused (new events) and retried, re-running the local node,
        # which signals again: a livelock. Its events travel with its result instead.
        self._collected = collected if info.is_local else None
        self._node, self._step, self._member, self._attempt = node, step, member, info.attempt
        # A node activity is always scheduled by its run's workflow (None only outside a workflow).
        assert info.workflow_id is not None
        self._workflow_id = info.workflow_id
        self._client = activity.client()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stream: WorkflowStreamClient | None = None
        self._topic: Any = None
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self.count = 0

    def emit(self, data: Any) -> None:
        text = codec.encode(data, what=f'the data node "{self._node}" passed to context.emit')
        item = events.event(
            events.CUSTOM,
            node=self._node,
            step=self._step,
            data=json.loads(text),
            time=datetime.now(timezone.utc).isoformat(),
            member=self._member,
            attempt=self._attempt,
        )
        if self._collected is not None:
            self._collected.append(item)  # list.append is atomic: safe from a sync node's thread
            self.count += 1
        elif threading.get_ident() == self._loop_thread:
            self._publish(item)
        else:  # a sync node's thread: the stream client belongs to the worker's event loop
            self._loop.call_soon_threadsafe(self._publish, item)

    def _publish(self, item: dict[str, Any]) -> None:
        if self._stream is None:
            self._stream = WorkflowStreamClient.create(self._client, self._workflow_id)
            self._topic = self._stream.topic(EVENTS_TOPIC)
            self._flusher = asyncio.ensure_future(self._flush_every(_emit_interval()))
        self.count += 1
        self._topic.publish(item)
        self._wake.set()

    async def _flush_every(self, interval: float) -> None:
        # Leading edge: an event after a quiet spell goes out at once; a burst goes out at most once
        # per interval, as one signal. Our own flusher, not the client's context manager: cancelling
        # that one while a signal is in flight turns the cancel into a retryable RPC error it
        # swallows, and its exit then waits forever (the node hung until its heartbeat timed out).
        assert self._stream is not None
        loop = asyncio.get_running_loop()
        last = float("-inf")
        while not self._closing:
            await self._wake.wait()
            wait = last + interval - loop.time()
            if wait > 0 and not self._closing:
                await asyncio.sleep(wait)
            self._wake.clear()
            last = loop.time()
            try:
                await self._stream.flush()
            except Exception as exc:  # kept pending by the client; retried at the next flush
                _log.debug('node "%s": sending emitted events failed, will retry: %s', self._node, exc)

    async def close(self) -> None:
        """Send what is left (before the node's result, so readers get it first)."""
        # Events a sync node emitted just before returning may still sit in the loop's queue.
        await asyncio.sleep(0)
        if self._stream is None:
            return
        assert self._flusher is not None  # started together with the stream (_publish)
        self._closing = True
        self._wake.set()
        try:
            await self._flusher
            await self._stream.flush()
        except Exception as exc:  # the run may be gone; the node's result matters more
            _log.warning('node "%s": %d emitted event(s) could not be sent: %s', self._node, self.count, exc)


async def read_events(
    client: Client, workflow_id: str, from_offset: int = 0, poll_interval: float = 0.1
) -> AsyncIterator[events.RunEvent]:
    """Events of a session from ``from_offset`` on, across continue-as-new, until the run ends."""
    if isinstance(from_offset, bool) or not isinstance(from_offset, int) or from_offset < 0:
        raise ValueError(f"from_offset must be an event number, 0 or more; got {from_offset!r}")
    offset = from_offset
    while True:
        stream = WorkflowStreamClient.create(client, workflow_id)
        try:
            async for item in stream.subscribe(
                [EVENTS_TOPIC], from_offset=offset, result_type=RawValue, poll_cooldown=timedelta(seconds=poll_interval)
            ):
                offset = item.offset + 1
                event = _event_of(client, item.data.payload, item.offset)
                yield event
                if event.type == events.RUN_FINISHED:
                    return
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            continue  # a long poll outlived the RPC deadline (no worker for a while): poll again
        except WorkflowUpdateFailedError as exc:
            kind = getattr(exc.cause, "type", None)
            if kind == stream_guard.OFFSET_ERROR:
                raise GeckoError(f'cannot watch session "{workflow_id}": {_message(exc)}') from None
            if kind != stream_guard.BUSY_ERROR:
                raise
            # Too many readers wait on this run (maybe abandoned ones): read by query for a while,
            # which takes none of the run's updates in flight and adds nothing to its history.
            finished = False
            async for event in _read_by_query(client, workflow_id, offset, max(1.0, poll_interval)):
                offset = event.offset + 1
                yield event
                if event.type == events.RUN_FINISHED:
                    finished = True
                    break
            if finished:
                return
            continue
        except RPCError as exc:
            if exc.status not in _TRANSIENT:
                raise
            # e.g. "workflow not ready": the poll arrived while a workflow task was running local
            # activities. The run goes on; ask again shortly.
            await asyncio.sleep(poll_interval)
            continue
        break
    # The run ended without telling (terminated, cancelled, timed out by the server, or started
    # before streams existed): say how it ended, from Temporal.
    description = await client.get_workflow_handle(workflow_id).describe()
    status = description.status.name.lower() if description.status else "unknown"
    yield events.RunEvent(
        type=events.RUN_FINISHED,
        offset=offset,
        status=status,
        time=(description.close_time or datetime.now(timezone.utc)).isoformat(),
    )


def _event_of(client: Client, payload: Any, offset: int) -> events.RunEvent:
    converter = client.data_converter.payload_converter
    try:  # anyone who may signal the run can publish: a payload we cannot read is not fatal
        data = converter.from_payload(payload)
    except Exception as exc:
        data = {"type": "unknown", "error": f"unreadable event: {type(exc).__name__}"}
    if isinstance(data, dict) and "data" in data:
        data = dict(data, data=codec.revive(data["data"]))
    return events.RunEvent.from_plain(data, offset)


async def _read_by_query(
    client: Client, workflow_id: str, offset: int, interval: float, within: float = BUSY_READ_SECONDS
) -> AsyncIterator[events.RunEvent]:
    """Events from ``offset`` on by the stream's poll query, for ``within`` seconds (then the
    caller polls by update again); stops early if a query fails."""
    handle = client.get_workflow_handle(workflow_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    jitter = random.uniform(0, interval)  # many readers sent here at once must not come back at once
    while loop.time() < deadline + jitter:
        try:
            result = await handle.query(
                STREAM_POLL_UPDATE, PollInput(topics=[EVENTS_TOPIC], from_offset=offset), result_type=PollResult
            )
        except (RPCError, WorkflowQueryFailedError):
            return
        for item in result.items:
            offset = item.offset + 1
            yield _event_of(client, decode_stream_payload(item.data), item.offset)
        if not result.more_ready:
            await asyncio.sleep(interval)


def _message(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    return getattr(cause, "message", None) or str(cause)


async def follow(handle: Any, out: Any, from_offset: int = 0, state: dict[str, Any] | None = None) -> events.Progress:
    """Print a run's progress lines to ``out`` until it ends (``watch``, ``run``, the example)."""
    state = state or {}
    progress = events.Progress(
        total=len(state.get("nodes") or []), completed=state.get("completed") or [], running=state.get("running") or []
    )
    async for event in handle.stream(from_offset=from_offset):
        for line in progress.feed(event):
            print(line, file=out, flush=True)
    return progress
