"""What the budget gate decides before each step, and what a person sees while a run waits on it."""

import json

import pytest

from gecko_temporal.core.budget import Budget, BudgetExceeded
from gecko_temporal.core.run.budget import BUDGET_WAIT, PROMPT, BudgetGate
from gecko_temporal.core.usage import Usage, UsageLedger


def gate_with(budget: dict | None, *used: Usage) -> BudgetGate:
    ledger = UsageLedger({"budget": budget} if budget is not None else None)
    for i, usage in enumerate(used):
        ledger.add(f"n{i}", usage.to_plain())
    return BudgetGate(ledger)


def test_no_budget_never_holds_a_run():
    assert gate_with(None, Usage(10**9, 0, 10**6, 1)).over() is None
    assert gate_with(None, Usage(10**9, 0, 10**6, 1)).check() is None
    assert gate_with({}, Usage(10**9, 0, 10**6, 1)).check() is None  # an empty budget limits nothing
    assert gate_with({"tokens": None, "cost_usd": None}, Usage(5, 5, 5.0, 1)).check() is None


def test_the_token_limit_is_reached_at_the_figure_not_after_it():
    budget = Budget(tokens=100).to_plain()
    assert gate_with(budget, Usage(60, 39, 0.0, 1)).over() is None
    assert gate_with(budget, Usage(60, 40, 0.0, 1)).over() == {
        "reached": ["tokens"],
        "tokens": 100,
        "tokens_limit": 100,
        "cost_usd": 0.0,
        "cost_usd_limit": None,
    }


def test_the_cost_limit_is_reached_at_the_figure_and_both_can_be_reached():
    assert gate_with({"cost_usd": 2.0}, Usage(1, 1, 1.999, 1)).over() is None
    figures = gate_with({"tokens": 10, "cost_usd": 2.0}, Usage(1, 1, 2.0, 1)).over()
    assert figures is not None and figures["reached"] == ["cost_usd"] and figures["cost_usd_limit"] == 2.0
    both = gate_with({"tokens": 10, "cost_usd": 2.0}, Usage(6, 6, 1.25, 1), Usage(0, 0, 1.0, 1)).over()
    assert both == {"reached": ["tokens", "cost_usd"], "tokens": 12, "tokens_limit": 10, "cost_usd": 2.25,
                    "cost_usd_limit": 2.0}  # fmt: skip


def test_the_figures_round_the_cost_and_count_unpriced_calls():
    gate = gate_with({"tokens": 1}, Usage(3, 0, 0.0, 2, 2))
    gate.ledger.add("n-raw", {"input_tokens": 1, "cost_usd": 0.1234567891, "calls": 1})  # a cost as reported
    figures = gate.over()
    assert figures is not None
    assert figures["cost_usd"] == 0.123457 and figures["tokens"] == 4
    assert figures["unpriced_calls"] == 2
    assert "unpriced_calls" not in (gate_with({"tokens": 1}, Usage(1, 0, 0.0, 1)).over() or {})
    assert "refused" not in (gate_with({"tokens": 1}, Usage(1, 0, 0.0, 1)).over() or {})


def test_over_budget_the_run_waits_as_the_budget_entry_showing_the_figures():
    gate = gate_with(Budget(tokens=100, cost_usd=3).to_plain(), Usage(70, 40, 1.5, 1))
    wait = gate.check()
    assert wait is not None
    assert (wait.node, wait.prompt, wait.timeout, wait.default, wait.index) == (BUDGET_WAIT, PROMPT, None, None, None)
    assert wait.node == "budget"
    assert json.loads(wait.payload or "") == {
        "reached": ["tokens"],
        "tokens": 110,
        "tokens_limit": 100,
        "cost_usd": 1.5,
        "cost_usd_limit": 3,
    }
    assert not wait.edits_first


