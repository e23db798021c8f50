"""Big graphs (issue 15): layers wider than Temporal's 2,000 pending activities, and 10,000 nodes.

One dev server of its own, the engine as a ``python worker.py wide_graphs:...`` process (exactly what
a user deploys, 64 threads), and this process as the client. Every node is instant, so the figures
are the cost per node of the engine and of Temporal.

Cases (``--cases``, default all):
  wide      a 3,000-wide and a 10,000-wide layer (start -> N -> join) with the default window:
            nodes/s, workflow-task time per batch (history: started -> completed of each task),
            completions per task, events, runs (continue-as-new), the most activities pending at once
  windows   the 3,000-wide layer with max_parallel 100, 250, 500, 1,000: what the window size costs
  big       a 10,000-node graph: build + compile time, spec bytes (compact vs the full form runs
            carried before), start latency (``await wf.start()``) and time to the result of a short run

Run: ``python benchmarks/wide_benchmark.py [--json] [--quick] [--repeat N] [--cases wide,windows,big]``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import _common  # noqa: E402

CASES = ["wide", "windows", "big"]


async def run_facts(handle: Any) -> dict[str, Any]:
    """What the session's histories (every run) say: events, tasks, their time, pending peak."""
    from temporalio.api.enums.v1 import EventType as E

    closed = (
        E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
        E.EVENT_TYPE_ACTIVITY_TASK_FAILED,
        E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        E.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
    )
    th = handle.temporal_handle
    run_id, runs = th.first_execution_run_id, []
    while run_id:
        runs.append((await th._client.get_workflow_handle(th.id, run_id=run_id).fetch_history()).events)
        last = runs[-1][-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.HasField("workflow_execution_continued_as_new_event_attributes")
            else None
        )
    task_ms, per_task, failures, peak, max_events, max_bytes = [], [], 0, 0, 0, 0
    for events in runs:
        pending, started, completions = 0, None, 0
        max_events = max(max_events, len(events))
        max_bytes = max(max_bytes, sum(e.ByteSize() for e in events))
        for e in events:
            t = e.event_type
            if t == E.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                started = e.event_time.ToDatetime()
            elif t == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and started is not None:
                task_ms.append((e.event_time.ToDatetime() - started).total_seconds() * 1000)
                per_task.append(completions)
                completions = 0
            elif t in (E.EVENT_TYPE_WORKFLOW_TASK_FAILED, E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT):
                failures += 1
            elif t == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                pending += 1
                peak = max(peak, pending)
            elif t in closed:
                pending -= 1
                completions += 1
    task_ms.sort()
    return {
        "runs": len(runs),
        "events_max_run": max_events,
        "history_mb_max_run": round(max_bytes / 2**20, 2),
        "workflow_tasks": len(task_ms),
        "task_ms_median": round(statistics.median(task_ms), 1),
        "task_ms_p95": round(task_ms[int(len(task_ms) * 0.95)], 1),
        "task_ms_max": round(task_ms[-1], 1),
        "completions_per_task": round(statistics.mean(per_task), 1),
        "task_failures_or_timeouts": failures,
        "peak_pending": peak,
    }


async def layer(wf: Any, width: int, window: int, repeat: int, as_json: bool, pids: dict[str, int]) -> dict[str, Any]:
    from cluster_benchmark import cpu_seconds

    walls, facts, cpu = [], None, {}
    for _ in range(repeat):
        before = {k: cpu_seconds(p) for k, p in pids.items()}
        t0 = time.perf_counter()
        handle = await wf.start("go", timeout=1800)
        result = await handle.result()
        walls.append(time.perf_counter() - t0)
        cpu = {f"{k}_cpu_s": round(cpu_seconds(p) - before[k], 1) for k, p in pids.items()}
        assert result == width, f"{wf.name}: join saw {result}, expected {width}"
        facts = {**await run_facts(handle), **cpu}
        _common.log(f"  {wf.name}: {walls[-1]:.1f} s, {width / walls[-1]:.0f} nodes/s, {facts}", as_json)
    wall = statistics.median(walls)
    return {
        "graph": wf.name,
        "width": width,
        "max_parallel": window,
        "wall_s": round(wall, 2),
        "nodes_per_s": round(width / wall),
        **(facts or {}),
    }


async def big_graph(quick: bool, as_json: bool) -> dict[str, Any]:
    import wide_graphs

    from gecko_temporal.core.spec import GraphSpec

    t0 = time.perf_counter()
    wf = wide_graphs.chain(wide_graphs.BIG_NODES)
    built = time.perf_counter()
    spec = wf.compile()
    compiled = time.perf_counter()
    compact = json.dumps(spec.to_plain(), separators=(",", ":"))
    compacted = time.perf_counter()
    GraphSpec.from_plain(json.loads(compact))
    read_back = time.perf_counter()
    full = len(json.dumps(dataclasses.asdict(spec), separators=(",", ":")))
    served = wide_graphs.big  # the worker serves this one (same graph, same name)
    starts, results = [], []
    for _ in range(1 if quick else 3):
        t = time.perf_counter()
        handle = await served.start(0)
        starts.append(time.perf_counter() - t)
        assert await handle.result() == 4
        results.append(time.perf_counter() - t)
    row = {
        "nodes": len(spec.nodes),
        "build_s": round(built - t0, 3),
        "compile_s": round(compiled - built, 3),
        "compact_s": round(compacted - compiled, 3),
        "from_plain_s": round(read_back - compacted, 3),
        "spec_bytes_compact": len(compact),
        "spec_bytes_full": full,
        "bytes_per_node_compact": round(len(compact) / len(spec.nodes), 1),
        "bytes_per_node_full": round(full / len(spec.nodes), 1),
        "start_s": round(statistics.median(starts), 3),
        "start_to_result_s": round(statistics.median(results), 3),
    }
    _common.log(f"  big graph: {row}", as_json)
    return row


