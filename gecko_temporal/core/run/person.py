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


class WaitPaused(Exception):
    """A wait for a person stopped so that the run can continue as new (its history is full); the
    next run waits again, as ``again`` says (LayerQueue.pause_wait)."""

    def __init__(self, again: dict[str, Any]) -> None:
        super().__init__("the wait goes on in the next run")
        self.again = again


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

    def time_left(self, until: float | None, now: float) -> tuple[float | None, float | None]:
        """The wait's timeout in seconds, and the workflow time it ends at: counted from ``until``
        when a previous run began this wait (its ``again``), so switching runs never extends it."""
        if until is not None:
            return max(0.001, until - now), until
        return self.timeout, None if self.timeout is None else now + self.timeout

    @staticmethod
    def again(answers: list[str] | None, until: float | None) -> WaitPaused:
        """Stop the wait for a switch of runs: the next run gives the node ``answers`` (its
        interrupts' answers so far) and ends the wait at ``until``."""
        return WaitPaused({"resume": answers, "until": until})

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
