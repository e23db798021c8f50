"""gecko_temporal: Gecko Compose DAGs for agent pipelines, run durably on Temporal.

Building graphs needs no Temporal: the Temporal shell (client, worker) loads on first use of one
of its names, so ``import gecko_temporal.core.state`` or a pure unit test never imports temporalio.
"""

from typing import TYPE_CHECKING, Any

from gecko_temporal.core.build.graph import StepOptions, Workflow, step
from gecko_temporal.core.build.team import ExecutionStrategy, MemberError, MemberResult, Team
from gecko_temporal.core.build.wait import WaitForInput
from gecko_temporal.core.context import WorkflowContext
from gecko_temporal.core.errors import (
    GeckoError,
    GraphError,
    InterruptError,
    JumpRejectedError,
    NodeError,
    PayloadConfigError,
    RewindError,
    SerializationError,
    ServerError,
    StateEditError,
    StepLimitError,
    WorkflowTimeoutError,
)
from gecko_temporal.core.events import Progress, RunEvent
from gecko_temporal.core.spec import END, GraphSpec, Next, NodeSpec, Send
from gecko_temporal.core.spec import RetrySpec as RetryPolicy

if TYPE_CHECKING:
    from gecko_temporal.integrations.durable_agents import durable_agent
    from gecko_temporal.ops.embedded import DevServer
    from gecko_temporal.temporal.client import RunHandle, connect, get_handle
    from gecko_temporal.temporal.worker import GeckoWorker

_SHELL = {
    "DevServer": "ops.embedded",
    "RunHandle": "temporal.client",
    "connect": "temporal.client",
    "get_handle": "temporal.client",
    "GeckoWorker": "temporal.worker",
    "durable_agent": "integrations.durable_agents",
}


def __getattr__(name: str) -> Any:
    if name in _SHELL:
        import importlib

        value = getattr(importlib.import_module(f".{_SHELL[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gecko_temporal' has no attribute {name!r}")


__all__ = [
    "END",
    "DevServer",
    "ExecutionStrategy",
    "GeckoError",
    "GeckoWorker",
    "GraphError",
    "GraphSpec",
    "InterruptError",
    "JumpRejectedError",
    "MemberError",
    "MemberResult",
    "Next",
    "NodeError",
    "NodeSpec",
    "PayloadConfigError",
    "Progress",
    "RetryPolicy",
    "RewindError",
    "RunEvent",
    "RunHandle",
    "Send",
    "SerializationError",
    "ServerError",
    "StateEditError",
    "StepLimitError",
    "StepOptions",
    "Team",
    "WaitForInput",
    "Workflow",
    "WorkflowContext",
    "WorkflowTimeoutError",
    "connect",
    "durable_agent",
    "get_handle",
    "step",
]
