"""Durable pydantic-ai agents: each model call and tool call its own Temporal activity.

``durable_agent(agent)`` gives a node (or Team member) whose agent loop runs as a Temporal workflow
of its own (type ``GeckoAgent``) through pydantic-ai's Temporal integration
(``pydantic_ai.durable_exec.temporal``), so a worker that dies mid-agent costs only the model call
in flight: finished calls are in that workflow's history and are not made again.

How it fits the engine without touching the interpreter: the node's activity starts (or, on a
retry, re-attaches to) the agent workflow and waits for its output, heartbeating as every node
does. Its workflow id is the node activity's identity (session, run, activity id), stable across
the activity's retries and unique per execution, so the attempt that follows a crash finds the
agent run the crashed one started. Cancelling the node (a RACE loser, a cancelled session) cancels
the agent workflow, and with it the model call in flight.

Why a workflow on a task queue of its own (``<queue>/agent/<name>``), served by an extra Temporal
worker in the same process, started when the process first runs such a node: pydantic-ai's
activities exchange pydantic-ai types, which need its pydantic payload converter, while the
engine's own workflow keeps its converter (its bytes are in recorded histories). The agent's
worker therefore uses the engine's data converter (codec, payload store) with pydantic-ai's
payload converter, and nothing else changes for the engine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import warnings
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from gecko_temporal.core import codec
from gecko_temporal.core.build.adapters import register_adapter
from gecko_temporal.core.errors import GraphError
from gecko_temporal.integrations.agents import AgentNode, allow_types, prompt_text, pydantic_ai_calls, report_calls

if TYPE_CHECKING:
    from pydantic_ai.agent.abstract import AbstractAgent

__all__ = ["AGENT_WORKFLOW", "DurableAgent", "durable_agent"]

AGENT_WORKFLOW = "GeckoAgent"
AGENT_USAGE_PATCH = "gecko-agent-usage"  # workflow.patched id: agent runs recorded before kept no usage memo
AGENT_USAGE_MEMO = "gecko_usage"  # [[input tokens, output tokens, model], ...] of the agent run's model calls

#: Durable agents of this process by name: the agent workflow finds its agent here.
_AGENTS: dict[str, DurableAgent] = {}
#: Agent workers started in this process: (task queue, event loop id) -> (worker, its task).
_WORKERS: dict[tuple[str, int], tuple[Worker, asyncio.Task[None]]] = {}


class DurableAgent:
    """A pydantic-ai agent whose model and tool calls run as Temporal activities (see the module doc).

    Build it at import time of the pipeline's module (as the graph itself), so every worker process
    has it under the same ``name``: the name is part of the agent's activity names, so keep it
    stable while runs are in flight.
    """

    agent: AbstractAgent[Any, Any]

    def __init__(
        self,
        agent: Any,
        name: str | None = None,
        *,
        model_timeout: float = 300.0,
        heartbeat_timeout: float = 5.0,
        model_retries: int = 3,
    ) -> None:
        try:
            from pydantic_ai.agent.abstract import AbstractAgent
            from pydantic_ai.durable_exec.temporal import TemporalAgent, TemporalDurability
        except ImportError as exc:
            raise GraphError(
                f"durable_agent() needs pydantic-ai with its Temporal integration ({exc}): "
                "pip install 'gecko-temporal[pydantic-ai]'"
            ) from None
        from temporalio.workflow import ActivityConfig

        if not isinstance(agent, AbstractAgent):
            raise GraphError(f"durable_agent() takes a pydantic-ai Agent, got {type(agent).__name__} {agent!r}")
        problems = [
            f"{label} must be a positive number of seconds, got {value!r}"
            for label, value in (("model_timeout", model_timeout), ("heartbeat_timeout", heartbeat_timeout))
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
        ]
        if isinstance(model_retries, bool) or not isinstance(model_retries, int) or model_retries < 1:
            problems.append(f"model_retries counts attempts and must be an int >= 1, got {model_retries!r}")
        if problems:
            raise GraphError("durable_agent(): " + "; ".join(problems), problems)
        name = name or agent.name
        if not name:
            raise GraphError(
                "durable_agent() needs a stable name for the agent (it names the agent's Temporal activities): "
                'pass durable_agent(agent, name="writer") or build Agent(..., name="writer")'
            )
        known = _AGENTS.get(name)
        if known is not None and known.agent is not agent:
            raise GraphError(f'two different durable agents are named "{name}"; give each a unique name')
        self.agent = agent
        self.name = name
        self.output_type = getattr(agent, "output_type", None)
        if TemporalDurability.from_agent(agent) is not None:
            self.runnable: Any = agent  # built with pydantic-ai's TemporalDurability capability: use it as is
        else:
            config = ActivityConfig(
                start_to_close_timeout=timedelta(seconds=model_timeout),
                heartbeat_timeout=timedelta(seconds=heartbeat_timeout),
                retry_policy=RetryPolicy(maximum_attempts=model_retries),
            )
            with warnings.catch_warnings():  # the wrapper is deprecated for new agents, not for wrapping one
                warnings.simplefilter("ignore")
                self.runnable = TemporalAgent(agent, name=name, activity_config=config)
        allow_types(self.output_type)
        _AGENTS[name] = known or self
        self._node = AgentNode(self, name, self._run_in_node, "pydantic-ai (durable)", self.output_type)

    def node(self) -> AgentNode:
        return self._node

    def __repr__(self) -> str:
        return f"durable_agent({self.name!r})"

    async def _run_in_node(self, data: Any) -> Any:
        prompt = prompt_text(data)
        if not activity.in_activity():  # called directly, outside a worker: an ordinary agent run
            return (await self.agent.run(prompt)).output
        info = activity.info()
        client = activity.client()
        queue = _ensure_worker(client, info.task_queue, self)
        agent_run_id = f"{info.workflow_id}/agent/{self.name}/{info.workflow_run_id}/{info.activity_id}"
        try:
            handle = await client.start_workflow(
                AGENT_WORKFLOW,
                args=[self.name, prompt],
                id=agent_run_id,
                task_queue=queue,
                # A retry of this node after a crash finds the agent run already going (or done);
                # only a failed agent run is started afresh by the node's next attempt.
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                execution_timeout=info.start_to_close_timeout * 3 if info.start_to_close_timeout else None,
            )
        except WorkflowAlreadyStartedError:  # it completed before this attempt: its output stands
            handle = client.get_workflow_handle(agent_run_id)
        try:
            text = await handle.result()
        except asyncio.CancelledError:
            # The node was cancelled (a RACE loser, a cancelled session): stop the agent and its model
            # call. Not when this worker is shutting down: the node's next attempt re-attaches to it.
            if not activity.is_worker_shutdown():
                await asyncio.shield(_cancel(handle))
            raise
        except WorkflowFailureError as exc:
            cause: BaseException | None = exc.cause
            while (inner := getattr(cause, "cause", None)) is not None:  # the innermost cause
                cause = inner
            message = getattr(cause, "message", None) or str(cause or exc)
            kind = getattr(cause, "type", None) or type(cause).__name__
            # Not retried as a whole: each model and tool call had its own retries inside the agent run.
            raise ApplicationError(
                f'durable agent "{self.name}" failed: {message}', type=kind, non_retryable=True
            ) from None
        await _report_usage(handle)
        return codec.decode(text)


async def _report_usage(handle: Any) -> None:
    """Report the agent run's model calls as this node's usage (from the run's memo)."""
    try:
        calls = await (await handle.describe()).memo_value(AGENT_USAGE_MEMO, default=[])
    except Exception:  # usage is worth one RPC, never the node
        return
    report_calls(tuple(c) for c in calls if isinstance(c, (list, tuple)) and len(c) == 3)


async def _cancel(handle: Any) -> None:
    try:
        await handle.cancel()
    except Exception:  # already closed: nothing left to stop
        pass


def durable_agent(
    agent: Any,
    name: str | None = None,
    *,
    model_timeout: float = 300.0,
    heartbeat_timeout: float = 5.0,
    model_retries: int = 3,
) -> DurableAgent:
    """A pydantic-ai ``agent`` as a node whose every model call and tool call is a Temporal activity.

    ``name`` (default ``agent.name``) names its activities; ``model_timeout``, ``heartbeat_timeout``
    and ``model_retries`` are the policies of each model/tool call (an agent built with pydantic-ai's
    own ``TemporalDurability`` capability keeps its own). Add the result like any node:
    ``wf.add_node("Writer", durable_agent(writer))``.
    """
    return DurableAgent(
        agent, name, model_timeout=model_timeout, heartbeat_timeout=heartbeat_timeout, model_retries=model_retries
    )


@workflow.defn(name=AGENT_WORKFLOW)
class GeckoAgentWorkflow:
    """Runs one durable agent (by name) on one prompt; returns its output as the engine's JSON text."""

    @workflow.run
    async def run(self, agent: str, prompt: str | None) -> str:
        durable = _AGENTS.get(agent)
        if durable is None:
            raise ApplicationError(
                f'this worker has no durable agent "{agent}": serve the pipeline module that builds it',
                type="GraphError",
                non_retryable=True,
            )
        result = await durable.runnable.run(prompt)
        if workflow.patched(AGENT_USAGE_PATCH):  # the node reports it (recorded runs replay without)
            workflow.upsert_memo({AGENT_USAGE_MEMO: pydantic_ai_calls(result)})
        return codec.encode(result.output, what=f'the output of durable agent "{agent}"')


def _ensure_worker(client: Client, gecko_queue: str, durable: DurableAgent) -> str:
    """Start (once per process and loop) the worker that serves ``durable``'s agent workflow and
    model/tool activities; return its task queue."""
    from pydantic_ai.durable_exec.temporal import AgentPlugin, PydanticAIPayloadConverter, PydanticAIPlugin

    queue = f"{gecko_queue}/agent/{durable.name}"
    loop = asyncio.get_running_loop()
    key = (queue, id(loop))
    running = _WORKERS.get(key)
    if running is not None and not running[1].done():
        return queue
    converter = dataclasses.replace(client.data_converter, payload_converter_class=PydanticAIPayloadConverter)
    agent_client = Client(client.service_client, namespace=client.namespace, data_converter=converter)
    worker = Worker(
        agent_client,
        task_queue=queue,
        workflows=[GeckoAgentWorkflow],
        plugins=[PydanticAIPlugin(), AgentPlugin(durable.runnable)],
        # The engine's modules are deterministic and hold the agent registry: share the worker's copy.
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules("gecko_temporal")
        ),
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=2),  # a crashed worker's run moves on quickly
        max_heartbeat_throttle_interval=timedelta(seconds=1),
    )
    _WORKERS[key] = (worker, loop.create_task(worker.run(), name=f"gecko-agent-worker-{durable.name}"))
    return queue


async def shutdown_agent_workers() -> None:
    """Stop the agent workers this process started on the running loop."""
    loop_id = id(asyncio.get_running_loop())
    for key in [k for k in _WORKERS if k[1] == loop_id]:
        worker, task = _WORKERS.pop(key)
        if not task.done():
            await worker.shutdown()
        await asyncio.gather(task, return_exceptions=True)


def _adapt(obj: Any) -> AgentNode | None:
    """A durable agent becomes its node (the agent workflow it starts runs each model call)."""
    return obj.node() if isinstance(obj, DurableAgent) else None


register_adapter(_adapt)
