"""A LangGraph-style research pipeline: classify -> route -> plan -> 12-way Send -> collect -> subgraph.

The shape users moving from LangGraph write first: a classifier whose router picks a branch
(conditional edges with a path map), a planner whose router fans out one ``Research`` instance per
topic (``Send``), state keys combined by reducers (``findings`` extend, ``cost`` add), and a
collector that runs once with every instance's output in Send order, and a ``Summary`` node that
runs another Workflow (``Brief``) as a Temporal child workflow.

Every node execution appends ``<event> <pid>`` to the file named by GECKO_LG_LOG (when set), so a
test run from a separate worker process can count executions across a worker crash.
Odd-numbered ``Research`` instances run GECKO_LG_SLOW seconds (default 0) in short sleeps, even ones
at once: a worker killed while the odd ones run has finished the even ones.
"""

from __future__ import annotations

import os
import time

from gecko_temporal import END, Send, Workflow
from tests.pipelines.procs import read_event_log

TOPICS = 12


def log(event: str) -> None:
    path = os.environ.get("GECKO_LG_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{event} {os.getpid()}\n")


read_log = read_event_log  # (event, pid) per node execution


def classify(question: str, context) -> dict:
    log("classify")
    context.state["question"] = question
    kind = "smalltalk" if question.lower().startswith(("hi", "hello")) else "research"
    return {"question": question, "kind": kind}


def route(decision: dict) -> str:  # LangGraph's path function: it returns a path-map key
    return decision["kind"]


def smalltalk(decision: dict) -> str:
    log("smalltalk")
    return f"Hello! You said: {decision['question']}"


def plan(decision: dict) -> list[str]:
    log("plan")
    return [f"{decision['question']} / aspect {i}" for i in range(TOPICS)]


def fan_out(topics: list[str]) -> list[Send]:
    return [Send("Research", {"topic": t, "index": i}) for i, t in enumerate(topics)]


def research(item: dict, context) -> dict:
    log(f"research-start-{item['index']}")
    deadline = time.monotonic() + float(os.environ.get("GECKO_LG_SLOW", "0")) * (item["index"] % 2)
    while time.monotonic() < deadline:
        time.sleep(0.05)
    context.state["findings"] = [f"finding {item['index']}"]  # a contribution: the reducer extends
    context.state["cost"] = 1 + item["index"] % 3
    log(f"research-end-{item['index']}")
    return {"topic": item["topic"], "summary": f"summary of aspect {item['index']}"}


def collect(reports: list[dict], context) -> dict:
    log("collect")
    return {
        "question": context.state["question"],
        "reports": len(reports),
        "first": reports[0]["summary"],
        "last": reports[-1]["summary"],
        "findings": context.state["findings"],
        "cost": context.state["cost"],
    }


def headline(report: dict) -> dict:
    log("headline")
    return {**report, "headline": f"{report['reports']} reports on {report['question']}"}


brief = Workflow("Brief").add_node("Headline", headline).set_entry_point("Headline")


def build(name: str = "LangGraphStyle", scheduling: str = "layered") -> Workflow:
    wf = Workflow(name, scheduling=scheduling, reducers={"findings": "extend", "cost": "add"})
    wf.add_node("Classify", classify)
    wf.add_node("Smalltalk", smalltalk)
    wf.add_node("Plan", plan)
    wf.add_node("Research", research)
    wf.add_node("Collect", collect)
    wf.add_conditional_edges("Classify", route, {"research": "Plan", "smalltalk": "Smalltalk", "stop": END})
    wf.add_conditional_edges("Plan", fan_out, ["Research"])
    wf.add_edge("Research", "Collect")
    wf.add_node("Summary", brief)  # a subgraph: Brief runs as a child workflow
    wf.add_edge("Collect", "Summary")
    return wf.set_entry_point("Classify")


wf = build()
