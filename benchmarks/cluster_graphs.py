"""The cluster benchmark's graphs as gecko_temporal Workflows, served by ``worker.py``.

``python worker.py cluster_graphs:dag cluster_graphs:chain cluster_graphs:session cluster_graphs:uneven``
(with ``benchmarks/`` importable) serves them; the driver starts runs of the same objects. Every
node is a plain sync function, as the seed's nodes mostly are. ``dag_eager`` and ``uneven_eager``
are the same shapes built with ``scheduling="eager"`` (a node starts as soon as its inputs are
ready), under workflow names of their own so one worker serves both modes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path[:0] = [p for p in (str(Path(__file__).resolve().parent),) if p not in sys.path]

import cluster_shapes as shapes  # noqa: E402

from gecko_temporal import Workflow  # noqa: E402


def _node(name: str, seconds: float = 0.0) -> Callable[[Any], dict[str, Any]]:
    def node(data: Any) -> dict[str, Any]:
        return shapes.sleeping_result(name, seconds, data)

    node.__name__ = name.replace(".", "_")
    return node


def build_dag(scheduling: str = "layered") -> Workflow:
    name = "ClusterDag" if scheduling == "layered" else "ClusterDagEager"
    wf = Workflow(name, max_steps=shapes.LAYERS * shapes.WIDTH + 1, scheduling=scheduling)
    wf.add_node("Start", _node("Start"))
    previous = ["Start"]
    for names in shapes.dag_layers():
        for n in names:
            wf.add_node(n, _node(n))
            for p in previous:
                wf.add_edge(p, n)
        previous = names
    return wf.set_entry_point("Start")


def build_chain() -> Workflow:
    wf = Workflow("ClusterChain", max_steps=shapes.CHAIN_STEPS)
    for i in range(shapes.CHAIN_STEPS):
        wf.add_node(f"N{i}", _node(f"N{i}"))
        if i:
            wf.add_edge(f"N{i - 1}", f"N{i}")
    return wf.set_entry_point("N0")


def build_session() -> Workflow:
    wf = Workflow("ClusterSession").add_node("Start", _node("Start")).add_node("Join", _node("Join"))
    for n in shapes.fan_names():
        wf.add_node(n, _node(n)).add_edge("Start", n).add_edge(n, "Join")
    return wf.set_entry_point("Start")


def build_chains(scheduling: str = "layered") -> Workflow:
    name = "ClusterChains" if scheduling == "layered" else "ClusterChainsEager"
    wf = Workflow(name, max_steps=shapes.CHAINS * shapes.CHAIN_LENGTH + 2, scheduling=scheduling)
    wf.add_node("Start", _node("Start")).add_node("End", _node("End"))
    previous = ["Start"] * shapes.CHAINS
    for names in shapes.chain_layers():
        for before, n in zip(previous, names):
            wf.add_node(n, _node(n)).add_edge(before, n)
        previous = names
    for n in previous:
        wf.add_edge(n, "End")
    return wf.set_entry_point("Start")


def build_uneven(scheduling: str = "layered") -> Workflow:
    name = "ClusterUneven" if scheduling == "layered" else "ClusterUnevenEager"
    wf = Workflow(name, scheduling=scheduling).add_node("Start", _node("Start")).add_node("Join", _node("Join"))
    for branch in shapes.UNEVEN_BRANCHES.values():
        previous = "Start"
        for name, seconds in branch:
            wf.add_node(name, _node(name, seconds)).add_edge(previous, name)
            previous = name
        wf.add_edge(previous, "Join")
    return wf.set_entry_point("Start")


dag, chain, session, uneven, chains = build_dag(), build_chain(), build_session(), build_uneven(), build_chains()
dag_eager, uneven_eager, chains_eager = build_dag("eager"), build_uneven("eager"), build_chains("eager")
warm = Workflow("ClusterWarm").add_node("W", _node("W")).set_entry_point("W")
ALL = ["dag", "chain", "session", "uneven", "chains", "dag_eager", "uneven_eager", "chains_eager", "warm"]
