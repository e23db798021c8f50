"""LangGraph conformance: every scenario runs on LangGraph and on gecko-temporal (the real dev
server, the embedded default), and the two must agree, or differ exactly as docs/porting-langgraph.md
says (a deliberate difference: the test asserts what each engine does, not a skip).

Scenarios live in lg_graphs.py (the graph language) and lg_people.py (interrupts, state edits,
errors, retries, subgraphs). All gecko runs share the one embedded worker of the test process.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("langgraph")

import lg_graphs  # noqa: F401 (registers its scenarios)
import lg_people  # noqa: F401
from lg_support import SCENARIOS, Scenario

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "porting-langgraph.md"


@pytest.mark.parametrize("case", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_scenario_runs_alike_on_both_engines_or_differs_as_documented(case: Scenario, session_id: str) -> None:
    langgraph = await case.langgraph()
    gecko = await case.gecko(session_id)
    if case.differs is None:
        assert gecko == langgraph
        return
    assert langgraph == case.differs.langgraph
    assert gecko == case.differs.gecko
    assert f"`{case.name}`" in GUIDE.read_text(), f"docs/porting-langgraph.md does not list {case.name}"


def test_the_suite_has_at_least_25_scenarios_with_unique_names() -> None:
    names = [s.name for s in SCENARIOS]
    assert len(names) >= 25 and len(set(names)) == len(names)
