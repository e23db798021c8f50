"""Version 2 of upgrade_v1.py that runs in flight cannot move to: the loop node ``Work``, which
every run still needs (a jump to it is queued at each continue-as-new), is now ``Labour``."""

from __future__ import annotations

from gecko_temporal import Next, WaitForInput, Workflow

TAG = "v2"
STEPS = 12


def labour(_input: object, context) -> object:
    trail = [*context.state.get("trail", []), f"Labour-{TAG}"]
    context.state["trail"] = trail
    if len(trail) == 3:
        return Next(node="Hold")
    if len(trail) < STEPS:
        return Next(node="Labour")
    return len(trail)


def done(_count: int, context) -> dict:
    return {"trail": context.state["trail"], "done": f"Done-{TAG}"}


wf = Workflow("Upgrader", steps_per_run=2, upgrade="at-continue-as-new")
wf.add_node("Labour", labour)
wf.add_node("Hold", WaitForInput("go on?"))
wf.add_node("Done", done)
wf.add_edge("Hold", "Labour").add_edge("Labour", "Done").set_entry_point("Labour")
