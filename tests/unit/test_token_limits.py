"""Token limits a user sees: how many calls a minute of tokens lets through, how long the others wait
and in what order, what settling at the real usage changes, and what ``Limit`` accepts."""

from __future__ import annotations

import pytest

from gecko_temporal.core.errors import GraphError
from gecko_temporal.core.flow_limits import Limit
from gecko_temporal.core.flow_tokens import (
    LEARN_FROM,
    MIN_WAIT,
    SETTLE_POLL,
    WAITER_GRACE,
    WINDOW,
    TokenWindow,
    default_estimate,
    limiter_id,
)


def grant(window: TokenWindow, rid: str, now: float, per_minute: int = 300, estimate: int | None = 100) -> dict:
    return window.reserve(rid, f"w-{rid}", per_minute, estimate, now)


def test_the_minute_lets_through_what_fits_and_tells_the_rest_when_room_comes():
    w = TokenWindow()
    assert [grant(w, f"r{i}", 10.0 + i) for i in range(3)] == [{"granted": 100}] * 3
    for rid in ("r0", "r1", "r2"):
        w.settle(rid, 100)
    told = grant(w, "r3", 20.0)
    assert told == {"wait": pytest.approx(10.0 + WINDOW - 20.0)}  # when r0 leaves the window
    assert grant(w, "r3", 69.9) == {"wait": MIN_WAIT}  # 0.1 s: never shorter than MIN_WAIT
    assert grant(w, "r3", 70.0) == {"granted": 100}  # r0's minute is over
    assert w.used(70.0) == 300 and w.used(71.0) == 200 and w.used(72.0) == 100


def test_used_counts_only_the_last_minute():
    w = TokenWindow()
    grant(w, "a", 0.0)
    grant(w, "b", 30.0)
    assert w.used(59.9) == 200
    assert w.used(60.0) == 100  # a reservation made exactly a minute ago has left
    assert w.used(90.0) == 0 and w.held == {}


def test_a_call_larger_than_the_minute_goes_alone_when_the_window_is_empty():
    w = TokenWindow()
    assert grant(w, "big", 0.0, estimate=1000) == {"granted": 1000}
    assert grant(w, "next", 1.0, estimate=1) == {"wait": pytest.approx(SETTLE_POLL)}
    w.settle("big", 1000)
    assert grant(w, "next", 2.0, estimate=1) == {"wait": pytest.approx(58.0)}


def test_settling_below_the_estimate_makes_room_and_waits_are_short_while_calls_are_unsettled():
    w = TokenWindow()
    for i in range(3):
        grant(w, f"r{i}", 0.0)
    assert grant(w, "r3", 1.0) == {"wait": SETTLE_POLL}  # unsettled: one may come in lower
    w.settle("r0", 0)  # e.g. a failed call that spent nothing
    assert w.used(2.0) == 200
    assert grant(w, "r3", 2.0) == {"granted": 100}
    w.settle("r0", 999)  # settled once: a repeated settle changes nothing
    assert w.used(2.0) == 300 and w.held["r0"][1] == 0


def test_settling_above_the_estimate_holds_the_real_usage():
    w = TokenWindow()
    grant(w, "r0", 0.0)
    w.settle("r0", 290)
    assert w.used(1.0) == 290
    assert grant(w, "r1", 1.0) == {"wait": pytest.approx(59.0)}  # nothing unsettled: wait for the minute


def test_a_settle_for_a_reservation_that_left_the_window_is_ignored():
    w = TokenWindow()
    w.settle("never", 50)
    grant(w, "r0", 0.0)
    w.used(61.0)
    w.settle("r0", 50)
    assert w.held == {} and w.recent == []


def test_the_same_attempt_asking_again_gets_the_same_grant_without_a_second_reservation():
    w = TokenWindow()
    grant(w, "r0", 0.0, estimate=200)
    assert grant(w, "r0", 1.0, estimate=200) == {"granted": 200}
    assert w.used(1.0) == 200 and list(w.held) == ["r0"]


def test_waiters_keep_their_place_an_older_waiters_estimate_stays_free_for_it():
    w = TokenWindow()
    grant(w, "r0", 0.0, estimate=250)
    w.settle("r0", 250)
    assert "wait" in w.reserve("big", "first", 300, 200, 1.0)  # waits for r0's minute
    assert "wait" in w.reserve("small", "second", 300, 40, 2.0)  # 250 + 40 fits, but "first" is ahead
    assert set(w.waiting) == {"first", "second"}
    assert w.reserve("big", "first", 300, 200, 60.0) == {"granted": 200}  # its turn: granted, line left
    assert set(w.waiting) == {"second"}
    assert w.reserve("small", "second", 300, 40, 60.5) == {"granted": 40}


def test_a_waiter_that_never_comes_back_gives_up_its_place():
    w = TokenWindow()
    grant(w, "r0", 0.0, estimate=300)
    w.settle("r0", 300)
    told = w.reserve("gone", "gone", 300, 200, 1.0)
    due = 1.0 + told["wait"]
    assert w.waiting["gone"][2] == pytest.approx(due)
    w.used(due + WAITER_GRACE)
    assert "gone" in w.waiting
    w.used(due + WAITER_GRACE + 0.1)
    assert "gone" not in w.waiting


