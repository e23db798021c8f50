"""Flow control a user sees: RetryAfter and the 429 errors that mean it (how long a node waits), and
named limits and tenants (what is accepted, and the message when it is not)."""

from __future__ import annotations

import email.utils

import pytest

import gecko_temporal as gk
from gecko_temporal.core.errors import GraphError
from gecko_temporal.core.flow import (
    MAX_DELAY,
    RetryAfter,
    delay_of,
    parse_retry_after,
    rate_limited_details,
    retry_after_of,
)
from gecko_temporal.core.flow_limits import (
    Limit,
    check_limits,
    check_tenant,
    limit_problem,
    parse_weights,
    run_flow,
)

# --- RetryAfter ----------------------------------------------------------------------------------


def test_retry_after_says_how_long_and_why():
    plain = RetryAfter(2.5)
    assert str(plain) == "rate limited: retry after 2.5 s" and plain.reason == "" and plain.seconds == 2.5
    told = RetryAfter(3, "429 from openai")
    assert str(told) == "rate limited: retry after 3 s (429 from openai)" and told.reason == "429 from openai"
    assert RetryAfter(0).seconds == 0.0 and RetryAfter(0.5).seconds == 0.5


def test_retry_after_refuses_what_is_no_delay():
    with pytest.raises(TypeError) as info:
        RetryAfter(float("inf"))
    assert str(info.value) == "RetryAfter(seconds) takes a finite number of seconds, got inf"
    with pytest.raises(ValueError) as info:
        RetryAfter(-1)
    assert str(info.value) == "RetryAfter(seconds) takes seconds >= 0, got -1"


# --- Retry-After headers ---------------------------------------------------------------------------


def test_retry_after_in_seconds_including_zero_and_fractions():
    assert parse_retry_after({"retry-after": "0"}) == 0.0
    assert parse_retry_after({"retry-after": " 0.5 "}) == 0.5
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({"retry-after": "-1"}) is None
    assert parse_retry_after({"retry-after": "inf"}) is None


def test_retry_after_ms_wins_and_a_bad_one_falls_back_to_retry_after():
    assert parse_retry_after({"retry-after-ms": "0", "retry-after": "9"}) == 0.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after-ms": "inf", "retry-after": "9"}) == 9.0
    assert parse_retry_after({"retry-after-ms": "-5", "retry-after": "9"}) == 9.0
    assert parse_retry_after({"retry-after-ms": "soon", "retry-after": "9"}) == 9.0


def test_retry_after_as_an_http_date_counts_from_now():
    when = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT").timestamp()
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=when - 30) == 30.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=when + 30) == 0.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # long past
    # a date without a zone says no instant: no delay rather than a guess
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 -0000"}, now=when - 30) is None
    assert parse_retry_after({"retry-after": "next tuesday"}) is None


def test_headers_that_cannot_be_read_give_no_delay():
    assert parse_retry_after(None) is None
    assert parse_retry_after(object()) is None  # no .get
    assert parse_retry_after({"retry-after": 5}) is None  # not text

    class Broken:
        def get(self, name):
            raise RuntimeError("closed")

    assert parse_retry_after(Broken()) is None


# --- 429 errors along the cause chain --------------------------------------------------------------


class Response:
    def __init__(self, status_code=None, headers=None) -> None:
        if status_code is not None:
            self.status_code = status_code
        if headers is not None:
            self.headers = headers


class ProviderError(Exception):
    def __init__(self, status_code=None, headers=None, response=None) -> None:
        super().__init__("provider error")
        if status_code is not None:
            self.status_code = status_code
        if headers is not None:
            self.headers = headers
        if response is not None:
            self.response = response


def test_a_429_carried_on_the_exception_itself():
    assert retry_after_of(ProviderError(429, {"retry-after": "4"})) == 4.0
    assert retry_after_of(ProviderError(500, {"retry-after": "4"})) is None
    assert retry_after_of(ProviderError("429", {"retry-after": "4"})) is None


def test_a_429_carried_on_its_response_fills_in_from_the_exception():
    assert retry_after_of(ProviderError(response=Response(429, {"retry-after": "2"}))) == 2.0
    # the response has the status, the exception the headers (and the other way round)
    assert retry_after_of(ProviderError(headers={"retry-after": "3"}, response=Response(429))) == 3.0
    assert retry_after_of(ProviderError(429, response=Response(headers={"retry-after": "5"}))) == 5.0
    assert retry_after_of(ProviderError(429, {"retry-after": "1"}, Response(503, {"retry-after": "1"}))) is None


def test_a_rate_limit_wrapped_by_a_library_is_found_by_its_cause():
    wrapper = RuntimeError("agent failed")
    wrapper.__cause__ = ProviderError(429, {"retry-after": "6"})
    assert wrapper.__context__ is None
    assert retry_after_of(wrapper) == 6.0
    assert retry_after_of(RuntimeError("x")) is None


def test_a_cycle_of_causes_ends_the_search():
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__cause__, b.__cause__ = b, a
    assert retry_after_of(a) is None


