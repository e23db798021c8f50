"""Smoke run of the long-loop benchmark: it starts its own embedded dev server, so it lives here,
not in tests/unit (which needs no server). No timing is asserted; speed claims live in benchmarks/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _quick_json(tmp_path: Path, script: str, timeout: int = 240) -> dict:
    """Run ``benchmarks/<script> --quick --json`` from another folder; its JSON result."""
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.long
@pytest.mark.slow
def test_long_loop_benchmark_runs_every_case_and_prints_json(tmp_path):
    """Smoke run on its own embedded dev server: each case finishes its loop and is reported."""
    result = _quick_json(tmp_path, "long_loop_benchmark.py")
    assert result["benchmark"] == "long_loop" and result["loop_steps"] == 100
    assert [(r["case"], r["steps"]) for r in result["rows"]] == [
        ("regular activities", 101),
        ("local=True", 101),
        ("local=True, steps_per_run=50", 101),
    ]
    assert result["rows"][2]["runs"] >= 2  # 50 steps per run: it continued as new
    # how many queries caught a run still going depends on the machine's speed: reported, not pinned
    assert all(r["steps_per_s"] > 0 and isinstance(r["queries"], int) for r in result["rows"])


@pytest.mark.slow
def test_stream_cost_benchmark_counts_what_the_stream_writes(tmp_path):
    """Smoke run of benchmarks/stream_cost.py: counts are what each case must show, never timings."""
    result = _quick_json(tmp_path, "stream_cost.py")
    rows = {r["case"]: r for r in result["rows"]}
    assert rows["quiet"]["signals"] == rows["quiet"]["updates"] == rows["quiet"]["events_read"] == 0
    assert rows["emit"]["emitted"] == 15 and 1 <= rows["emit"]["signals"] <= 15  # batched, never more
    assert rows["read"]["updates"] >= 1 and rows["read"]["events_read"] == 3 * 2 + 1
    assert rows["emit+read"]["events_read"] == 15 + 3 * 2 + 1
    assert result["latency_ms"]["rounds"] == 3


@pytest.mark.long
def test_wide_benchmark_runs_every_case_and_prints_json(tmp_path):
    """Smoke run (tiny sizes): each case reports what it measured, from the runs' histories."""
    result = _quick_json(tmp_path, "wide_benchmark.py", timeout=300)
    assert result["benchmark"] == "wide" and result["quick"] is True
    assert [r["width"] for r in result["wide"]] == [300]
    assert [(r["max_parallel"], r["peak_pending"]) for r in result["windows"]] == [(50, 50), (100, 100)]
    assert all(r["nodes_per_s"] > 0 and r["workflow_tasks"] > 0 for r in result["wide"] + result["windows"])
    big = result["big"]
    assert big["nodes"] == 1000 and big["spec_bytes_compact"] * 8 < big["spec_bytes_full"]


@pytest.mark.long
@pytest.mark.slow
def test_limits_overhead_benchmark_runs_every_case_and_prints_json(tmp_path):
    """Smoke run of benchmarks/limits_overhead_benchmark.py from anywhere: each case is reported."""
    result = _quick_json(tmp_path, "limits_overhead_benchmark.py")
    assert result["benchmark"] == "limits_overhead" and result["graph"].endswith("(11 nodes)")
    assert [r["case"] for r in result["rows"]] == ["plain", "limit", "limit + tenant"]
    assert all(r["median_ms"] > 0 for r in result["rows"])