def test_the_estimate_is_the_declared_one_else_the_mean_of_recent_calls_else_a_tenth():
    w = TokenWindow()
    assert w.estimate(1000, None) == 100 == default_estimate(1000)
    assert default_estimate(5) == 1 and default_estimate(19) == 1 and default_estimate(20) == 2
    assert w.estimate(1000, 7) == 7
    for i, tokens in enumerate((10, 20, 31)):
        grant(w, f"r{i}", 0.0, per_minute=10_000)
        w.settle(f"r{i}", tokens)
    assert w.recent == [10, 20, 31] and w.estimate(1000, None) == 20
    w.settle("r9", 5)
    for i in range(LEARN_FROM + 5):
        grant(w, f"s{i}", 1.0, per_minute=10_000)
        w.settle(f"s{i}", 0 if i == 0 else 1)
    assert len(w.recent) == LEARN_FROM and w.estimate(1000, None) == 1  # zero-token calls do not teach


def test_the_window_travels_as_plain_data_and_a_malformed_one_starts_empty():
    w = TokenWindow()
    grant(w, "r0", 5.0)
    w.settle("r0", 40)
    grant(w, "r1", 6.0)
    w.reserve("r2", "line", 300, 200, 7.0)
    back = TokenWindow.from_plain(w.to_plain())
    assert (
        back == w
        and back.used(8.0) == 140
        and back.shown(300, 8.0)
        == {
            "tokens_per_minute": 300,
            "tokens_used": 140,
            "reservations": 1,
            "waiting": 1,
        }
    )
    assert TokenWindow.from_plain(None) == TokenWindow() == TokenWindow.from_plain({"held": {}, "recent": "x"})
    bad = TokenWindow.from_plain(
        {
            "held": {"a": [1, 2], "b": ["x", 1, False], "c": [1.0, 5, "no"], "d": [2.0, 7, True]},
            "waiting": {"w": [1, 2], "v": [1.0, 2.0, 3.0], "u": [1.0, 2.0, "soon"], "t": [1.0, 2.0, None]},
            "recent": [3, -1, True, "x", 4.0],
        }
    )
    assert bad.held == {"d": [2.0, 7, True]} and bad.waiting == {"v": [1.0, 2.0, 3.0]} and bad.recent == [3, 4]


def test_one_limiter_per_limit_queue():
    assert limiter_id("q.limit.openai") == "gecko-tokens:q.limit.openai"


# --- Limit(tokens_per_minute=..., estimate_tokens=..., per_tenant=...) -------------------------------


def test_a_limit_takes_tokens_per_minute_with_an_optional_estimate():
    limit = Limit("llm", tokens_per_minute=90_000, estimate_tokens=2_000)
    assert (limit.tokens_per_minute, limit.estimate_tokens) == (90_000, 2_000)
    assert Limit("llm", tokens_per_minute=1).estimate_tokens is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tokens_per_minute": 0}, "tokens_per_minute must be an int >= 1, got 0"),
        ({"tokens_per_minute": 1.5}, "tokens_per_minute must be an int >= 1, got 1.5"),
        ({"tokens_per_minute": True}, "tokens_per_minute must be an int >= 1, got True"),
        ({"tokens_per_minute": 9, "estimate_tokens": 0}, "estimate_tokens must be an int >= 1, got 0"),
        ({"estimate_tokens": 10}, "estimate_tokens needs tokens_per_minute; add tokens_per_minute=N"),
        ({"per_tenant": 0}, "per_tenant= takes starts per second for each tenant (e.g. 1.5)"),
        ({"per_tenant": "2"}, "got '2'"),
        ({"per_tenant": {"acme": 2}}, 'per_tenant needs a "*" entry, the cap of every other tenant'),
        ({"per_tenant": {"*": 1, "acme": -2}}, "per_tenant['acme'] must be a number > 0, got -2"),
        ({"per_tenant": {"*": 1, "": 2}}, "per_tenant key '': tenant must be a non-empty str"),
        ({"per_tenant": {"*": float("inf")}}, "per_tenant['*'] must be a number > 0, got inf"),
    ],
)
def test_bad_token_and_tenant_options_say_what_is_wrong(kwargs, message):
    with pytest.raises(GraphError) as err:
        Limit("llm", **kwargs)
    assert message in str(err.value) and "'llm'" in str(err.value)


def test_per_tenant_caps_become_the_servers_default_rate_and_weights():
    assert Limit("a").tenant_caps() == (None, {})
    assert Limit("a", per_tenant=1.5).tenant_caps() == (1.5, {})
    assert Limit("a", per_tenant={"*": 2, "acme": 4, "tiny": 1}).tenant_caps() == (2, {"acme": 2.0, "tiny": 0.5})


