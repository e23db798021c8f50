"""The peer: the layered and uneven DAGs as a LangGraph ``StateGraph`` on Temporal (``temporalio-langgraph``).

    python benchmarks/langgraph_worker.py --address HOST:PORT --task-queue Q [--threads 64]

Optional: it needs ``pip install temporalio-langgraph`` (which brings ``langgraph``); the driver
skips this row when ``temporalio.langgraph`` does not import. Every node runs as a Temporal activity
(``execute_in="activity"``) with the same trivial sync function and start-to-close timeout as the
other two sides; LangGraph's own semantics decide the rest (each node receives the whole state,
a node with several predecessors waits for all of them: ``add_edge([...], node)``).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio import workflow

if not workflow.unsafe.in_sandbox():
    sys.path[:0] = [str(Path(__file__).resolve().parent)]
with workflow.unsafe.imports_passed_through():
    from langgraph_dag import LangGraphDag, LangGraphUneven, build_dag, build_uneven
    from temporalio.langgraph import LangGraphPlugin


async def serve(address: str, task_queue: str, threads: int) -> None:
    from temporalio.client import Client
    from temporalio.worker import Worker

    client = await Client.connect(address)
    plugin = LangGraphPlugin(graphs={"dag": build_dag(), "uneven": build_uneven()})
    with ThreadPoolExecutor(max_workers=threads) as pool:
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[LangGraphDag, LangGraphUneven],
            plugins=[plugin],
            activity_executor=pool,
            max_concurrent_activities=threads,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with worker:
            print(f"worker ready: LangGraph on task queue {task_queue} at {address} ({threads} threads)", flush=True)
            await stop.wait()
    print("worker stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", required=True)
    p.add_argument("--task-queue", required=True)
    p.add_argument("--threads", type=int, default=64)
    args = p.parse_args(argv)
    asyncio.run(serve(args.address, args.task_queue, args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
