"""The figures a Budget takes and the usage a node reports: what is accepted, what is refused (with
the message a user sees), how models are priced and how reports add up."""

from __future__ import annotations

import contextvars
import math

import pytest

from gecko_temporal.core import usage
from gecko_temporal.core.budget import Budget, budget_of, check_figure
from gecko_temporal.core.errors import GeckoError
from gecko_temporal.core.usage import PRICES, Usage, UsageLedger, price_of, priced, set_price

# --- Budget ------------------------------------------------------------------------------------


def test_zero_and_fractions_are_valid_figures_where_they_make_sense():
    assert check_figure("tokens", 0, True) is None
    assert check_figure("cost_usd", 0, False) is None
    assert check_figure("cost_usd", 0.5, False) is None
    assert check_figure("cost_usd", 2.5, False) is None
    assert Budget(tokens=0).to_plain() == {"tokens": 0, "cost_usd": None, "on_exceeded": "wait"}
    assert Budget(cost_usd=0.25).to_plain() == {"tokens": None, "cost_usd": 0.25, "on_exceeded": "wait"}


@pytest.mark.parametrize(
    ("name", "value", "whole", "kind"),
    [
        ("tokens", True, True, "a whole number of tokens >= 0"),
        ("cost_usd", True, False, "a number of US dollars >= 0"),
        ("tokens", 2.5, True, "a whole number of tokens >= 0"),
        ("cost_usd", -0.01, False, "a number of US dollars >= 0"),
        ("cost_usd", math.inf, False, "a number of US dollars >= 0"),
        ("tokens", "10", True, "a whole number of tokens >= 0"),
    ],
)
def test_a_bad_figure_is_refused_naming_it(name, value, whole, kind):
    assert check_figure(name, value, whole) == f"budget {name} must be {kind} (or None: no limit), got {value!r}"


def test_a_budget_names_every_problem_at_once():
    with pytest.raises(GeckoError) as info:
        Budget(cost_usd=-1)
    assert str(info.value) == "budget cost_usd must be a number of US dollars >= 0 (or None: no limit), got -1"
    with pytest.raises(GeckoError) as info:
        Budget()
    assert str(info.value) == "a Budget needs tokens= or cost_usd= (or both)"
    with pytest.raises(GeckoError) as info:
        Budget(tokens=-1, cost_usd=-2, on_exceeded="later")
    assert str(info.value) == (
        "budget tokens must be a whole number of tokens >= 0 (or None: no limit), got -1; "
        "budget cost_usd must be a number of US dollars >= 0 (or None: no limit), got -2; "
        'budget on_exceeded must be "wait" or "fail", got \'later\''
    )


def test_budget_of_takes_a_budget_a_dict_of_its_fields_or_none():
    assert budget_of(None) is None
    given = Budget(tokens=5)
    assert budget_of(given) is given
    assert budget_of({"tokens": 5, "cost_usd": 1.5, "on_exceeded": "fail"}) == Budget(5, 1.5, "fail")
    with pytest.raises(GeckoError) as info:
        budget_of({"tokens": 5, "dollars": 1})
    assert str(info.value) == "budget has unknown key(s) ['dollars'] (valid: tokens, cost_usd, on_exceeded)"
    with pytest.raises(GeckoError) as info:
        budget_of(100)
    assert str(info.value) == "budget= takes a Budget(tokens=..., cost_usd=...), got int"


# --- prices ------------------------------------------------------------------------------------


@pytest.fixture
def own_model():
    name = "mutfix-test-model"
    yield name
    PRICES.pop(name, None)


def test_set_price_takes_zero_and_fractions(own_model):
    set_price(own_model, 0, 0.5)
    assert price_of(own_model) == (0.0, 0.5)
    assert priced(1_000_000, 2_000_000, model=own_model) == Usage(1_000_000, 2_000_000, 1.0, 1)


@pytest.mark.parametrize(
    ("ins", "outs", "what", "bad"),
    [
        (-1, 1, "input_per_million", -1),
        (1, math.nan, "output_per_million", math.nan),
        (True, 1, "input_per_million", True),
    ],
)
def test_set_price_refuses_a_bad_price_naming_it(own_model, ins, outs, what, bad):
    with pytest.raises(GeckoError) as info:
        set_price(own_model, ins, outs)
    assert str(info.value) == f'set_price("{own_model}"): {what} must be a number >= 0, got {bad!r}'
    assert own_model not in PRICES


def test_a_model_is_priced_by_its_name_past_a_provider_or_path():
    assert price_of("openai:gpt-4o") == PRICES["gpt-4o"]
    assert price_of("openrouter/openai/gpt-4o-mini") == PRICES["gpt-4o-mini"]
    assert price_of("gpt-4o-mini-2024-07-18") == PRICES["gpt-4o-mini"]
    assert price_of("unknown-model") is None and price_of("") is None and price_of(None) is None


# --- one call's usage ----------------------------------------------------------------------------


def test_one_call_counts_what_was_given_and_only_that():
    assert priced() == Usage(0, 0, 0.0, 1, 0)
    assert priced(output_tokens=5) == Usage(0, 5, 0.0, 1, 1)
    assert priced(input_tokens=5) == Usage(5, 0, 0.0, 1, 1)
    assert priced(None, None) == Usage(0, 0, 0.0, 1, 0)
    assert priced(1_000_000, 0, model="gpt-4o") == Usage(1_000_000, 0, PRICES["gpt-4o"][0], 1, 0)


@pytest.mark.parametrize("cost", [math.inf, math.nan, True, "0.1"])
def test_a_cost_that_is_no_number_of_dollars_is_refused(cost):
    with pytest.raises(GeckoError) as info:
        priced(1, 1, cost)
    assert str(info.value) == f"report_usage(cost_usd=...) takes a number of US dollars, got {cost!r}"


def test_the_shown_cost_is_rounded_to_a_millionth_of_a_dollar():
    assert Usage(1, 2, 0.12345678, 1).to_plain() == {
        "input_tokens": 1,
        "output_tokens": 2,
        "tokens": 3,
        "cost_usd": 0.123457,
        "calls": 1,
    }


def test_report_adds_to_the_running_nodes_meter():
    def attempt() -> tuple[bool, bool, Usage]:
        meter = usage.start_meter()
        first = usage.report(output_tokens=3)
        second = usage.report(input_tokens=4)
        return first, second, meter.usage

    first, second, total = contextvars.copy_context().run(attempt)
    assert first is True and second is True
    assert total == Usage(4, 3, 0.0, 2, 2)
    assert contextvars.copy_context().run(lambda: usage.report(input_tokens=1)) is False


def test_a_ledger_keeps_only_a_text_tenant():
    assert UsageLedger({"tenant": 5}).tenant is None
    assert UsageLedger({"tenant": 5}).to_plain() is None
    assert UsageLedger({"tenant": "acme"}).tenant == "acme"
