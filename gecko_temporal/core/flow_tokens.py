"""Token limits: how many tokens a limit's nodes may spend in any minute, over every run. Pure.

``Limit("openai", tokens_per_minute=N)`` is held by one small Temporal workflow per limit (the
*limiter*, ``temporal/limits_tokens.py``), never by a counter in a worker's memory: its state is
its history, so it survives any worker restart and every worker of every run asks the same one.
This module is what the limiter decides, as plain data it carries across continue-as-new.

Before a limited node's call its activity *reserves* an estimate; after the call (or its failure:
the tokens were spent) it *settles* the reservation at the usage the node reported. A reservation
counts toward the minute it was made in, so one that is never settled (its worker was killed)
leaves the window a minute later by itself: nothing leaks for longer than the window.

A node that would overrun the minute is told how long to wait; nodes wait in the order they first
asked (an older waiter's estimate is kept free for it), so a large estimate is not starved by a
stream of small ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: The window a token limit counts over, in seconds.
WINDOW = 60.0
#: Settled calls the default estimate averages over.
LEARN_FROM = 20
#: A waiter that has not asked again this long after its turn was due has given up.
WAITER_GRACE = 30.0
#: The shortest wait told (a node does not poll the limiter in a busy loop).
MIN_WAIT = 0.2
#: The longest wait told while calls are unsettled: one may settle below its estimate and make room.
SETTLE_POLL = 5.0


def default_estimate(tokens_per_minute: int) -> int:
    """The estimate before any call on the limit has settled: a tenth of the minute's tokens."""
    return max(1, tokens_per_minute // 10)


@dataclass
class TokenWindow:
    """The reservations of one token limit in its last minute, and the nodes waiting for room.

    ``held``: reservation id -> [time reserved, tokens, settled]; ``waiting``: waiter key ->
    [first asked, estimate, due]; ``recent``: the last settled calls' tokens (the default estimate).
    """

    held: dict[str, list[Any]] = field(default_factory=dict)
    waiting: dict[str, list[float]] = field(default_factory=dict)
    recent: list[int] = field(default_factory=list)

    def estimate(self, tokens_per_minute: int, declared: int | None) -> int:
        """What a call is assumed to spend: the limit's ``estimate_tokens``, else the mean of the
        last settled calls, else :func:`default_estimate`."""
        if declared is not None:
            return declared
        if self.recent:
            return max(1, round(sum(self.recent) / len(self.recent)))
        return default_estimate(tokens_per_minute)

    def used(self, now: float) -> int:
        """Tokens held in the minute before ``now`` (forgetting the older ones)."""
        self._forget(now)
        return sum(int(entry[1]) for entry in self.held.values())

    def _forget(self, now: float) -> None:
        for key in [k for k, entry in self.held.items() if entry[0] <= now - WINDOW]:
            del self.held[key]
        for key in [k for k, w in self.waiting.items() if w[2] + WAITER_GRACE < now]:
            del self.waiting[key]

    def reserve(
        self, reservation: str, waiter: str, tokens_per_minute: int, declared: int | None, now: float
    ) -> dict[str, Any]:
        """Reserve a call's estimate now: ``{"granted": tokens}``, or ``{"wait": seconds}`` to ask
        again after. ``waiter`` stays the same while one node waits (its place in the line)."""
        used = self.used(now)
        if reservation in self.held:  # the same attempt asking again (its answer was lost): same grant
            return {"granted": int(self.held[reservation][1])}
        estimate = self.estimate(tokens_per_minute, declared)
        first = self.waiting[waiter][0] if waiter in self.waiting else now
        ahead = sum(int(w[1]) for k, w in self.waiting.items() if k != waiter and w[0] < first)
        # A call larger than the whole minute goes alone once the window is empty, never waits forever.
        if used + ahead + estimate <= tokens_per_minute or (used == 0 and ahead == 0):
            self.held[reservation] = [now, estimate, False]
            self.waiting.pop(waiter, None)
            return {"granted": estimate}
        wait = self._room_at(tokens_per_minute - ahead - estimate, now) - now
        if any(not entry[2] for entry in self.held.values()):
            wait = min(wait, SETTLE_POLL)
        wait = max(MIN_WAIT, wait)
        self.waiting[waiter] = [first, float(estimate), now + wait]
        return {"wait": wait}

    def _room_at(self, room: int, now: float) -> float:
        """When the tokens held fall to ``room`` or less (as reservations leave the window)."""
        left = sum(int(entry[1]) for entry in self.held.values())
        for when, tokens, _ in sorted(self.held.values(), key=lambda e: e[0]):
            if left <= room:
                break
            left -= int(tokens)
            now = max(now, when + WINDOW)
        return now

    def settle(self, reservation: str, tokens: int) -> None:
        """The call spent ``tokens`` (its reported usage, 0 when it reported none): its reservation
        holds that instead of the estimate, for the rest of its minute."""
        entry = self.held.get(reservation)
        if entry is None or entry[2]:
            return  # already left the window, or settled before (a repeated settle changes nothing)
        entry[1], entry[2] = max(0, tokens), True
        if tokens > 0:
            self.recent = [*self.recent, tokens][-LEARN_FROM:]

    def shown(self, tokens_per_minute: int | None, now: float) -> dict[str, Any]:
        """The limit's live use, as ``gecko-temporal limits`` shows it."""
        return {
            "tokens_per_minute": tokens_per_minute,
            "tokens_used": self.used(now),
            "reservations": sum(1 for e in self.held.values() if not e[2]),
            "waiting": len(self.waiting),
        }

    def to_plain(self) -> dict[str, Any]:
        return {"held": self.held, "waiting": self.waiting, "recent": self.recent}

    @classmethod
    def from_plain(cls, data: Any) -> TokenWindow:
        """Rebuild from :meth:`to_plain` (anything malformed starts empty: never wedges the limiter)."""
        window = cls()
        if not isinstance(data, dict):
            return window
        for key, entry in (data.get("held") or {}).items():
            if _entry(entry, 3) and isinstance(entry[2], bool):
                window.held[str(key)] = [float(entry[0]), int(entry[1]), entry[2]]
        for key, entry in (data.get("waiting") or {}).items():
            if _entry(entry, 3) and _number(entry[2]):
                window.waiting[str(key)] = [float(v) for v in entry]
        recent = data.get("recent")
        if isinstance(recent, list):
            window.recent = [int(v) for v in recent if _number(v) and v >= 0][-LEARN_FROM:]
        return window


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _entry(entry: Any, size: int) -> bool:
    return isinstance(entry, list) and len(entry) == size and _number(entry[0]) and _number(entry[1])


def limiter_id(task_queue: str) -> str:
    """The workflow id of the limiter of a limit's task queue (one per namespace and limit)."""
    return f"gecko-tokens:{task_queue}"
