"""Runs whose waits for a person sit where a flood used to keep them in one history (issue 28): the
instances of a Send fan-out, and an eager run. Served by a worker process in test_wait_switch.py."""

from gecko_temporal import Send, WaitForInput, Workflow


def plan(n):
    return [Send("ask", i) for i in range(n)]


def ask(i, context):
    return context.interrupt(f"ok {i}?")


def _fan_asks(name: str, scheduling: str) -> Workflow:
    wf = Workflow(name, scheduling=scheduling)
    wf.add_node("plan", plan).add_node("ask", ask).add_node("after", lambda xs: xs)
    return wf.add_edge("ask", "after").set_entry_point("plan")


fan_asks = _fan_asks("WaitFanOut", "layered")
eager_fan_asks = _fan_asks("WaitEagerFanOut", "eager")  # the fan-out goes on collecting in the next run


def ask_twice(topic, context):
    context.state["asked"] = topic
    return [context.interrupt("first?"), context.interrupt("second?")]


def end(outputs, context):
    return {"gate": outputs["Gate"], "ask": outputs["Ask"], "asked": context.state["asked"]}


eager_asks = Workflow("WaitEager", scheduling="eager")
eager_asks.add_node("Start", lambda topic: topic).add_node("Gate", WaitForInput("go?"))
eager_asks.add_node("Ask", ask_twice).add_node("End", end)
for a, b in [("Start", "Gate"), ("Start", "Ask"), ("Gate", "End"), ("Ask", "End")]:
    eager_asks.add_edge(a, b)
eager_asks.set_entry_point("Start")
