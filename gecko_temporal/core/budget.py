"""Budgets: how many tokens and US dollars a run may spend before it pauses for a person. Pure.

``Workflow(budget=Budget(tokens=..., cost_usd=...))`` or ``execute(..., budget=...)``. When the
run's reported usage reaches a figure, no new node starts: the run waits (status "waiting",
``gecko_state["waiting"]["budget"]``) until someone raises the budget with
``handle.answer("budget", {"tokens": N})``, or ends it. ``on_exceeded="fail"`` fails the run instead.
The decision is ``core/run/budget.py``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gecko_temporal.core.errors import GeckoError

ON_EXCEEDED = ("wait", "fail")


class BudgetExceeded(GeckoError):
    """A run used its budget with ``on_exceeded="fail"``, or a person ended it at the budget."""


def check_figure(name: str, value: Any, whole: bool) -> str | None:
    """Why ``value`` is no valid budget figure ``name``, or None."""
    if value is None:
        return None
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or (whole and not isinstance(value, int)) or not math.isfinite(value) or value < 0:
        kind = "a whole number of tokens >= 0" if whole else "a number of US dollars >= 0"
        return f"budget {name} must be {kind} (or None: no limit), got {value!r}"
    return None


@dataclass(frozen=True)
class Budget:
    """What a run may spend: ``tokens`` (input + output) and ``cost_usd``; None means no limit.

    ``on_exceeded``: "wait" (the run pauses for a person to raise it) or "fail"."""

    tokens: int | None = None
    cost_usd: float | None = None
    on_exceeded: str = "wait"

    def __post_init__(self) -> None:
        problems = [
            p for p in (check_figure("tokens", self.tokens, True), check_figure("cost_usd", self.cost_usd, False)) if p
        ]
        if self.on_exceeded not in ON_EXCEEDED:
            problems.append(f'budget on_exceeded must be "wait" or "fail", got {self.on_exceeded!r}')
        if self.tokens is None and self.cost_usd is None:
            problems.append("a Budget needs tokens= or cost_usd= (or both)")
        if problems:
            raise GeckoError("; ".join(problems))

    def to_plain(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "cost_usd": self.cost_usd, "on_exceeded": self.on_exceeded}


def budget_of(value: Any) -> Budget | None:
    """``budget=`` as given to Workflow or execute: a Budget, a dict of its fields, or None."""
    if value is None or isinstance(value, Budget):
        return value
    if isinstance(value, dict):
        unknown = set(value) - {"tokens", "cost_usd", "on_exceeded"}
        if unknown:
            raise GeckoError(f"budget has unknown key(s) {sorted(unknown)} (valid: tokens, cost_usd, on_exceeded)")
        return Budget(**value)
    raise GeckoError(f"budget= takes a Budget(tokens=..., cost_usd=...), got {type(value).__name__}")
