"""One layer's tasks as they run: which to launch next, the first failure, a paused layer. Pure.

A layered run starts a layer's tasks through the run's window (at most ``max_parallel`` at once),
in node order as earlier ones finish. The layer ends when every task has finished, or at the first
failure, which the run reports in node order (the lowest task index among those that failed by
then). A layer of plain nodes wider than the window may pause when the run's history is full: the
next run goes on with the layer's tasks and the outputs of those that finished (``paused``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from gecko_temporal.core.scheduler import Task
from gecko_temporal.core.spec import KIND_FUNCTION, NodeOutput


class LayerQueue:
    """The tasks of one layer: waiting (in node order), running, done and failed, by task index."""

    def __init__(self, tasks: list[Task], done: Mapping[int, NodeOutput] | None = None) -> None:
        self.tasks = tasks
        self.done: dict[int, NodeOutput] = dict(done or {})
        self.waiting = deque(i for i in range(len(tasks)) if i not in self.done)
        self.cap = len(self.waiting)  # how many may run at once
        self.running: list[int] = []  # launched, not landed: in launch order
        self.failures: dict[int, BaseException] = {}

    def limit(self, size: int) -> None:
        """The window holds starts back (``size`` at once): launch no more than that together."""
        self.cap = min(self.cap, size)

    def may_pause(self, kinds: Mapping[str, str]) -> bool:
        """Whether the layer may pause when history is full: only a layer of plain nodes that the
        window holds back (a Team, a wait or a fan-out, whose instances fan in within the run,
        finishes first). ``kinds``: node name -> NodeSpec.kind."""
        return self.cap < len(self.waiting) and all(
            kinds[t.node] == KIND_FUNCTION and t.send is None for t in self.tasks
        )

    @property
    def over(self) -> bool:
        """The layer has ended: a task failed, or every task has finished."""
        return bool(self.failures) or (not self.waiting and not self.running)

    @property
    def can_launch(self) -> bool:
        """A task waits, the cap has room, and the layer has not ended."""
        return bool(self.waiting) and len(self.running) < self.cap and not self.over

    def launch(self) -> int:
        """The index of the next task to launch (ask :attr:`can_launch` first); it runs from now."""
        i = self.waiting.popleft()
        self.running.append(i)
        return i

    def landed(self, i: int, output: NodeOutput | None = None, error: BaseException | None = None) -> None:
        """Task ``i`` ended: with ``output``, with ``error``, or cancelled (neither)."""
        if i in self.running:
            self.running.remove(i)
        if error is not None:
            self.failures[i] = error
        elif output is not None:
            self.done[i] = output

    def first_failure(self) -> BaseException | None:
        """The failure to report: the first in node order among those so far."""
        return self.failures[min(self.failures)] if self.failures else None

    def late(self) -> list[int]:
        """Tasks still running, in node order (to cancel, or to name in a timeout)."""
        return sorted(self.running)

    def outputs(self) -> list[NodeOutput]:
        """Every task's output, in task order (node order, then Send order)."""
        return [self.done[i] for i in range(len(self.tasks))]

    def paused(self) -> dict[str, Any]:
        """The layer for the next run (RunSnapshot.partial_layer): its tasks and what finished."""
        return {
            "tasks": [[t.node, t.input, t.step, t.jumped] for t in self.tasks],
            "done": {str(i): out.to_plain() for i, out in sorted(self.done.items())},
        }

    @classmethod
    def resumed(cls, partial: dict[str, Any]) -> LayerQueue:
        """The layer the previous run paused, as it was."""
        tasks = [Task(*t) for t in partial["tasks"]]
        return cls(tasks, {int(i): NodeOutput.from_plain(o) for i, o in partial["done"].items()})
