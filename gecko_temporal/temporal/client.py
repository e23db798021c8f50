"""Connect to Temporal, start runs and talk to them (:class:`RunHandle`).

With no ``TEMPORAL_ADDRESS`` in the environment (nor a config profile with an address), runs go to
the embedded dev server and in-process worker of :mod:`gecko_temporal.temporal.embedded`, so a plain script
runs a pipeline with nothing started by hand. With ``TEMPORAL_ADDRESS`` (and the other
``TEMPORAL_*`` variables ``temporalio.envconfig`` reads) runs go to that cluster and workers
started with ``worker.py`` / ``gecko-temporal worker`` execute them.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, CancelledError, WorkflowAlreadyStartedError
from temporalio.exceptions import TimeoutError as TemporalTimeout
from temporalio.service import RPCError, RPCStatusCode

from gecko_temporal.core import codec
from gecko_temporal.core.budget import BudgetExceeded
from gecko_temporal.core.errors import (
    GeckoError,
    GraphError,
    JumpRejectedError,
    NodeError,
    SerializationError,
    ServerError,
    StateEditError,
    StepLimitError,
    WorkflowTimeoutError,
)
from gecko_temporal.core.flow_limits import run_flow
from gecko_temporal.core.limits import FRAME, PAYLOAD_LIMIT, human, json_size, limit_name, name_problem
from gecko_temporal.core.run.handoff import workflow_input
from gecko_temporal.core.spec import GraphSpec
from gecko_temporal.protocol import (
    ANSWER_UPDATE,
    JUMP_UPDATE,
    NEXT_SIGNAL,
    STATE_QUERY,
    STATE_UPDATE,
    WORKFLOW_TYPE,
)
from gecko_temporal.temporal import tracing
from gecko_temporal.temporal.compat import handle_client
from gecko_temporal.temporal.embedded import DevServer, embedded_server, embedded_worker, find_temporal_binary
from gecko_temporal.temporal.payloads import data_converter, payload_limit_of
from gecko_temporal.temporal.rewind import rewind_session, session_steps

if TYPE_CHECKING:
    from gecko_temporal.core.build.graph import Workflow
    from gecko_temporal.core.events import RunEvent

# DevServer and find_temporal_binary lived here before embedded.py and are still imported from here.
__all__ = [
    "DEFAULT_TASK_QUEUE",
    "DevServer",
    "NamespaceNotFound",
    "RunHandle",
    "connect",
    "connect_config",
    "find_temporal_binary",
    "get_handle",
    "is_embedded",
    "start",
    "task_queue_for",
]

DEFAULT_TASK_QUEUE = "gecko-temporal"
_TIMEOUT_GRACE = 30.0  # the server-side backstop fires this long after the run's own deadline


class NamespaceNotFound(ServerError):
    """The server answers but has no such namespace (waiting for it will not help)."""


def connect_config(address: str | None = None) -> dict[str, Any]:
    """The user's Temporal client settings: the ``temporalio.envconfig`` profile (the file named by
    TEMPORAL_CONFIG_FILE or the default one, the profile TEMPORAL_PROFILE names, and every
    ``TEMPORAL_*`` variable), with ``address`` (e.g. ``--address``) winning over its address.
    Empty when nothing names a server: then the embedded dev server is used."""
    from temporalio.envconfig import ClientConfig

    try:
        config = dict(ClientConfig.load_client_connect_config())
    except Exception as exc:
        where = os.environ.get("TEMPORAL_CONFIG_FILE") or "the Temporal config file"
        raise ServerError(
            f"cannot read the Temporal client settings from {where} "
            f"(profile {os.environ.get('TEMPORAL_PROFILE') or 'default'}): {exc}"
        ) from None
    if address:
        config["target_host"] = address
    return config


def is_embedded() -> bool:
    """True when nothing names a server (no TEMPORAL_ADDRESS, no config profile with an address):
    runs then use the embedded dev server and worker."""
    return "target_host" not in connect_config()


# -- clients (one per event loop and target) -------------------------------------------------------
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Client]] = weakref.WeakKeyDictionary()


CLOSING_RETRIES = 50  # 0.2 s apart: a continue-as-new takes one workflow task


def _settle_at_exit() -> None:
    """Give the SDK's Rust threads a moment before the interpreter finalizes.

    A Rust thread that has just handed a result (or a failed connect) to Python may still be
    releasing its GIL state when the process exits; CPython then aborts with "Fatal Python error:
    PyGILState_Release" (temporalio/sdk-python#300). Measured: 8 of 40 client processes whose
    connect failed aborted, none of 60 once exit waited 20 ms. Registered once, by the first connect.
    """
    if not _exit_settles:
        _exit_settles.append(True)
        atexit.register(time.sleep, 0.05)


_exit_settles: list[bool] = []


async def connect(address: str | None = None) -> Client:
    """A client for ``address``, else the user's Temporal settings, else the embedded dev server.

    Settings come from :func:`connect_config` everywhere the engine connects (scripts, workers, the
    CLI). The namespace is checked once, so a wrong one fails here with its name instead of
    leaving a worker polling a namespace that does not exist. Clients are cached per event loop
    and settings, so changing TEMPORAL_ADDRESS takes effect.
    """
    config = connect_config(address)
    embedded = "target_host" not in config
    if embedded:  # embedded: its own server and worker, default namespace
        config = {"target_host": embedded_server().address}
    converter = data_converter(embedded=embedded)  # GECKO_ENCRYPTION_KEY etc. (payloads.py): part of the cache key
    interceptors = tracing.interceptors()  # GECKO_OTEL: part of the cache key too
    target = json.dumps(config, sort_keys=True, default=repr) + f"#{id(converter)}#{bool(interceptors)}"
    cache = _clients.setdefault(asyncio.get_running_loop(), {})
    _settle_at_exit()
    if target not in cache:
        where = config["target_host"]
        try:  # (a dev server is handed out only once it serves clients: see DevServer._serving)
            client = await Client.connect(**config, data_converter=converter, interceptors=interceptors)
        except RuntimeError as exc:
            raise ServerError(
                f"cannot connect to Temporal at {where}: {exc}; start the server or fix "
                "TEMPORAL_ADDRESS / the config profile (unset them to use the embedded dev "
                "server)"
            ) from None
        await _check_namespace(client, where)
        cache[target] = client
    return cache[target]


async def _check_namespace(client: Client, where: str) -> None:
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
    from temporalio.service import RPCStatusCode

    try:
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=client.namespace))
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise NamespaceNotFound(
                f'namespace "{client.namespace}" does not exist on {where}; create it with `temporal operator '
                f"namespace create --namespace {client.namespace}` or fix TEMPORAL_NAMESPACE / the config "
                "profile"
            ) from None
        # Other answers (e.g. a key without permission to describe) do not prove it is missing.


def task_queue_for(wf: Workflow) -> str:
    return wf.task_queue or os.environ.get("GECKO_TASK_QUEUE") or DEFAULT_TASK_QUEUE


async def _prepare(wf: Workflow) -> tuple[Client, str, str]:
    """Return (client, task queue, graph key) for running ``wf`` here."""
    client = await connect()
    if is_embedded():
        worker = await asyncio.get_running_loop().run_in_executor(None, embedded_worker)
        return client, worker.task_queue, worker.serve(wf)
    return client, task_queue_for(wf), wf.name


def seed_state(state: Any, limit: int) -> dict[str, str]:
    """``start(state=...)``: the seed as the run keeps it ({key: JSON text}), checked: a dict with
    non-empty string keys, strict JSON values (the same values nodes may write), within ``limit``."""
    if not isinstance(state, dict):
        raise GraphError(f"state= must be a dict of state keys to values, got {type(state).__name__}")
    encoded: dict[str, str] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not key:
            raise GraphError(f"state= keys must be non-empty strings, got {key!r}")
        encoded[key] = codec.encode(value, what=f"state key {key!r} of state=")
    size = sum(len(k) + len(v) for k, v in encoded.items())
    if size > limit:
        biggest = max(encoded, key=lambda k: len(encoded[k]))
        raise GraphError(
            f"state= is {size:,} characters of JSON (the biggest key: {biggest!r}), over {limit:,}; "
            "keep big data in files and put paths in state"
        )
    return encoded


async def start(
    wf: Workflow,
    input_data: Any = None,
    *,
    session_id: str | None = None,
    timeout: float | None = None,
    max_steps: int | None = None,
    state: dict[str, Any] | None = None,
    budget: Any = None,
    tenant: str | None = None,
) -> RunHandle:
    flow = run_flow(wf, budget, tenant)  # checked before anything starts
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise GraphError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
        raise GraphError(f"max_steps must be an int >= 1, got {max_steps!r}")
    client, queue, key = await _prepare(wf)
    spec = wf.compile(key)
    if max_steps is not None:
        from dataclasses import replace

        spec = replace(spec, max_steps=max_steps)
    encoded = codec.encode(input_data, what="input_data")
    session_id = session_id or f"{wf.name}-{uuid.uuid4().hex[:12]}"
    too_long = name_problem("session_id", session_id) if isinstance(session_id, str) else "session_id must be a str"
    if too_long:
        raise GeckoError(too_long)
    limit = payload_limit_of(client.data_converter)
    seed = seed_state(state, limit // 2) if state else None
    run_input = _run_input(spec, encoded, timeout, limit, seed, flow)
    from gecko_temporal.temporal import versions, visibility

    run_input[versions.INPUT_KEY] = versions.fingerprint_of(wf, key)[1].id  # the graph this client compiled

    try:
        handle = await visibility.start_with_metadata(
            client,
            spec,
            session_id,
            encoded,
            WORKFLOW_TYPE,
            run_input,
            id=session_id,
            task_queue=queue,
            result_type=None,
            execution_timeout=timedelta(seconds=timeout + _TIMEOUT_GRACE) if timeout else None,
            extra_attributes=await visibility.flow_attributes(client, tenant),
        )
    except WorkflowAlreadyStartedError:
        raise GeckoError(
            f'session "{session_id}" is already running; wait for it with '
            f'get_handle("{session_id}") or pick another session_id'
        ) from None
    visibility.announce(session_id)
    return RunHandle(handle, timeout=timeout, client=client)


def _run_input(
    spec: GraphSpec,
    encoded: str,
    timeout: float | None,
    limit: int,
    state: dict[str, str] | None = None,
    flow: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The run's input (a plain :class:`RunParams`, the spec in its compact form, the seeded state
    if any), checked against the payload limit here: Temporal would refuse it with a bare "Blob data
    size exceeds limit"."""
    # Every key written out; the seeded state only when given (runs without one keep their fields).
    run_input = workflow_input(
        spec.to_plain(), encoded, payload_limit=limit, start=True, timeout=timeout, state=state, flow=flow
    )
    size = len(json.dumps(run_input, separators=(",", ":"))) + FRAME
    if size > limit:
        graph = len(json.dumps(run_input["spec"], separators=(",", ":")))
        fix = (
            "set GECKO_PAYLOAD_STORE (file:///dir or s3://bucket/prefix, on every client and worker; see "
            "docs/payloads.md) so big payloads go to the store, or "
            if limit <= PAYLOAD_LIMIT
            else ""
        )
        raise GraphError(
            f'workflow "{spec.name}" cannot start: its run input is {human(size)} (the compiled graph of '
            f"{len(spec.nodes)} nodes {human(graph)}, input_data {human(json_size(encoded))}), over "
            f"{limit_name(limit)}; {fix}pass big input data as a file path and keep node names short"
        )
    return run_input


