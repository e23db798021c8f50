"""Version 1 of a looping pipeline that moves to new code at its continue-as-new (issue 27).

``Work`` loops (a ``Next`` to itself) 12 times, continuing as new every 2 steps; after its third
step it waits at ``Hold`` for a person, so a test can deploy and promote a version 2 meanwhile.
Each step appends ``Work-<version>`` to ``state["trail"]``: the result says which code ran each step.
"""

from __future__ import annotations

from gecko_temporal import Next, WaitForInput, Workflow

TAG = "v1"
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


wf = Workflow("Upgrader", steps_per_run=2, upgrade="at-continue-as-new")
wf.add_node("Work", work)
wf.add_node("Hold", WaitForInput("go on?"))
wf.add_node("Done", done)
wf.add_edge("Hold", "Work").add_edge("Work", "Done").set_entry_point("Work")
