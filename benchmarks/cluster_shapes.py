"""The graphs of the cluster benchmark, as plain data both sides build from (no gecko, no Temporal).

The engine's worker (``worker.py cluster_graphs:...``) and the hand-written worker
(``hand_worker.py``) each build the same shapes from here and run the same trivial **sync** node
function, so the only difference between the two sides is the orchestration. ``GECKO_BENCH_QUICK=1``
in the environment selects tiny sizes (a smoke test): the driver sets it for every process it starts.
"""

from __future__ import annotations

import os
import time
from typing import Any

QUICK = os.environ.get("GECKO_BENCH_QUICK") == "1"

# layered DAG: an entry node, then LAYERS layers of WIDTH nodes, each joining all of the layer before
LAYERS, WIDTH = (2, 3) if QUICK else (10, 20)
CHAIN_STEPS = 5 if QUICK else 100
# parallel chains: Start fans out to CHAINS chains of CHAIN_LENGTH nodes, End joins them (issue 29's
# layered shape: 10 layers of 20 after Start)
CHAINS, CHAIN_LENGTH = (3, 2) if QUICK else (20, 10)
# one session: start -> FAN parallel nodes -> join (the concurrent-sessions case runs many at once)
FAN = 3 if QUICK else 8
# the uneven DAG: branches of different lengths and speeds that meet in one join. A layer-by-layer
# engine waits for the slowest node of each layer before the next layer starts; a hand-written
# workflow starts each node as soon as its own predecessors are done.
# The shape (#10): one slow node (3 s) beside a chain of ten 0.3 s nodes, joined at the end.
# Layered (super-step) engines take about slow + chain = 6 s; eager ones about max(slow, chain) = 3 s.
SLOW_S = 0.3 if QUICK else 3.0
CHAIN_NODE_S = 0.03 if QUICK else 0.3
UNEVEN_BRANCHES: dict[str, list[tuple[str, float]]] = {
    "slow": [("S1", SLOW_S)],
    "chain": [(f"C{i}", CHAIN_NODE_S) for i in range(1, 4 if QUICK else 11)],
}


def node_result(node: str, data: Any) -> dict[str, Any]:
    """The work every node does on both sides: trivial, so the numbers are orchestration cost."""
    return {"node": node, "inputs": len(data) if isinstance(data, dict) else 0}


def sleeping_result(node: str, seconds: float, data: Any) -> dict[str, Any]:
    if seconds:
        time.sleep(seconds)  # sync work that holds a worker thread, as a slow tool call would
    return node_result(node, data)


def dag_layers() -> list[list[str]]:
    return [[f"L{layer}.{j}" for j in range(WIDTH)] for layer in range(LAYERS)]


def fan_names() -> list[str]:
    return [f"P{j}" for j in range(FAN)]


def chain_layers() -> list[list[str]]:
    """The parallel chains' nodes, layer by layer: ``C{chain}.{position}``."""
    return [[f"C{c}.{i}" for c in range(CHAINS)] for i in range(CHAIN_LENGTH)]
