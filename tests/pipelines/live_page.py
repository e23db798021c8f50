"""Pipelines for the live page's browser tests (tests/integration/test_live_page.py)."""

from __future__ import annotations

from gecko_temporal import ExecutionStrategy, Send, Team, WaitForInput, Workflow

#: A node name that would run script if a page ever wrote it as HTML.
XSS_NODE = '<img src=x onerror="window.__xss=1">'
PROMPT = "Ship it? <b>yes</b> or no"


def plan(topic: str, context) -> list[str]:
    context.state["topic"] = topic
    return [f"{topic}-{i}" for i in range(3)]


def fan_out(topics: list[str]) -> list[Send]:
    return [Send("Work", t) for t in topics]


def work(topic: str) -> str:
    return topic.upper()


def careful(x) -> str:
    return "careful"


async def quick(x) -> str:
    return "quick"


def shout(x, context) -> dict:
    context.state["shouted"] = True
    return {"done": x}


def explode(x):
    raise ValueError(f"cannot handle {x!r}")


failing = Workflow("LiveFailing").add_node("Start", lambda x: x).add_node("Boom", explode, retries=1)
failing.add_edge("Start", "Boom").set_entry_point("Start")


def never(x) -> str:  # reached only by a jump: stays "not run"
    return "never"


def outline(x) -> str:
    return "outline"


def polish(x) -> str:
    return f"polished {x}"


summary = Workflow("LiveSummary").add_node("Outline", outline).add_node("Polish", polish)
summary.add_edge("Outline", "Polish").set_entry_point("Outline")

shapes = Workflow("LiveShapes")
shapes.add_node("Plan", plan).add_node("Work", work)
shapes.add_node("Pair", Team([careful, quick], ExecutionStrategy.ALL))
shapes.add_node(XSS_NODE, shout).add_node("Never", never)
shapes.add_conditional_edges("Plan", fan_out, ["Work"])
shapes.add_node("Summary", summary)
shapes.add_edge("Work", "Pair").add_edge("Pair", XSS_NODE).add_edge(XSS_NODE, "Summary").set_entry_point("Plan")


def draft(topic: str, context) -> str:
    context.state["draft"] = f"a draft about {topic}"
    return context.state["draft"]


def publish(answer, context) -> dict:
    return {"answer": answer, "note": context.state.get("note")}


def other(x, context) -> dict:
    return {"jumped": x, "note": context.state.get("note")}


ask = Workflow("LiveAsk")
ask.add_node("Draft", draft).add_node("Review", WaitForInput(PROMPT)).add_node("Publish", publish)
ask.add_node("Other", other)
ask.add_edge("Draft", "Review").add_edge("Review", "Publish").set_entry_point("Draft")


def login(data: dict, context) -> str:
    context.state["api_key"] = data["api_key"]
    return "logged in"


def call_api(_, context) -> dict:
    return {"echo": context.state["api_key"]}


secret = Workflow("LiveSecret").add_node("login", login).add_node("call", call_api).add_edge("login", "call")
secret.set_entry_point("login")


def judge(draft, context) -> dict:
    verdict = context.interrupt({"draft": draft, "question": "publish <script>?"})
    return {"verdict": verdict}


interrupting = Workflow("LiveInterrupt").add_node("Write", draft).add_node("Judge", judge)
interrupting.add_edge("Write", "Judge").set_entry_point("Write")


inner_ask = Workflow("LiveInnerAsk").add_node("Prep", draft).add_node("Ask", WaitForInput("inner ok?"))
inner_ask.add_edge("Prep", "Ask").set_entry_point("Prep")
nested = Workflow("LiveNested").add_node("Start", draft).add_node("Inner", inner_ask).add_edge("Start", "Inner")
nested.set_entry_point("Start")
