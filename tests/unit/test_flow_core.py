"""Flow control's pure parts: RetryAfter and 429 recognition, usage and prices, the budget gate, limits."""

from __future__ import annotations

import email.utils
import json

import pytest

from gecko_temporal import Budget, BudgetExceeded, GeckoError, GraphError, Limit, RetryAfter, Workflow
from gecko_temporal.core import flow, usage
from gecko_temporal.core.flow_limits import check_limits, limit_queue, parse_weights, run_flow
from gecko_temporal.core.run.budget import BUDGET_WAIT, BudgetGate
from gecko_temporal.core.usage import Meter, Usage, UsageLedger, price_of, priced


class FakeResponse:
    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status_code, self.headers = status, headers


class RateLimitError(Exception):
    """Shaped like openai's and anthropic's: a response with the status and headers."""

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        super().__init__("Error code: 429")
        self.response = FakeResponse(status, headers)
        self.status_code = status


def test_retry_after_seconds_are_checked():
    assert RetryAfter(2).seconds == 2.0 and "retry after 2 s (busy)" in str(RetryAfter(2, "busy"))
    for bad in (-1, float("nan"), "3", True):
        with pytest.raises((TypeError, ValueError)):
            RetryAfter(bad)  # type: ignore[arg-type]
    assert isinstance(RetryAfter(1), GeckoError)