async def get_handle(session_id: str, workflow: Workflow | None = None) -> RunHandle:
    """A handle on an existing session (run) by its id."""
    client = await connect()
    if workflow is not None and is_embedded():
        embedded_worker().serve(workflow)
    return RunHandle(client.get_workflow_handle(session_id), client=client)


class RunHandle:
    """A running (or finished) session: wait for it, watch it, steer it."""

    def __init__(
        self, handle: WorkflowHandle[Any, Any], timeout: float | None = None, *, client: Client | None = None
    ) -> None:
        # The handle's client (same namespace and converter): rewind and the stream need it.
        self._client = client if client is not None else handle_client(handle)
        self._handle = handle
        self._timeout = timeout

    @property
    def id(self) -> str:
        return self._handle.id

    @property
    def temporal_handle(self) -> WorkflowHandle[Any, Any]:
        return self._handle

    async def result(self) -> Any:
        """Wait for the run's output; raise NodeError, WorkflowTimeoutError, ... on failure."""
        try:
            return codec.revive(await self._handle.result(follow_runs=True))
        except WorkflowFailureError as exc:
            raise _translate(exc, self.id, self._timeout) from None

    async def state(self) -> dict[str, Any]:
        """The live ``gecko_state`` query: state, completed, running, waiting, step, jumps."""
        state: dict[str, Any] = await self._handle.query(STATE_QUERY)  # the workflow answers a JSON object
        return state

    async def jump(self, node: str, input: Any = None) -> dict[str, Any]:
        """Jump to ``node`` after the running layer; raise JumpRejectedError on an unknown node."""
        payload = {"node": node, "input": _outside_value(input, "jump input")}
        return await self._update(JUMP_UPDATE, payload, f"jump to {node!r}", f"the jump to {node!r}", JumpRejectedError)

    async def signal_jump(self, node: str, input: Any = None) -> None:
        """Fire-and-forget jump (the gecko_next signal): a bad target shows in ``rejected_jumps``."""
        await self._handle.signal(NEXT_SIGNAL, {"node": node, "input": _outside_value(input, "jump input")})

    async def answer(self, node: str, value: Any = None, *, interrupt: int | None = None) -> dict[str, Any]:
        """Answer a WaitForInput node, or a node waiting in ``context.interrupt()`` (its ``interrupt()``
        call returns ``value``); raise GeckoError if ``node`` is neither, or already has an answer.
        ``interrupt`` (``gecko_state["waiting"][node]["interrupt"]``) names the interrupt answered:
        the answer is refused unless that one waits, so it never answers a later question."""
        payload: dict[str, Any] = {"node": node, "value": _outside_value(value, "answer")}
        if interrupt is not None:
            payload["interrupt"] = interrupt
        return await self._update(ANSWER_UPDATE, payload, f"answer to {node!r}", f"the answer to {node!r}")

    async def stream(self, from_offset: int = 0, *, poll_interval: float = 0.1) -> AsyncIterator[RunEvent]:
        """The run's events as they happen, from ``from_offset`` on (``event.offset + 1`` resumes).

        Yields ``node_started``, ``node_finished``, ``custom`` (``context.emit``), ``waiting``,
        ``jump`` and, last, ``run_finished``, then ends. Follows continue-as-new and outlives worker
        crashes (the events live in the run's history).
        """
        from gecko_temporal.temporal.streams import read_events

        async for event in read_events(self._client, self.id, from_offset, poll_interval):
            yield event

    async def cancel(self) -> None:
        """Ask the run to stop; its running node activities are cancelled."""
        await self._handle.cancel()

    async def update_state(
        self, values: dict[str, Any] | None = None, *, delete: list[str] | None = None, as_node: str | None = None
    ) -> dict[str, Any]:
        """Set state keys (``values``) and delete keys (``delete``) at the run's next safe point:
        at once while it only waits (an interrupt, a WaitForInput), else when the running layer
        ends. Recorded in ``gecko_state["state_edits"]``. Raises StateEditError for values that
        are not JSON, too big, or a run that has ended. With ``as_node`` (LangGraph's update_state)
        a reduced key's value goes through its reducer as that node's write instead of replacing it."""
        try:
            payload: dict[str, Any] = {}
            if values is not None:
                if not isinstance(values, dict):
                    raise StateEditError(
                        f"update_state values must be a dict of state keys, got {type(values).__name__}"
                    )
                payload["values"] = {
                    k: _outside_value(v, f"state key {k!r} of update_state") for k, v in values.items()
                }
            if delete is not None:
                payload["delete"] = list(delete)
            if as_node is not None:
                payload["as_node"] = as_node
        except SerializationError as exc:
            raise StateEditError(str(exc)) from None
        return await self._update(
            STATE_UPDATE, payload, "update_state", "update_state", StateEditError, refused_error=StateEditError
        )

    async def _update(
        self,
        name: str,
        payload: dict[str, Any],
        subject: str,
        refused: str,
        error: type[GeckoError] = GeckoError,
        refused_error: type[GeckoError] = GeckoError,
    ) -> dict[str, Any]:
        """Send one control update and return the JSON object the run answers. The run's validator
        rejecting it raises ``error``; the server refusing it (too many updates in flight, a closed
        run) raises ``refused_error``; each with one line that says which and what to do."""
        for attempt in range(CLOSING_RETRIES + 1):
            try:
                answer: dict[str, Any] = await self._handle.execute_update(name, payload)
                return answer
            except WorkflowUpdateFailedError as exc:
                raise error(f"{subject} rejected: {_cause_message(exc)}") from None
            except RPCError as exc:
                # A run continuing as new refuses requests for a moment ("workflow is closing"); a
                # long wait does that whenever its history fills. The next run takes the request.
                if "workflow is closing" in str(exc) and attempt < CLOSING_RETRIES:
                    await asyncio.sleep(0.2)
                    continue
                raise refused_error(_refused(self.id, refused, exc)) from None
        raise AssertionError("unreachable")  # (the loop returns or raises)

    async def steps(self) -> list[dict[str, Any]]:
        """The points this session can be rewound to, oldest first: one per merged layer, with
        ``step`` (node executions so far), ``nodes`` (the layer), ``time``, ``run`` / ``run_id``
        (the Temporal run of the continue-as-new chain) and ``rewindable``."""
        return await session_steps(self._client, self._handle)

    async def rewind(
        self, to_step: int, *, values: dict[str, Any] | None = None, delete: list[str] | None = None
    ) -> dict[str, Any]:
        """Restart the session from the state after step ``to_step`` with Temporal's reset: the
        run (or the earlier run of its continue-as-new chain that ran the step) is reset to the
        workflow task that merged that step's layer, so a new run goes on from there; the old run
        is kept in history. ``values``/``delete`` edit the state at that point. Returns the new
        run id; ``gecko_state["rewound_from"]`` names the run and step it came from."""
        return await rewind_session(self._client, self._handle, to_step, values, delete)


