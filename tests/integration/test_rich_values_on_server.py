"""Rich values (datetime, UUID, Decimal, bytes, Enum, sets, nested dataclasses) arrive downstream
as the same type through node outputs, state, Team results, the run's input and its result."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from decimal import Decimal

import pytest

from gecko_temporal import ExecutionStrategy, MemberResult, Team, Workflow

pytestmark = pytest.mark.asyncio


class Verdict(enum.Enum):
    PASS = "pass"
    FAIL = "fail"


@dataclasses.dataclass
class Finding:
    at: dt.datetime
    verdict: Verdict


@dataclasses.dataclass
class Review:
    id: uuid.UUID
    findings: list[Finding]
    cost: Decimal


RICH = {
    "at": dt.datetime(2026, 11, 24, 23, 0, tzinfo=dt.timezone.utc),
    "day": dt.date(2026, 11, 24),
    "time": dt.time(1, 2, 3),
    "took": dt.timedelta(seconds=1.5),
    "id": uuid.UUID(int=7),
    "price": Decimal("0.10"),
    "blob": b"\x00\x01",
    "tags": {"a", "b"},
    "frozen": frozenset({1}),
    "verdict": Verdict.FAIL,
}


def _review() -> Review:
    return Review(uuid.UUID(int=1), [Finding(RICH["at"], Verdict.PASS)], Decimal("1.25"))


def produce(data: dict, context) -> Review:
    assert data == RICH  # the run's input arrived as the same types
    context.state["rich"] = RICH
    context.state["review"] = _review()
    return _review()


def consume(review, context) -> dict:
    history = context.history["produce"]
    assert isinstance(review, Review) and history == _review() and isinstance(history.findings[0], Finding)
    assert context.state["rich"] == RICH and context.state["review"] == _review()
    return {"review": review, "rich": context.state["rich"]}


def member_a(data: dict) -> dict:
    return {"when": data["rich"]["at"], "verdict": Verdict.PASS, "review": data["review"]}


def member_b(data: dict) -> set:
    return {data["rich"]["id"]}


def check_team(results: list) -> dict:
    assert all(isinstance(r, MemberResult) and r.is_success for r in results), results
    return {"a": results[0].result, "b": results[1].result}


async def test_rich_types_round_trip_through_outputs_state_and_team_results():
    wf = (
        Workflow("RichTypes")
        .add_node("produce", produce)
        .add_node("consume", consume)
        .add_node("team", Team([member_a, member_b], ExecutionStrategy.ALL))
        .add_node("check", check_team)
        .add_edge("produce", "consume")
        .add_edge("consume", "team")
        .add_edge("team", "check")
        .set_entry_point("produce")
    )
    result = await wf.execute(RICH)
    assert result["a"] == {"when": RICH["at"], "verdict": Verdict.PASS, "review": _review()}
    assert result["b"] == {RICH["id"]} and isinstance(result["a"]["review"].findings[0].verdict, Verdict)
