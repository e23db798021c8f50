"""Version 2 of ``deploy_v1.py``: A's body changed, B renamed to Finish, the Team's members
reordered and one renamed (m1 -> first), and a node Extra added after Finish."""

from __future__ import annotations

from gecko_temporal import Team, WaitForInput, Workflow, step

TAG = "v2"


def start(topic: str, context) -> str:
    context.state["trail"] = [f"A-{TAG}", "A2-changed"]
    return topic


@step(name="first")
def first(topic: str) -> str:
    return f"first-{TAG}"


@step(name="m2")
def m2(topic: str) -> str:
    return f"m2-{TAG}"


inner = Workflow("DeployInner").add_node("inner", lambda topic: f"inner-{TAG}").set_entry_point("inner")


def finish(inputs: dict, context) -> dict:
    results, sub = inputs["T"], inputs["S"]
    context.state["trail"] = [*context.state["trail"], f"Finish-{TAG}"]
    return {"team": {r.member: r.result for r in results}, "sub": sub}


def extra(out: dict, context) -> dict:
    return {**out, "trail": [*context.state["trail"], f"Extra-{TAG}"]}


wf = Workflow("Deploy")
wf.add_node("A", start)
wf.add_node("Review", WaitForInput("go on?"))
wf.add_node("T", Team([m2, first]))
wf.add_node("Finish", finish)
wf.add_node("Extra", extra)
wf.add_edge("A", "Review").add_edge("Review", "T").add_edge("T", "Finish")
wf.add_node("S", inner).add_edge("Review", "S").add_edge("S", "Finish").add_edge("Finish", "Extra")
wf.set_entry_point("A")
