"""Where a run can be rewound to, and whether it was just reset. Pure.

One rewind point per merge (layer or eager batch), with the history length of the workflow task
that merged it: a rewind resets the run to that task's completion. Temporal reseeds
``workflow.random()`` at the point a run was reset to (an UpdateRandomSeed job, replayed
identically), so a new random seed between two merges means "this run was reset just now": no other
API says so.
"""

from __future__ import annotations

from typing import Any

from gecko_temporal.core.control import KEEP_CHECKPOINTS, RunControl

#: How long a reset run waits for gecko-temporal rewind's gecko_rewound signal before going on.
REWIND_SIGNAL_WAIT = 60


class RewindPoints:
    """The merges of one run a rewind can go back to, and the resets it has seen."""

    def __init__(self, seed: int) -> None:
        self.points: list[dict[str, Any]] = []
        self._seed = seed
        self.resets = 0  # resets seen in this run (under the rewind patch)

    def record(self, *, step: int, layer: int, nodes: list[str], time: str, event: int, start: bool = False) -> None:
        """A merge (or the run's start) at history length ``event``."""
        last = self.points[-1]["event"] if self.points else None
        self.points.append(
            {
                "step": step,
                "layer": layer,
                "nodes": list(dict.fromkeys(nodes)),  # a fan-out's instances once
                "time": time,
                "event": event,
                # A later merge in the same workflow task (local steps) cannot be reset to on its
                # own: a reset redoes the whole task. Nor a run's start: a run reset to its first
                # task cannot tell (no reseed seen there), so it would not wait for the rewind's edits.
                "rewindable": event != last and not start,
            }
        )
        del self.points[:-KEEP_CHECKPOINTS]

    def reseeded(self, seed: int) -> bool:
        """True the first time ``seed`` differs from the last one seen: the run was just reset."""
        if seed == self._seed:
            return False
        self._seed = seed
        return True

    def reset_seen(self, control: RunControl) -> bool:
        """Count a reset; True if its gecko_rewound signal has not arrived yet (wait for it)."""
        self.resets += 1
        return control.rewinds < self.resets

    def rewound(self, control: RunControl) -> bool:
        """Every reset seen has its gecko_rewound signal."""
        return control.rewinds >= self.resets

    def reset_by_hand(self, control: RunControl, step: int) -> None:
        """No gecko_rewound came: a reset by other means. Say so in gecko_state and go on."""
        control.rewinds = self.resets
        control.rewound_from = {
            "run_id": None,
            "step": step,
            "time": control.clock(),
            "note": "reset without gecko-temporal rewind (no gecko_rewound signal)",
        }
