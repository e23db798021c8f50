"""Eager runs' state writes: which writers overlapped, and fan-outs' writes held back. Pure.

In an eager run a node sees the state as it was when it started, and its writes merge when it
finishes. A key that a node writes after another node wrote it while the first was running is a
conflict: the later finisher wins (as the later node does in a layer), and gecko_state lists the
key. A reduced key combines every write: never a conflict. A fan-out's instances finish at
different times; their writes merge together, in Send order, when the last instance finishes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from gecko_temporal.core.state import StateDelta


class HeldDeltas:
    """Fan-out instances' deltas, by node and Send index, until the whole fan-out has finished."""

    def __init__(self) -> None:
        self._held: dict[str, dict[int, list[StateDelta]]] = {}

    def add(self, node: str, send: int | None, deltas: list[StateDelta], whole: bool) -> list[StateDelta]:
        """The deltas to merge now: a plain task's at once; a fan-out's, all in Send order, once
        ``whole`` (its last instance finished); [] for an instance before that."""
        if send is None:
            return deltas
        self._held.setdefault(node, {})[send] = deltas
        if not whole:
            return []
        group = self._held.pop(node)
        return [d for i in sorted(group) for d in group[i]]

    def to_plain(self, nodes: Collection[str]) -> dict[str, Any]:
        """The deltas held for the fan-outs of ``nodes``, as plain data (carried across continue-as-new)."""
        return {
            node: {str(i): [[d.writes, d.deletes] for d in deltas] for i, deltas in held.items()}
            for node, held in self._held.items()
            if node in nodes
        }

    def take(self, plain: dict[str, Any]) -> None:
        """Hold again what :meth:`to_plain` carried."""
        for node, held in plain.items():
            self._held[node] = {
                int(i): [StateDelta(dict(writes), list(deletes)) for writes, deletes in deltas]
                for i, deltas in held.items()
            }


class WriteTracker:
    """Who wrote each key in which merge, to find writers that overlapped in time."""

    def __init__(self, reducers: Collection[str] = ()) -> None:
        self._reduced = reducers
        self._started_at: dict[str, int] = {}  # task key -> merges done when it started
        self._last_write: dict[str, tuple[str, int]] = {}  # state key -> (task key, merge number)
        self.merges = 0

    def started(self, task: str) -> None:
        """Task ``task`` (a Task.key) started now: it sees the state of the merges so far."""
        self._started_at[task] = self.merges

    def new_merge(self) -> None:
        """A batch of finished tasks is about to merge."""
        self.merges += 1

    def wrote(self, task: str, keys: Iterable[str]) -> list[str]:
        """Record ``task``'s writes and deletes in this merge; return the keys another task wrote
        after ``task`` started (conflicts), in the order given."""
        overlapping = []
        for key in keys:
            earlier = self._last_write.get(key)
            if (
                earlier is not None
                and earlier[0] != task
                and earlier[1] > self._started_at[task]
                and key not in self._reduced  # a reduced key combines: no conflict
            ):
                overlapping.append(key)
            self._last_write[key] = (task, self.merges)
        return overlapping
