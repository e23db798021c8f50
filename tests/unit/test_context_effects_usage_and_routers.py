"""What a node's ``context`` does beyond state and interrupts: report_usage rolls up the figures it is
given, once/idempotency_key reach the node execution's records (or say why they cannot), routers see
the state after their node's reducers, and a static breakpoint waits before the node runs."""

from __future__ import annotations

import contextvars
import json

import pytest

from gecko_temporal.core import codec, usage
from gecko_temporal.core.context import (
    NodeInterrupted,
    WorkflowContext,
    breakpoint_before,
    keep_router_writes,
    router_context,
)
from gecko_temporal.core.effects import Effects, EffectScope
from gecko_temporal.core.errors import EffectError, GeckoError
from tests.pipelines.core_parts import MemoryRecords, node_context


def make_context(
    base: dict[str, str] | None = None, *, node: str = "Pay", effects: Effects | None = None, step: int = 3
) -> WorkflowContext:
    return node_context(base, node=node, step=step, session_id="sess", effects=effects)


def reported(*calls: dict) -> dict | None:
    """What one node attempt's meter holds after ``context.report_usage(**call)`` for each call."""

    def attempt() -> dict | None:
        meter = usage.start_meter()
        ctx = make_context()
        for call in calls:
            ctx.report_usage(**call)
        return meter.plain()

    return contextvars.copy_context().run(attempt)


# --- report_usage ----------------------------------------------------------------------------


def test_report_usage_counts_each_figure_where_it_was_given():
    assert reported({"input_tokens": 120, "output_tokens": 30, "cost_usd": 0.25}) == {
        "input_tokens": 120,
        "output_tokens": 30,
        "tokens": 150,
        "cost_usd": 0.25,
        "calls": 1,
    }
    only_output = reported({"output_tokens": 7})
    assert only_output is not None
    assert (only_output["input_tokens"], only_output["output_tokens"], only_output["unpriced"]) == (0, 7, 1)
    only_input = reported({"input_tokens": 9, "cost_usd": 0.0})
    assert only_input is not None and (only_input["input_tokens"], only_input["output_tokens"]) == (9, 0)
    assert "unpriced" not in only_input  # a cost of 0 is a known cost


def test_report_usage_prices_by_model_when_no_cost_is_given_and_never_guesses():
    priced = reported({"input_tokens": 1_000_000, "output_tokens": 1_000_000, "model": "gpt-4o-mini"})
    assert priced is not None and priced["cost_usd"] == 0.75 and "unpriced" not in priced
    given = reported({"input_tokens": 1_000_000, "cost_usd": 2.0, "model": "gpt-4o-mini"})
    assert given is not None and given["cost_usd"] == 2.0  # the reported cost wins over the price
    unknown = reported({"input_tokens": 10, "output_tokens": 5, "model": "my-own-model"})
    assert unknown is not None and unknown["cost_usd"] == 0.0 and unknown["unpriced"] == 1
    no_tokens = reported({})
    assert no_tokens == {"input_tokens": 0, "output_tokens": 0, "tokens": 0, "cost_usd": 0.0, "calls": 1}


def test_report_usage_adds_up_the_calls_of_one_attempt():
    total = reported({"input_tokens": 10, "cost_usd": 0.5}, {"output_tokens": 5, "cost_usd": 0.25}, {"input_tokens": 1})
    assert total == {"input_tokens": 11, "output_tokens": 5, "tokens": 16, "cost_usd": 0.75, "calls": 3, "unpriced": 1}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"input_tokens": -1}, "report_usage(input_tokens=...) takes a whole number of tokens >= 0, got -1"),
        ({"output_tokens": 1.5}, "report_usage(output_tokens=...) takes a whole number of tokens >= 0, got 1.5"),
        ({"cost_usd": "1"}, "report_usage(cost_usd=...) takes a number of US dollars, got '1'"),
        ({"cost_usd": -0.5}, "report_usage(cost_usd=...) takes a cost >= 0, got -0.5"),
    ],
)
def test_report_usage_refuses_bad_figures_naming_the_argument(call, message):
    with pytest.raises(GeckoError) as info:
        reported(call)
    assert str(info.value) == message


def test_report_usage_outside_a_node_checks_and_counts_nothing():
    ctx = make_context()
    assert contextvars.copy_context().run(lambda: ctx.report_usage(input_tokens=5)) is None
    with pytest.raises(GeckoError, match="input_tokens"):
        contextvars.copy_context().run(lambda: ctx.report_usage(input_tokens=-5))


# --- once and idempotency_key ------------------------------------------------------------------


def test_once_runs_the_function_with_its_arguments_once_per_key_across_attempts():
    store, scope = MemoryRecords(), EffectScope("run-1", "sess", "Pay", 3)
    calls: list[tuple] = []

    def charge(amount: int, *, currency: str) -> dict:
        calls.append((amount, currency))
        return {"charged": amount, "currency": currency}

    first = make_context(effects=Effects(scope, store))
    assert first.once("charge", charge, 40, currency="EUR") == {"charged": 40, "currency": "EUR"}
    retry = make_context(effects=Effects(scope, store))  # a later attempt of the same execution
    assert retry.once("charge", charge, 99, currency="USD") == {"charged": 40, "currency": "EUR"}
    assert retry.once("refund", charge, 5, currency="EUR") == {"charged": 5, "currency": "EUR"}
    assert calls == [(40, "EUR"), (5, "EUR")]


