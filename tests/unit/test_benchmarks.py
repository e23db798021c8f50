"""The benchmarks measure what they claim: smoke runs of the pure one, and the graphs they compare.

No timing is asserted here (speed goals live in the benchmarks and docs/benchmarks.md); these tests
check that each benchmark runs from a fresh clone, prints the JSON it documents, and that the two
sides of every comparison really do the same work.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gecko_temporal.core import codec
from gecko_temporal.core.scheduler import Scheduler

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import compose_cow_benchmark as cow  # noqa: E402
import temporal_overhead_benchmark as overhead  # noqa: E402


def test_compose_cow_runs_as_one_command_from_anywhere_and_prints_json(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCH / "compose_cow_benchmark.py"), "--quick", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # progress goes to stderr: stdout is JSON alone
    assert result["benchmark"] == "compose_cow" and result["quick"] is True
    assert {(r["nodes"], r["reads"]) for r in result["rows"]} == {
        (20, "light"),
        (50, "light"),
        (20, "heavy"),
        (50, "heavy"),
    }
    for row in result["rows"]:
        assert row["gecko_ms"] > 0 and row["deepcopy_ms"] > 0
        assert row["speedup"] == pytest.approx(row["deepcopy_ms"] / row["gecko_ms"], rel=0.05)
    fifty = next(r for r in result["rows"] if r["nodes"] == 50 and r["reads"] == "light")
    assert (fifty["seed_v04_ms"], fifty["seed_v05_ms"], fifty["goal_ms"]) == (82.1, 5.2, 0.52)
    assert isinstance(fifty["meets_goal"], bool) and isinstance(result["linear"], bool)
    assert [w["declared_reads"] for w in result["wide_layer"]] == [True, False]
    assert set(result["machine"]) == {"date", "cpus", "python", "platform"}


def test_compose_cow_prints_a_table_by_default(capsys):
    cow.main(["--quick", "--no-full-state"])
    out = capsys.readouterr().out
    assert "| nodes | reads | gecko ms |" in out and "One wide layer" in out


def test_compose_cow_rejects_a_bad_option():
    with pytest.raises(SystemExit):
        cow.main(["--repeat", "many"])


@pytest.mark.parametrize("reads", ["light", "heavy"])
def test_interpreter_core_and_deepcopy_baseline_end_in_the_same_state(reads):
    spec = cow.build_graph(50, reads)
    ours = cow.run_gecko(spec, cow.gecko_state())
    baseline = cow.run_deepcopy(spec, copy.deepcopy(cow.initial_state()))
    assert {k: codec.decode(v) for k, v in ours.items()} == baseline
    assert len([k for k in baseline if k.startswith("out:")]) == 50  # every node wrote its one key
    assert baseline["out:P2.3"]["step"] == 25 and baseline["out:P2.3"]["after"] == "F2"  # its predecessor


def test_benchmark_graph_mixes_parallel_layers_and_chains():
    sched = Scheduler(cow.build_graph(20))
    sched.start("null")
    widths = []
    while tasks := sched.next_layer():
        widths.append(len(tasks))
        for t in tasks:
            sched.finish(t, "null", None)
    assert widths == [1, 6, 1, 1, 1] * 2
    with pytest.raises(ValueError, match="multiple of 10"):
        cow.build_graph(55)


def test_wide_layer_ships_only_declared_keys():
    declared = cow.wide_layer(width=20, keys=200, declare_reads=True, repeat=1)
    whole = cow.wide_layer(width=20, keys=200, declare_reads=False, repeat=1)
    assert declared["width"] == 20 and declared["keys"] == 200
    # without reads= every node receives all 200 keys: the payload grows with width x state size
    assert whole["input_payload_bytes"] > 10 * declared["input_payload_bytes"] > 0


def _simulate_gecko(wf) -> dict:
    """Run a gecko graph through the scheduler with each node's real function (instant)."""
    import asyncio

    spec, nodes = wf.compile(), wf.nodes
    sched = Scheduler(spec)
    sched.start(codec.encode({"topic": "t"}))
    while tasks := sched.next_layer():
        for t in tasks:
            value = nodes[t.node].callee.call(codec.decode(t.input))
            if asyncio.iscoroutine(value):
                value = asyncio.run(value)
            sched.finish(t, codec.encode(value), None)
    return codec.decode(sched.result())


def _simulate_hand_dag(layers: int, width: int) -> dict:
    """What HandDag computes, with node_result standing in for the activity."""
    out = overhead.node_result("Start", {"topic": "t"})
    previous = {"Start": out}
    for layer in range(layers):
        names = [f"L{layer}.{j}" for j in range(width)]
        joined = previous["Start"] if layer == 0 else previous
        previous = {n: overhead.node_result(n, joined) for n in names}
    return previous


def test_gecko_and_hand_written_dag_compute_the_same_result():
    assert _simulate_gecko(overhead.gecko_dag(3, 4)) == _simulate_hand_dag(3, 4)
    spec = overhead.gecko_dag(10, 20).compile()
    assert len(spec.nodes) == 201 and sum(len(n.predecessors) for n in spec.nodes) == 20 + 9 * 400


def test_gecko_chain_is_a_chain_and_local_option_reaches_the_spec():
    assert _simulate_gecko(overhead.gecko_chain(4)) == {"node": "N3", "inputs": 2}
    spec = overhead.gecko_chain(3, local=True).compile()
    assert [n.local for n in spec.nodes] == [True] * 3 and [n.predecessors for n in spec.nodes] == [[], ["N0"], ["N1"]]


