"""Pure-core objects the unit tests build without a worker or server: a node's context as the
activity builds one, a record store in memory as a worker's payload store keeps records, and the
live control of a small review run."""

from __future__ import annotations

from typing import Any

from gecko_temporal import WaitForInput, Workflow
from gecko_temporal.core.context import History, WorkflowContext
from gecko_temporal.core.control import RunControl
from gecko_temporal.core.scheduler import Scheduler
from gecko_temporal.core.spec import RunSnapshot
from gecko_temporal.core.state import StateView


class MemoryRecords:
    """A RecordStore in memory, as a worker's payload store would keep records."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str, str], bytes] = {}

    def load(self, kind: str, group: str, record: str) -> bytes | None:
        return self.records.get((kind, group, record))

    def save(self, kind: str, group: str, record: str, data: bytes) -> None:
        self.records[(kind, group, record)] = data


def node_context(
    base: dict[str, str] | None = None, *, node: str = "Review", step: int = 2, session_id: str = "s", **options: Any
) -> WorkflowContext:
    """The context of ``node`` at ``step`` over the encoded state ``base``, with no history yet;
    ``options`` are the rest a node may get (member, resume, emitter, effects)."""
    return WorkflowContext(
        state=StateView(base or {}, node=node),
        history=History({}, node=node),
        input=None,
        session_id=session_id,
        node=node,
        step=step,
        **options,
    )


def review_control(snapshot: RunSnapshot | None = None) -> tuple[RunControl, Scheduler]:
    """The live control of a Draft -> Review (a 60 s WaitForInput) -> Publish run, and its scheduler,
    from ``snapshot`` (a fresh run without one)."""
    wf = Workflow("Live")
    wf.add_node("Draft", lambda x: x).add_node("Review", WaitForInput("Approve?", timeout=60))
    wf.add_node("Publish", lambda x: x)
    wf.add_edge("Draft", "Review").add_edge("Review", "Publish").set_entry_point("Draft")
    spec = wf.compile()
    sched = Scheduler(spec)
    return RunControl(spec, sched, snapshot or RunSnapshot()), sched
