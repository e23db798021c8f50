"""Token usage and cost: what a node reports, what it costs, and the run's roll-up. Pure.

A node reports with ``context.report_usage(...)``; agent adapters report what their library
counted (``report``). Reports of one node attempt add up in a :class:`Meter` the activity holds
(a context variable, so reports from the node's thread or from an agent library deep in the call
land there); the sum travels with the node's output, and the workflow rolls it up per node and for
the run in a :class:`UsageLedger`, which continue-as-new carries.

Cost is the reported ``cost_usd`` when given, else tokens times the price of the named model from
:data:`PRICES` (override with :func:`set_price` in the worker's process). With neither, the tokens
are counted and the cost is not invented: the call counts as ``unpriced``.
"""

from __future__ import annotations

import contextvars
import math
import threading
from dataclasses import dataclass
from typing import Any

from gecko_temporal.core.errors import GeckoError

#: USD per million tokens (input, output) of a few common models, as published by their providers
#: in 2025. A small default table, not a price feed: override or extend it with set_price().
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "o3-mini": (1.10, 4.40),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-opus-4": (15.00, 75.00),
}


def set_price(model: str, input_per_million: float, output_per_million: float) -> None:
    """Price ``model`` at these USD per million input and output tokens (in the worker's process)."""
    for what, value in (("input_per_million", input_per_million), ("output_per_million", output_per_million)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
            raise GeckoError(f'set_price("{model}"): {what} must be a number >= 0, got {value!r}')
    PRICES[model] = (float(input_per_million), float(output_per_million))


def price_of(model: str | None) -> tuple[float, float] | None:
    """The price of ``model``: an exact entry, else the longest entry it starts with (dated or
    provider-prefixed names: ``gpt-4o-2024-08-06``, ``openai:gpt-4o``); None when unknown."""
    if not model:
        return None
    name = model.split(":", 1)[1] if ":" in model else model
    name = name.split("/")[-1]
    if name in PRICES:
        return PRICES[name]
    best = max((k for k in PRICES if name.startswith(k)), key=len, default=None)
    return PRICES[best] if best is not None else None


def _count(value: Any, what: str) -> int:
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise GeckoError(f"report_usage({what}=...) takes a whole number of tokens >= 0, got {value!r}")
    return value


@dataclass
class Usage:
    """Usage of one node, or of a run: tokens, the cost known, and the calls without a price."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    unpriced: int = 0  # calls whose cost is unknown (no cost given, no price for the model)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd
        self.calls += other.calls
        self.unpriced += other.unpriced

    def to_plain(self) -> dict[str, Any]:
        plain: dict[str, Any] = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "tokens": self.tokens,
            "cost_usd": round(self.cost_usd, 6),
            "calls": self.calls,
        }
        if self.unpriced:
            plain["unpriced"] = self.unpriced
        return plain

    @classmethod
    def from_plain(cls, data: Any) -> Usage:
        """Rebuild from its plain form; anything malformed counts as nothing (never fails a run)."""
        if not isinstance(data, dict):
            return cls()

        def num(key: str, kind: type) -> Any:
            value = data.get(key, 0)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            return kind(value) if ok and value >= 0 else kind(0)

        return cls(
            num("input_tokens", int), num("output_tokens", int), num("cost_usd", float), num("calls", int),
            num("unpriced", int),
        )  # fmt: skip


def priced(input_tokens: Any = 0, output_tokens: Any = 0, cost_usd: Any = None, model: str | None = None) -> Usage:
    """One call's usage, checked; its cost as given, else from the model's price, else unpriced."""
    ins, outs = _count(input_tokens, "input_tokens"), _count(output_tokens, "output_tokens")
    if cost_usd is not None:
        if not isinstance(cost_usd, (int, float)) or isinstance(cost_usd, bool) or not math.isfinite(cost_usd):
            raise GeckoError(f"report_usage(cost_usd=...) takes a number of US dollars, got {cost_usd!r}")
        if cost_usd < 0:
            raise GeckoError(f"report_usage(cost_usd=...) takes a cost >= 0, got {cost_usd!r}")
        return Usage(ins, outs, float(cost_usd), 1)
    price = price_of(model)
    if price is None:
        return Usage(ins, outs, 0.0, 1, unpriced=1 if ins or outs else 0)
    return Usage(ins, outs, (ins * price[0] + outs * price[1]) / 1_000_000, 1)


class Meter:
    """What one node attempt reported (thread-safe: sync nodes report from a pool thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.usage = Usage()

    def add(self, usage: Usage) -> None:
        with self._lock:
            self.usage.add(usage)

    def plain(self) -> dict[str, Any] | None:
        """The sum as it travels with the node's output; None when nothing was reported."""
        return self.usage.to_plain() if self.usage.calls else None


_meter: contextvars.ContextVar[Meter | None] = contextvars.ContextVar("gecko_usage_meter", default=None)


def start_meter() -> Meter:
    """A new meter for the node attempt running in this context (the activity calls this)."""
    meter = Meter()
    _meter.set(meter)
    return meter


def report(
    input_tokens: int | None = 0, output_tokens: int | None = 0, cost_usd: float | None = None, model: str | None = None
) -> bool:
    """Add one call's usage to the running node's meter; False outside a node (nothing to add to)."""
    usage = priced(input_tokens, output_tokens, cost_usd, model)
    meter = _meter.get()
    if meter is None:
        return False
    meter.add(usage)
    return True


class UsageLedger:
    """A run's usage per node and in all, plus its flow settings (budget, tenant), as continue-as-new
    carries them (``RunSnapshot.flow``)."""

    def __init__(self, flow: dict[str, Any] | None = None) -> None:
        flow = flow if isinstance(flow, dict) else {}
        nodes = flow.get("usage")
        nodes = nodes if isinstance(nodes, dict) else {}
        self.nodes: dict[str, Usage] = {str(k): Usage.from_plain(v) for k, v in nodes.items()}
        self.total = Usage()
        for u in self.nodes.values():
            self.total.add(u)
        self.budget: dict[str, Any] | None = flow.get("budget") if isinstance(flow.get("budget"), dict) else None
        self.tenant: str | None = flow.get("tenant") if isinstance(flow.get("tenant"), str) else None
        # a subgraph's child run: tell the parent run what this session spent when it ends
        self.report = flow.get("report") is True

    def add(self, node: str, reported: Any) -> Usage | None:
        """Roll a node's reported usage (its output's plain ``usage``) in; return it, or None."""
        if not reported:
            return None
        usage = Usage.from_plain(reported)
        self.nodes.setdefault(node, Usage()).add(usage)
        self.total.add(usage)
        return usage

    def shown(self) -> dict[str, Any]:
        """``gecko_state["usage"]``: the run's total and each node's."""
        return {"total": self.total.to_plain(), "nodes": {k: v.to_plain() for k, v in self.nodes.items()}}

    def to_plain(self) -> dict[str, Any] | None:
        """What the next run carries; None when there is nothing (snapshots stay as they were)."""
        plain: dict[str, Any] = {}
        if self.nodes:
            plain["usage"] = {k: v.to_plain() for k, v in self.nodes.items()}
        if self.budget is not None:
            plain["budget"] = self.budget
        if self.tenant is not None:
            plain["tenant"] = self.tenant
        if self.report:
            plain["report"] = True
        return plain or None

    def child_flow(self) -> dict[str, Any]:
        """A subgraph child run's flow settings: this run's tenant, what is left of its budget (its
        figures less what this run used; the child waits or fails on them as this run would), and
        the ask to report its usage back, which then counts as the subgraph node's."""
        flow: dict[str, Any] = {"report": True}
        if self.tenant is not None:
            flow["tenant"] = self.tenant
        if self.budget is not None:
            left = dict(self.budget)
            for name, used in (("tokens", self.total.tokens), ("cost_usd", self.total.cost_usd)):
                limit = left.get(name)
                if isinstance(limit, (int, float)) and not isinstance(limit, bool):
                    left[name] = max(0, limit - used) if name == "tokens" else round(max(0.0, limit - used), 6)
            flow["budget"] = left
        return flow

    def details_line(self) -> str | None:
        """The run's usage for the Temporal UI's current details, None before any was reported."""
        if not self.total.calls:
            return None
        t = self.total
        line = f"Usage: {t.tokens:,} tokens ({t.input_tokens:,} in, {t.output_tokens:,} out), ${t.cost_usd:.4f}"
        if t.unpriced:
            line += f" ({t.unpriced} unpriced call{'s' if t.unpriced > 1 else ''})"
        budget = self.budget or {}
        figures = [
            f"{budget['tokens']:,} tokens" if budget.get("tokens") is not None else None,
            f"${budget['cost_usd']}" if budget.get("cost_usd") is not None else None,
        ]
        shown = [f for f in figures if f]
        return line + (f"; budget {', '.join(shown)}" if shown else "")
