"""Pipelines with people in the loop: context.interrupt(), state edits, rewinds (tests/integration/test_people.py).

Nodes log each execution to the file named by GECKO_PEOPLE_LOG (if set) as ``<event> <pid>`` lines,
so a test can count how often a node ran, also in a worker process it started.
"""

from __future__ import annotations

import asyncio
import os

from gecko_temporal import ExecutionStrategy, Team, Workflow


def log(event: str) -> None:
    path = os.environ.get("GECKO_PEOPLE_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{event} {os.getpid()}\n")


def plan(topic: str, context) -> str:
    log("plan")
    context.state["draft"] = f"a post about {topic} ({len(topic)} letters)"
    return topic


def review(topic: str, context) -> dict:  # sync: runs on the worker's thread pool
    log("review-start")
    draft = context.state["draft"]
    context.state["reviewed"] = True  # void when the node interrupts: it runs again from its start
    verdict = context.interrupt({"question": "publish this draft?", "draft": draft, "step": context.step})
    log("review-answered")
    return {"verdict": verdict, "draft": context.state["draft"]}


def publish(result: dict, context) -> dict:
    log("publish")
    return {**result, "published": result["verdict"] == "yes", "note": context.state.get("note")}


approval = Workflow("PeopleApproval")
approval.add_node("plan", plan).add_node("review", review).add_node("publish", publish)
approval.add_edge("plan", "review").add_edge("review", "publish").set_entry_point("plan")


async def two_questions(name: str, context) -> dict:  # async this time
    log("ask-start")
    first = context.interrupt(f"what is {name}'s title?")
    second = context.interrupt({"title": first, "ask": "and the team?"})
    log("ask-done")
    return {"name": name, "title": first, "team": second}


two = Workflow("PeopleTwoQuestions")
two.add_node("ask", two_questions).set_entry_point("ask")


def timed(x, context) -> str:
    return context.interrupt("anyone?", timeout=1, default="nobody answered")


timeout_default = Workflow("PeopleTimeout").add_node("ask", timed).set_entry_point("ask")


def bad_payload(x, context):
    return context.interrupt({"score": object()})  # (NaN would do: it travels as a tagged float)


bad = Workflow("PeopleBadPayload").add_node("judge", bad_payload, retries=3).set_entry_point("judge")


def member_asks(x, context):
    return context.interrupt("may I?")


async def member_fine(x):
    return "fine"


team = Workflow("PeopleTeam")
team.add_node("crew", Team([member_asks, member_fine], strategy=ExecutionStrategy.ALL))
team.add_node("after", lambda results: [(r.member, r.status, r.error.type if r.error else None) for r in results])
team.add_edge("crew", "after").set_entry_point("crew")


def seeded(x, context) -> dict:
    context.state["count"] = context.state["count"] + x
    return dict(context.state)


seed = Workflow("PeopleSeed").add_node("add", seeded).set_entry_point("add")


def step_a(x, context):
    context.state["trail"] = ["a"]
    return x


async def step_b(x, context):
    await asyncio.sleep(0)
    context.state["trail"] = context.state["trail"] + ["b"]
    return x


def step_c(x, context):
    return {"trail": context.state["trail"] + ["c"], "factor": context.state.get("factor", 1), "x": x}


chain = Workflow("PeopleChain").add_node("a", step_a).add_node("b", step_b).add_node("c", step_c)
chain.add_edge("a", "b").add_edge("b", "c").set_entry_point("a")


def count(n, context):
    from gecko_temporal import Next

    context.state["seen"] = context.state.get("seen", []) + [n]
    return Next("count", n + 1) if n < 4 else {"seen": context.state["seen"], "bonus": context.state.get("bonus")}


loop = Workflow("PeopleLoop", steps_per_run=2).add_node("count", count).set_entry_point("count")


async def hold(x, context):  # runs until the file GECKO_PEOPLE_GATE names exists (a test creates it)
    gate = os.environ["GECKO_PEOPLE_GATE"]
    while not os.path.exists(gate):
        await asyncio.sleep(0.05)
    return "held"


def confirm(x, context) -> dict:
    answer = context.interrupt({"confirm": x})
    return {"answer": answer, "edited": context.state.get("edited")}


eager = Workflow("PeopleEager", scheduling="eager")
eager.add_node("start", lambda x: x).add_node("hold", hold).add_node("confirm", confirm)
eager.add_node("end", lambda parts, context: {**parts, "edited_at_end": context.state.get("edited")})
eager.add_edge("start", "hold").add_edge("start", "confirm").add_edge("hold", "end").add_edge("confirm", "end")
eager.set_entry_point("start")
