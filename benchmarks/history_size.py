"""History bytes a run writes, against the data it makes (issue 11).

    python benchmarks/history_size.py [--json]

Cases: a 20-step chain of context nodes that each return 50 KB (1 MB of data made; every node
reads ``context.history`` by default), and the README's report example. History bytes are summed
over every run of the session (continue-as-new included); "store" is what the payload store holds.
Run it under different settings, e.g. ``GECKO_PAYLOAD_STORE=none`` for Temporal without a store.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import _common  # noqa: E402

from gecko_temporal import Workflow, connect  # noqa: E402

STEPS, SIZE = 20, 50_000


def chain() -> Workflow:
    wf = Workflow("HistoryChain")

    def node(i: int):
        def run(_, context) -> str:
            assert len(context.history) == i  # step i reads every earlier output
            return f"{i:02d}" + "x" * (SIZE - 2)

        return run

    for i in range(STEPS):
        wf.add_node(f"n{i:02d}", node(i))
        if i:
            wf.add_edge(f"n{i - 1:02d}", f"n{i:02d}")
    return wf.set_entry_point("n00")


async def history_bytes(session_id: str) -> int:
    client = await connect()
    total = 0
    async for run in client.list_workflows(f'WorkflowId = "{session_id}"'):
        history = await client.get_workflow_handle(session_id, run_id=run.run_id).fetch_history()
        total += sum(event.ByteSize() for event in history.events)
    return total


def store_bytes() -> int:
    from gecko_temporal.temporal.store import _embedded_store

    root = os.environ.get("GECKO_PAYLOAD_STORE", "").removeprefix("file://") or _embedded_store
    if not root or root == "none":
        return 0
    return sum(f.stat().st_size for f in Path(root).rglob("*") if f.is_file())


async def measure(cluster: bool) -> list[dict]:
    from examples.report_pipeline import workflow as report

    wf = chain()
    worker = None
    if cluster:  # a named server and a worker of our own: no embedded payload store
        from gecko_temporal import GeckoWorker
        from gecko_temporal.temporal.client import DevServer

        server = DevServer()
        os.environ["TEMPORAL_ADDRESS"] = server.address
        os.environ["GECKO_TASK_QUEUE"] = "history-size"
        worker = GeckoWorker(await connect(), task_queue="history-size")
        worker.serve(wf)
        worker.serve(report)
        await worker.start()
    try:
        return await _measure(wf, report)
    finally:
        if worker is not None:
            await worker.shutdown()
            server.stop()


async def _measure(wf: Workflow, report: Workflow) -> list[dict]:
    rows = []
    handle = await wf.start(None, timeout=300)
    await handle.result()
    await asyncio.sleep(1.0)  # visibility catches up
    made = STEPS * SIZE
    rows.append(
        {
            "case": f"{STEPS}-step chain, {SIZE // 1000} KB outputs",
            "data_made": made,
            "history": await history_bytes(handle.id),
            "store": store_bytes(),
        }
    )
    before = store_bytes()
    with tempfile.TemporaryDirectory() as out:
        handle = await report.start({"folder": str(HERE.parent / "gecko_temporal"), "out": f"{out}/r.md"}, timeout=120)
        await handle.result()
    await asyncio.sleep(1.0)
    rows.append(
        {
            "case": "README report example",
            "data_made": None,
            "history": await history_bytes(handle.id),
            "store": store_bytes() - before,
        }
    )
    return rows


def main() -> int:
    p = _common.parser(__doc__.split("\n\n")[0])
    p.add_argument(
        "--cluster",
        action="store_true",
        help="run on a started dev server with a worker of our own (no embedded payload store)",
    )
    args = p.parse_args()
    rows = asyncio.run(measure(args.cluster))
    settings = {k: v for k, v in os.environ.items() if k.startswith("GECKO_") and k != "GECKO_TASK_QUEUE"}
    settings["mode"] = "cluster" if args.cluster else "embedded"
    if args.json:
        import json

        print(json.dumps({"machine": _common.machine(), "settings": settings, "rows": rows}))
    else:
        print(f"settings: {settings or 'defaults'}")
        for r in rows:
            ratio = f" ({r['history'] / r['data_made']:.1f}x the data)" if r["data_made"] else ""
            print(f"{r['case']}: history {r['history'] / 1e6:.2f} MB{ratio}, store {r['store'] / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