def test_fail_on_exceeded_names_what_was_used_of_what():
    gate = gate_with(Budget(tokens=100, cost_usd=3, on_exceeded="fail").to_plain(), Usage(70, 40, 1.5, 1))
    with pytest.raises(BudgetExceeded) as info:
        gate.check()
    assert str(info.value) == (
        'the run used its budget (on_exceeded="fail"): 110 tokens of 100, $1.5 of $3; '
        'raise Budget(tokens=..., cost_usd=...) or use on_exceeded="wait" to decide at run time'
    )
    only_cost = gate_with(Budget(cost_usd=1, on_exceeded="fail").to_plain(), Usage(2, 3, 1.25, 1))
    with pytest.raises(BudgetExceeded) as info:
        only_cost.check()
    assert 'the run used its budget (on_exceeded="fail"): 5 tokens, $1.25 of $1; raise' in str(info.value)
    under = gate_with(Budget(cost_usd=1, on_exceeded="fail").to_plain(), Usage(2, 3, 0.5, 1))
    assert under.check() is None


def test_stop_or_false_ends_the_run_naming_the_figures():
    gate = gate_with(Budget(tokens=10).to_plain(), Usage(6, 6, 0.5, 1))
    with pytest.raises(BudgetExceeded) as info:
        gate.answered('"stop"')
    assert str(info.value).startswith("the run used its budget (a person answered stop): 12 tokens of 10, $0.5; ")
    with pytest.raises(BudgetExceeded, match=r"\(a person answered stop\)"):
        gate.answered("false")
    # stop with nothing over (the budget was raised meanwhile) still ends the run
    with pytest.raises(BudgetExceeded, match=r"\(a person answered stop\): None tokens, \$None;"):
        gate_with(Budget(tokens=100).to_plain()).answered('"stop"')


def test_a_raised_budget_lets_the_run_go_on_and_keeps_figures_not_named():
    gate = gate_with({"tokens": 10, "cost_usd": 1.0, "on_exceeded": "wait"}, Usage(6, 6, 0.5, 1))
    assert gate.check() is not None
    gate.answered(json.dumps({"tokens": 50}))
    assert gate.budget == {"tokens": 50, "cost_usd": 1.0, "on_exceeded": "wait"}
    assert gate.ledger.budget == gate.budget and gate.refused is None
    assert gate.check() is None
    gate.answered(json.dumps({"cost_usd": None, "tokens": 13}))  # null lifts a figure
    assert gate.budget == {"tokens": 13, "cost_usd": None, "on_exceeded": "wait"}
    assert gate.check() is None
    gate.answered(json.dumps({"tokens": 12}))  # a figure the run already used holds it again
    assert gate.check() is not None


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("not json at all", 'answer budget with {"tokens": N, "cost_usd": X} or "stop", got None'),
        ("[1, 2]", 'answer budget with {"tokens": N, "cost_usd": X} or "stop", got [1, 2]'),
        ("{}", 'answer budget with {"tokens": N, "cost_usd": X} or "stop", got {}'),
        ('"go"', 'answer budget with {"tokens": N, "cost_usd": X} or "stop", got \'go\''),
        (
            '{"tokens": 5, "dollars": 1, "euros": 2}',
            "unknown budget key(s) ['dollars', 'euros'] (valid: tokens, cost_usd)",
        ),
        ('{"tokens": 2.5}', "budget tokens must be a whole number of tokens >= 0 (or None: no limit), got 2.5"),
        (
            '{"tokens": 5, "cost_usd": -1}',
            "budget cost_usd must be a number of US dollars >= 0 (or None: no limit), got -1",
        ),
    ],
)
def test_a_malformed_answer_changes_nothing_and_the_wait_says_why(answer, why):
    gate = gate_with({"tokens": 10, "cost_usd": None, "on_exceeded": "wait"}, Usage(6, 6, 0.5, 1))
    gate.answered(answer)
    assert gate.budget == {"tokens": 10, "cost_usd": None, "on_exceeded": "wait"}
    assert gate.refused == why
    wait = gate.check()
    assert wait is not None and json.loads(wait.payload or "")["refused"] == why
    gate.answered('{"tokens": 100}')  # a good answer clears the complaint
    assert gate.refused is None and gate.check() is None
    assert "refused" not in (gate_with({"tokens": 1}, Usage(1, 0, 0.0, 1)).over() or {})
