"""A pipeline that waits for a person between drafting and publishing (for the CLI tests)."""

from __future__ import annotations

from gecko_temporal import WaitForInput, Workflow


def draft(topic: str, context) -> str:
    context.state["topic"] = topic
    return f"draft about {topic}"


def publish(answer, context) -> dict:
    return {"published": answer == "yes", "topic": context.state["topic"]}


def shout(text: str) -> str:
    return text.upper()


wf = Workflow("ReviewPipeline")
wf.add_node("Draft", draft)
wf.add_node("Review", WaitForInput("Publish the draft? (yes/no)"))
wf.add_node("Publish", publish)
wf.add_node("Abort", lambda why: {"aborted": why})  # reachable only by a jump
wf.add_edge("Draft", "Review").add_edge("Review", "Publish").set_entry_point("Draft")

upper = Workflow("Upper").add_node("shout", shout).set_entry_point("shout")

not_a_workflow = {"name": "ReviewPipeline"}

broken = Workflow("Broken").add_node("a", lambda x: x)  # no entry point: invalid