def test_limits_with_per_tenant_dicts_hash_and_compare():
    one = Limit("a", per_tenant={"*": 2, "acme": 4})
    assert one == Limit("a", per_tenant={"*": 2, "acme": 4}) and one != Limit("a", per_tenant={"*": 2})
    assert hash(one) == hash(Limit("a", per_tenant={"*": 2}))


# --- per-member limits -------------------------------------------------------------------------------


def _answer(x: str) -> str:
    return x


def test_team_members_and_agents_take_their_own_limit():
    from pydantic_ai import Agent
    from pydantic_ai.models.test import TestModel

    from gecko_temporal import Team, Workflow, step

    writer = Agent(TestModel(), name="writer")

    @step(limit="anthropic")
    def critic(x: str) -> str:
        return x

    wf = Workflow("PerMember", limits=[Limit("openai"), Limit("anthropic"), Limit("local")])
    team = Team([writer, critic, _answer], member_limits={"writer": "openai"})
    wf.add_node("Panel", team, limit="local").add_node("Solo", writer, limit="openai")
    wf.add_edge("Panel", "Solo").set_entry_point("Panel")
    spec = wf.compile()
    members = {m.name: m.limit for m in spec.node("Panel").team.members}
    # its own limit, else (None) the Team node's
    assert members == {"writer": "openai", "critic": "anthropic", "_answer": None}
    assert spec.node("Panel").limit == "local" and spec.node("Solo").limit == "openai"
    assert type(spec).from_plain(spec.to_plain()).node("Panel").team.members[0].limit == "openai"


def test_a_member_limit_must_be_declared_and_name_a_member():
    from gecko_temporal import Team, Workflow

    wf = Workflow("PerMemberBad", limits=[Limit("openai")])
    wf.add_node("Panel", Team([_answer], member_limits={"_answer": "gemini"})).set_entry_point("Panel")
    with pytest.raises(
        GraphError, match=r"node \"Panel\" member \"_answer\" has limit='gemini', but .*declared: openai"
    ):
        wf.compile()
    with pytest.raises(GraphError, match=r"member_limits names no member \['writer'\] \(members: _answer\)"):
        Team([_answer], member_limits={"writer": "openai"})


# --- what a subgraph's child run carries, and the UI's usage line ----------------------------------


def _ledger(budget=None, tenant=None, tokens=(0, 0), cost=0.0, calls=1, unpriced=0):
    from gecko_temporal.core.usage import UsageLedger

    ledger = UsageLedger({"budget": budget, "tenant": tenant})
    ledger.add(
        "n",
        {"input_tokens": tokens[0], "output_tokens": tokens[1], "cost_usd": cost, "calls": calls, "unpriced": unpriced},
    )
    return ledger


def test_a_child_run_gets_the_tenant_and_what_is_left_of_the_budget_and_is_asked_to_report():
    ledger = _ledger({"tokens": 2_000, "cost_usd": 1.0, "on_exceeded": "wait"}, "acme", (600, 400), 0.25)
    assert ledger.child_flow() == {
        "report": True,
        "tenant": "acme",
        "budget": {"tokens": 1_000, "cost_usd": 0.75, "on_exceeded": "wait"},
    }
    over = _ledger({"tokens": 500, "cost_usd": None}, None, (600, 400), 0.3333333333)
    assert over.child_flow() == {"report": True, "budget": {"tokens": 0, "cost_usd": None}}  # used up: 0 left
    assert _ledger(None, None, calls=0).child_flow() == {"report": True}
    assert _ledger({"cost_usd": 0.5}, None, cost=0.1234567891).child_flow()["budget"] == {"cost_usd": 0.376543}


def test_a_child_run_carries_the_ask_to_report_across_continue_as_new():
    from gecko_temporal.core.usage import UsageLedger

    child = UsageLedger({"report": True, "tenant": "acme"})
    assert child.report and UsageLedger(child.to_plain()).report
    assert child.to_plain() == {"tenant": "acme", "report": True}
    assert not UsageLedger({"report": "yes"}).report and UsageLedger().to_plain() is None


def test_the_usage_line_the_ui_shows():
    assert _ledger(calls=0).details_line() is None
    assert (
        _ledger(tokens=(2_400, 1_600), cost=0.04).details_line() == "Usage: 4,000 tokens (2,400 in, 1,600 out), $0.0400"
    )
    assert (
        _ledger(tokens=(10, 5), unpriced=1).details_line()
        == "Usage: 15 tokens (10 in, 5 out), $0.0000 (1 unpriced call)"
    )
    assert _ledger(tokens=(10, 5), unpriced=2, budget={"tokens": 20_000, "cost_usd": 2.5}).details_line() == (
        "Usage: 15 tokens (10 in, 5 out), $0.0000 (2 unpriced calls); budget 20,000 tokens, $2.5"
    )
    assert _ledger(budget={"cost_usd": 3}).details_line().endswith("; budget $3")
    assert _ledger(budget={"tokens": None, "cost_usd": None}).details_line() == "Usage: 0 tokens (0 in, 0 out), $0.0000"
