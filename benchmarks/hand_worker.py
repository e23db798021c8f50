"""The baseline: the cluster benchmark's graphs hand-written in plain Temporal, as one worker process.

    python benchmarks/hand_worker.py --address HOST:PORT --task-queue Q [--threads 64] [--sticky-timeout S]

What a Temporal user would write without gecko_temporal: one workflow class per graph that calls a
**sync** activity (the same trivial function gecko's nodes run) with ``execute_activity``, a
64-thread activity executor, the SDK's defaults otherwise (no heartbeat timeout, the default retry
policy, a 10 s sticky schedule-to-start timeout unless ``--sticky-timeout`` says otherwise).
Each node starts as soon as its own predecessors are done (``asyncio.gather`` per layer or branch).
Prints ``worker ready`` once polling; SIGTERM/SIGINT stop it.

``GECKO_BENCH_HAND_VARIANT`` (comma-separated) adds one thing gecko_temporal does to this baseline,
so its cost can be measured alone (``cluster_benchmark.py --hand-variant``):
  heartbeat  a 5 s heartbeat timeout and one heartbeat as the activity starts (gecko's nodes beat
             at once, then every timeout/3)
  payload    +270 B per activity input and +55 B per result (gecko's NodeInput/NodeOutput envelope)
  spec       the workflow input padded to the size of gecko's compiled graph (the driver sends it)
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

if not workflow.unsafe.in_sandbox():
    sys.path[:0] = [str(Path(__file__).resolve().parent)]
with workflow.unsafe.imports_passed_through():
    import os

    import cluster_shapes as shapes

TIMEOUT = timedelta(seconds=300)  # gecko's default start-to-close timeout, on both sides
VARIANT = set(filter(None, os.environ.get("GECKO_BENCH_HAND_VARIANT", "").split(",")))
HEARTBEAT = timedelta(seconds=5) if "heartbeat" in VARIANT else None
INPUT_PAD, RESULT_PAD = ("x" * 270, "x" * 55) if "payload" in VARIANT else ("", "")


@activity.defn(name="cluster_node")
def cluster_node(node: str, seconds: float, data: Any, pad: str = "") -> dict[str, Any]:
    if HEARTBEAT:
        activity.heartbeat()
    result = shapes.sleeping_result(node, seconds, data)
    if RESULT_PAD:
        result["pad"] = RESULT_PAD
    return result


def _call(node: str, data: Any, seconds: float = 0.0) -> Any:
    args = [node, seconds, data] + ([INPUT_PAD] if INPUT_PAD else [])
    return workflow.execute_activity(
        cluster_node, args=args, start_to_close_timeout=TIMEOUT, heartbeat_timeout=HEARTBEAT
    )


@workflow.defn(name="HandDag")
class HandDag:
    @workflow.run
    async def run(self, data: Any, spec_pad: Any = None) -> Any:
        start = await _call("Start", data)
        previous: dict[str, Any] = {"Start": start}
        for layer, names in enumerate(shapes.dag_layers()):
            joined = start if layer == 0 else previous  # one predecessor: its output alone
            results = await asyncio.gather(*(_call(n, joined) for n in names))
            previous = dict(zip(names, results))
        return previous


@workflow.defn(name="HandChain")
class HandChain:
    @workflow.run
    async def run(self, data: Any, spec_pad: Any = None) -> Any:
        for i in range(shapes.CHAIN_STEPS):
            data = await _call(f"N{i}", data)
        return data


@workflow.defn(name="HandSession")
class HandSession:
    @workflow.run
    async def run(self, data: Any, spec_pad: Any = None) -> Any:
        start = await _call("Start", data)
        names = shapes.fan_names()
        results = await asyncio.gather(*(_call(n, start) for n in names))
        return await _call("Join", dict(zip(names, results)))


@workflow.defn(name="HandUneven")
class HandUneven:
    @workflow.run
    async def run(self, data: Any, spec_pad: Any = None) -> Any:
        start = await _call("Start", data)

        async def branch(steps: list) -> tuple[str, Any]:
            out = start
            for name, seconds in steps:
                out = await _call(name, out, seconds)
            return steps[-1][0], out

        ends = await asyncio.gather(*(branch(b) for b in shapes.UNEVEN_BRANCHES.values()))
        return await _call("Join", dict(sorted(ends)))


@workflow.defn(name="HandChainsLayered")
class HandChainsLayered:
    """Parallel chains as a Temporal user writes a layered graph: one gather per layer."""

    @workflow.run
    async def run(self, data: Any, spec_pad: Any = None) -> Any:
        start = await _call("Start", data)
        outputs = [start] * shapes.CHAINS
        names: list[str] = []
        for names in shapes.chain_layers():
            outputs = list(await asyncio.gather(*(_call(n, out) for n, out in zip(names, outputs))))
        return await _call("End", dict(zip(names, outputs)))


@workflow.defn(name="HandChainsEach")
class HandChainsEach:
    """Parallel chains with each node started as soon as its own predecessor is done (one
    coroutine per chain): every completion is a workflow task of its own."""

    @workflow.run
    async def run(self, data: Any, spec_pad: Any = None) -> Any:
        start = await _call("Start", data)

        async def chain(c: int) -> tuple[str, Any]:
            out, name = start, ""
            for layer in shapes.chain_layers():
                name = layer[c]
                out = await _call(name, out)
            return name, out

        ends = await asyncio.gather(*(chain(c) for c in range(shapes.CHAINS)))
        return await _call("End", dict(ends))


@workflow.defn(name="HandWarm")
class HandWarm:
    @workflow.run
    async def run(self, data: Any, spec_pad: Any = None) -> Any:
        return await _call("W", data)


WORKFLOWS = [HandDag, HandChain, HandSession, HandUneven, HandChainsLayered, HandChainsEach, HandWarm]


async def serve(address: str, task_queue: str, threads: int, sticky_timeout: float | None) -> None:
    from temporalio.client import Client
    from temporalio.worker import Worker

    client = await Client.connect(address)
    extra: dict[str, Any] = {}
    if sticky_timeout is not None:
        extra["sticky_queue_schedule_to_start_timeout"] = timedelta(seconds=sticky_timeout)
    if HEARTBEAT:  # as gecko's worker: let each beat through
        extra["max_heartbeat_throttle_interval"] = timedelta(seconds=1)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=WORKFLOWS,
            activities=[cluster_node],
            activity_executor=pool,
            max_concurrent_activities=threads,
            **extra,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with worker:
            print(
                f"worker ready: hand-written{' + ' + ','.join(sorted(VARIANT)) if VARIANT else ''} on task queue "
                f"{task_queue} at {address} ({threads} threads)",
                flush=True,
            )
            await stop.wait()
    print("worker stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", required=True)
    p.add_argument("--task-queue", required=True)
    p.add_argument("--threads", type=int, default=64)
    p.add_argument("--sticky-timeout", type=float, default=None, help="seconds (default: the SDK's, 10)")
    args = p.parse_args(argv)
    asyncio.run(serve(args.address, args.task_queue, args.threads, args.sticky_timeout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
