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
        stuck = Workflow("Stuck").add_node("slow", lambda x: time.sleep(12)).set_entry_point("slow")
        handle = await stuck.start()
        await asyncio.sleep(1.0)
        began = time.monotonic()
        await handle.cancel()
        try:
            await handle.result()
        except GeckoError:
            pass
        await asyncio.sleep(3.0)  # the cancellation reaches the node with its next heartbeat
        quick = Workflow("Quick").add_node("a", lambda x: x + 1).add_node("b", lambda x: x * 2)
        result = await quick.add_edge("a", "b").set_entry_point("a").execute(1, timeout=30)
        print(json.dumps({"result": result, "seconds": time.monotonic() - began}), flush=True)
        os._exit(0)  # not waiting for the sleeping thread

    asyncio.run(main())
""")


def test_a_cancelled_node_in_a_long_c_call_does_not_freeze_a_traced_worker(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TEMPORAL_ADDRESS"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["result"] == 4
    # From the cancel: 3 s of waiting plus the quick run. Frozen, everything (this script's own loop
    # too) waits for the 12 s sleep to end, 11 s after the cancel.
    assert report["seconds"] < 7.5, f"cancel to result took {report['seconds']:.1f} s: the process was frozen"