def test_a_long_delay_is_cut():
    assert retry_after_of(RetryAfter(MAX_DELAY * 2)) == MAX_DELAY
    assert retry_after_of(ProviderError(429, {"retry-after": str(MAX_DELAY * 3)})) == MAX_DELAY


def test_the_failure_details_carry_the_delay_to_the_workflow():
    details = rate_limited_details(2.0, 3)
    assert details == {"retry_after": 2.0, "attempt": 3}
    assert delay_of(details) == 2.0
    assert delay_of(rate_limited_details(0, 1)) == 0.0
    assert delay_of(rate_limited_details(0.5, 1)) == 0.5
    assert delay_of({"retry_after": -1}) is None and delay_of({"retry_after": True}) is None
    assert delay_of({"retry_after": MAX_DELAY + 1}) == MAX_DELAY and delay_of("2") is None


# --- named limits --------------------------------------------------------------------------------


def test_a_limit_takes_fractions_per_second_and_one_at_a_time():
    limit = Limit("openai", per_second=0.5, concurrency=1)
    assert (limit.per_second, limit.concurrency) == (0.5, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"per_second": float("nan")}, "Limit 'openai': per_second must be a number > 0, got nan"),
        ({"per_second": True}, "Limit 'openai': per_second must be a number > 0, got True"),
        ({"concurrency": 0}, "Limit 'openai': concurrency must be an int >= 1, got 0"),
        ({"concurrency": True}, "Limit 'openai': concurrency must be an int >= 1, got True"),
        ({"concurrency": 2.5}, "Limit 'openai': concurrency must be an int >= 1, got 2.5"),
        (
            {"per_second": 0, "concurrency": -1},
            "Limit 'openai': per_second must be a number > 0, got 0; "
            "Limit 'openai': concurrency must be an int >= 1, got -1",
        ),
    ],
)
def test_a_bad_limit_names_every_problem(kwargs, message):
    with pytest.raises(GraphError) as info:
        Limit("openai", **kwargs)
    assert str(info.value) == message


def test_limits_by_name():
    one = Limit("openai")
    assert check_limits(one) == {"openai": one}
    with pytest.raises(GraphError) as info:
        check_limits([one, "anthropic"])
    assert str(info.value) == "limits= takes Limit(\"name\", per_second=..., concurrency=...) objects, got 'anthropic'"


def test_a_node_naming_an_undeclared_limit_is_told_what_is_declared():
    declared = check_limits([Limit("openai"), Limit("anthropic")])
    assert limit_problem("Ask", "openai", declared) is None
    assert limit_problem("Ask", None, {}) is None
    assert limit_problem("Ask", "gemini", declared) == (
        "node \"Ask\" has limit='gemini', but the workflow declares no such limit (declared: anthropic, openai); "
        'add Limit("gemini", per_second=...) to Workflow(limits=[...])'
    )
    assert limit_problem("Ask", "gemini", {}) == (
        "node \"Ask\" has limit='gemini', but the workflow declares no such limit (declared: none); "
        'add Limit("gemini", per_second=...) to Workflow(limits=[...])'
    )
    assert limit_problem("Ask", 5, {"5": Limit("x5")}).startswith('node "Ask" has limit=5, but')


def answer(state):
    return {"ok": True}


def test_function_and_team_nodes_take_a_limit_other_nodes_are_refused():
    wf = gk.Workflow("LimitedFn", limits=[Limit("openai")])
    wf.add_node("Ask", answer, limit="openai")
    wf.set_entry_point("Ask")
    assert wf.compile() is not None
    wait = gk.Workflow("LimitedWait", limits=[Limit("openai")])
    wait.add_node("Ok", gk.WaitForInput("ok?"), limit="openai")
    wait.set_entry_point("Ok")
    with pytest.raises(GraphError, match='node "Ok" is a wait node: only function and Team nodes take limit='):
        wait.compile()
    undeclared = gk.Workflow("Undeclared", limits=[Limit("openai")])
    undeclared.add_node("Ask", answer, limit="gemini")
    undeclared.set_entry_point("Ask")
    with pytest.raises(GraphError, match=r"node \"Ask\" has limit='gemini', but .*declared: openai"):
        undeclared.compile()


# --- tenants ---------------------------------------------------------------------------------------


def test_a_tenant_may_use_all_64_bytes_of_a_fairness_key():
    assert check_tenant("t" * 64) is None
    assert check_tenant("t" * 65) == (
        f"tenant must be a non-empty str of at most 64 bytes (a Temporal fairness key), got {'t' * 65!r}"
    )
    assert run_flow(gk.Workflow("T"), None, "t" * 64) == {"tenant": "t" * 64}


def test_weights_split_at_the_first_equals_sign():
    assert parse_weights(["acme=2", "globex=0.5"]) == {"acme": 2.0, "globex": 0.5}
    with pytest.raises(GraphError) as info:
        parse_weights(["acme=2=3"])
    assert str(info.value) == "weights are tenant=weight with a weight > 0 (e.g. acme=2), got 'acme=2=3'"
