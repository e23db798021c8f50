"""The layered and uneven DAGs as LangGraph ``StateGraph``s and the workflows that run them (``langgraph_worker.py``).

LangGraph runs a graph in super-steps: every node whose predecessors wrote in the last step runs
in the next one, and the step ends when its slowest node does. On the uneven DAG that is what a
layered engine does; an eager one starts each node as soon as its own predecessors are done.

A module of its own: ``temporalio-langgraph`` names node activities after importable module-level
functions, and the worker script runs as ``__main__``.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypedDict

from temporalio import workflow

if not workflow.unsafe.in_sandbox():
    sys.path[:0] = [p for p in (str(Path(__file__).resolve().parent),) if p not in sys.path]
with workflow.unsafe.imports_passed_through():
    import cluster_shapes as shapes
    from langchain_core.runnables import RunnableConfig
    from langgraph.graph import START, StateGraph
    from temporalio.langgraph import graph

TIMEOUT = timedelta(seconds=300)


def _merge(a: dict, b: dict) -> dict:
    return {**a, **b}


class DagState(TypedDict):
    topic: str
    out: Annotated[dict, _merge]


def _predecessors() -> dict[str, list[str]]:
    preds, previous = {}, ["Start"]
    for names in shapes.dag_layers():
        for n in names:
            preds[n] = previous
        previous = names
    return preds


def _uneven_predecessors() -> dict[str, list[str]]:
    preds: dict[str, list[str]] = {}
    ends = []
    for branch in shapes.UNEVEN_BRANCHES.values():
        previous = "Start"
        for name, _ in branch:
            preds[name] = [previous]
            previous = name
        ends.append(previous)
    preds["Join"] = ends
    return preds


PREDECESSORS = _predecessors()
UNEVEN_PREDECESSORS = _uneven_predecessors()
UNEVEN_SECONDS = {name: seconds for branch in shapes.UNEVEN_BRANCHES.values() for name, seconds in branch}


# The plugin names each node's activity after a module-level function (no closures, no lambdas),
# so one function serves every node and finds its name in LangGraph's run config.
def start_node(state: DagState) -> dict[str, Any]:
    return {"out": {"Start": shapes.node_result("Start", {"topic": state["topic"]})}}


def dag_node(state: DagState, config: RunnableConfig) -> dict[str, Any]:
    name = config["metadata"]["node"]
    predecessors = PREDECESSORS[name]
    joined = {p: state["out"][p] for p in predecessors}
    data = joined[predecessors[0]] if len(predecessors) == 1 else joined
    return {"out": {name: shapes.node_result(name, data)}}


def uneven_node(state: DagState, config: RunnableConfig) -> dict[str, Any]:
    name = config["metadata"]["node"]
    predecessors = UNEVEN_PREDECESSORS[name]
    joined = {p: state["out"][p] for p in predecessors}
    data = joined[predecessors[0]] if len(predecessors) == 1 else dict(sorted(joined.items()))
    return {"out": {name: shapes.sleeping_result(name, UNEVEN_SECONDS.get(name, 0.0), data)}}


def build_dag() -> StateGraph:
    g = StateGraph(DagState)
    meta = {"execute_in": "activity", "start_to_close_timeout": TIMEOUT}
    g.add_node("Start", start_node, metadata=dict(meta))
    g.add_edge(START, "Start")
    previous = ["Start"]
    for names in shapes.dag_layers():
        for n in names:
            g.add_node(n, dag_node, metadata={**meta, "node": n})
            g.add_edge(previous if len(previous) > 1 else previous[0], n)
        previous = names
    return g


@workflow.defn(name="LangGraphDag")
class LangGraphDag:
    @workflow.run
    async def run(self, data: Any) -> Any:
        app = graph("dag").compile()
        final = await app.ainvoke({"topic": data.get("topic", ""), "out": {}})
        last = shapes.dag_layers()[-1]
        return {n: final["out"][n] for n in last}


def build_uneven() -> StateGraph:
    g = StateGraph(DagState)
    meta = {"execute_in": "activity", "start_to_close_timeout": TIMEOUT}
    g.add_node("Start", start_node, metadata=dict(meta))
    g.add_edge(START, "Start")
    for name, predecessors in UNEVEN_PREDECESSORS.items():
        g.add_node(name, uneven_node, metadata={**meta, "node": name})
        g.add_edge(predecessors if len(predecessors) > 1 else predecessors[0], name)
    return g


@workflow.defn(name="LangGraphUneven")
class LangGraphUneven:
    @workflow.run
    async def run(self, data: Any) -> Any:
        app = graph("uneven").compile()
        final = await app.ainvoke({"topic": data.get("topic", ""), "out": {}})
        return final["out"]["Join"]