def test_idempotency_key_is_the_executions_and_differs_by_name():
    scope = EffectScope("run-1", "sess", "Pay", 3)
    ctx = make_context(effects=Effects(scope, None, "no store"))
    assert ctx.idempotency_key() == scope.idempotency_key("")
    assert ctx.idempotency_key("invoice") == scope.idempotency_key("invoice")
    assert ctx.idempotency_key("invoice") != ctx.idempotency_key("refund")
    assert ctx.idempotency_key("invoice") != make_context(
        effects=Effects(EffectScope("run-1", "sess", "Pay", 4), None)
    ).idempotency_key("invoice")


@pytest.mark.parametrize("what", ["once", "idempotency_key"])
def test_once_and_idempotency_key_outside_a_worker_say_so(what):
    ctx = make_context(node="Ship")
    with pytest.raises(EffectError) as info:
        if what == "once":
            ctx.once("send", lambda: 1)
        else:
            ctx.idempotency_key("send")
    assert str(info.value) == (
        f'node "Ship": context.{what}() works only while the node runs on a worker (this context was built outside one)'
    )


# --- routers after reducers ----------------------------------------------------------------------


def test_a_router_sees_the_reduced_value_not_the_nodes_contribution():
    base = {"log": '["a"]', "x": "1"}
    ctx = make_context(base, node="Step")
    ctx.state["log"] = "b"
    ctx.state["x"] = 2
    routed = router_context(ctx, base, {"log": "append"})
    assert routed is not None and routed is not ctx
    assert routed.state["log"] == ["a", "b"] and routed.state["x"] == 2
    assert (routed.node, routed.step, routed.session_id) == ("Step", ctx.step, "sess")
    assert ctx.state["log"] == "b"  # the node's own view keeps its contribution
    assert base == {"log": '["a"]', "x": "1"}


def test_the_routed_view_names_the_node_in_its_errors():
    base = {"log": '["a"]'}
    ctx = make_context(base, node="Step")
    ctx.state["log"] = "b"
    routed = router_context(ctx, base, {"log": "append"})
    assert routed is not None
    routed.state["later"] = object()
    with pytest.raises(GeckoError, match="state key 'later' written by node \"Step\""):
        routed.state.delta()


def test_no_routed_context_when_the_node_wrote_no_reduced_key():
    base = {"log": "[]"}
    ctx = make_context(base, node="Step")
    assert router_context(None, base, {"log": "append"}) is None
    ctx.state["other"] = 1
    assert router_context(ctx, base, {"log": "append"}) is None
    assert router_context(ctx, base, {}) is None
    assert router_context(ctx, base, None) is None
    ctx.state["log"] = 1
    assert router_context(ctx, base, {}) is None
    assert router_context(ctx, base, {"log": "append"}) is not None


def test_a_reducer_that_cannot_combine_fails_in_the_router_context():
    base = {"total": '"text"'}
    ctx = make_context(base, node="Step")
    ctx.state["total"] = 3
    with pytest.raises(GeckoError, match="node \"Step\" wrote state key 'total'"):
        router_context(ctx, base, {"total": "add"})


def test_what_a_router_writes_lands_in_the_node_except_reduced_keys():
    base = {"log": '["a"]', "drop": "1", "keep": "2"}
    ctx = make_context(base, node="Step")
    ctx.state["log"] = "b"
    routed = router_context(ctx, base, {"log": "append"})
    assert routed is not None
    routed.state["route"] = "left"
    routed.state["log"] = ["a", "b", "c"]  # the router saw the combined value: not the node's write
    del routed.state["drop"]
    keep_router_writes(ctx, routed, {"log": "append"})
    assert ctx.state["route"] == "left"
    assert ctx.state["log"] == "b"
    assert "drop" not in ctx.state and ctx.state["keep"] == 2
    delta = ctx.state.delta()
    assert json.loads(delta.writes["route"]) == "left" and delta.deletes == ["drop"]


def test_a_router_deleting_a_key_the_node_already_deleted_is_fine():
    base = {"drop": "1"}
    ctx = make_context(base, node="Step")
    ctx.state["n"] = 1
    routed = router_context(ctx, base, {"n": "add"})
    assert routed is not None
    del routed.state["drop"]
    del ctx.state["drop"]
    keep_router_writes(ctx, routed, {"n": "add"})
    assert ctx.state.delta().deletes == ["drop"]


# --- static breakpoints ---------------------------------------------------------------------------


def test_a_breakpoint_before_waits_before_the_node_runs():
    asked, left = breakpoint_before("Review", None)
    assert left is None
    assert asked == {"payload": codec.encode({"breakpoint": "before", "node": "Review"}), "index": 0, "timeout": None,
                     "default": None}  # fmt: skip
    assert json.loads(asked["payload"]) == {"breakpoint": "before", "node": "Review"}
    assert breakpoint_before("Review", []) == (asked, None)


def test_an_answered_breakpoint_passes_the_other_answers_to_the_node():
    assert breakpoint_before("Review", ['"go"']) == (None, [])
    assert breakpoint_before("Review", ['"go"', '"yes"', "3"]) == (None, ['"yes"', "3"])


def test_node_interrupted_is_not_an_exception_a_node_would_swallow():
    raised = NodeInterrupted({"index": 4, "payload": "null"})
    assert not isinstance(raised, Exception) and str(raised) == "node interrupted (interrupt 4)"
    assert raised.fields == {"index": 4, "payload": "null"}