async def run(quick: bool, repeat: int, as_json: bool, cases: list[str]) -> dict[str, Any]:
    from cluster_benchmark import Worker

    from gecko_temporal.temporal.client import DevServer

    env = {k: v for k, v in os.environ.items() if k not in ("TEMPORAL_ADDRESS", "GECKO_TASK_QUEUE")}
    env.update(
        PYTHONUNBUFFERED="1",
        GECKO_BENCH_QUICK="1" if quick else "0",
        PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    os.environ["GECKO_BENCH_QUICK"] = env["GECKO_BENCH_QUICK"]
    import wide_graphs

    from gecko_temporal.core.window import DEFAULT_MAX_PARALLEL

    tmp = Path(tempfile.mkdtemp(prefix="gecko-wide-bench-"))
    server = DevServer(log_file=str(tmp / "server.log"))
    queue = f"wide-{uuid.uuid4().hex[:6]}"
    saved = _common.saved_client_env()
    worker = Worker(
        [
            sys.executable,
            str(ROOT / "worker.py"),
            *[f"wide_graphs:{n}" for n in wide_graphs.NAMES],
            "--address",
            server.address,
            "--task-queue",
            queue,
        ],
        tmp / "worker.log",
        env,
    )
    rows: dict[str, Any] = {}
    try:
        worker.wait_ready(180)
        pids = {"server": server.process.pid, "worker": worker.popen.pid}
        os.environ["TEMPORAL_ADDRESS"], os.environ["GECKO_TASK_QUEUE"] = server.address, queue
        if "wide" in cases:
            rows["wide"] = [
                await layer(wf, w, DEFAULT_MAX_PARALLEL, repeat, as_json, pids) for w, wf in wide_graphs.wide.items()
            ]
        if "windows" in cases:
            rows["windows"] = [
                await layer(wf, wide_graphs.WINDOW_WIDTH, m, repeat, as_json, pids)
                for m, wf in wide_graphs.windows.items()
            ]
        if "big" in cases:
            rows["big"] = await big_graph(quick, as_json)
    finally:
        worker.stop()
        server.stop()
        _common.restore_env(saved)
    import temporalio

    return {
        "benchmark": "wide",
        "machine": {**_common.machine(), "temporalio": temporalio.__version__},
        "quick": quick,
        "repeat": repeat,
        "default_max_parallel": DEFAULT_MAX_PARALLEL,
        **rows,
    }


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    out = [
        f"wide_benchmark  {m['date']}  {m['cpus']} CPUs  Python {m['python']}  temporalio {m['temporalio']}",
        "(one dev server, one engine worker process with 64 threads, instant async nodes; median of "
        f"{result['repeat']})",
        "",
    ]
    heads = [
        "layer",
        "max_parallel",
        "wall s",
        "nodes/s",
        "runs",
        "events (max run)",
        "workflow tasks",
        "task ms median / p95 / max",
        "completions per task",
        "peak pending",
        "task failures",
        "CPU s server / worker",
    ]

    def rows(rs):
        return [
            [
                f"{r['width']:,} wide",
                r["max_parallel"],
                r["wall_s"],
                r["nodes_per_s"],
                r["runs"],
                r["events_max_run"],
                r["workflow_tasks"],
                f"{r['task_ms_median']} / {r['task_ms_p95']} / {r['task_ms_max']}",
                r["completions_per_task"],
                r["peak_pending"],
                r["task_failures_or_timeouts"],
                f"{r.get('server_cpu_s', '?')} / {r.get('worker_cpu_s', '?')}",
            ]
            for r in rs
        ]

    if "wide" in result:
        out += [
            "Wide layers (start -> N instant nodes -> join), default window:",
            _common.table(heads, rows(result["wide"])),
            "",
        ]
    if "windows" in result:
        out += ["The same layer through windows of different sizes:", _common.table(heads, rows(result["windows"])), ""]
    if "big" in result:
        b = result["big"]
        out += [
            f"A {b['nodes']:,}-node graph:",
            _common.table(
                [
                    "build s",
                    "compile s",
                    "spec compact",
                    "spec full (before)",
                    "B/node compact / full",
                    "start s",
                    "start to result s",
                ],
                [
                    [
                        b["build_s"],
                        b["compile_s"],
                        f"{b['spec_bytes_compact']:,} B",
                        f"{b['spec_bytes_full']:,} B",
                        f"{b['bytes_per_node_compact']} / {b['bytes_per_node_full']}",
                        b["start_s"],
                        b["start_to_result_s"],
                    ]
                ],
            ),
        ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    args = p.parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    unknown = set(cases) - set(CASES)
    if unknown:
        p.error(f"unknown case(s) {sorted(unknown)}; choose from {CASES}")
    repeat = args.repeat or 1
    result = asyncio.run(run(args.quick, repeat, args.json, cases))
    _common.emit(result, args.json, lambda: render(result))


if __name__ == "__main__":
    main()
