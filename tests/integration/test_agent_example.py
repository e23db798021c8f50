"""examples/agent_pipeline.py: real pydantic-ai and LangChain objects, offline, on the embedded default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gecko_temporal import MemberResult
from gecko_temporal.core.codec import decode
from tests.pipelines import procs

ROOT = Path(__file__).resolve().parents[2]
for module, package in (("pydantic_ai", "pydantic-ai-slim"), ("langchain_core", "langchain-core")):
    pytest.importorskip(module, reason=f"{package} is not installed (pip install -e '.[dev]' brings it)")


def load_example():
    return procs.load_example("agent_pipeline")


async def test_agent_pipeline_races_judges_and_publishes(tmp_path):
    out = tmp_path / "article.md"
    example = load_example()
    handle = await example.build().start({"topic": "gecko", "out": str(out)}, timeout=60)
    result = await handle.result()
    assert result == {
        "article": str(out),
        "writer": "quick_writer",
        "approved": True,
        "score": 9,
        "verdict_type": "Verdict",
        "title_type": "AIMessage",
    }
    article = out.read_text()
    assert article.startswith("# Durable agents: pipelines that survive their machines\n\n- gecko runs as a graph")
    assert "Judge: approved, score 9/10 (3 concrete points; mentions crash recovery)" in article
    state = await handle.state()
    assert state["completed"] == ["Writers", "Pick", "Judge", "Headline", "Publish"]
    # The race's output reached Pick as MemberResults: the thorough writer was cancelled mid-call.
    from tests.pipelines.replayed_inputs import activity_inputs

    history = await handle.temporal_handle.fetch_history()  # inputs hold references: replay to read them
    (pick_input,) = [plain for kind, plain in await activity_inputs(history) if kind.endswith(".Pick")]
    results = decode(pick_input["input"])
    assert [type(r) for r in results] == [MemberResult, MemberResult]
    assert [(r.member, r.status) for r in results] == [("thorough_writer", "cancelled"), ("quick_writer", "succeeded")]


def test_agent_pipeline_runs_as_a_plain_script(tmp_path):
    out = tmp_path / "a.md"
    env = {k: v for k, v in os.environ.items() if k != "TEMPORAL_ADDRESS"}
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "agent_pipeline.py"), "topic", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert run.returncode == 0, f"exit {run.returncode}\nstdout: {run.stdout[-1000:]}\nstderr: {run.stderr[-3000:]}"
    assert "completed: Writers -> Pick -> Judge -> Headline -> Publish" in run.stdout
    assert "Judge: approved" in out.read_text()
