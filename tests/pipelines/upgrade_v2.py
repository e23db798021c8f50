"""Version 2 of upgrade_v1.py, safe for its runs at a continue-as-new: new bodies (tag v2) and a
node added after ``Done``."""

from __future__ import annotations

from gecko_temporal import Next, WaitForInput, Workflow

TAG = "v2"
STEPS = 12


def work(_input: object, context) -> object:
    trail = [*context.state.get("trail", []), f"Work-{TAG}"]
    context.state["trail"] = trail
    if len(trail) == 3:
        return Next(node="Hold")
    if len(trail) < STEPS:
        return Next(node="Work")
    return len(trail)


def done(_count: int, context) -> dict:
    return {"trail": context.state["trail"], "done": f"Done-{TAG}"}


def extra(result: dict) -> dict:
    return {**result, "extra": f"Extra-{TAG}"}


wf = Workflow("Upgrader", steps_per_run=2, upgrade="at-continue-as-new")
wf.add_node("Work", work)
wf.add_node("Hold", WaitForInput("go on?"))
wf.add_node("Done", done)
wf.add_node("Extra", extra)
wf.add_edge("Hold", "Work").add_edge("Work", "Done").add_edge("Done", "Extra").set_entry_point("Work")