def _outside_value(value: Any, what: str) -> Any:
    """``value`` as the plain JSON a run accepts from outside (models become their data).

    A NaN or infinity is refused here: what reaches a run from outside is plain JSON, which has no
    token for them (a node's own NaN travels tagged), and sending its plain form would turn it into
    the string "nan" without a word."""
    where = codec.where_non_finite(value)
    if where:
        raise SerializationError(
            f"{what} contains {where}: a run takes plain JSON from outside, which has no NaN or "
            "Infinity; send None or a string instead, or let a node compute the value"
        )
    return codec.plain(codec.encode(value, what=what))


def _refused(session: str, what: str, exc: RPCError) -> str:
    """One line on why the server refused a control update, and what to do."""
    message = exc.message or (exc.status.name if exc.status else str(exc))
    if exc.status == RPCStatusCode.RESOURCE_EXHAUSTED or "in-flight updates" in (exc.message or ""):
        return (
            f'session "{session}" refused {what}: {message} (Temporal allows 10 updates in flight '
            "per run; stream readers and other updates hold them): retry in a few seconds"
        )
    if exc.status == RPCStatusCode.NOT_FOUND or "already completed" in (exc.message or ""):
        return f'session "{session}" refused {what}: {message} (a run that has ended cannot change; rewind it to go on)'
    return f'session "{session}" refused {what}: {message}'


