"""Connect to Temporal, start runs and talk to them (:class:`RunHandle`).

With no ``TEMPORAL_ADDRESS`` in the environment (nor a config profile with an address), runs go to
the embedded dev server and in-process worker of :mod:`gecko_temporal.embedded`, so a plain script
runs a pipeline with nothing started by hand. With ``TEMPORAL_ADDRESS`` (and the other
``TEMPORAL_*`` variables ``temporalio.envconfig`` reads) runs go to that cluster and workers
started with ``worker.py`` / ``gecko-temporal worker`` execute them.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
import weakref
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Optional

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import (ApplicationError, CancelledError, TimeoutError as TemporalTimeout,
                                  WorkflowAlreadyStartedError)
from temporalio.service import RPCError

from . import _codec
from .embedded import DevServer, embedded_server, embedded_worker, find_temporal_binary
from .payloads import data_converter, payload_limit_of
from .protocol import ANSWER_UPDATE, JUMP_UPDATE, NEXT_SIGNAL, STATE_QUERY, WORKFLOW_TYPE
from .errors import (GeckoError, GraphError, JumpRejectedError, NodeError, SerializationError, ServerError,
                     StepLimitError, WorkflowTimeoutError)
from .limits import FRAME, PAYLOAD_LIMIT, human, json_size, limit_name
from .spec import GraphSpec

if TYPE_CHECKING:
    from .graph import Workflow

# DevServer and find_temporal_binary lived here before embedded.py and are still imported from here.
__all__ = ["DEFAULT_TASK_QUEUE", "DevServer", "NamespaceNotFound", "RunHandle", "connect", "connect_config",
           "find_temporal_binary", "get_handle", "is_embedded", "start", "task_queue_for"]

DEFAULT_TASK_QUEUE = "gecko-temporal"
_TIMEOUT_GRACE = 30.0  # the server-side backstop fires this long after the run's own deadline


class NamespaceNotFound(ServerError):
    """The server answers but has no such namespace (waiting for it will not help)."""


def connect_config(address: Optional[str] = None) -> dict[str, Any]:
    """The user's Temporal client settings: the ``temporalio.envconfig`` profile (the file named by
    TEMPORAL_CONFIG_FILE or the default one, the profile TEMPORAL_PROFILE names, and every
    ``TEMPORAL_*`` variable), with ``address`` (e.g. ``--address``) winning over its address.
    Empty when nothing names a server: then the embedded dev server is used."""
    from temporalio.envconfig import ClientConfig

    try:
        config = dict(ClientConfig.load_client_connect_config())
    except Exception as exc:
        where = os.environ.get("TEMPORAL_CONFIG_FILE") or "the Temporal config file"
        raise ServerError(f"cannot read the Temporal client settings from {where} "
                          f"(profile {os.environ.get('TEMPORAL_PROFILE') or 'default'}): {exc}") from None
    if address:
        config["target_host"] = address
    return config


def is_embedded() -> bool:
    """True when nothing names a server (no TEMPORAL_ADDRESS, no config profile with an address):
    runs then use the embedded dev server and worker."""
    return "target_host" not in connect_config()


# -- clients (one per event loop and target) -------------------------------------------------------
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Client]]" = weakref.WeakKeyDictionary()


async def connect(address: Optional[str] = None) -> Client:
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
    target = json.dumps(config, sort_keys=True, default=repr) + f"#{id(converter)}"
    cache = _clients.setdefault(asyncio.get_running_loop(), {})
    if target not in cache:
        where = config["target_host"]
        try:  # (a dev server is handed out only once it serves clients: see DevServer._serving)
            client = await Client.connect(**config, data_converter=converter)
        except RuntimeError as exc:
            raise ServerError(f"cannot connect to Temporal at {where}: {exc}; start the server or fix "
                              "TEMPORAL_ADDRESS / the config profile (unset them to use the embedded dev "
                              "server)") from None
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
                "profile") from None
        # Other answers (e.g. a key without permission to describe) do not prove it is missing.


def task_queue_for(wf: "Workflow") -> str:
    return wf.task_queue or os.environ.get("GECKO_TASK_QUEUE") or DEFAULT_TASK_QUEUE


async def _prepare(wf: "Workflow") -> tuple[Client, str, str]:
    """Return (client, task queue, graph key) for running ``wf`` here."""
    client = await connect()
    if is_embedded():
        worker = await asyncio.get_running_loop().run_in_executor(None, embedded_worker)
        return client, worker.task_queue, worker.serve(wf)
    return client, task_queue_for(wf), wf.name


async def start(wf: "Workflow", input_data: Any = None, *, session_id: Optional[str] = None,
                timeout: Optional[float] = None, max_steps: Optional[int] = None) -> "RunHandle":
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise GraphError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
        raise GraphError(f"max_steps must be an int >= 1, got {max_steps!r}")
    client, queue, key = await _prepare(wf)
    spec = wf.compile(key)
    if max_steps is not None:
        from dataclasses import replace

        spec = replace(spec, max_steps=max_steps)
    encoded = _codec.encode(input_data, what="input_data")
    session_id = session_id or f"{wf.name}-{uuid.uuid4().hex[:12]}"
    run_input = _run_input(spec, encoded, timeout, payload_limit_of(client.data_converter))
    try:
        handle = await client.start_workflow(
            WORKFLOW_TYPE, run_input, id=session_id,
            task_queue=queue, result_type=None,
            execution_timeout=timedelta(seconds=timeout + _TIMEOUT_GRACE) if timeout else None,
        )
    except WorkflowAlreadyStartedError:
        raise GeckoError(
            f'session "{session_id}" is already running; wait for it with '
            f'get_handle("{session_id}") or pick another session_id'
        ) from None
    return RunHandle(handle, timeout=timeout)


def _run_input(spec: "GraphSpec", encoded: str, timeout: Optional[float], limit: int) -> dict[str, Any]:
    """The run's input (a plain :class:`RunParams`, the spec in its compact form), checked against
    the payload limit here: Temporal would refuse it with a bare "Blob data size exceeds limit"."""
    run_input = {"spec": spec.to_plain(), "input": encoded, "timeout": timeout, "snapshot": None,
                 "payload_limit": limit}
    size = len(json.dumps(run_input, separators=(",", ":"))) + FRAME
    if size > limit:
        graph = len(json.dumps(run_input["spec"], separators=(",", ":")))
        fix = ("set GECKO_PAYLOAD_STORE (file:///dir or s3://bucket/prefix, on every client and worker; see "
               "docs/payloads.md) so big payloads go to the store, or " if limit <= PAYLOAD_LIMIT else "")
        raise GraphError(
            f'workflow "{spec.name}" cannot start: its run input is {human(size)} (the compiled graph of '
            f"{len(spec.nodes)} nodes {human(graph)}, input_data {human(json_size(encoded))}), over "
            f"{limit_name(limit)}; {fix}pass big input data as a file path and keep node names short")
    return run_input


async def get_handle(session_id: str, workflow: Optional["Workflow"] = None) -> "RunHandle":
    """A handle on an existing session (run) by its id."""
    client = await connect()
    if workflow is not None and is_embedded():
        embedded_worker().serve(workflow)
    return RunHandle(client.get_workflow_handle(session_id))


class RunHandle:
    """A running (or finished) session: wait for it, watch it, steer it."""

    def __init__(self, handle: WorkflowHandle, timeout: Optional[float] = None) -> None:
        self._handle = handle
        self._timeout = timeout

    @property
    def id(self) -> str:
        return self._handle.id

    @property
    def temporal_handle(self) -> WorkflowHandle:
        return self._handle

    async def result(self) -> Any:
        """Wait for the run's output; raise NodeError, WorkflowTimeoutError, ... on failure."""
        try:
            return _codec.revive(await self._handle.result(follow_runs=True))
        except WorkflowFailureError as exc:
            raise _translate(exc, self.id, self._timeout) from None

    async def state(self) -> dict[str, Any]:
        """The live ``gecko_state`` query: state, completed, running, waiting, step, jumps."""
        return await self._handle.query(STATE_QUERY)

    async def jump(self, node: str, input: Any = None) -> dict[str, Any]:
        """Jump to ``node`` after the running layer; raise JumpRejectedError on an unknown node."""
        payload = {"node": node, "input": _outside_value(input, "jump input")}
        try:
            return await self._handle.execute_update(JUMP_UPDATE, payload)
        except WorkflowUpdateFailedError as exc:
            raise JumpRejectedError(f"jump to {node!r} rejected: {_cause_message(exc)}") from None

    async def signal_jump(self, node: str, input: Any = None) -> None:
        """Fire-and-forget jump (the gecko_next signal): a bad target shows in ``rejected_jumps``."""
        await self._handle.signal(NEXT_SIGNAL, {"node": node, "input": _outside_value(input, "jump input")})

    async def answer(self, node: str, value: Any = None) -> dict[str, Any]:
        """Answer a WaitForInput node; raise JumpRejectedError-like GeckoError if it is none."""
        payload = {"node": node, "value": _outside_value(value, "answer")}
        try:
            return await self._handle.execute_update(ANSWER_UPDATE, payload)
        except WorkflowUpdateFailedError as exc:
            raise GeckoError(f"answer to {node!r} rejected: {_cause_message(exc)}") from None

    async def cancel(self) -> None:
        """Ask the run to stop; its running node activities are cancelled."""
        await self._handle.cancel()


def _outside_value(value: Any, what: str) -> Any:
    """``value`` as the plain JSON a run accepts from outside (models become their data)."""
    return _codec.plain(_codec.encode(value, what=what))


def _cause_message(exc: BaseException) -> str:
    cause = exc.cause if getattr(exc, "cause", None) is not None else exc
    return getattr(cause, "message", None) or str(cause)


_ERRORS = {"NodeError": NodeError, "GraphError": GraphError, "StepLimitError": StepLimitError,
           "SerializationError": SerializationError, "WorkflowTimeoutError": WorkflowTimeoutError}


def _translate(exc: WorkflowFailureError, session: str, timeout: Optional[float]) -> GeckoError:
    """Turn a failed run into the GeckoError the interpreter raised (or the closest one)."""
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        cls = _ERRORS.get(cause.type or "", GeckoError)
        details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
        error = cls(cause.message)
        if details.get("node"):  # a node's failure: say which node, and what it raised
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
