"""gecko_temporal: Gecko Compose DAGs for agent pipelines, run durably on Temporal."""

from .client import DevServer, RunHandle, connect, get_handle
from .context import WorkflowContext
from .errors import (GeckoError, GraphError, JumpRejectedError, NodeError, SerializationError, ServerError,
                     StepLimitError, WorkflowTimeoutError)
from .graph import StepOptions, Workflow, step
from .spec import GraphSpec, NodeSpec, Next, RetrySpec as RetryPolicy
from .team import ExecutionStrategy, MemberError, MemberResult, Team
from .wait import WaitForInput
from .worker import GeckoWorker

__all__ = [
    "DevServer", "ExecutionStrategy", "GeckoError", "GeckoWorker", "GraphError", "GraphSpec",
    "JumpRejectedError", "MemberError", "MemberResult", "Next", "NodeError", "NodeSpec", "RetryPolicy",
    "RunHandle", "SerializationError", "ServerError", "StepLimitError", "StepOptions", "Team",
    "WaitForInput", "Workflow", "WorkflowContext", "WorkflowTimeoutError", "connect", "get_handle", "step",
]
