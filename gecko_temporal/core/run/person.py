"""One wait for a person: a WaitForInput node, or a node that called ``context.interrupt()``. Pure.

Both wait the same way (durably, no activity running) for ``handle.answer(node, value)``; they
differ in what they show, whether edits may land first, and what a timeout without a default says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gecko_temporal.core.control import RunControl
from gecko_temporal.core.run.failure import NodeFailed
from gecko_temporal.core.spec import NodeSpec


@dataclass(frozen=True)
class PersonWait:
    """What one wait for an answer to ``node`` shows and does when no answer comes in time."""

    node: str
    prompt: str  # WaitForInput's prompt ("" for an interrupt: its payload shows instead)
    timeout: float | None
    default: str | None  # JSON text taken when the timeout ends the wait; None: the node fails
    payload: str | None = None  # an interrupt's payload (JSON text)
    index: int | None = None  # which of the node's interrupts (None: a WaitForInput node)

    @classmethod
    def for_node(cls, node: NodeSpec) -> PersonWait:
        """A WaitForInput node's wait."""
        return cls(node.name, node.wait_prompt, node.wait_timeout, node.wait_default)

    @classmethod
    def for_interrupt(cls, node: str, asked: dict[str, Any], index: int) -> PersonWait:
        """The ``index``-th ``context.interrupt()`` of ``node`` (``asked``: NodeOutput.interrupt)."""
        return cls(node, "", asked.get("timeout"), asked.get("default"), asked["payload"], index)

    @property
    def edits_first(self) -> bool:
        """An interrupted node's activity has ended, so the run may be quiet: an edit sent meanwhile
        lands before the node runs again."""
        return self.index is not None

    def begin(self, control: RunControl, input_text: str, since: str) -> Any:
        """List the node as waiting; return what the stream shows as its prompt."""
        control.start_waiting(
            self.node, self.prompt, input_text, since, self.timeout, payload=self.payload, index=self.index
        )
        if self.index is None:
            return self.prompt
        return control.waiting[self.node].get("payload")  # plain JSON, as gecko_state shows it

    def timed_out(self) -> str:
        """The value a timeout gives (the default), or raise NodeFailed saying how to answer."""
        if self.default is not None:
            return self.default
        if self.index is None:
            what, fix = "", "give WaitForInput a default"
        else:
            what, fix = f" to interrupt {self.index}", "give interrupt() a default"
        raise NodeFailed(
            self.node,
            "WaitTimeout",
            f'no answer{what} within {self.timeout} s (answer with handle.answer("{self.node}", value) or {fix})',
        )
