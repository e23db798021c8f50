"""What a named limit costs per node when it never binds: the layered DAG with and without one.

The 10x20 layered DAG of ``temporal_overhead_benchmark.py`` (an entry node, then 10 layers of 20
nodes, each joining all 20 of the layer before; light async nodes, so the numbers are
orchestration cost) runs three ways, alternately, on one dev server in this process: plain; every
node through ``Limit("bench", per_second=10_000)`` (its own task queue and limit worker, a rate it
never reaches); and the same with a tenant (a fairness key on every activity). The overhead is the
median time's excess over the plain run's, per node. Goal: at most 5%.

Run: ``python benchmarks/limits_overhead_benchmark.py [--json] [--quick] [--repeat N]``
(always on a dev server of its own, started and stopped by the script; TEMPORAL_ADDRESS is ignored).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

import _common  # noqa: E402

from gecko_temporal import Limit, Workflow  # noqa: E402

GOAL = 1.05


def _node(name: str) -> Any:
    async def node(data: Any) -> dict[str, Any]:
        return {"node": name, "inputs": len(data) if isinstance(data, dict) else 0}

    node.__name__ = name
    return node


def dag(layers: int, width: int, name: str, limit: str | None) -> Workflow:
    """The layered DAG; with ``limit`` every node goes through it."""
    wf = Workflow(name, max_steps=layers * width + 1, limits=[Limit("bench", per_second=10_000)] if limit else [])
    options = {"limit": limit} if limit else {}
    wf.add_node("Start", _node("Start"), **options)
    previous = ["Start"]
    for layer in range(layers):
        names = [f"L{layer}.{j}" for j in range(width)]
        for n in names:
            wf.add_node(n, _node(n), **options)
            for p in previous:
                wf.add_edge(p, n)
        previous = names
    return wf.set_entry_point("Start")


async def run(quick: bool, repeat: int, as_json: bool) -> dict[str, Any]:
    from temporalio.client import Client

    from gecko_temporal import DevServer, GeckoWorker

    layers, width = (2, 5) if quick else (10, 20)
    nodes = layers * width + 1
    plain, limited = dag(layers, width, "LimitBenchPlain", None), dag(layers, width, "LimitBenchLimited", "bench")
    saved = _common.saved_client_env()
    server = DevServer()
    worker = None
    try:
        queue = f"limits-bench-{uuid.uuid4().hex[:6]}"
        os.environ.update(TEMPORAL_ADDRESS=server.address, GECKO_TASK_QUEUE=queue)
        client = await Client.connect(server.address)
        worker = GeckoWorker(client, task_queue=queue)
        for wf in (plain, limited):
            worker.serve(wf)
        await worker.start()
        cases = {
            "plain": lambda: plain.start(None),
            "limit": lambda: limited.start(None),
            "limit + tenant": lambda: limited.start(None, tenant="acme"),
        }
        for start in cases.values():  # untimed: pollers, sandbox, connections warm
            await (await start()).result()
        times: dict[str, list[float]] = {k: [] for k in cases}
        order = list(cases)
        for i in range(repeat):
            for label in order[i % 3 :] + order[: i % 3]:  # who goes first rotates
                t0 = time.perf_counter()
                await (await cases[label]()).result()
                times[label].append((time.perf_counter() - t0) * 1000)
            _common.log(f"  round {i + 1}: " + ", ".join(f"{k} {v[-1]:.0f} ms" for k, v in times.items()), as_json)
    finally:
        if worker is not None:
            await worker.shutdown()
        server.stop()
        _common.restore_env(saved)
    medians = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    base = medians["plain"]
    rows = [
        {
            "case": k,
            "median_ms": round(m, 1),
            "ms_per_node": round(m / nodes, 2),
            "overhead_ms_per_node": round((m - base) / nodes, 3),
            "ratio": round(m / base, 3),
            "meets_goal": m / base <= GOAL,
            "runs_ms": [round(t, 1) for t in times[k]],
        }
        for k, m in medians.items()
    ]
    return {
        "benchmark": "limits_overhead",
        "machine": _common.machine(),
        "graph": f"layered DAG {layers}x{width} ({nodes} nodes)",
        "repeat": repeat,
        "quick": quick,
        "goal_ratio": GOAL,
        "rows": rows,
    }


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    head = (
        f"limits_overhead_benchmark  {m['date']}  {m['cpus']} CPUs  Python {m['python']}  {result['graph']}, "
        f"median of {result['repeat']} rotating runs; goal ratio <= {result['goal_ratio']}"
    )
    rows = [
        [r["case"], r["median_ms"], r["ms_per_node"], r["overhead_ms_per_node"], f"{r['ratio']:.3f}x",
         "yes" if r["meets_goal"] else "NO"]
        for r in result["rows"]
    ]  # fmt: skip
    table = _common.table(["case", "median ms", "ms/node", "overhead ms/node", "ratio", "goal met"], rows)
    return head + "\n\n" + table


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = _common.parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 7)
    _common.log("limits_overhead_benchmark: starting a dev server and a worker ...", args.json)
    result = asyncio.run(run(args.quick, repeat, args.json))
    _common.emit(result, args.json, lambda: render(result))
    return result


if __name__ == "__main__":
    main()
