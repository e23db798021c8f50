"""A three-node pipeline whose nodes log each execution, to count runs across worker crashes.

Every execution appends ``<event> <pid> <unix time>`` to the file named by GECKO_CRASH_LOG, so a
test can tell which process ran a node, how often, and when a retried node started again.
``slow`` runs GECKO_CRASH_SLOW seconds (default 3) in short sleeps: long enough to kill a worker
while it is in flight.
"""

from __future__ import annotations

import os
import time

from gecko_temporal import Workflow, step


def log(event: str) -> None:
    with open(os.environ["GECKO_CRASH_LOG"], "a") as f:
        f.write(f"{event} {os.getpid()} {time.time():.3f}\n")


def read_log(path: str) -> list[tuple[str, int, float]]:
    try:
        with open(path) as f:
            return [(e, int(p), float(t)) for e, p, t in (line.split() for line in f if line.strip())]
    except FileNotFoundError:
        return []


@step(name="prepare")
def prepare(n: int, context) -> int:
    log("prepare")
    context.state["prepared"] = True
    return n + 1


@step(name="slow")
def slow(n: int, context) -> int:
    log("slow-start")
    deadline = time.monotonic() + float(os.environ.get("GECKO_CRASH_SLOW", "3"))
    while time.monotonic() < deadline:
        time.sleep(0.05)
    log("slow-end")
    context.state["slow"] = n
    return n * 10


@step(name="finish")
def finish(n: int, context) -> dict:
    log("finish")
    return {"result": n, "state": dict(context.state)}


wf = Workflow("CrashPipeline")
wf.add_node("prepare", prepare).add_node("slow", slow).add_node("finish", finish)
wf.add_edge("prepare", "slow").add_edge("slow", "finish").set_entry_point("prepare")
