"""A worker running under a tracer (coverage, a debugger, a profiler) stays responsive while a
cancelled sync node sits in a long C call.

On CPython 3.11 a pending async exception (how a cancelled sync node is stopped) spins every
traced thread at its next Python call until the target thread takes it, which a thread inside
time.sleep(12) does only when the sleep ends: the worker's event loop froze, heartbeats stopped and healthy
nodes of other runs timed out. This runs in a subprocess with a tracer installed on every thread.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import asyncio, json, os, sys, threading, time

    def tracer(frame, event, arg):
        return tracer

    threading.settrace(tracer)
    sys.settrace(tracer)

    from gecko_temporal import GeckoError, Workflow

    async def main():
        sleep_ended = threading.Event()

        def slow(x):
            try:
                time.sleep(30)  # one long C call
            finally:
                sleep_ended.set()

        stuck = Workflow("Stuck").add_node("slow", slow).set_entry_point("slow")
        handle = await stuck.start()
        await asyncio.sleep(1.0)
        await handle.cancel()
        try:
            await handle.result()
        except GeckoError:
            pass
        await asyncio.sleep(3.0)  # the cancellation reaches the node with its next heartbeat
        quick = Workflow("Quick").add_node("a", lambda x: x + 1).add_node("b", lambda x: x * 2)
        result = await quick.add_edge("a", "b").set_entry_point("a").execute(1, timeout=30)
        print(json.dumps({"result": result, "sleep_ended": sleep_ended.is_set()}), flush=True)
        os._exit(0)  # not waiting for the sleeping thread

    asyncio.run(main())
""")


def test_a_cancelled_node_in_a_long_c_call_does_not_freeze_a_traced_worker(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TEMPORAL_ADDRESS"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["result"] == 4
    # An order of events, not a stopwatch: frozen, everything (this script's own loop too) waits for
    # the node's 30 s sleep to end, so the quick run could only finish after it.
    assert report["sleep_ended"] is False, "the quick run finished only after the sleep: the process was frozen"
