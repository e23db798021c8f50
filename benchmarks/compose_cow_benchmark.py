"""The seed's copy-on-read table, measured on gecko_temporal's interpreter core (no server).

Every node of a graph of 50 / 200 / 500 nodes (blocks of a fork, six parallel nodes, a join and a
two-node chain) runs with an instant result through the same code the real system runs:
``Scheduler.next_layer``/``finish`` and ``merge_layer`` (the workflow's side), the per-node state
subset the workflow ships to a node that declared ``reads``, and ``StateView`` reads and writes,
``StateView.delta()`` and the input/output codec (the activity's side). In the real system the two
sides run in different processes; here both run in one, so the number is the interpreter's own
cost per run, without Temporal.

The baseline does what the seed's v0.4 did: deep-copy the whole (decoded) state for every node.
The state holds a 1,000-item list, a 100-key nested dict, two small keys and one output per node;
each node reads three keys and writes one.

A second section checks Temporal's 2 s workflow-task deadlock limit: one layer of 1,000 nodes over
a 10,000-key state, timing exactly what the workflow does for that layer (schedule: next_layer,
state subsets, activity input payloads; apply: decode the outputs, finish, merge_layer).

Run: ``python benchmarks/compose_cow_benchmark.py [--json] [--quick] [--repeat N]``
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

import _common  # noqa: E402

from gecko_temporal import Workflow  # noqa: E402
from gecko_temporal.core import codec  # noqa: E402
from gecko_temporal.core.limits import SizeTable, json_size, node_input_problem  # noqa: E402
from gecko_temporal.core.scheduler import Scheduler  # noqa: E402
from gecko_temporal.core.spec import GraphSpec, NodeInput, NodeOutput  # noqa: E402
from gecko_temporal.core.state import StateView, merge_layer  # noqa: E402

SEED = {50: {"v04": 82.1, "v05": 5.2}, 200: {"v04": 262.0, "v05": 18.3}, 500: {"v04": 311.5, "v05": 47.5}}
GOAL_FACTOR = 10.0  # the goal: at least 10x faster than the seed's v0.5 figures
DEADLOCK_LIMIT_MS = 2000.0
BLOCK = 10  # fork, 6 parallel, join, 2 chained
READ_SETS = {
    # light: the common case; the big list and dict ride along in the state untouched
    "light": lambda pred: ["settings", "cursor", f"out:{pred}"],
    # heavy: every node also reads (so decodes, so copies) the 100-key nested dict
    "heavy": lambda pred: ["settings", "catalog", f"out:{pred}"],
}


def _noop(data: Any, context: Any) -> None:  # nodes take context, so the workflow ships them state
    return None


def build_graph(nodes: int, reads: str = "light") -> GraphSpec:
    """A chain of blocks: Fork -> 6 parallel -> Join -> Chain0 -> Chain1 -> next block's Fork."""
    if nodes % BLOCK:
        raise ValueError(f"nodes must be a multiple of {BLOCK}, got {nodes}")
    wf = Workflow(f"cow-{nodes}-{reads}", max_steps=nodes + 1)
    read_set = READ_SETS[reads]
    prev: str | None = None
    for b in range(nodes // BLOCK):
        fork, join, chain = f"F{b}", f"J{b}", [f"C{b}.0", f"C{b}.1"]
        par = [f"P{b}.{i}" for i in range(6)]
        wf.add_node(fork, _noop, reads=read_set(prev or "none"))
        if prev:
            wf.add_edge(prev, fork)
        for p in par:
            wf.add_node(p, _noop, reads=read_set(fork))
            wf.add_edge(fork, p)
        wf.add_node(join, _noop, reads=read_set(par[-1]))
        for p in par:
            wf.add_edge(p, join)
        wf.add_node(chain[0], _noop, reads=read_set(join)).add_edge(join, chain[0])
        wf.add_node(chain[1], _noop, reads=read_set(chain[0])).add_edge(chain[0], chain[1])
        prev = chain[1]
    wf.set_entry_point("F0")
    return wf.compile()


def initial_state() -> dict[str, Any]:
    """The seed's state shape: a 1,000-item list, a 100-key nested dict, and two small keys."""
    return {
        "items": [{"id": i, "name": f"item-{i}", "score": i * 0.5} for i in range(1000)],
        "catalog": {f"k{i}": {"v": i, "tags": ["a", "b"], "meta": {"x": i, "y": str(i)}} for i in range(100)},
        "settings": {"model": "small", "temperature": 0.2, "retries": 2},
        "cursor": 0,
    }


def _node_value(node: str, step: int, pred: Any, cursor: Any) -> dict[str, Any]:
    return {"node": node, "step": step, "after": pred.get("node") if isinstance(pred, dict) else None, "cursor": cursor}


# -- gecko_temporal: the interpreter core ----------------------------------------------------------
def run_gecko(spec: GraphSpec, state: dict[str, str]) -> dict[str, str]:
    """One run: the workflow's loop and each node's activity side, with instant node results."""
    reads = {n.name: n.reads or [] for n in spec.nodes}
    sched = Scheduler(spec)
    sched.start('{"topic":"benchmark"}')
    while True:
        tasks = sched.next_layer()
        if not tasks:
            return state
        outputs: list[str] = []
        deltas = []
        for task in tasks:
            # workflow side: ship only the keys the node declared (as GeckoWorkflow._run_activity does)
            shipped = {k: state[k] for k in reads[task.node] if k in state}
            # activity side (NodeRunner.run_node): decode input, node reads 3 keys and writes 1
            codec.decode(task.input)
            view = StateView(shipped, node=task.node)
            r = reads[task.node]
            first, second, pred = view.get(r[0]), view.get(r[1]), view.get(r[2])
            value = _node_value(task.node, task.step, pred, second if r[1] == "cursor" else first)
            view[f"out:{task.node}"] = value
            outputs.append(codec.encode(value))
            deltas.append((task.node, view.delta()))
        for task, out in zip(tasks, outputs):  # workflow side again: node order
            sched.finish(task, out, None)
        merge_layer(state, deltas)


def gecko_state() -> dict[str, str]:
    return {k: codec.encode(v) for k, v in initial_state().items()}


# -- the seed's v0.4: deep-copy the whole state for every node ---------------------------------
def run_deepcopy(spec: GraphSpec, state: dict[str, Any]) -> dict[str, Any]:
    """Same scheduler and node work, but every node gets ``copy.deepcopy`` of the live state."""
    reads = {n.name: n.reads or [] for n in spec.nodes}
    sched = Scheduler(spec)
    sched.start('{"topic":"benchmark"}')
    while True:
        tasks = sched.next_layer()
        if not tasks:
            return state
        outputs: list[str] = []
        writes: list[dict[str, Any]] = []
        for task in tasks:
            private = copy.deepcopy(state)  # v0.4: isolation by copying everything
            json.loads(task.input)
            r = reads[task.node]
            first, second, pred = private.get(r[0]), private.get(r[1]), private.get(r[2])
            value = _node_value(task.node, task.step, pred, second if r[1] == "cursor" else first)
            writes.append({f"out:{task.node}": value})
            outputs.append(json.dumps(value))
        for task, out, w in zip(tasks, outputs, writes):
            sched.finish(task, out, None)
            state.update(w)


def _timed(
    run: Callable[[GraphSpec, Any], Any], spec: GraphSpec, fresh: Callable[[], Any], repeat: int
) -> tuple[float, list[float]]:
    """Median ms of ``run`` over ``repeat`` runs, each on a fresh state built outside the clock."""
    run(spec, fresh())  # warm-up
    times = []
    for _ in range(repeat):
        state = fresh()
        t0 = time.perf_counter()
        run(spec, state)
        times.append((time.perf_counter() - t0) * 1000.0)
    times.sort()
    return times[len(times) // 2], times


def seed_table(sizes: list[int], repeat: int, reads: str, as_json: bool) -> list[dict[str, Any]]:
    template = initial_state()
    rows = []
    for n in sizes:
        spec = build_graph(n, reads)
        _common.log(f"  {reads} reads, {n} nodes ...", as_json)
        ours, ours_all = _timed(run_gecko, spec, gecko_state, repeat)
        base, base_all = _timed(run_deepcopy, spec, lambda: copy.deepcopy(template), max(1, repeat // 5))
        seed = SEED.get(n, {})
        rows.append(
            {
                "nodes": n,
                "reads": reads,
                "gecko_ms": round(ours, 3),
                "deepcopy_ms": round(base, 3),
                "speedup": round(base / ours, 1),
                "us_per_node": round(ours * 1000 / n, 1),
                "seed_v04_ms": seed.get("v04"),
                "seed_v05_ms": seed.get("v05"),
                "goal_ms": round(seed["v05"] / GOAL_FACTOR, 3) if seed else None,
                "meets_goal": (ours <= seed["v05"] / GOAL_FACTOR) if seed and reads == "light" else None,
                "gecko_runs_ms": [round(t, 3) for t in ours_all],
                "deepcopy_runs_ms": [round(t, 3) for t in base_all],
            }
        )
    return rows


# -- the deadlock-limit case ---------------------------------------------------------------------
def wide_graph(width: int, declare_reads: bool) -> GraphSpec:
    wf = Workflow(f"wide-{width}", max_steps=width + 2)
    wf.add_node("Start", _noop, reads=["k0"])
    for i in range(width):
        wf.add_node(f"W{i}", _noop, reads=[f"k{i}", f"k{i + 1}", "settings"] if declare_reads else None)
        wf.add_edge("Start", f"W{i}")
    return wf.set_entry_point("Start").compile()


def wide_layer(width: int, keys: int, declare_reads: bool, repeat: int) -> dict[str, Any]:
    """Time the workflow's own work for one ``width``-wide layer over a ``keys``-key state.

    Schedule: next_layer, the payload size check (limits.py), each node's state subset (all of it
    when a node declares no reads), and the NodeInput payloads Temporal's converter builds inside
    the workflow task (from plain dicts, as GeckoWorkflow sends them). Apply: decoding the
    NodeOutput payloads as dicts and rebuilding them, finish() in node order, merge_layer. Node work (StateView, delta) runs
    in activities, outside the workflow task, and is timed separately.
    """
    from temporalio.converter import DataConverter  # the converter GeckoWorkflow's payloads go through

    converter = DataConverter.default.payload_converter
    spec = wide_graph(width, declare_reads)
    reads = {n.name: n.reads for n in spec.nodes}
    base = {f"k{i}": codec.encode({"i": i, "label": f"value {i}"}) for i in range(keys)}
    base["settings"] = codec.encode({"model": "small"})

    def once() -> dict[str, float]:
        state = dict(base)
        sched = Scheduler(spec)
        sched.start("null")
        first = sched.next_layer()
        sched.finish(first[0], "null", None)
        t0 = time.perf_counter()
        tasks = sched.next_layer()
        payload_bytes = 0
        sizes = SizeTable(state), SizeTable(sched.outputs)
        for task in tasks:
            r = reads[task.node]
            node_input_problem(
                task.node,
                input_size=json_size(task.input),
                state=sizes[0],
                reads=r,
                history=sizes[1],
                history_names=None,
            )
            shipped = state if r is None else {k: state[k] for k in r if k in state}
            arg = NodeInput(
                graph=spec.key,
                node=task.node,
                input=task.input,
                session_id="bench",
                step=task.step,
                state=shipped,
                history=sched.outputs,
                run_input="null",
            )
            payload_bytes += len(converter.to_payloads([vars(arg)])[0].data)
        t1 = time.perf_counter()
        # the activities: each node reads its keys and writes one (not in the workflow task)
        results = []
        for task in tasks:
            r = reads[task.node] or [f"k{task.step}", "settings"]
            view = StateView({k: state[k] for k in r if k in state}, node=task.node)
            view[f"k{task.step}"] = {"i": task.step, "seen": view.get(r[0])}
            d = view.delta()
            results.append(converter.to_payloads([NodeOutput(value="null", writes=d.writes, deletes=d.deletes)])[0])
        t2 = time.perf_counter()
        outs = [NodeOutput.from_plain(converter.from_payloads([p], [dict])[0]) for p in results]
        deltas = []
        for task, out in zip(tasks, outs):
            sched.finish(task, out.value, out.jump)
            deltas.append((task.node, _delta(out)))
        merge_layer(state, deltas)
        t3 = time.perf_counter()
        return {
            "schedule_ms": (t1 - t0) * 1000,
            "apply_ms": (t3 - t2) * 1000,
            "activities_ms": (t2 - t1) * 1000,
            "payload_bytes": payload_bytes,
        }

    runs = [once() for _ in range(repeat)]
    med = {k: sorted(r[k] for r in runs)[len(runs) // 2] for k in runs[0]}
    workflow_ms = med["schedule_ms"] + med["apply_ms"]
    return {
        "width": width,
        "keys": keys,
        "declared_reads": declare_reads,
        "schedule_ms": round(med["schedule_ms"], 2),
        "apply_ms": round(med["apply_ms"], 2),
        "workflow_task_ms": round(workflow_ms, 2),
        "activities_ms": round(med["activities_ms"], 2),
        "input_payload_bytes": int(med["payload_bytes"]),
        "input_payload_mb": round(med["payload_bytes"] / 2**20, 2),
        "share_of_deadlock_limit": round(workflow_ms / DEADLOCK_LIMIT_MS, 4),
    }


def _delta(out: NodeOutput) -> Any:
    from gecko_temporal.core.state import StateDelta

    return StateDelta(out.writes, out.deletes)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument(
        "--no-full-state",
        action="store_true",
        help="skip the deadlock case where nodes declare no reads (ships the whole state; slow)",
    )
    args = p.parse_args(argv)
    quick = args.quick
    sizes = [20, 50] if quick else [50, 200, 500]
    repeat = args.repeat or (1 if quick else 15)
    width, keys = (50, 500) if quick else (1000, 10000)
    _common.log(f"compose_cow_benchmark: sizes {sizes}, {repeat} repeats", args.json)
    rows = seed_table(sizes, repeat, "light", args.json) + seed_table(sizes, repeat, "heavy", args.json)
    _common.log(f"  one {width}-wide layer over {keys} keys ...", args.json)
    wide = [wide_layer(width, keys, True, 1 if quick else 5)]
    if not args.no_full_state:
        wide.append(wide_layer(width, keys, False, 1))
    light = [r for r in rows if r["reads"] == "light"]
    per_node = [r["us_per_node"] for r in light]
    result = {
        "benchmark": "compose_cow",
        "machine": _common.machine(),
        "quick": quick,
        "repeat": repeat,
        "graph": "blocks of 10: fork -> 6 parallel -> join -> 2 chained; each node reads 3 keys, writes 1",
        "state": "1,000-item list + 100-key nested dict + 2 small keys + one output per node",
        "rows": rows,
        "wide_layer": wide,
        "linear": max(per_node) <= 1.5 * min(per_node),
        "meets_goal": all(r["meets_goal"] for r in light if r["meets_goal"] is not None),
    }
    _common.emit(result, args.json, lambda: render(result))
    return result


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    out = [
        f"compose_cow_benchmark  {m['date']}  {m['cpus']} CPUs  Python {m['python']}  "
        f"(median of {result['repeat']} runs; baseline median of {max(1, result['repeat'] // 5)})",
        f"graph: {result['graph']}",
        f"state: {result['state']}",
        "",
    ]
    out.append(
        _common.table(
            [
                "nodes",
                "reads",
                "gecko ms",
                "µs/node",
                "deep-copy ms",
                "speedup",
                "seed v0.4 ms",
                "seed v0.5 ms",
                "goal ms",
                "goal met",
            ],
            [
                [
                    r["nodes"],
                    r["reads"],
                    r["gecko_ms"],
                    r["us_per_node"],
                    r["deepcopy_ms"],
                    f"{r['speedup']}x",
                    r["seed_v04_ms"] or "-",
                    r["seed_v05_ms"] or "-",
                    r["goal_ms"] or "-",
                    "-" if r["meets_goal"] is None or r["reads"] != "light" else ("yes" if r["meets_goal"] else "NO"),
                ]
                for r in result["rows"]
            ],
        )
    )
    out.append(f"\nlinear in nodes (light reads, µs/node within 1.5x): {'yes' if result['linear'] else 'NO'}")
    out.append("\nOne wide layer (the workflow task's own work; Temporal reports a deadlock at 2,000 ms):\n")
    out.append(
        _common.table(
            [
                "width",
                "state keys",
                "node reads",
                "schedule ms",
                "apply ms",
                "workflow task ms",
                "of 2 s limit",
                "activity inputs MB",
                "node side ms",
            ],
            [
                [
                    w["width"],
                    w["keys"],
                    "3 declared" if w["declared_reads"] else "none (whole state)",
                    w["schedule_ms"],
                    w["apply_ms"],
                    w["workflow_task_ms"],
                    f"{w['share_of_deadlock_limit']:.1%}",
                    w["input_payload_mb"],
                    w["activities_ms"],
                ]
                for w in result["wide_layer"]
            ],
        )
    )
    return "\n".join(out)


if __name__ == "__main__":
    main()
