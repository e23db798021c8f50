"""The workflow's side of watching a run: its event stream, current details and search attributes.

Events live in a ``temporalio.contrib.workflow_streams`` log inside the workflow. Publishing from
the workflow is free (memory only: no command, no history event); what costs history is reading
(each poll is an update) and ``context.emit`` from nodes (each batch is a signal). Everything that
issues a command (search attribute upserts) or changes what the workflow
keeps is gated by ``workflow.patched(OBSERVE_PATCH)``, so histories recorded before replay as before.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue, SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.workflow_streams import (
    PollInput,
    PollResult,
    PublishEntry,
    PublisherState,
    PublishInput,
    WorkflowStream,
    WorkflowStreamState,
)
from temporalio.contrib.workflow_streams._types import TRUNCATED_OFFSET_ERROR_TYPE
from temporalio.exceptions import ApplicationError

from gecko_temporal.temporal.compat import (
    STREAM_POLL_UPDATE,
    STREAM_PUBLISH_SIGNAL,
    StreamWireItem,
    decode_stream_payload,
)

with workflow.unsafe.imports_passed_through():
    from gecko_temporal.core import events, stream_guard
    from gecko_temporal.protocol import (
        COST_ATTRIBUTE,
        EVENTS_TOPIC,
        OBSERVE_PATCH,
        PIPELINE_ATTRIBUTE,
        STATUS_ATTRIBUTE,
        STREAM_POLL_PATCH,
        TENANT_ATTRIBUTE,
        TOKENS_ATTRIBUTE,
        USAGE_EVENT,
    )

# The log lives in the workflow's memory and travels across continue-as-new: bound both. Readers
# further behind than what is kept restart from the oldest event kept.
KEEP_EVENTS = 5000
CARRY_EVENTS = 500
CARRY_BYTES = 256 * 1024

PIPELINE_KEY = SearchAttributeKey.for_keyword(PIPELINE_ATTRIBUTE)
STATUS_KEY = SearchAttributeKey.for_keyword(STATUS_ATTRIBUTE)
COST_KEY = SearchAttributeKey.for_float(COST_ATTRIBUTE)
TOKENS_KEY = SearchAttributeKey.for_int(TOKENS_ATTRIBUTE)
TENANT_KEY = SearchAttributeKey.for_keyword(TENANT_ATTRIBUTE)


def _state_from_plain(plain: Any) -> WorkflowStreamState | None:
    if not isinstance(plain, dict):
        return None
    try:
        return WorkflowStreamState(
            log=[StreamWireItem(topic=i["topic"], data=i["data"]) for i in plain.get("log", [])],
            base_offset=int(plain.get("base_offset", 0)),
            publishers=_recent_publishers(
                {
                    pid: PublisherState(sequence=int(p[0]), last_seen=datetime.fromisoformat(p[1]))
                    for pid, p in (plain.get("publishers") or {}).items()
                    if len(pid) <= stream_guard.PUBLISHER_ID_CHARS  # carried by a run before the bound
                }
            ),
        )
    except Exception:  # a malformed carried stream must not fail the run: start a fresh one
        return None


def _recent_publishers(publishers: dict[str, PublisherState]) -> dict[str, PublisherState]:
    """The publishers seen last (their ids deduplicate retried batches), at most KEEP_PUBLISHERS."""
    if len(publishers) <= stream_guard.KEEP_PUBLISHERS:
        return publishers
    recent = sorted(publishers.items(), key=lambda p: (p[1].last_seen, p[0]))[-stream_guard.KEEP_PUBLISHERS :]
    return dict(recent)


def _publish_input(args: tuple[Any, ...]) -> tuple[PublishInput | None, str]:
    """A checked stream publish batch, or None and why it is refused."""
    if len(args) != 1 or not isinstance(args[0], dict):
        return None, "a stream publish takes one object {items, publisher_id, sequence}"
    raw = args[0]
    items, publisher, sequence = raw.get("items"), raw.get("publisher_id", ""), raw.get("sequence", 0)
    if (
        not isinstance(items, list)
        or not isinstance(publisher, str)
        or not isinstance(sequence, int)
        or isinstance(sequence, bool)
    ):
        return None, "items must be a list, publisher_id a string and sequence an integer"
    entries = []
    for item in items:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("topic"), str)
            or not isinstance(item.get("data"), str)
        ):
            return None, "each item needs a topic and data (base64 of a Payload), both strings"
    # Sizes and ids first (cheap): a flood of big items must not cost decoding in the workflow task.
    sized = [(item["topic"], len(item["data"])) for item in items]
    problem = stream_guard.publish_problem(sized, publisher, EVENTS_TOPIC, {})
    if problem:
        return None, problem
    own: dict[int, Any] = {}
    converter = workflow.payload_converter()
    for i, item in enumerate(items):
        try:
            payload = decode_stream_payload(item["data"])
        except Exception:
            return None, f"item data on topic {item['topic'][:50]!r} is not base64 of a Payload"
        if item["topic"] == EVENTS_TOPIC:
            try:
                own[i] = converter.from_payload(payload)
            except Exception:
                own[i] = None
        entries.append(PublishEntry(topic=item["topic"], data=item["data"]))
    problem = stream_guard.publish_problem(sized, publisher, EVENTS_TOPIC, own)
    if problem:
        return None, problem
    return PublishInput(items=entries, publisher_id=publisher, sequence=sequence), ""


class RunEvents:
    """One run's stream and UI texts. Create in ``@workflow.init``; call :meth:`start` in ``run``."""

    def __init__(self, spec: Any, carried: Any = None, run: int = 1, on_reject: Any = None) -> None:
        self._stream = WorkflowStream(_state_from_plain(carried))  # registers its handlers
        # Its publish handler raises on a malformed batch (bad base64, a string instead of an object),
        # which fails the workflow task on every replay: anyone who can signal would wedge the run.
        # Ours checks every entry first and rejects a bad batch instead.
        workflow.set_signal_handler(STREAM_PUBLISH_SIGNAL, self._on_publish)
        # Its poll handler keeps every poll waiting; ours keeps a few, so that polls whose readers went
        # away cannot take all of Temporal's 10 updates in flight (see core/stream_guard.py).
        self._polls = stream_guard.WaitingPolls()
        self._poll_bound: bool | None = None
        workflow.set_update_handler(STREAM_POLL_UPDATE, self._on_poll, validator=self._validate_poll)
        self._on_reject = on_reject
        self.usage_line: str | None = None  # the run's usage, shown under the UI's current details
        self._topic = self._stream.topic(EVENTS_TOPIC)
        self._pipeline = spec.name
        self._total = len(spec.nodes)
        self._run = run
        self._started: dict[str, datetime] = {}
        self._done: set[str] = set()
        self.cached_nodes: list[str] = []  # nodes whose output came from their cache, in this run
        self.enabled = False
        self._attributes = False
        self._status = ""
        self._details: tuple[str, dict[str, int], dict[str, Any], int] | None = None  # to write at the turn's end

    def start(self, completed: list[str]) -> None:
        self.enabled = workflow.patched(OBSERVE_PATCH)
        self._done = set(completed)
        if self.enabled:
            # Upsert only when the run started with the attributes: the server then knows them, while
            # upserting an unregistered one would fail every workflow task of the run.
            self._attributes = workflow.info().typed_search_attributes.get(STATUS_KEY) is not None

    def child_attributes(self, pipeline: str) -> TypedSearchAttributes | None:
        """What a subgraph's child run starts with, so `gecko-temporal list --pipeline` finds it too
        (only when this run has them: the server then knows them), and its tenant and cost."""
        if not self._attributes:
            return None
        pairs: list[SearchAttributePair[Any]] = [
            SearchAttributePair(PIPELINE_KEY, pipeline),
            SearchAttributePair(STATUS_KEY, "running"),
        ]
        given = workflow.info().typed_search_attributes
        if given.get(COST_KEY) is not None:  # the server knows the flow attributes (the client checked)
            pairs += [SearchAttributePair(COST_KEY, 0.0), SearchAttributePair(TOKENS_KEY, 0)]
            tenant = given.get(TENANT_KEY)
            if tenant is not None:
                pairs.append(SearchAttributePair(TENANT_KEY, tenant))
        return TypedSearchAttributes(pairs)

    def _on_publish(self, *args: Any) -> None:
        try:
            if (
                len(args) == 2
                and args[0] == STREAM_PUBLISH_SIGNAL
                and isinstance(args[1], (list, tuple))
                and all(isinstance(a, RawValue) for a in args[1])
            ):
                # A publish that arrived with the run's start was decoded for the dynamic handler
                # (ours did not exist yet) and is handed to ours by name: (name, raw values).
                converter = workflow.payload_converter()
                args = tuple(converter.from_payload(a.payload) for a in args[1])
            batch, problem = _publish_input(args)
        except Exception as exc:  # never into the workflow task
            batch, problem = None, f"could not be read: {type(exc).__name__}"
        if batch is not None:
            self._stream._on_publish(batch)
            publishers = self._stream._publishers
            if len(publishers) > 2 * stream_guard.KEEP_PUBLISHERS:  # forged ids must not pile up
                self._stream._publishers = _recent_publishers(publishers)
        elif self._on_reject is not None:
            self._on_reject(STREAM_PUBLISH_SIGNAL, list(args), problem)

    # -- readers ---------------------------------------------------------------------------------
    def _validate_poll(self, payload: PollInput) -> None:
        self._stream._validate_poll(payload)  # refuses while the run switches (continue-as-new)
        problem = stream_guard.poll_offset_problem(payload.from_offset, self._stream._on_offset())
        if problem:  # it would wait forever, holding one of the run's 10 updates in flight
            raise ApplicationError(problem, type=stream_guard.OFFSET_ERROR, non_retryable=True)

    async def _on_poll(self, payload: PollInput) -> PollResult:
        """The SDK's long poll, but the oldest waiting polls are answered (with BUSY_ERROR) when
        more than MAX_WAITING_POLLS wait: a poll whose reader went away stays in flight for good."""
        token, release = self._polls.arrive()
        if release and not self._bound_polls():
            self._polls.unrelease(release)  # a run recorded before the bound replays without it
        stream = self._stream
        try:
            await workflow.wait_condition(
                lambda: (
                    self._polls.released(token)
                    or payload.from_offset < stream._base_offset
                    or len(stream._log) > payload.from_offset - stream._base_offset
                    or stream._detaching
                )
            )
            if self._polls.released(token):
                raise ApplicationError(stream_guard.BUSY_MESSAGE, type=stream_guard.BUSY_ERROR)
            if payload.from_offset != 0 and payload.from_offset < stream._base_offset:
                raise ApplicationError(
                    f"Requested offset {payload.from_offset} has been truncated. "
                    f"Current base offset is {stream._base_offset}.",
                    type=TRUNCATED_OFFSET_ERROR_TYPE,
                )
            return stream._collect_batch(payload)
        finally:
            self._polls.leave(token)

    def _bound_polls(self) -> bool:
        if self._poll_bound is None:  # asked once, when a poll first has to be released
            self._poll_bound = workflow.patched(STREAM_POLL_PATCH)
        return self._poll_bound

    # -- events ---------------------------------------------------------------------------------
    def _publish(self, type: str, **fields: Any) -> None:
        if not self.enabled:
            return
        self._topic.publish(events.event(type, time=workflow.now().isoformat(), run=self._run, **fields))
        kept_from = self._stream._on_offset() - KEEP_EVENTS
        if kept_from > self._stream._base_offset:
            self._stream.truncate(kept_from)

    def publish_emitted(self, items: Any) -> None:
        """Events a local node emitted, published when its result arrives (recorded, so replays agree)."""
        if not isinstance(items, list):
            return
        for item in items[:10_000]:
            if isinstance(item, dict):
                self._topic.publish(item)

    def node_started(self, node: str, step: int) -> None:
        self._started[f"{node}#{step}"] = workflow.now()
        self._publish(events.NODE_STARTED, node=node, step=step, completed=len(self._done), total=self._total)

    def node_finished(self, node: str, step: int, error: BaseException | None, describe: Any = None) -> None:
        began = self._started.pop(f"{node}#{step}", None)
        duration = round((workflow.now() - began).total_seconds(), 3) if began is not None else None
        if error is None:
            status, message = "completed", None
            self._done.add(node)
        elif isinstance(error, BaseException) and type(error).__name__ in ("CancelledError",):
            status, message = "cancelled", None
        else:
            status, message = "failed", describe(error) if describe else str(error)
        self._publish(
            events.NODE_FINISHED,
            node=node,
            step=step,
            status=status,
            duration=duration,
            error=message,
            completed=len(self._done),
            total=self._total,
        )

    def cached(self, node: str, step: int, hit: bool) -> None:
        """When ``hit`` (a node's output came from its cache): list it in gecko_state["cached"] and
        publish a ``cached`` event."""
        if hit:
            self.cached_nodes.append(node)
            self._publish(events.CACHED, node=node, step=step)

    def show_cached(self, answer: dict[str, Any]) -> None:
        """Add ``cached`` to a gecko_state answer, only once there was a hit: answers of runs without
        one stay as they were."""
        if self.cached_nodes:
            answer["cached"] = list(dict.fromkeys(self.cached_nodes))

    def waiting(self, node: str, step: int, prompt: Any, interrupt: int | None = None) -> None:
        data = {"prompt": prompt} if interrupt is None else {"prompt": prompt, "interrupt": interrupt}
        self._publish(events.WAITING, node=node, step=step, data=data)
        self.set_status("waiting")

    def usage(self, node: str, step: int, data: dict[str, Any]) -> None:
        """A node's reported usage and the run's total so far (flow control)."""
        self._publish(USAGE_EVENT, node=node, step=step, data=data)

    def set_usage(self, tokens: int, cost_usd: float) -> None:
        """The run's cost search attributes, when it started with them (the server knows them then)."""
        if self.enabled and workflow.info().typed_search_attributes.get(COST_KEY) is not None:
            workflow.upsert_search_attributes([COST_KEY.value_set(round(cost_usd, 6)), TOKENS_KEY.value_set(tokens)])

    def jump(self, source: str | None, target: str, step: int | None = None) -> None:
        self._publish(events.JUMP, node=source, step=step, data={"to": target})

    async def run_finished(self, status: str, error: str | None = None) -> None:
        """Publish the last event, let waiting readers take it, and set the final status."""
        self.set_status(status)
        if not self.enabled:
            return
        self._publish(events.RUN_FINISHED, status=status, error=error, completed=len(self._done), total=self._total)
        await self.release_readers()

    async def release_readers(self) -> None:
        """Answer the polls in flight and refuse new ones on this run (before it ends or switches)."""
        self._stream.detach_pollers()
        await workflow.wait_condition(workflow.all_handlers_finished)

    def reattach(self) -> None:
        """The run did not switch after all (its snapshot outgrew a payload): serve readers again."""
        self._stream._detaching = False

    def carry(self) -> dict[str, Any] | None:
        """The stream's tail for the next run (continue-as-new), bounded; None if streams are off."""
        if not self.enabled:
            return None
        state = self._stream.get_state()
        log, size = [], 0
        for item in reversed(state.log[-CARRY_EVENTS:]):
            size += len(item.data)
            if size > CARRY_BYTES:
                break
            log.append({"topic": item.topic, "data": item.data})
        log.reverse()
        base = state.base_offset + len(state.log) - len(log)
        return {
            "log": log,
            "base_offset": base,
            "publishers": {
                pid: [p.sequence, p.last_seen.isoformat()] for pid, p in _recent_publishers(state.publishers).items()
            },
        }

    # -- Temporal UI ----------------------------------------------------------------------------
    def set_status(self, status: str) -> None:
        if self._attributes and status != self._status:
            self._status = status
            workflow.upsert_search_attributes([STATUS_KEY.value_set(status)])

    def details(self, status: str, running: dict[str, int], waiting: dict[str, Any], step: int) -> None:
        """Show what the run does now, once per turn of the workflow's loop: every node start and end
        asks, and a 20-wide layer's 40 texts of 20 names each cost more than the layer's merge."""
        if self._details is None:
            asyncio.get_running_loop().call_soon(self._write_details)
        self._details = (status, running, waiting, step)

    def _write_details(self) -> None:
        # Not a command: the UI reads it through the workflow's metadata query, so no gate needed.
        if self._details is None:
            return
        status, running, waiting, step = self._details
        self._details = None
        shown = events.current_details(
            status, running, waiting, len(self._done), self._total, step, workflow.info().workflow_id
        )
        workflow.set_current_details(shown + (f"\n{self.usage_line}" if self.usage_line else ""))
