"""gecko_temporal: Gecko Compose DAGs for agent pipelines, run durably on Temporal.

Building graphs needs no Temporal: the Temporal shell (client, worker) loads on first use of one
of its names, so ``import gecko_temporal.state`` or a pure unit test never imports temporalio.
"""

from typing import TYPE_CHECKING, Any

from .context import WorkflowContext
from .events import Progress, RunEvent
from .errors import (GeckoError, GraphError, JumpRejectedError, NodeError, PayloadConfigError, SerializationError,
                     ServerError,
                     StepLimitError, WorkflowTimeoutError)
from .errors import InterruptError, RewindError, StateEditError
from .graph import StepOptions, Workflow, step
from .spec import END, GraphSpec, Next, NodeSpec, Send
from .spec import RetrySpec as RetryPolicy
from .team import ExecutionStrategy, MemberError, MemberResult, Team
from .wait import WaitForInput

if TYPE_CHECKING:
    from .client import RunHandle, connect, get_handle
    from .embedded import DevServer
    from .worker import GeckoWorker
    from ._durable_agents import durable_agent

_SHELL = {"DevServer": "embedded", "RunHandle": "client", "connect": "client", "get_handle": "client",
          "GeckoWorker": "worker", "durable_agent": "_durable_agents"}


def __getattr__(name: str) -> Any:
    if name in _SHELL:
        import importlib

        value = getattr(importlib.import_module(f".{_SHELL[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gecko_temporal' has no attribute {name!r}")


__all__ = [
    "DevServer", "END", "ExecutionStrategy", "GeckoError", "GeckoWorker", "GraphError", "GraphSpec",
    "JumpRejectedError", "MemberError", "MemberResult", "Next", "NodeError", "NodeSpec", "PayloadConfigError",
    "Progress", "RetryPolicy",
    "RunEvent", "RunHandle", "Send", "SerializationError", "ServerError", "StepLimitError", "StepOptions", "Team",
    "WaitForInput", "Workflow", "WorkflowContext", "WorkflowTimeoutError", "connect", "durable_agent", "get_handle",
    "step",
    "InterruptError", "RewindError", "StateEditError",
]
