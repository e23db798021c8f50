"""Version 1 of a pipeline that is redeployed while runs wait in it (tests/integration/test_versions.py).

Every node appends its version tag to ``state["trail"]``, so a run's output says which code ran
each step. Version 2 (``deploy_v2.py``) changes bodies, renames a node, renames and reorders the
Team's members and adds a node: the same Workflow name, as a redeploy of one module would be.
"""

from __future__ import annotations

from gecko_temporal import Team, WaitForInput, Workflow, step

TAG = "v1"


def start(topic: str, context) -> str:
    context.state["trail"] = [f"A-{TAG}"]
    return topic


@step(name="m1")
def m1(topic: str) -> str:
    return f"m1-{TAG}"


@step(name="m2")
def m2(topic: str) -> str:
    return f"m2-{TAG}"


inner = Workflow("DeployInner").add_node("inner", lambda topic: f"inner-{TAG}").set_entry_point("inner")


def finish(inputs: dict, context) -> dict:
    results, sub = inputs["T"], inputs["S"]
    return {
        "trail": [*context.state["trail"], f"B-{TAG}"],
        "team": {r.member: r.result for r in results},
        "sub": sub,
    }


wf = Workflow("Deploy")
wf.add_node("A", start)
wf.add_node("Review", WaitForInput("go on?"))
wf.add_node("T", Team([m1, m2]))
wf.add_node("B", finish)
wf.add_edge("A", "Review").add_edge("Review", "T").add_edge("T", "B")
wf.add_node("S", inner).add_edge("Review", "S").add_edge("S", "B").set_entry_point("A")