def test_429_with_retry_after_is_recognised_along_the_cause_chain():
    assert flow.retry_after_of(RetryAfter(4)) == 4.0
    assert flow.retry_after_of(RateLimitError(429, {"retry-after": "7"})) == 7.0
    assert flow.retry_after_of(RateLimitError(429, {"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    when = email.utils.formatdate(1_000_030, usegmt=True)
    assert flow.retry_after_of(RateLimitError(429, {"Retry-After": when}), now=1_000_000) == pytest.approx(30)
    try:
        try:
            raise RateLimitError(429, {"retry-after": "3"})
        except RateLimitError as inner:
            raise RuntimeError("the agent library wrapped it") from inner
    except RuntimeError as wrapped:
        assert flow.retry_after_of(wrapped) == 3.0
    assert flow.retry_after_of(RetryAfter(10**6)) == flow.MAX_DELAY


def test_other_errors_are_not_rate_limits():
    assert flow.retry_after_of(ValueError("x")) is None
    assert flow.retry_after_of(RateLimitError(500, {"retry-after": "3"})) is None
    assert flow.retry_after_of(RateLimitError(429, {})) is None  # no delay given: the node's own backoff
    assert flow.retry_after_of(RateLimitError(429, {"retry-after": "soon"})) is None
    assert flow.delay_of({"retry_after": 2, "attempt": 1}) == 2.0
    assert flow.delay_of({"retry_after": "2"}) is None and flow.delay_of(None) is None


def test_prices_match_dated_and_prefixed_model_names_and_never_invent_a_cost():
    assert price_of("gpt-4o") == (2.5, 10.0)
    assert price_of("gpt-4o-mini-2024-07-18") == (0.15, 0.6)  # longest prefix wins
    assert price_of("openai:gpt-4o-2024-08-06") == (2.5, 10.0)
    assert price_of("made-up") is None and price_of(None) is None
    assert priced(1_000_000, 0, model="gpt-4o").cost_usd == pytest.approx(2.5)
    unknown = priced(100, 50, model="made-up")
    assert unknown.cost_usd == 0 and unknown.unpriced == 1 and unknown.tokens == 150
    assert priced(100, 50, cost_usd=0.25, model="made-up").cost_usd == 0.25  # a given cost wins
    usage.set_price("made-up-2", 1, 1)
    assert priced(500_000, 500_000, model="made-up-2").cost_usd == pytest.approx(1.0)
    with pytest.raises(GeckoError, match="whole number of tokens"):
        priced(-1)
    with pytest.raises(GeckoError, match="cost >= 0"):
        priced(cost_usd=-0.1)
    with pytest.raises(GeckoError, match="output_per_million"):
        usage.set_price("x", 1, -2)


def test_reports_reach_the_meter_of_the_running_node_only():
    assert usage.report(1, 1) is False  # outside a node: nobody to tell
    import contextvars

    def node() -> Meter:
        meter = usage.start_meter()
        usage.report(10, 5, cost_usd=0.01)
        usage.report(1, 0)
        return meter

    meter = contextvars.copy_context().run(node)
    assert meter.plain() == {
        "input_tokens": 11, "output_tokens": 5, "tokens": 16, "cost_usd": 0.01, "calls": 2, "unpriced": 1,
    }  # fmt: skip
    assert Meter().plain() is None


def test_ledger_rolls_up_and_carries_itself_across_runs():
    ledger = UsageLedger({"budget": {"tokens": 10}, "tenant": "acme"})
    ledger.add("a", Usage(5, 5, 0.5, 1).to_plain())
    ledger.add("a", Usage(1, 0, 0.0, 1, 1).to_plain())
    ledger.add("b", None)
    assert ledger.shown()["total"]["tokens"] == 11 and ledger.shown()["nodes"]["a"]["calls"] == 2
    again = UsageLedger(ledger.to_plain())
    assert again.shown() == ledger.shown() and again.budget == {"tokens": 10} and again.tenant == "acme"
    assert UsageLedger(None).to_plain() is None
    junk = UsageLedger({"usage": {"a": {"input_tokens": "lots", "cost_usd": float("nan")}}, "budget": 3})
    assert junk.total.tokens == 0 and junk.budget is None  # malformed: nothing, never a failure


def test_budget_gate_waits_then_takes_a_raised_budget():
    ledger = UsageLedger({"budget": Budget(tokens=100).to_plain()})
    gate = BudgetGate(ledger)
    assert gate.check() is None
    ledger.add("a", Usage(80, 20, 0.0, 1).to_plain())
    wait = gate.check()
    assert wait is not None and wait.node == BUDGET_WAIT
    assert json.loads(wait.payload or "")["tokens"] == 100
    gate.answered(json.dumps({"tokens": "many"}))
    assert gate.budget == {"tokens": 100, "cost_usd": None, "on_exceeded": "wait"}
    assert "whole number" in (gate.over() or {}).get("refused", "")
    gate.answered(json.dumps({"tokens": 500}))
    assert gate.check() is None and gate.budget is not None and gate.budget["tokens"] == 500
    with pytest.raises(BudgetExceeded, match="a person answered stop"):
        gate.answered('"stop"')


def test_budget_gate_fails_when_told_to():
    ledger = UsageLedger({"budget": Budget(cost_usd=1, on_exceeded="fail").to_plain()})
    ledger.add("a", Usage(1, 1, 1.5, 1).to_plain())
    with pytest.raises(BudgetExceeded, match=r"\$1.5 of \$1"):
        BudgetGate(ledger).check()


def test_limits_and_tenants_are_checked_where_they_are_given():
    assert check_limits([Limit("openai", per_second=2)])["openai"].per_second == 2
    with pytest.raises(GraphError, match="twice"):
        check_limits([Limit("a"), Limit("a")])
    with pytest.raises(GraphError, match="per_second must be a number > 0"):
        Limit("a", per_second=0)
    with pytest.raises(GraphError, match="Limit name"):
        Limit("no spaces")
    assert limit_queue("gecko", "openai") == "gecko.limit.openai"
    assert run_flow(Workflow("W"), None, None) is None
    assert run_flow(Workflow("W", budget=Budget(tokens=5)), None, "acme") == {
        "budget": {"tokens": 5, "cost_usd": None, "on_exceeded": "wait"},
        "tenant": "acme",
    }
    assert run_flow(Workflow("W", budget=Budget(tokens=5)), {"cost_usd": 2}, None) == {
        "budget": {"tokens": None, "cost_usd": 2, "on_exceeded": "wait"}
    }
    with pytest.raises(GraphError, match="tenant must be"):
        run_flow(Workflow("W"), None, "x" * 65)
    assert parse_weights(["acme=2", "globex=0.5"]) == {"acme": 2.0, "globex": 0.5}
    for bad in ("acme", "acme=0", "=2", "acme=x"):
        with pytest.raises(GraphError, match="tenant=weight"):
            parse_weights([bad])


def test_bad_budget_is_refused_at_once():
    with pytest.raises(GeckoError, match="tokens must be a whole number"):
        Budget(tokens=-1)
    with pytest.raises(GeckoError, match="needs tokens= or cost_usd="):
        Budget()
    with pytest.raises(GeckoError, match="on_exceeded"):
        Budget(tokens=1, on_exceeded="explode")
    with pytest.raises(GeckoError, match="unknown key"):
        Workflow("W", budget={"tokenz": 1})
