"""What gecko_temporal adds to what Temporal itself costs, on one dev server in one process.

The same graphs run two ways, alternately, against one Temporal dev server: through gecko_temporal (one GeckoWorkflow interpreting the graph, one
dynamic activity dispatching to the node functions) and through hand-written Temporal workflows
that call an equivalent activity directly. The graphs: a 10x20 layered DAG (an entry node, then 10
layers of 20 nodes, each node joining all 20 of the layer before) and a 100-step chain. Nodes are
light async functions that return a small dict, so the numbers are orchestration cost.

Beside the wall time it reads each run's history: events, workflow tasks and the bytes of activity
inputs and results, which is where an interpreter usually pays more than hand-written code.

Run: ``python benchmarks/temporal_overhead_benchmark.py [--json] [--quick] [--repeat N]``
(always on a dev server of its own, started and stopped by the script; TEMPORAL_ADDRESS is ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

if not workflow.unsafe.in_sandbox():  # the sandbox re-imports this module with the path already set
    sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
with workflow.unsafe.imports_passed_through():
    import _common

    from gecko_temporal import Workflow

GOAL = 1.10
TIMEOUT = timedelta(seconds=300)  # gecko's default start-to-close timeout, used on both sides


# -- the node work, shared by both sides ------------------------------------------------------------
def node_result(node: str, data: Any) -> dict[str, Any]:
    return {"node": node, "inputs": len(data) if isinstance(data, dict) else 0}


def _gecko_node(name: str) -> Any:
    async def node(data: Any) -> dict[str, Any]:
        return node_result(name, data)

    node.__name__ = name
    return node


# -- gecko_temporal graphs -----------------------------------------------------------------------
def gecko_dag(layers: int, width: int, name: str = "OverheadDag") -> Workflow:
    wf = Workflow(name, max_steps=layers * width + 1)
    wf.add_node("Start", _gecko_node("Start"))
    previous = ["Start"]
    for layer in range(layers):
        names = [f"L{layer}.{j}" for j in range(width)]
        for n in names:
            wf.add_node(n, _gecko_node(n))
            for p in previous:
                wf.add_edge(p, n)
        previous = names
    return wf.set_entry_point("Start")


def gecko_chain(steps: int, name: str = "OverheadChain", **options: Any) -> Workflow:
    wf = Workflow(name, max_steps=steps)
    for i in range(steps):
        wf.add_node(f"N{i}", _gecko_node(f"N{i}"), **options)
        if i:
            wf.add_edge(f"N{i - 1}", f"N{i}")
    return wf.set_entry_point("N0")


# -- the same graphs, hand-written in Temporal -----------------------------------------------------
@activity.defn(name="bench_light")
async def light(node: str, data: Any) -> dict[str, Any]:
    return node_result(node, data)


@workflow.defn(name="HandDag")
class HandDag:
    @workflow.run
    async def run(self, layers: int, width: int, data: Any) -> Any:
        out = await workflow.execute_activity(light, args=["Start", data], start_to_close_timeout=TIMEOUT)
        previous = {"Start": out}
        for layer in range(layers):
            names = [f"L{layer}.{j}" for j in range(width)]
            joined = previous["Start"] if layer == 0 else previous  # one predecessor: its output alone
            results = await asyncio.gather(
                *(workflow.execute_activity(light, args=[n, joined], start_to_close_timeout=TIMEOUT) for n in names)
            )
            previous = dict(zip(names, results))
        return previous


@workflow.defn(name="HandChain")
class HandChain:
    @workflow.run
    async def run(self, steps: int, data: Any, local: bool) -> Any:
        for i in range(steps):
            if local:
                data = await workflow.execute_local_activity(
                    light, args=[f"N{i}", data], start_to_close_timeout=TIMEOUT
                )
            else:
                data = await workflow.execute_activity(light, args=[f"N{i}", data], start_to_close_timeout=TIMEOUT)
        return data


# -- measuring -------------------------------------------------------------------------------------
async def history_facts(handle: Any) -> dict[str, Any]:
    """Events, workflow tasks and activity payload bytes of one finished run."""
    from temporalio.api.enums.v1 import EventType

    history = await handle.fetch_history()
    facts = {
        "events": 0,
        "workflow_tasks": 0,
        "activities": 0,
        "input_bytes": 0,
        "result_bytes": 0,
        "workflow_input_bytes": 0,
    }
    for e in history.events:
        facts["events"] += 1
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            facts["workflow_tasks"] += 1
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            facts["activities"] += 1
            facts["input_bytes"] += sum(p.ByteSize() for p in e.activity_task_scheduled_event_attributes.input.payloads)
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            facts["result_bytes"] += sum(
                p.ByteSize() for p in e.activity_task_completed_event_attributes.result.payloads
            )
        elif e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:  # a local activity
            facts["activities"] += 1
            facts["result_bytes"] += sum(
                p.ByteSize() for v in e.marker_recorded_event_attributes.details.values() for p in v.payloads
            )
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            facts["workflow_input_bytes"] = sum(
                p.ByteSize() for p in e.workflow_execution_started_event_attributes.input.payloads
            )
    facts["input_bytes_per_activity"] = round(facts["input_bytes"] / max(1, facts["activities"]))
    facts["result_bytes_per_activity"] = round(facts["result_bytes"] / max(1, facts["activities"]))
    return facts


class Bench:
    """One dev server, one client, and two workers on this event loop: gecko's and the hand-written one.

    Both workers run in this process on this loop with the same activity limit, so neither side
    gets a thread or a loop of its own. gecko_temporal runs go through ``wf.start`` exactly as a
    user's do, pointed at this server and worker by TEMPORAL_ADDRESS and GECKO_TASK_QUEUE.
    """

    def __init__(self, client: Any, hand_queue: str) -> None:
        self.client = client
        self.hand_queue = hand_queue

    @staticmethod
    @contextlib.asynccontextmanager
    async def running(graphs: list[Workflow]) -> AsyncIterator[Bench]:
        from temporalio.client import Client
        from temporalio.worker import Worker

        from gecko_temporal import DevServer, GeckoWorker

        server = DevServer()
        saved = _common.saved_client_env()
        gecko_worker = None
        try:
            gecko_queue, hand_queue = f"gecko-bench-{uuid.uuid4().hex[:8]}", f"hand-bench-{uuid.uuid4().hex[:8]}"
            os.environ["TEMPORAL_ADDRESS"], os.environ["GECKO_TASK_QUEUE"] = server.address, gecko_queue
            client = await Client.connect(server.address)
            gecko_worker = GeckoWorker(client, task_queue=gecko_queue)
            for wf in graphs:
                gecko_worker.serve(wf)
            await gecko_worker.start()
            hand_worker = Worker(
                client,
                task_queue=hand_queue,
                workflows=[HandDag, HandChain],
                activities=[light],
                max_concurrent_activities=gecko_worker.runner.max_threads,
            )
            async with hand_worker:
                yield Bench(client, hand_queue)
        finally:
            if gecko_worker is not None:
                await gecko_worker.shutdown()
            server.stop()
            _common.restore_env(saved)

    async def gecko(self, wf: Workflow, data: Any) -> tuple[float, Any]:
        t0 = time.perf_counter()
        handle = await wf.start(data)
        await handle.result()
        return (time.perf_counter() - t0) * 1000, handle.temporal_handle

    async def hand(self, run: Any, args: list[Any]) -> tuple[float, Any]:
        t0 = time.perf_counter()
        handle = await self.client.start_workflow(
            run, args=args, id=f"hand-{uuid.uuid4().hex[:12]}", task_queue=self.hand_queue
        )
        await handle.result()
        return (time.perf_counter() - t0) * 1000, handle


async def warm_up(bench: Bench, warm: Workflow) -> None:
    """One small untimed run per side: worker pollers, sandbox and connections are warm after it."""
    await bench.gecko(warm, None)
    await bench.hand(HandChain.run, [3, None, False])


async def compare(
    bench: Bench, label: str, gecko_run: Any, hand_run: Any, repeat: int, as_json: bool
) -> dict[str, Any]:
    """Alternate the two sides ``repeat`` times (who goes first alternates too); medians and ratio."""
    g_times, h_times = [], []
    g_handle = h_handle = None
    for i in range(repeat):
        first, second = (gecko_run, hand_run) if i % 2 == 0 else (hand_run, gecko_run)
        a = await first()
        b = await second()
        (g, h) = (a, b) if first is gecko_run else (b, a)
        g_times.append(g[0])
        h_times.append(h[0])
        g_handle, h_handle = g[1], h[1]
        _common.log(f"  {label}: gecko {g[0]:.0f} ms, hand-written {h[0]:.0f} ms", as_json)
    g_med, h_med = sorted(g_times)[len(g_times) // 2], sorted(h_times)[len(h_times) // 2]
    return {
        "graph": label,
        "gecko_ms": round(g_med, 1),
        "hand_ms": round(h_med, 1),
        "ratio": round(g_med / h_med, 3),
        "meets_goal": g_med / h_med <= GOAL,
        "gecko_runs_ms": [round(t, 1) for t in g_times],
        "hand_runs_ms": [round(t, 1) for t in h_times],
        "gecko_history": await history_facts(g_handle),
        "hand_history": await history_facts(h_handle),
    }


async def run(quick: bool, repeat: int, as_json: bool) -> dict[str, Any]:
    layers, width, steps = (2, 3, 5) if quick else (10, 20, 100)
    dag, chain, warm = gecko_dag(layers, width), gecko_chain(steps), gecko_chain(3, name="OverheadWarmUp")
    data = {"topic": "benchmark"}
    async with Bench.running([dag, chain, warm]) as bench:
        await warm_up(bench, warm)
        rows = [
            await compare(
                bench,
                f"{layers}x{width} layered DAG ({layers * width + 1} activities)",
                lambda: bench.gecko(dag, data),
                lambda: bench.hand(HandDag.run, [layers, width, data]),
                repeat if quick else repeat + 2,
                as_json,
            ),  # the DAG is noisier and 5x shorter
            await compare(
                bench,
                f"{steps}-step chain",
                lambda: bench.gecko(chain, data),
                lambda: bench.hand(HandChain.run, [steps, data, False]),
                repeat,
                as_json,
            ),
        ]
    return {
        "benchmark": "temporal_overhead",
        "machine": _common.machine(),
        "quick": quick,
        "repeat": repeat,
        "goal_ratio": GOAL,
        "rows": rows,
        "meets_goal": all(r["meets_goal"] for r in rows),
    }


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    out = [
        f"temporal_overhead_benchmark  {m['date']}  {m['cpus']} CPUs  Python {m['python']}  "
        f"(median of {result['repeat']} alternating runs, DAG {result['repeat'] + 2 * (not result['quick'])}; "
        f"goal ratio <= {result['goal_ratio']})",
        "",
    ]
    out.append(
        _common.table(
            ["graph", "gecko ms", "hand-written ms", "ratio", "goal met"],
            [
                [r["graph"], r["gecko_ms"], r["hand_ms"], f"{r['ratio']:.2f}x", "yes" if r["meets_goal"] else "NO"]
                for r in result["rows"]
            ],
        )
    )
    out.append("\nHistory of one run each (events, workflow tasks, bytes per activity input / result):\n")
    hist_rows = []
    for r in result["rows"]:
        for side in ("gecko", "hand"):
            h = r[f"{side}_history"]
            hist_rows.append(
                [
                    r["graph"],
                    "gecko" if side == "gecko" else "hand-written",
                    h["events"],
                    h["workflow_tasks"],
                    h["activities"],
                    h["input_bytes_per_activity"],
                    h["result_bytes_per_activity"],
                    h["workflow_input_bytes"],
                ]
            )
    out.append(
        _common.table(
            [
                "graph",
                "side",
                "events",
                "workflow tasks",
                "activities",
                "input B/activity",
                "result B/activity",
                "workflow input B",
            ],
            hist_rows,
        )
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = _common.parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    _common.log("temporal_overhead_benchmark: starting a dev server and two workers ...", args.json)
    result = asyncio.run(run(args.quick, repeat, args.json))
    _common.emit(result, args.json, lambda: render(result))
    return result


if __name__ == "__main__":
    # Import this file as a module, so the sandbox can re-import the hand-written workflows by name.
    import temporal_overhead_benchmark

    temporal_overhead_benchmark.main()
