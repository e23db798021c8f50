"""Whether a run may start its next nodes, given its budget and what it used. Pure.

The workflow asks :class:`BudgetGate` before each step. Under budget: go on. Over it with
``on_exceeded="fail"``: the run fails with ``BudgetExceeded``. Over it otherwise: the run waits as
one :class:`PersonWait` named ``budget`` (the same wait as WaitForInput and interrupts, so
``handle.answer``, the ``gecko_answer`` signal and ``gecko-temporal answer`` all work), and the
answer raises the budget: ``{"tokens": N, "cost_usd": X}`` (absolute figures; a missing key keeps
its figure, ``null`` lifts it), or ``"stop"`` to end the run.
"""

from __future__ import annotations

import json
from typing import Any

from gecko_temporal.core import codec
from gecko_temporal.core.budget import BudgetExceeded, check_figure
from gecko_temporal.core.run.person import PersonWait
from gecko_temporal.core.usage import UsageLedger

#: The name a budget wait answers to (gecko_state["waiting"]["budget"]).
BUDGET_WAIT = "budget"
PROMPT = (
    'the run used its budget; answer "budget" with the new figures to go on, e.g. '
    'handle.answer("budget", {"tokens": 200000, "cost_usd": 5}), or "stop" to end it'
)


class BudgetGate:
    """The budget decisions of one run, over its ledger (which carries the budget as raised)."""

    def __init__(self, ledger: UsageLedger) -> None:
        self.ledger = ledger
        self.refused: str | None = None  # why the last answer did not raise the budget

    @property
    def budget(self) -> dict[str, Any] | None:
        return self.ledger.budget

    def over(self) -> dict[str, Any] | None:
        """The figures when usage has reached the budget, else None."""
        budget, used = self.ledger.budget, self.ledger.total
        if not budget:
            return None
        tokens, cost = budget.get("tokens"), budget.get("cost_usd")
        reached = [
            name
            for name, limit, spent in (("tokens", tokens, used.tokens), ("cost_usd", cost, used.cost_usd))
            if limit is not None and spent >= limit
        ]
        if not reached:
            return None
        figures: dict[str, Any] = {
            "reached": reached,
            "tokens": used.tokens,
            "tokens_limit": tokens,
            "cost_usd": round(used.cost_usd, 6),
            "cost_usd_limit": cost,
        }
        if used.unpriced:
            figures["unpriced_calls"] = used.unpriced
        if self.refused:
            figures["refused"] = self.refused
        return figures

    def check(self) -> PersonWait | None:
        """Before a step: None to go on, a wait to hold the run in, or raise BudgetExceeded."""
        figures = self.over()
        if figures is None:
            return None
        if (self.ledger.budget or {}).get("on_exceeded") == "fail":
            raise BudgetExceeded(self._message(figures, 'on_exceeded="fail"'))
        return PersonWait(BUDGET_WAIT, PROMPT, None, None, payload=json.dumps(figures))

    def answered(self, text: str) -> None:
        """Take a person's answer (JSON text): raise the budget, or raise BudgetExceeded on "stop".
        A malformed answer changes nothing (the run waits again, saying why)."""
        try:
            value = codec.decode(text)
        except Exception:
            value = None
        if value == "stop" or value is False:
            figures = self.over() or {}
            raise BudgetExceeded(self._message(figures, "a person answered stop"))
        problem = self._problem(value)
        if problem:
            self.refused = problem
            return
        self.refused = None
        assert isinstance(value, dict) and self.ledger.budget is not None
        self.ledger.budget = {**self.ledger.budget, **value}

    @staticmethod
    def _problem(value: Any) -> str | None:
        if not isinstance(value, dict) or not value:
            return f'answer budget with {{"tokens": N, "cost_usd": X}} or "stop", got {value!r}'
        unknown = set(value) - {"tokens", "cost_usd"}
        if unknown:
            return f"unknown budget key(s) {sorted(unknown)} (valid: tokens, cost_usd)"
        for name in ("tokens", "cost_usd"):
            problem = check_figure(name, value.get(name), name == "tokens")
            if problem:
                return problem
        return None

    @staticmethod
    def _message(figures: dict[str, Any], why: str) -> str:
        tokens, cost = figures.get("tokens_limit"), figures.get("cost_usd_limit")
        used = [
            f"{figures.get('tokens')} tokens" + (f" of {tokens}" if tokens is not None else ""),
            f"${figures.get('cost_usd')}" + (f" of ${cost}" if cost is not None else ""),
        ]
        return (
            f"the run used its budget ({why}): {', '.join(used)}; raise Budget(tokens=..., cost_usd=...) "
            'or use on_exceeded="wait" to decide at run time'
        )
