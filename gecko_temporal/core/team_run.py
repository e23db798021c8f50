"""One Team node's run, decided: which members start, who won, what the Team outputs.
Pure: no temporalio import.

The workflow runs the members as activities and tells a :class:`TeamRun` what happened; the
TeamRun decides, the way the scheduler decides layers. Members that finish in the same instant are
taken in member order, so a tie goes to the lower index and a replay decides the same way.

- ALL: every member runs (``max_concurrency`` at a time); failures are recorded, not raised.
- RACE / QUORUM: members start until ``quorum`` (1 for RACE) have succeeded; then the running
  ones are cancelled (the workflow cancels their activities) and the rest never start. Too few
  successes fail the Team with every member's failure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gecko_temporal.core import codec
from gecko_temporal.core.spec import MemberResult, NodeOutput, TeamSpec
from gecko_temporal.core.state import StateDelta, combine
from gecko_temporal.core.usage import Usage

# A Team's output is MemberResult JSON built here from the members' output text, which the
# workflow never decodes: {"__gecko__": "gecko_temporal.team:MemberResult", "data": {..., "result": ...}}.
_MEMBER_RESULT_TAG = codec.type_ref(MemberResult)


@dataclass(frozen=True)
class MemberDone:
    """How one member's activity ended: its output, or the (type, message) of its failure."""

    output: NodeOutput | None = None
    error: tuple[str, str] | None = None


class TeamFailed(Exception):
    """RACE/QUORUM ended with too few successes; ``failures`` are the failed members' records."""

    def __init__(self, message: str, failures: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.message, self.failures = message, failures


class TeamRun:
    """The decisions of one Team node's run, fed with what its member activities did."""

    def __init__(self, team: TeamSpec) -> None:
        self.team = team
        self._names = [m.name for m in team.members]
        self._all = team.strategy == "all"
        self.wants = len(team.members) if self._all else team.quorum  # successes that end it
        self._limit = team.max_concurrency or len(team.members)
        self._outcome: list[dict[str, Any] | None] = [None] * len(team.members)
        self._outputs: dict[int, NodeOutput] = {}
        self._started: dict[int, float] = {}
        self._next = 0
        self.winners: list[int] = []  # in the order they won
        self.running: list[int] = []  # started, not finished, in member order
        self.spent = Usage()  # what every member that returned reported (winner or not: it was spent)

    @property
    def decided(self) -> bool:
        """RACE/QUORUM has its winners (ALL is never decided early)."""
        return not self._all and len(self.winners) >= self.wants

    def start(self, now: float) -> list[int]:
        """The members to start now, in member order; they count as running from ``now``."""
        chosen = []
        while self._next < len(self._names) and len(self.running) < self._limit and len(self.winners) < self.wants:
            self._started[self._next] = now
            self.running.append(self._next)
            chosen.append(self._next)
            self._next += 1
        return chosen

    def finished(self, done: Mapping[int, MemberDone], now: float) -> list[int]:
        """Record members that finished together; return the running members to cancel (losers)."""
        for i in sorted(done):  # member order: of a tie, the lower index wins
            self.running.remove(i)
            returned = done[i].output
            if returned is not None and returned.usage:
                self.spent.add(Usage.from_plain(returned.usage))
            if done[i].error is not None:
                self._record(i, "failed", now, done[i].error)
            elif len(self.winners) < self.wants:
                self._outputs[i] = done[i].output  # type: ignore[assignment]
                self.winners.append(i)
                self._record(i, "succeeded", now)
            else:  # finished in the same instant as the winner: the race is already decided
                self._record(i, "cancelled", now, ("CancelledError", self._lost_to()))
        if not self.decided:
            return []
        losers, self.running = self.running, []
        for i in losers:
            self._record(i, "cancelled", now, ("CancelledError", self._lost_to()))
        for i in range(self._next, len(self._names)):
            self._record(i, "cancelled", now, ("CancelledError", "not started: the race was decided"))
        self._next = len(self._names)
        return losers

    def output(self) -> NodeOutput:
        """The Team's output once no member runs: MemberResults in member order, the first jump of
        the winners (or, under ALL, of the successes) in member order, and their state writes merged
        in member order. Raise TeamFailed when RACE/QUORUM got too few successes."""
        if not self._all and len(self.winners) < self.wants:
            failures = [o for o in self._outcome if o and o["status"] == "failed"]
            detail = "; ".join(
                f'member "{o["member"]}" failed: {o["error"]["type"]}: {o["error"]["message"]}' for o in failures
            )
            need = "winner" if self.wants == 1 else f"{self.wants} successes, got {len(self.winners)}"
            raise TeamFailed(f"Team has no {need}: {detail}", failures)
        items = []
        for i, o in enumerate(self._outcome):
            assert o is not None, f"member {i} has not finished"
            meta = json.dumps(o, separators=(",", ":"))
            result = self._outputs[i].value if i in self._outputs else "null"
            items.append(f'{{"{codec.TAG}":"{_MEMBER_RESULT_TAG}","data":{meta[:-1]},"result":{result}}}}}')
        won = [self._outputs[i] for i in sorted(self._outputs)]
        jump = next((out.jump for out in won if out.jump is not None), None)
        delta = combine([StateDelta(out.writes, out.deletes) for out in won])
        return NodeOutput(
            value="[" + ",".join(items) + "]",
            jump=jump,
            writes=delta.writes,
            deletes=delta.deletes,
            usage=self.spent.to_plain() if self.spent.calls else None,
        )

    def member_deltas(self) -> list[StateDelta]:
        """The winners' (under ALL, the successes') state deltas, in member order, one each: what a
        reduced state key combines, member by member."""
        return [StateDelta(self._outputs[i].writes, self._outputs[i].deletes) for i in sorted(self._outputs)]

    def _lost_to(self) -> str:
        return f"lost to {self._names[self.winners[0]]}"

    def _record(self, i: int, status: str, now: float, error: tuple[str, str] | None = None) -> None:
        began = self._started.get(i)
        self._outcome[i] = {
            "member": self._names[i],
            "index": i,
            "status": status,
            "error": {"type": error[0], "message": error[1]} if error else None,
            "duration": round(now - began, 6) if began else 0.0,
            "winner": status == "succeeded" and not self._all,
        }
