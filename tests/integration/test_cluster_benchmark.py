"""Smoke run of benchmarks/cluster_benchmark.py: real dev server, real worker processes, tiny sizes.

No timing is asserted (the numbers live in docs/benchmarks.md); this checks that every case runs
end to end with the engine and the baseline as separate processes and reports what it documents.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.long
def test_cluster_benchmark_quick_runs_every_case_as_separate_processes(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "cluster_benchmark.py"),
            "--quick",
            "--json",
            "--hand-variant",
            "heartbeat,payload,spec",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["benchmark"] == "cluster" and result["quick"] is True
    assert [r["case"] for r in result["rows"]] == ["dag", "chain", "chains", "uneven", "session"]
    assert result["hand_variant"] == ["heartbeat", "payload", "spec"]
    for row in result["rows"]:
        for name, side in row["sides"].items():
            assert side["wall_s"] > 0 and side["worker_rss_mb"] > 0, (row["case"], name)
            assert side["history"]["runs"] >= 1 and side["history"]["events"] > 0
            assert side["history"]["task_timeouts"] == 0
        assert row["sides"]["hand"]["ratio_to_hand"] == 1.0
    sessions = result["rows"][-1]
    assert sessions["sessions"] == 6 and sessions["sides"]["gecko"]["workers"] == 2
    assert sessions["sides"]["gecko"]["history"]["runs"] == 6
    # the spec variant pads the hand-written workflow input to about gecko's compiled graph
    dag = result["rows"][0]["sides"]
    assert dag["hand"]["history"]["workflow_input_bytes"] > 0.5 * dag["gecko"]["history"]["workflow_input_bytes"]
    # eager mode runs on the layered and uneven DAGs as a side of its own, served by the engine's worker
    by_case = {r["case"]: r for r in result["rows"]}
    for case in ("dag", "uneven"):
        assert "eager" in by_case[case]["sides"] and by_case[case]["eager_ratio_to_layered"] > 0
        assert by_case[case]["sides"]["eager"]["history"]["task_timeouts"] == 0
    assert "eager" not in by_case["chain"]["sides"]
    # parallel chains against both hand-written baselines; the worse ratio is the one quoted
    chains = by_case["chains"]
    assert set(chains["sides"]) == {"gecko", "eager", "hand", "hand_each"}
    # layered held to one gather per layer, eager to each node started when its predecessor is done
    assert chains["per_node_engine"] == "eager"
    assert chains["per_node_ratio"] == round(
        chains["sides"]["eager"]["wall_s"] / chains["sides"]["hand_each"]["wall_s"], 3
    )
    assert chains["ratio_quoted"] == max(chains["sides"]["gecko"]["ratio_to_hand"], chains["per_node_ratio"])
    assert chains["sides"]["hand_each"]["history"]["events"] > 0
    if result["langgraph"]:
        for case in ("dag", "uneven"):
            assert "ratio_to_langgraph" in by_case[case] and "eager_ratio_to_langgraph" in by_case[case]
        assert by_case["uneven"]["langgraph_goals"] == {"eager": 0.70}
        assert by_case["dag"]["langgraph_goals"] == {"gecko": 0.85}
    else:
        assert "temporalio-langgraph" in result["langgraph_note"]
