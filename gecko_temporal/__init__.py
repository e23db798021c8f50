"""gecko_temporal: Gecko Compose DAGs for agent pipelines, run durably on Temporal.

The package is layered, and imports point one way (``tests/unit/test_layers.py`` keeps it so):

- ``core/``: pure Python, no temporalio: the graph builder (``core/build/``), the compiled spec,
  and every decision a run makes (scheduling, the state merge, Teams, live control, the codec);
- ``temporal/``: the thin Temporal shell over the core: the one workflow, the node activity, the
  worker, the client, streams, payload conversion, the embedded dev server;
- ``integrations/``: agent libraries and tracing; each registers itself with the core;
- ``ops/``: what operators run: the CLI and the codec server.

Building graphs needs no Temporal: the shell (client, worker) loads on first use of one of its
names, so ``import gecko_temporal.core.state`` or a pure unit test never imports temporalio.
"""

from typing import TYPE_CHECKING, Any

from gecko_temporal.core.budget import Budget, BudgetExceeded
from gecko_temporal.core.build import graph as _graph
from gecko_temporal.core.build.graph import StepOptions, Workflow, step
from gecko_temporal.core.build.team import ExecutionStrategy, MemberError, MemberResult, Team
from gecko_temporal.core.build.wait import WaitForInput
from gecko_temporal.core.cache import CachePolicy
from gecko_temporal.core.context import WorkflowContext
from gecko_temporal.core.errors import (
    EffectError,
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
from gecko_temporal.core.flow import RetryAfter
from gecko_temporal.core.flow_limits import Limit
from gecko_temporal.core.spec import END, START, GraphSpec, Next, NodeSpec, Send
from gecko_temporal.core.spec import RetrySpec as RetryPolicy
from gecko_temporal.core.usage import set_price
from gecko_temporal.integrations import agents as _agents  # noqa: F401 (registers the agent adapters)

if TYPE_CHECKING:
    from gecko_temporal.integrations.durable_agents import durable_agent
    from gecko_temporal.temporal.client import RunHandle, connect, get_handle
    from gecko_temporal.temporal.embedded import DevServer
    from gecko_temporal.temporal.worker import GeckoWorker

_SHELL = {
    "DevServer": "temporal.embedded",
    "RunHandle": "temporal.client",
    "connect": "temporal.client",
    "get_handle": "temporal.client",
    "GeckoWorker": "temporal.worker",
    "durable_agent": "integrations.durable_agents",
}


def _temporal_client() -> _graph.Runner:
    from gecko_temporal.temporal import client

    return client


_graph.use_runner(_temporal_client)


def __getattr__(name: str) -> Any:
    if name in _SHELL:
        import importlib

        value = getattr(importlib.import_module(f".{_SHELL[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gecko_temporal' has no attribute {name!r}")


__all__ = [
    "END",
    "START",
    "Budget",
    "BudgetExceeded",
    "CachePolicy",
    "DevServer",
    "EffectError",
    "ExecutionStrategy",
    "GeckoError",
    "GeckoWorker",
    "GraphError",
    "GraphSpec",
    "InterruptError",
    "JumpRejectedError",
    "Limit",
    "MemberError",
    "MemberResult",
    "Next",
    "NodeError",
    "NodeSpec",
    "PayloadConfigError",
    "Progress",
    "RetryAfter",
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
    "set_price",
    "step",
]
