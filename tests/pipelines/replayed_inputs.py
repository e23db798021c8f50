"""Node activity inputs as their workers read them, recovered from a run's history.

Since issue 22 an input in history holds references (``@digest``) to texts the run held, not the
texts. Replaying the history rebuilds the run's value table, so an interceptor can resolve each
input at the moment the replayed workflow schedules it: exactly what the worker received."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import (
    Interceptor,
    Replayer,
    StartActivityInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from gecko_temporal.core.errors import GeckoError
from gecko_temporal.core.refs import Unpacked, input_refs
from gecko_temporal.temporal.workflow import GeckoWorkflow


async def activity_inputs(history: WorkflowHistory) -> list[tuple[str, dict[str, Any]]]:
    """(activity type, its input's plain form with every reference resolved), in schedule order."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def record(activity: str, args: Any) -> None:
        plain = dict(args[0]) if args and isinstance(args[0], dict) else {}
        table = workflow.instance().drive.refs  # type: ignore[attr-defined]
        if plain.get("refs") and table is not None:
            plain = Unpacked(plain, {k: table.get(k) for k in input_refs(plain)}).plain
        seen.append((activity, plain))

    class Outbound(WorkflowOutboundInterceptor):
        def start_activity(self, input: StartActivityInput) -> Any:
            record(input.activity, input.args)
            return super().start_activity(input)

        def start_local_activity(self, input: StartLocalActivityInput) -> Any:
            record(input.activity, input.args)
            return super().start_local_activity(input)

    class Inbound(WorkflowInboundInterceptor):
        def init(self, outbound: WorkflowOutboundInterceptor) -> None:
            super().init(Outbound(outbound))

    class Capture(Interceptor):
        def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
            return Inbound

    replayer = Replayer(
        workflows=[GeckoWorkflow], interceptors=[Capture()], workflow_failure_exception_types=[GeckoError]
    )
    await replayer.replay_workflow(history)
    return seen
