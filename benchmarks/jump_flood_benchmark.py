"""Valid jumps under load (issue 28, row 11): many waiting runs, each sent many ``gecko_next``
signals, then answered, so one worker process runs every queued jump while more signals arrive.

A busy worker must degrade by slowing down, never by failing a node. Per run the script checks the
result (``hold`` ran once per jump it accepted: a run holds at most 100 jumps from outside and
lists the rest under ``rejected``); over all runs it reports the wall time of the flood and of the
drain, how many runs failed (and why), and from the histories: workflow-task timeouts, activity
timeouts and retried attempts.

Run: ``python benchmarks/jump_flood_benchmark.py [--json] [--quick] [--runs N] [--jumps M]
[--threads T] [--senders S]`` (a dev server and a ``worker.py`` process of its own).
"""

from __future__ import annotations

import asyncio
import os
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


async def flood_runs(address: str, queue: str, runs: int, jumps: int, senders: int, as_json: bool) -> dict[str, Any]:
    """Start ``runs`` waiting runs, send each ``jumps`` jumps, answer them all, wait for the results."""
    from temporalio.client import WorkflowFailureError

    from gecko_temporal.core.spec import RunParams
    from gecko_temporal.protocol import ANSWER_UPDATE, NEXT_SIGNAL, STATE_QUERY
    from gecko_temporal.temporal.client import connect
    from tests.pipelines.jumps import wf

    client = await connect(address)
    spec = wf.compile()
    prefix = f"jumps-{uuid.uuid4().hex[:6]}"
    handles = [
        await client.start_workflow(
            "GeckoWorkflow", RunParams(spec=spec, input='"go"'), id=f"{prefix}-{i}", task_queue=queue
        )
        for i in range(runs)
    ]
    for h in handles:  # every run waits at its gate before the flood
        while "Gate" not in (await h.query(STATE_QUERY))["waiting"]:
            await asyncio.sleep(0.1)
    _common.log(f"{runs} runs wait; sending {runs * jumps} jumps", as_json)
    queue_: asyncio.Queue[Any] = asyncio.Queue()
    for _ in range(jumps):
        for h in handles:
            queue_.put_nowait(h)

    async def sender() -> None:
        while not queue_.empty():
            h = queue_.get_nowait()
            await h.signal(NEXT_SIGNAL, {"node": "hold", "input": None})

    began = time.monotonic()
    await asyncio.gather(*(sender() for _ in range(senders)))
    flooded = time.monotonic() - began
    _common.log(f"flood sent in {flooded:.1f} s; answering", as_json)
    await asyncio.gather(*(h.execute_update(ANSWER_UPDATE, {"node": "Gate", "value": "go"}) for h in handles))

    async def outcome(h: Any) -> Any:
        try:
            return await h.result(follow_runs=True)
        except WorkflowFailureError as exc:
            cause = exc.cause
            while getattr(cause, "cause", None) is not None:
                cause = cause.cause
            return f"FAILED: {exc.cause}: {cause}"

    results = await asyncio.gather(*(outcome(h) for h in handles))
    drained = time.monotonic() - began - flooded
    failed = [r for r in results if isinstance(r, str)]
    from gecko_temporal.core.control import KEEP_JUMPS  # jumps from outside a run holds; it refuses more

    wrong = [r for r in results if not isinstance(r, str) and r != min(jumps, KEEP_JUMPS)]
    facts = await history_facts(client, [h.id for h in handles])
    return {
        "runs": runs,
        "jumps_per_run": jumps,
        "flood_s": round(flooded, 1),
        "drain_s": round(drained, 1),
        "failed_runs": len(failed),
        "wrong_results": len(wrong),
        "failures": sorted(set(failed))[:5],
        **facts,
    }


async def history_facts(client: Any, ids: list[str]) -> dict[str, Any]:
    """Over every run of every session (continue-as-new included): timeouts and retried attempts."""
    from temporalio.api.enums.v1 import EventType, TimeoutType

    f = {"runs_in_all": 0, "events": 0, "task_timeouts": 0, "sticky_timeouts": 0, "activity_timeouts": 0, "retried": 0}
    for wid in ids:
        run_ids = [w.run_id async for w in client.list_workflows(f"WorkflowId = '{wid}'")]
        for rid in run_ids:
            f["runs_in_all"] += 1
            history = await client.get_workflow_handle(wid, run_id=rid).fetch_history()
            for e in history.events:
                f["events"] += 1
                t = e.event_type
                if t == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                    kind = e.workflow_task_timed_out_event_attributes.timeout_type
                    f["sticky_timeouts" if kind == TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START else "task_timeouts"] += 1
                elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
                    f["activity_timeouts"] += 1
                elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                    f["retried"] += e.activity_task_started_event_attributes.attempt > 1
    return f


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    p = _common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--jumps", type=int, default=100)
    p.add_argument("--threads", type=int, default=64, help="the worker's --threads")
    p.add_argument("--senders", type=int, default=20, help="signals in flight at once")
    p.add_argument("--worker-args", default="", help="more worker.py options, e.g. '--sticky-timeout 10'")
    p.add_argument("--address", default=None, help="an existing server (default: start a dev server)")
    args = p.parse_args()
    if args.quick:
        args.runs, args.jumps = 5, 10
    from gecko_temporal.temporal.embedded import DevServer

    server = None if args.address else DevServer()
    address = args.address or server.address  # type: ignore[union-attr]
    queue = f"jumps-{uuid.uuid4().hex[:6]}"
    log = Path(tempfile.mkdtemp(prefix="jump-flood-")) / "worker.out"
    env = {k: v for k, v in os.environ.items() if k not in _common.CLIENT_ENV}
    import subprocess

    with open(log, "ab") as out:
        worker = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "worker.py"),
                "tests.pipelines.jumps:wf",
                "--address",
                address,
                "--task-queue",
                queue,
                "--threads",
                str(args.threads),
                *args.worker_args.split(),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**env, "PYTHONUNBUFFERED": "1"},
        )
    _common.log(f"worker pid {worker.pid}, log {log}", args.json)
    try:
        deadline = time.monotonic() + 60
        while "worker ready" not in log.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)
        result = asyncio.run(flood_runs(address, queue, args.runs, args.jumps, args.senders, args.json))
        result["worker_cpu_s"] = round(cpu_seconds(worker.pid), 1)
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        if server is not None:
            server.stop()
    result = {"machine": _common.machine(), "worker_log": str(log), **result}
    keys = [
        "runs",
        "jumps_per_run",
        "flood_s",
        "drain_s",
        "failed_runs",
        "wrong_results",
        "task_timeouts",
        "sticky_timeouts",
        "activity_timeouts",
        "retried",
        "runs_in_all",
        "events",
    ]
    _common.emit(
        result,
        args.json,
        lambda: (
            _common.table(keys, [[result[k] for k in keys]])
            + ("\nfailures: " + "\n".join(result["failures"]) if result["failures"] else "")
        ),
    )


if __name__ == "__main__":
    main()
