"""Team construction and compilation: no server needed."""

from __future__ import annotations

import pytest

from gecko_temporal import ExecutionStrategy, GraphError, MemberResult, RetryPolicy, Team, Workflow, step
from gecko_temporal.core.build.team import RACE_HEARTBEAT, member_name


async def _agent_run(x):
    return x


class Agent:
    name = "claude"

    def run(self, prompt):
        return prompt


class Nameless:
    async def run(self, prompt):
        return prompt


def plain(x):
    return x


def test_member_names_come_from_name_attribute_step_name_or_function():
    assert member_name(Agent()) == "claude"
    assert member_name(Nameless()) == "Nameless"
    assert member_name(plain) == "plain"
    assert member_name(step(name="critic")(lambda x: x)) == "critic"


def test_duplicate_member_names_are_made_unique():
    team = Team([plain, plain, Agent()])
    assert team.names == ["plain", "plain#2", "claude"]


def test_team_validation_lists_every_problem():
    with pytest.raises(GraphError) as caught:
        Team([], strategy="fastest", max_concurrency=0, input_mapper="nope")
    problems = " | ".join(caught.value.problems)
    assert "strategy must be one of ['all', 'race', 'quorum']" in problems
    assert "at least one member" in problems
    assert "max_concurrency must be an int >= 1" in problems
    assert "input_mapper must be callable" in problems


def test_quorum_is_checked_against_the_members():
    with pytest.raises(GraphError, match="quorum must be an int between 1 and the member count 2"):
        Team([plain, Agent()], strategy=ExecutionStrategy.QUORUM, quorum=3)
    with pytest.raises(GraphError, match="quorum is only used with ExecutionStrategy.QUORUM"):
        Team([plain, Agent()], strategy=ExecutionStrategy.RACE, quorum=1)


def test_a_member_that_cannot_be_called_is_rejected_naming_it():
    with pytest.raises(GraphError, match='Team member 1 "int"'):
        Team([plain, 42])
    with pytest.raises(GraphError, match="2 required positional parameters"):
        Team([lambda a, b: a])


def test_compiled_team_spec_carries_members_policies_and_activity_types():
    @step(retry=RetryPolicy(maximum_attempts=5), timeout=7)
    def careful(x):
        return x

    wf = Workflow("teams")
    wf.add_node(
        "Cluster", Team([careful, Agent(), Nameless()], strategy="race", timeout=30, retries=2, max_concurrency=2)
    )
    wf.set_entry_point("Cluster")
    node = wf.compile().node("Cluster")
    team = node.team
    assert node.kind == "team" and team.strategy == "race" and team.max_concurrency == 2
    assert [m.name for m in team.members] == ["careful", "claude", "Nameless"]
    assert [m.activity_type for m in team.members] == [
        "teams.Cluster.careful",
        "teams.Cluster.claude",
        "teams.Cluster.Nameless",
    ]
    # A member's own @step policy wins over the Team's defaults.
    assert (team.members[0].start_to_close_timeout, team.members[0].retry.maximum_attempts) == (7, 5)
    assert (team.members[1].start_to_close_timeout, team.members[1].retry.maximum_attempts) == (30, 2)
    # RACE members heartbeat often, so a loser hears of its cancellation quickly.
    assert {m.heartbeat_timeout for m in team.members} == {RACE_HEARTBEAT}


def test_member_result_is_a_model_with_is_success():
    ok = MemberResult(member="a", index=0, status="succeeded", result=1)
    bad = MemberResult(member="b", index=1, status="failed", error={"type": "ValueError", "message": "x"})
    assert ok.is_success and not bad.is_success
    assert bad.error.type == "ValueError"
    with pytest.raises(ValueError):
        MemberResult(member="c", index=2, status="exploded")
