"""A run that waits for a person while a flood of valid jumps to a trivial node queues up (issue 28,
row 11): once answered, it runs ``hold`` once per jump, then ends with how many times it held."""

from gecko_temporal import WaitForInput, Workflow


def start(value, context):
    context.state["held"] = 0
    return value


def hold(value, context):  # trivial on purpose: a failure here can only come from the worker's load
    context.state["held"] = context.state["held"] + 1
    return context.state["held"]


wf = Workflow("JumpFlood", max_steps=100_000)
wf.add_node("Start", start)
wf.add_node("Gate", WaitForInput("go?"))
wf.add_node("hold", hold)
wf.add_edge("Start", "Gate")
wf.set_entry_point("Start")
