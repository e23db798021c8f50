"""Which nodes run next, given what finished. Pure: no temporalio import.

The run proceeds in layers. A layer is every node that is ready at once; they run concurrently and
their results are applied in node order (the order nodes were added), never completion order, so a
replayed workflow makes the same decisions.

A node is ready when each of its predecessors has either delivered its output since the node last
ran, or can no longer run in this pass (it is not waiting, not queued by a jump, and not reachable
from any node that is). So a join waits for every live branch, a branch that jumped away does not
block it, and a node reachable only through ``Next`` is never waited for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from collections.abc import Collection
from typing import Any, Optional

from .errors import GraphError, StepLimitError, suggest
from .spec import SCHEDULING_EAGER, GraphSpec, Jump


@dataclass
class Task:
    """One node execution the workflow must run: ``input`` is encoded JSON text."""

    node: str
    input: str
    step: int
    jumped: bool = False
    resume: Optional[list[str]] = None  # answers to the node's context.interrupt() calls so far (JSON text)


class Scheduler:
    """Decides layers; keeps the latest output of each node (``context.history``)."""

    def __init__(self, spec: GraphSpec, snapshot: Optional[dict[str, Any]] = None) -> None:
        self.spec = spec
        self.eager = spec.scheduling == SCHEDULING_EAGER
        self._order = {n.name: i for i, n in enumerate(spec.nodes)}
        self._successors = {n.name: n.successors for n in spec.nodes}
        self._predecessors = {n.name: n.predecessors for n in spec.nodes}
        snap = snapshot or {}
        self.inbox: dict[str, dict[str, str]] = snap.get("inbox", {})  # node -> {pred: output}
        self.jumps: list[Jump] = [Jump(**j) for j in snap.get("jumps", [])]
        self.outputs: dict[str, str] = snap.get("outputs", {})  # latest output by node
        self.step: int = snap.get("step", 0)
        self.last_layer: list[str] = snap.get("last_layer", [])

    # -- starting and jumping ------------------------------------------------------------------
    def start(self, input_text: str) -> None:
        self.jumps.append(Jump(node=self.spec.entry, input=input_text, source="input"))

    def check_target(self, node: str) -> Optional[str]:
        """Return why ``node`` is no valid jump target, or None if it is one."""
        if node in self._order:
            return None
        return f'no node named "{node}"{suggest(node, self._order)}'

    def request_jump(self, node: str, input_text: str, source: str) -> None:
        """Queue a jump; it runs in the next layer that does not already run ``node``."""
        problem = self.check_target(node)
        if problem:
            raise GraphError(f'{source} jumped to an unknown node: {problem}')
        self.jumps.append(Jump(node=node, input=input_text, source=source))

    # -- layers ----------------------------------------------------------------------------
    def next_layer(self, running: Collection[str] = ()) -> list[Task]:
        """Return the tasks to start now, in node order ([] when nothing is ready).

        Layered scheduling calls this when a layer has finished (``running`` empty): the result is
        the next layer. Eager scheduling calls it whenever nodes finish, with the nodes still
        running: a running node is live (a join waits for it) and is not started twice, so a jump
        to it waits until it has finished.
        """
        chosen: dict[str, Task] = {}
        deferred: list[Jump] = []
        for jump in self.jumps:  # FIFO; a second jump to one node waits for the next layer
            if jump.node in chosen or jump.node in running:
                deferred.append(jump)
            else:
                chosen[jump.node] = Task(jump.node, jump.input, 0, jumped=True)
        self.jumps = deferred

        jumped = bool(chosen)
        blocked_by: Optional[set[str]] = None
        inbox = self.inbox
        for node in sorted(inbox, key=self._order.__getitem__):
            if node in chosen or node in running:
                continue
            delivered = inbox[node]
            predecessors = self._predecessors[node]
            # delivered holds only predecessors, so a full one means nothing is missing
            if len(delivered) < len(predecessors):
                missing = [p for p in predecessors if p not in delivered]
                if blocked_by is None:  # computed once a layer, only when a join is partial
                    blocked_by = self._live_closure(chosen, running)
                if any(p in blocked_by for p in missing):
                    continue
            chosen[node] = Task(node, self._join_input(node, delivered), 0)

        # without jumps, chosen already is in node order (the inbox was walked sorted)
        tasks = sorted(chosen.values(), key=lambda t: self._order[t.node]) if jumped else list(chosen.values())
        if tasks and self.step + len(tasks) > self.spec.max_steps:
            raise StepLimitError(
                f'run "{self.spec.name}" reached its step limit of {self.spec.max_steps} node '
                f"executions (next layer: {', '.join(t.node for t in tasks)}); a Next loop may not "
                "terminate. Raise max_steps on the Workflow or execute() if the loop is intended."
            )
        step = self.step
        for task in tasks:
            inbox.pop(task.node, None)  # a jump replaces the node's edge inputs
            step += 1
            task.step = step
        self.step = step
        if tasks and not self.eager:  # eager runs say what finished last themselves (finished_last)
            self.last_layer = [t.node for t in tasks]
        return tasks

    def node_order(self, node: str) -> int:
        """The node's position in the graph (the order nodes were added): the order results apply in."""
        return self._order[node]

    def finished_last(self, nodes: list[str]) -> None:
        """Eager scheduling: ``nodes`` (in node order) finished together, after everything else so far."""
        self.last_layer = nodes

    def finish(self, task: Task, output: str, jump: Optional[Jump], *, redirected: bool = False) -> None:
        """Record one finished task. Call in node order for every task of the layer.

        ``redirected``: a jump from outside redirected the run while this task ran, so its output is
        kept but where it would have led (successors, its own Next) is dropped.
        """
        self.outputs[task.node] = output
        if redirected:
            return
        if jump is not None:
            self.request_jump(jump.node, jump.input, source=f'node "{task.node}"')
            return  # the jumping node's static successors are skipped
        for successor in self._successors[task.node]:
            self.inbox.setdefault(successor, {})[task.node] = output

    def result(self) -> str:
        """The run's output: the last layer's node output, or a dict by name if it ran several."""
        if len(self.last_layer) == 1:
            return self.outputs.get(self.last_layer[0], "null")
        return _join_text((n, self.outputs.get(n, "null")) for n in self.last_layer)

    def snapshot(self) -> dict[str, Any]:
        """A slimmed, JSON-ready snapshot: enough to continue exactly where the run is."""
        return {
            "inbox": self.inbox,
            "jumps": [{"node": j.node, "input": j.input, "source": j.source} for j in self.jumps],
            "outputs": self.outputs,
            "step": self.step,
            "last_layer": self.last_layer,
        }

    # -- internals -----------------------------------------------------------------------------
    def _live_closure(self, chosen: dict[str, Task], running: Collection[str] = ()) -> set[str]:
        """Nodes that may still run in this pass: the live ones and all they can reach."""
        frontier = [*self.inbox, *chosen, *running, *(j.node for j in self.jumps)]
        seen = set(frontier)
        while frontier:
            for successor in self._successors[frontier.pop()]:
                if successor not in seen:
                    seen.add(successor)
                    frontier.append(successor)
        return seen

    def _join_input(self, node: str, delivered: dict[str, str]) -> str:
        if len(delivered) == 1:
            return next(iter(delivered.values()))
        return _join_text((p, delivered[p]) for p in self._predecessors[node] if p in delivered)


def _join_text(pairs: Any) -> str:
    """Build the JSON text of ``{name: value}`` from already-encoded values, without decoding."""
    return "{" + ",".join(f"{json.dumps(name)}:{text}" for name, text in pairs) + "}"
