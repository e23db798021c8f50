"""A worker process that runs only node activities (no workflows) of one graph:

    python -m tests.pipelines.node_worker module:wf ADDRESS TASK_QUEUE

Split deployments (workflow workers apart from activity workers) are plain Temporal; tests use it
to make every node run in a process where its run's workflow does not live."""

from __future__ import annotations

import asyncio
import importlib
import sys

from temporalio.worker import Worker

from gecko_temporal.temporal.activities import NodeRunner
from gecko_temporal.temporal.client import connect


async def main(spec: str, address: str, queue: str) -> None:
    module, _, name = spec.partition(":")
    wf = getattr(importlib.import_module(module), name)
    runner = NodeRunner(max_threads=8)
    runner.register(wf)
    client = await connect(address)
    worker = Worker(client, task_queue=queue, activities=[runner.activity(), runner.yield_activity()])
    print("activity worker ready", flush=True)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