@pytest.mark.parametrize(
    "script", ["temporal_overhead_benchmark.py", "local_activity_benchmark.py", "send_benchmark.py"]
)
def test_server_benchmarks_start_from_a_fresh_clone(script, tmp_path):
    # --help needs no server: the script and its imports load from any working directory
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "--json" in proc.stdout and "--quick" in proc.stdout


# -- the cluster benchmark: engine and hand-written workers as separate processes -------------------
import cluster_graphs  # noqa: E402
import cluster_shapes  # noqa: E402


def _simulate_hand(workflow_cls, data):
    """Run a hand_worker workflow without Temporal: its activity calls go straight to the function."""
    import asyncio

    import hand_worker

    async def fake_execute_activity(fn, args, **_):
        return fn(*args)

    original = hand_worker.workflow.execute_activity
    hand_worker.workflow.execute_activity = fake_execute_activity
    try:
        return asyncio.run(workflow_cls().run(data))
    finally:
        hand_worker.workflow.execute_activity = original


@pytest.mark.parametrize(
    "case, hand", [("dag", "HandDag"), ("chain", "HandChain"), ("session", "HandSession"), ("uneven", "HandUneven")]
)
def test_cluster_graphs_and_hand_written_workflows_compute_the_same(case, hand, monkeypatch):
    import types

    import hand_worker

    monkeypatch.setattr(cluster_shapes, "time", types.SimpleNamespace(sleep=lambda s: None))  # same result, no wait
    assert _simulate_gecko(getattr(cluster_graphs, case)) == _simulate_hand(getattr(hand_worker, hand), {"topic": "t"})


@pytest.mark.parametrize("case", ["dag", "uneven"])
def test_eager_cluster_graphs_are_the_layered_ones_scheduled_eagerly(case):
    layered, eager = getattr(cluster_graphs, case).compile(), getattr(cluster_graphs, f"{case}_eager").compile()
    assert (layered.scheduling, eager.scheduling) == ("layered", "eager")
    assert eager.name != layered.name  # one worker serves both under names of their own
    assert [(n.name, n.predecessors) for n in eager.nodes] == [(n.name, n.predecessors) for n in layered.nodes]


def test_langgraph_uneven_dag_has_the_cluster_shape_and_computes_the_same(monkeypatch):
    pytest.importorskip("temporalio.langgraph")
    import types

    import langgraph_dag

    monkeypatch.setattr(cluster_shapes, "time", types.SimpleNamespace(sleep=lambda s: None))
    spec = cluster_graphs.uneven.compile()
    assert {n.name: n.predecessors for n in spec.nodes if n.predecessors} == langgraph_dag.UNEVEN_PREDECESSORS
    # run the StateGraph's nodes in dependency order, as LangGraph's super-steps would
    state = {"topic": "t", "out": {}}
    state["out"].update(langgraph_dag.start_node(state)["out"])
    for name in langgraph_dag.UNEVEN_PREDECESSORS:  # branches first, Join last
        state["out"].update(langgraph_dag.uneven_node(state, {"metadata": {"node": name}})["out"])
    assert state["out"]["Join"] == _simulate_gecko(cluster_graphs.uneven)


def test_cluster_graphs_have_the_documented_shapes():
    assert len(cluster_graphs.dag.compile().nodes) == cluster_shapes.LAYERS * cluster_shapes.WIDTH + 1 == 201
    assert len(cluster_graphs.chain.compile().nodes) == 100
    assert len(cluster_graphs.session.compile().nodes) == 10  # start -> 8 parallel -> join
    joins = [n for n in cluster_graphs.uneven.compile().nodes if n.name == "Join"]
    assert len(joins[0].predecessors) == len(cluster_shapes.UNEVEN_BRANCHES)


def test_cluster_benchmark_starts_from_a_fresh_clone_and_rejects_unknown_cases(tmp_path):
    script = str(BENCH / "cluster_benchmark.py")
    proc = subprocess.run([sys.executable, script, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert all(opt in proc.stdout for opt in ("--json", "--quick", "--cases", "--engine-sticky", "--hand-variant"))
    bad = subprocess.run(
        [sys.executable, script, "--cases", "dag,nope"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "unknown case(s) nope" in bad.stderr


def test_the_worker_serves_the_cluster_graphs_by_module_and_name():
    from gecko_temporal.ops.cli import load_workflow

    sys.path.insert(0, str(BENCH))
    assert load_workflow("cluster_graphs:dag").name == "ClusterDag"
    assert {load_workflow(f"cluster_graphs:{g}").name for g in cluster_graphs.ALL} == {
        "ClusterDag",
        "ClusterChain",
        "ClusterSession",
        "ClusterUneven",
        "ClusterChains",
        "ClusterDagEager",
        "ClusterUnevenEager",
        "ClusterChainsEager",
        "ClusterWarm",
    }


def test_send_benchmark_graphs_fan_out_and_sum_every_instance():
    import send_graphs

    for wf in (send_graphs.send100, send_graphs.send1000):
        spec = wf.compile()
        assert spec.node("Plan").route_targets == ["Work"] and spec.node("Work").successors == ["Collect"]
    table = send_graphs.send1000.node_table()
    sends = table["Plan"].router.invoke(3, None)
    assert [(s.node, s.arg) for s in sends] == [("Work", 0), ("Work", 1), ("Work", 2)]
    assert table["Collect"].callee.invoke([0, 1, 2], None) == {"n": 3, "sum": 3}
