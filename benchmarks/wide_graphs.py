"""Graphs of the wide-layer benchmark (imported by its worker process and by the benchmark).

Every node is instant (an async function returning 1), so the numbers are the engine's and
Temporal's cost per node. ``GECKO_BENCH_QUICK=1`` shrinks them for a smoke run.
"""

from __future__ import annotations

import os

from gecko_temporal import Workflow

QUICK = os.environ.get("GECKO_BENCH_QUICK") == "1"
WIDTHS = (300,) if QUICK else (3_000, 10_000)
WINDOW_WIDTH = 300 if QUICK else 3_000  # the layer the window sizes are compared on
WINDOWS = (50, 100) if QUICK else (100, 250, 500, 1_000)
BIG_NODES = 1_000 if QUICK else 10_000


async def leaf(x):
    return 1


def total(parts):
    return sum(parts.values())


def fan(width: int, max_parallel=None, name: str = "") -> Workflow:
    """start -> ``width`` parallel instant nodes -> a join that sums them."""
    wf = Workflow(
        name or f"Wide{width}" + (f"w{max_parallel}" if max_parallel else ""),
        max_steps=width + 10,
        max_parallel=max_parallel,
    )
    wf.add_node("start", lambda x: x).add_node("end", total)
    for i in range(width):
        wf.add_node(f"n{i}", leaf).add_edge("start", f"n{i}").add_edge(f"n{i}", "end")
    return wf.set_entry_point("start")


def chain(nodes: int) -> Workflow:
    """``nodes`` nodes, an entry that jumps to the last four: a big spec, a short run (start latency)."""
    from gecko_temporal import Next

    wf = Workflow(f"Chain{nodes}")
    wf.add_node("entry", lambda x: Next(node=f"c{nodes - 5}", input=x))
    for i in range(nodes - 1):
        wf.add_node(f"c{i}", lambda x: x + 1)
        if i:
            wf.add_edge(f"c{i - 1}", f"c{i}")
    return wf.set_entry_point("entry")


wide = {w: fan(w) for w in WIDTHS}
windows = {m: fan(WINDOW_WIDTH, m) for m in WINDOWS}
big = chain(BIG_NODES)
# the worker serves them by name: `python worker.py wide_graphs:wide_0 wide_graphs:window_0 ...`
for _i, _wf in enumerate(wide.values()):
    globals()[f"wide_{_i}"] = _wf
for _i, _wf in enumerate(windows.values()):
    globals()[f"window_{_i}"] = _wf
NAMES = [f"wide_{i}" for i in range(len(wide))] + [f"window_{i}" for i in range(len(windows))] + ["big"]
