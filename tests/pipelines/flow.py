"""Pipelines for flow control tests with workers in their own processes (tests/integration/test_flow_limits.py).

Every node execution appends ``<event> <label> <pid> <unix time>`` to the file GECKO_FLOW_LOG names,
so a test can see when each node started, in which process, and for which tenant.
"""

from __future__ import annotations

import os
import time

from gecko_temporal import Budget, Limit, Workflow, WorkflowContext, step


def log(event: str, label: object) -> None:
    with open(os.environ["GECKO_FLOW_LOG"], "a") as f:
        f.write(f"{event} {label} {os.getpid()} {time.time():.3f}\n")


def read_log(path: str) -> list[tuple[str, str, int, float]]:
    try:
        with open(path) as f:
            return [(e, label, int(p), float(t)) for e, label, p, t in (line.split() for line in f if line.strip())]
    except FileNotFoundError:
        return []


# -- a rate: every run's "call" goes through one limit of 2 starts per second ---------------------
@step(limit="api")
def call(label: str) -> str:
    log("call", label)
    return label


rated = Workflow("FlowRated", limits=[Limit("api", per_second=2)])
rated.add_node("call", call).set_entry_point("call")


# -- fairness: tenants share one limit of 4 per second ---------------------------------------------
@step(limit="shared")
def shared(label: str) -> str:
    log("shared", label)
    return label


fair = Workflow("FlowFair", limits=[Limit("shared", per_second=4)])
fair.add_node("shared", shared).set_entry_point("shared")


# -- concurrency: at most 2 "hold" nodes at once per worker process --------------------------------
@step(limit="gpu", heartbeat_timeout=2.0)
def hold(label: str) -> str:
    log("hold-start", label)
    deadline = time.monotonic() + float(os.environ.get("GECKO_FLOW_HOLD", "2"))
    while time.monotonic() < deadline:
        time.sleep(0.05)
    log("hold-end", label)
    return label


slots = Workflow("FlowSlots", limits=[Limit("gpu", concurrency=2)])
slots.add_node("hold", hold).set_entry_point("hold")


# -- a budget: each node reports 1,000 tokens ------------------------------------------------------
def spend(n: int, context: WorkflowContext) -> int:
    log("spend", context.node)
    context.report_usage(input_tokens=700, output_tokens=300, cost_usd=0.01)
    return n + 1


budgeted = Workflow("FlowBudget", budget=Budget(tokens=1_500))
budgeted.add_node("a", spend).add_node("b", spend).add_node("c", spend)
budgeted.add_edge("a", "b").add_edge("b", "c").set_entry_point("a")


# -- tokens: every run's "ask" goes through one limit of 300 tokens a minute -----------------------
@step(limit="llm", heartbeat_timeout=2.0)
def ask(label: str, context: WorkflowContext) -> str:
    log("ask", label)
    deadline = time.monotonic() + float(os.environ.get("GECKO_FLOW_HOLD", "0"))
    while time.monotonic() < deadline:
        time.sleep(0.05)
    context.report_usage(input_tokens=60, output_tokens=int(os.environ.get("GECKO_FLOW_TOKENS", "40")))
    log("ask-end", label)
    return label


tokens = Workflow("FlowTokens", limits=[Limit("llm", tokens_per_minute=300, estimate_tokens=100)])
tokens.add_node("ask", ask).set_entry_point("ask")
# one call reserves the whole minute: a worker killed during it holds the minute until it ends
hog = Workflow("FlowTokenHog", limits=[Limit("llm", tokens_per_minute=300, estimate_tokens=300)])
hog.add_node("ask", ask).set_entry_point("ask")
