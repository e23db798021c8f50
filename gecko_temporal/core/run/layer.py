"""One layer's tasks as they run: which to launch next, the first failure, a paused layer. Pure.

A layered run starts a layer's tasks through the run's window (at most ``max_parallel`` at once),
in node order as earlier ones finish. The layer ends when every task has finished, or at the first
failure, which the run reports in node order (the lowest task index among those that failed by
then). A layer of plain nodes wider than the window may pause when the run's history is full: the
next run goes on with the layer's tasks and the outputs of those that finished (``paused``). So may
a layer whose node waits for a person: the wait stops, the rest of the layer finishes, and the next
run waits again (``pause_wait``), so a run that waits long keeps its history bounded. A paused task
that is a Send instance keeps its place in its fan-out, so the next run fans the instances in again.
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
        self.paused_waits: dict[int, dict[str, Any]] = {}  # waits stopped for a switch: how to wait again

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
    def waits_may_pause(self) -> bool:
        """Whether a wait for a person in this layer stopped for a switch of runs under the first rule
        (no fan-out in the layer). A layer with a fan-out may pause too (its instances carry their
        Send index, and the next run fans them in again), but only in runs that record the patch
        saying so: runs recorded before waited in one history there."""
        return not self.has_sends

    @property
    def has_sends(self) -> bool:
        """Whether the layer runs Send instances (a fan-out)."""
        return any(t.send is not None for t in self.tasks)

    @property
    def over(self) -> bool:
        """The layer has ended (a task failed, or every task has finished), or it has paused: a wait
        stopped for a switch and nothing runs any more."""
        return bool(self.failures) or (not self.running and (not self.waiting or bool(self.paused_waits)))

    @property
    def can_launch(self) -> bool:
        """A task waits, the cap has room, the layer has not ended, and no wait stopped for a switch."""
        return bool(self.waiting) and len(self.running) < self.cap and not self.over and not self.paused_waits

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

    def pause_wait(self, i: int, again: dict[str, Any]) -> None:
        """Task ``i``'s wait for a person stopped so that the run can switch; ``again`` says how the
        next run waits (its answers so far, when its timeout ends)."""
        if i in self.running:
            self.running.remove(i)
        self.paused_waits[i] = again

    def unpause_waits(self) -> None:
        """The run could not switch: the stopped waits start again first."""
        self.waiting.extendleft(sorted(self.paused_waits, reverse=True))
        self.paused_waits.clear()

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
        """The layer for the next run (RunSnapshot.partial_layer): its tasks and what finished. A
        task whose wait stopped, or that is a Send instance, has a fifth entry: how to wait again
        (``resume``, ``until``) and its place in its fan-out (``send``, ``sends``, ``source``)."""
        return {
            "tasks": [
                [t.node, t.input, t.step, t.jumped, *_extra(t, self.paused_waits.get(i))]
                for i, t in enumerate(self.tasks)
            ],
            "done": {str(i): out.to_plain() for i, out in sorted(self.done.items())},
        }

    @classmethod
    def resumed(cls, partial: dict[str, Any]) -> LayerQueue:
        """The layer the previous run paused, as it was."""
        tasks = []
        for node, input_text, step, jumped, *extra in partial["tasks"]:
            task = Task(node, input_text, step, jumped)
            if extra:
                task.resume = extra[0].get("resume")
                task.wait_until = extra[0].get("until")
                task.send = extra[0].get("send")
                task.sends = extra[0].get("sends", 0)
                task.source = extra[0].get("source")
            tasks.append(task)
        return cls(tasks, {int(i): NodeOutput.from_plain(o) for i, o in partial["done"].items()})


def _extra(task: Task, again: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A paused layer's fifth task entry, when it has one (layers without waits or Sends keep four)."""
    if task.send is None:
        return [] if again is None else [again]
    return [{**(again or {}), "send": task.send, "sends": task.sends, "source": task.source}]
