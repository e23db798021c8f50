"""A 2,000-step agent loop: steps per second, continue-as-new runs, and how quickly it answers queries.

One node returns ``Next`` to itself 2,000 times, reading the state and step 1's output through
``context.history`` and writing a counter, as an agent loop does. A watcher queries ``gecko_state``
every 0.25 s while it runs, as a dashboard would. Cases: regular activities, and ``local=True`` with
the default ``steps_per_run`` (2,000) and with 200 (more continue-as-new switches).

Run: ``python benchmarks/long_loop_benchmark.py [--json] [--quick]`` (on the embedded dev server
the script starts; TEMPORAL_ADDRESS is ignored).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
os.environ.pop("TEMPORAL_ADDRESS", None)

import _common  # noqa: E402

from gecko_temporal import Next, Workflow, step  # noqa: E402


def loop_workflow(name: str, steps: int, *, local: bool, steps_per_run: int) -> Workflow:
    def start(task, context):
        context.state["task"] = task
        return 1

    @step(local=local)
    def think(n, context):
        assert context.history["Start"] == 1  # step 2,000 still reads step 1
        context.state["count"] = n
        return Next("Think", n + 1) if n < steps else {"steps": n, "task": context.state["task"]}

    wf = Workflow(name, max_steps=steps + 10, steps_per_run=steps_per_run)
    return wf.add_node("Start", start).add_node("Think", think).add_edge("Start", "Think").set_entry_point("Start")


async def measure(wf: Workflow, steps: int) -> dict[str, Any]:
    began = time.monotonic()
    handle = await wf.start("benchmark")
    result = asyncio.ensure_future(handle.result())
    latencies = []
    while not result.done():
        asked = time.monotonic()
        state = await handle.state()
        if state["status"] == "running":  # a query after the end replays the history: not a live answer
            latencies.append(time.monotonic() - asked)
        await asyncio.wait([result], timeout=0.25)
    outcome = await result
    took = time.monotonic() - began
    final = await handle.state()
    assert outcome == {"steps": steps, "task": "benchmark"}, outcome
    latencies.sort()
    return {
        "steps": final["step"],
        "seconds": round(took, 2),
        "steps_per_s": round(final["step"] / took, 1),
        "runs": final["run"],
        "queries": len(latencies),
        "query_median_ms": round(1000 * latencies[len(latencies) // 2], 1) if latencies else None,
        "query_max_ms": round(1000 * latencies[-1], 1) if latencies else None,
    }


async def run(quick: bool, as_json: bool) -> dict[str, Any]:
    steps = 100 if quick else 2000
    few = max(steps // 10, 50)  # more continue-as-new switches
    cases = [
        ("regular activities", False, steps),
        ("local=True", True, steps),
        (f"local=True, steps_per_run={few}", True, few),
    ]
    await Workflow("WarmUp").add_node("a", lambda x: x).set_entry_point("a").execute(1)  # server + worker
    rows = []
    for i, (label, local, per_run) in enumerate(cases):
        _common.log(f"  {label}: {steps} steps ...", as_json)
        row = await measure(loop_workflow(f"LongLoop{i}", steps, local=local, steps_per_run=per_run), steps)
        rows.append({"case": label, "local": local, "steps_per_run": per_run, **row})
    return {"benchmark": "long_loop", "quick": quick, "machine": _common.machine(), "loop_steps": steps, "rows": rows}


def text(result: dict[str, Any]) -> str:
    m = result["machine"]
    rows = [
        [
            r["case"],
            r["steps_per_run"],
            r["steps"],
            r["seconds"],
            r["steps_per_s"],
            r["runs"],
            r["queries"],
            r["query_median_ms"],
            r["query_max_ms"],
        ]
        for r in result["rows"]
    ]
    return (
        f"{result['loop_steps']}-step Next loop, {m['date']}, {m['cpus']} CPUs, Python {m['python']}\n\n"
        + _common.table(
            ["case", "steps_per_run", "steps", "s", "steps/s", "runs", "queries", "query median ms", "query max ms"],
            rows,
        )
    )


def main() -> None:
    args = _common.parser(__doc__.splitlines()[0]).parse_args()
    result = asyncio.run(run(args.quick, args.json))
    _common.emit(result, args.json, lambda: text(result))


if __name__ == "__main__":
    main()
