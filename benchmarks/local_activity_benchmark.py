"""Light nodes as Temporal local activities: a 100-step chain, regular nodes vs ``local=True``.

A regular activity round trip goes through the server's task queues (schedule, dispatch, complete:
3 history events and a new workflow task per step); a local activity runs in the worker that runs
the workflow and records one marker. The chain runs through gecko_temporal both ways, and, for
reference, through a hand-written Temporal workflow both ways, on one dev server.

Run: ``python benchmarks/local_activity_benchmark.py [--json] [--quick] [--repeat N]``
(always on a dev server of its own, started and stopped by the script; TEMPORAL_ADDRESS is ignored).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

import _common  # noqa: E402
import temporal_overhead_benchmark as overhead  # noqa: E402  (the chain and hand-written workflows)

GOAL_MS_PER_STEP = 8.0


async def run(quick: bool, repeat: int, as_json: bool) -> dict[str, Any]:
    steps = 5 if quick else 100
    regular = overhead.gecko_chain(steps, name="ChainRegular")
    local = overhead.gecko_chain(steps, name="ChainLocal", local=True)
    warm = overhead.gecko_chain(3, name="ChainWarmUp")
    data = {"topic": "benchmark"}
    times: dict[str, list[float]] = {}
    handles: dict[str, Any] = {}
    async with overhead.Bench.running([regular, local, warm]) as bench:
        cases = {
            "gecko, regular nodes": lambda: bench.gecko(regular, data),
            "gecko, local=True nodes": lambda: bench.gecko(local, data),
            "hand-written, execute_activity": lambda: bench.hand(overhead.HandChain.run, [steps, data, False]),
            "hand-written, execute_local_activity": lambda: bench.hand(overhead.HandChain.run, [steps, data, True]),
        }
        times = {name: [] for name in cases}
        await overhead.warm_up(bench, warm)
        for i in range(repeat):
            order = list(cases) if i % 2 == 0 else list(reversed(cases))  # no side always goes first
            for name in order:
                ms, handle = await cases[name]()
                times[name].append(ms)
                handles[name] = handle
            _common.log(f"  round {i + 1}: " + ", ".join(f"{n} {times[n][-1]:.0f} ms" for n in cases), as_json)
        rows = []
        for name in cases:
            med = sorted(times[name])[len(times[name]) // 2]
            facts = await overhead.history_facts(handles[name])
            rows.append(
                {
                    "case": name,
                    "local": "local" in name,
                    "total_ms": round(med, 1),
                    "ms_per_step": round(med / steps, 2),
                    "events": facts["events"],
                    "workflow_tasks": facts["workflow_tasks"],
                    "runs_ms": [round(t, 1) for t in times[name]],
                }
            )
    by = {r["case"]: r for r in rows}
    gecko_local = by["gecko, local=True nodes"]["ms_per_step"]
    return {
        "benchmark": "local_activity",
        "machine": _common.machine(),
        "quick": quick,
        "repeat": repeat,
        "steps": steps,
        "goal_ms_per_step": GOAL_MS_PER_STEP,
        "rows": rows,
        "speedup_local_vs_regular": round(by["gecko, regular nodes"]["ms_per_step"] / gecko_local, 1),
        "gecko_local_vs_hand_local": round(gecko_local / by["hand-written, execute_local_activity"]["ms_per_step"], 3),
        "meets_goal": gecko_local <= GOAL_MS_PER_STEP,
    }


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    out = [
        f"local_activity_benchmark  {m['date']}  {m['cpus']} CPUs  Python {m['python']}  "
        f"({result['steps']}-step chain of light nodes, median of {result['repeat']} runs)",
        "",
    ]
    out.append(
        _common.table(
            ["case", "total ms", "ms/step", "history events", "workflow tasks"],
            [[r["case"], r["total_ms"], r["ms_per_step"], r["events"], r["workflow_tasks"]] for r in result["rows"]],
        )
    )
    out.append(
        f"\nlocal=True is {result['speedup_local_vs_regular']}x faster per step than regular nodes; "
        f"gecko local / hand-written local = {result['gecko_local_vs_hand_local']:.2f}x; "
        f"goal <= {result['goal_ms_per_step']} ms/step: {'met' if result['meets_goal'] else 'NOT met'}"
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _common.parser(__doc__.splitlines()[0]).parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    _common.log("local_activity_benchmark: starting a dev server and two workers ...", args.json)
    result = asyncio.run(run(args.quick, repeat, args.json))
    _common.emit(result, args.json, lambda: render(result))
    return result


if __name__ == "__main__":
    main()