def _cause_message(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)  # Temporal's failure errors carry the remote error as .cause
    if cause is None:
        cause = exc
    return getattr(cause, "message", None) or str(cause)


_ERRORS: dict[str, type[GeckoError]] = {
    "NodeError": NodeError,
    "GraphError": GraphError,
    "StepLimitError": StepLimitError,
    "SerializationError": SerializationError,
    "WorkflowTimeoutError": WorkflowTimeoutError,
    "BudgetExceeded": BudgetExceeded,
}


def _translate(exc: WorkflowFailureError, session: str, timeout: float | None) -> GeckoError:
    """Turn a failed run into the GeckoError the interpreter raised (or the closest one)."""
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        cls = _ERRORS.get(cause.type or "", GeckoError)
        details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
        error = cls(cause.message)
        if details.get("node"):  # a node's failure: say which node, and what it raised
            # Whatever class the interpreter raised (a NodeError mostly, but any GeckoError can
            # name a node), the node's details ride on it: attributes only NodeError declares.
            error.node = details["node"]  # type: ignore[attr-defined]
            error.error_type = details.get("error_type", "")  # type: ignore[attr-defined]
            error.error_message = details.get("message", "")  # type: ignore[attr-defined]
            error.details = details  # type: ignore[attr-defined]
        return error
    if isinstance(cause, TemporalTimeout):
        return WorkflowTimeoutError(f'session "{session}" exceeded its timeout of {timeout} s')
    if isinstance(cause, CancelledError):
        return GeckoError(f'session "{session}" was cancelled')
    return GeckoError(f'session "{session}" failed: {cause or exc}')
