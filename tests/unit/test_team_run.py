"""Team decisions without a server: which members start, ties, quorum, all failed, the output."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gecko_temporal import MemberResult, Next
from gecko_temporal.core.codec import decode
from gecko_temporal.core.spec import Jump, MemberSpec, NodeOutput, RetrySpec, TeamSpec
from gecko_temporal.core.state import StateDelta, combine, merge_layer
from gecko_temporal.core.team_run import MemberDone, TeamFailed, TeamRun


def _team(strategy: str, n: int = 3, quorum: int = 1, max_concurrency=None) -> TeamSpec:
    members = [
        MemberSpec(
            name=f"m{i}",
            activity_type=f"P.T.m{i}",
            start_to_close_timeout=10.0,
            heartbeat_timeout=1.5,
            retry=RetrySpec(),
        )
        for i in range(n)
    ]
    return TeamSpec(strategy=strategy, members=members, quorum=quorum, max_concurrency=max_concurrency)


def ok(value: str = '"x"', **kw) -> MemberDone:
    return MemberDone(output=NodeOutput(value=value, **kw))


def failed(message: str = "boom") -> MemberDone:
    return MemberDone(error=("ValueError", message))


def results(run: TeamRun) -> list[MemberResult]:
    return decode(run.output().value)


def test_all_starts_every_member_and_records_failures_without_failing():
    run = TeamRun(_team("all"))
    assert run.start(now=10.0) == [0, 1, 2]
    assert run.finished({1: failed()}, now=11.0) == []
    assert run.start(now=11.0) == []
    assert run.finished({0: ok('"a"'), 2: ok('"c"')}, now=12.5) == []
    out = results(run)
    assert [r.status for r in out] == ["succeeded", "failed", "succeeded"]
    assert [r.result for r in out] == ["a", None, "c"]
    assert out[1].error.type == "ValueError" and out[1].error.message == "boom"
    assert [r.duration for r in out] == [2.5, 1.0, 2.5]
    assert not any(r.winner for r in out)


def test_max_concurrency_starts_the_next_member_when_one_finishes():
    run = TeamRun(_team("all", n=3, max_concurrency=2))
    assert run.start(now=0.0) == [0, 1]
    run.finished({1: ok()}, now=1.0)
    assert run.start(now=1.0) == [2]
    assert run.running == [0, 2]


def test_race_tie_goes_to_the_lower_index_and_the_rest_are_cancelled():
    run = TeamRun(_team("race"))
    assert run.start(now=0.0) == [0, 1, 2]
    losers = run.finished({2: ok('"c"'), 1: ok('"b"')}, now=1.0)  # 1 and 2 finish in the same instant
    assert losers == [0] and run.decided and run.winners == [1]
    assert run.start(now=1.0) == []
    out = results(run)
    assert [r.status for r in out] == ["cancelled", "succeeded", "cancelled"]
    assert out[1].winner and out[1].result == "b"
    assert out[0].error.message == "lost to m1" and out[2].error.message == "lost to m1"


def test_race_members_never_started_are_cancelled_as_such():
    run = TeamRun(_team("race", n=3, max_concurrency=1))
    assert run.start(now=0.0) == [0]
    assert run.finished({0: ok()}, now=0.5) == []
    out = results(run)
    assert [r.status for r in out] == ["succeeded", "cancelled", "cancelled"]
    assert out[1].error.message == "not started: the race was decided" and out[1].duration == 0.0


def test_race_failure_starts_no_one_new_but_waits_for_the_others():
    run = TeamRun(_team("race"))
    run.start(now=0.0)
    assert run.finished({0: failed()}, now=1.0) == []
    assert not run.decided and run.running == [1, 2]
    assert run.finished({2: ok('"c"')}, now=2.0) == [1]
    assert [r.status for r in results(run)] == ["failed", "cancelled", "succeeded"]


def test_quorum_needs_n_successes():
    run = TeamRun(_team("quorum", n=4, quorum=2))
    run.start(now=0.0)
    assert run.finished({3: ok('"d"')}, now=1.0) == []
    assert run.finished({0: ok('"a"')}, now=2.0) == [1, 2]
    assert run.winners == [3, 0]
    out = results(run)
    assert [r.winner for r in out] == [True, False, False, True]
    assert out[1].error.message == "lost to m3"  # the first to win, not the lowest index


def test_race_with_every_member_failed_fails_listing_each_failure():
    run = TeamRun(_team("race", n=2))
    run.start(now=0.0)
    run.finished({0: failed("no key"), 1: failed("rate limited")}, now=1.0)
    assert run.running == [] and run.start(now=1.0) == []
    with pytest.raises(TeamFailed) as info:
        run.output()
    assert str(info.value) == (
        'Team has no winner: member "m0" failed: ValueError: no key; member "m1" failed: ValueError: rate limited'
    )
    assert [f["member"] for f in info.value.failures] == ["m0", "m1"]


def test_quorum_short_of_successes_says_how_many_it_got():
    run = TeamRun(_team("quorum", n=3, quorum=2))
    run.start(now=0.0)
    run.finished({0: ok(), 1: failed(), 2: failed("late")}, now=1.0)
    with pytest.raises(TeamFailed, match=r"^Team has no 2 successes, got 1: member \"m1\" failed"):
        run.output()


def test_output_keeps_the_wire_format_of_member_results():
    run = TeamRun(_team("race", n=1))
    run.start(now=1.0)
    run.finished({0: ok('{"k":1}')}, now=1.25)
    assert run.output().value == (
        '[{"__gecko__":"gecko_temporal.team:MemberResult","data":{"member":"m0","index":0,'
        '"status":"succeeded","error":null,"duration":0.25,"winner":true,"result":{"k":1}}}]'
    )


def test_the_first_jump_and_the_merged_writes_of_the_successes_in_member_order():
    run = TeamRun(_team("all"))
    run.start(now=0.0)
    run.finished(
        {
            2: ok(jump=Jump("C", "null", "m2"), writes={"k": '"from 2"'}),
            0: ok(writes={"k": '"from 0"', "gone": "1"}),
            1: ok(jump=Jump("B", "null", "m1"), deletes=["gone", "old"]),
        },
        now=1.0,
    )
    out = run.output()
    assert out.jump.node == "B"
    assert out.writes == {"k": '"from 2"'} and out.deletes == ["gone", "old"]


def test_a_failed_members_writes_are_dropped():
    run = TeamRun(_team("all", n=2))
    run.start(now=0.0)
    run.finished({0: failed(), 1: ok(writes={"a": "1"})}, now=1.0)
    assert run.output().writes == {"a": "1"}


keys = st.sampled_from(["a", "b", "c", "d"])
deltas = st.builds(
    lambda w, d: StateDelta({k: v for k, v in w.items() if k not in d}, sorted(d)),
    st.dictionaries(keys, st.sampled_from(["1", "2", '"x"'])),
    st.sets(keys),
)


@given(st.dictionaries(keys, st.just("0")), st.lists(deltas, max_size=5))
def test_combined_member_deltas_merge_like_the_deltas_one_by_one(start, member_deltas):
    one_by_one, combined = dict(start), dict(start)
    for delta in member_deltas:
        merge_layer(one_by_one, [("Team", delta)])
    merge_layer(combined, [("Team", combine(member_deltas))])
    assert combined == one_by_one


def test_next_from_members_is_a_jump_in_the_output_not_a_result_change():
    # A member returning Next keeps its result text (the Next itself) in its MemberResult.
    run = TeamRun(_team("race", n=1))
    run.start(now=0.0)
    text = '{"__gecko__":"gecko_temporal.spec:Next","data":{"node":"B","input":null}}'
    run.finished({0: ok(text, jump=Jump("B", "null", "m0"))}, now=0.0)
    assert results(run)[0].result == Next("B")


# -- exact records of cancelled members, durations, and the deltas a reduced key combines ----------
def test_losers_and_members_never_started_are_recorded_as_cancelled_errors():
    run = TeamRun(_team("race", n=4, max_concurrency=2))
    assert run.start(now=10.0) == [0, 1]
    assert run.finished({1: ok('"b"')}, now=12.0) == [0]
    out = results(run)
    assert [(r.status, r.duration, r.winner) for r in out] == [
        ("cancelled", 2.0, False),
        ("succeeded", 2.0, True),
        ("cancelled", 0.0, False),
        ("cancelled", 0.0, False),
    ]
    assert [(r.error.type, r.error.message) for r in (out[0], out[2], out[3])] == [
        ("CancelledError", "lost to m1"),
        ("CancelledError", "not started: the race was decided"),
        ("CancelledError", "not started: the race was decided"),
    ]


def test_a_member_finishing_with_the_winner_is_cancelled_with_its_duration():
    run = TeamRun(_team("race", n=2))
    run.start(now=1.0)
    run.finished({0: ok(), 1: ok()}, now=4.5)
    out = results(run)
    assert (out[1].status, out[1].duration, out[1].error.type, out[1].error.message) == (
        "cancelled",
        3.5,
        "CancelledError",
        "lost to m0",
    )


def test_durations_are_rounded_to_the_microsecond():
    run = TeamRun(_team("all", n=1))
    run.start(now=1.0)
    run.finished({0: ok()}, now=1.25000049)
    assert results(run)[0].duration == 0.25


def test_member_deltas_are_the_successes_writes_and_deletes_in_member_order():
    run = TeamRun(_team("all", n=3))
    run.start(now=0.0)
    run.finished({2: ok(writes={"k": "3"}, deletes=["x"]), 1: failed(), 0: ok(writes={"k": "1", "j": "0"})}, now=1.0)
    assert run.member_deltas() == [StateDelta({"k": "1", "j": "0"}, []), StateDelta({"k": "3"}, ["x"])]


def test_the_teams_usage_is_every_returned_members_winner_or_not():
    run = TeamRun(_team("race"))
    run.start(now=0.0)
    spent = {"input_tokens": 10, "output_tokens": 5, "cost_usd": 0.5, "calls": 1}
    run.finished({2: ok('"c"', usage=spent), 1: ok('"b"', usage={**spent, "input_tokens": 20}), 0: failed()}, now=1.0)
    assert run.output().usage == {"input_tokens": 30, "output_tokens": 10, "tokens": 40, "cost_usd": 1.0, "calls": 2}
    quiet = TeamRun(_team("all", n=1))
    quiet.start(now=0.0)
    quiet.finished({0: ok()}, now=1.0)
    assert quiet.output().usage is None  # nothing reported: no usage entry at all
