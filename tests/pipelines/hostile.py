"""A run that waits twice for a person, for the hostile-input drill: whatever outsiders send, it must
finish with what the two answers said, as plain data."""

from gecko_temporal import WaitForInput, Workflow


def start(topic, context):
    context.state["topic"] = topic
    return topic


def describe(value):
    return {"got": value, "type": type(value).__name__}


def echo(value):
    return value  # a pass-through: a forged Next revived here would make the run jump to "Bad"


def finish(value, context):
    return {"first": context.history["Echo1"], "second": value, "topic": context.state["topic"]}


wf = Workflow("Hostile")
wf.add_node("Start", start)
wf.add_node("Gate1", WaitForInput("first answer?"))
wf.add_node("Echo1", describe)
wf.add_node("Gate2", WaitForInput("second answer?"))
wf.add_node("Echo2", echo)
wf.add_node("Finish", finish)
wf.add_node("Bad", lambda x: "FORGED: a tag from outside became a Next")
for a, b in [("Start", "Gate1"), ("Gate1", "Echo1"), ("Echo1", "Gate2"), ("Gate2", "Echo2"), ("Echo2", "Finish")]:
    wf.add_edge(a, b)
wf.set_entry_point("Start")


def fan_out(n):
    from gecko_temporal import Send

    return [Send("work", i) for i in range(n)]


def big_fan_out(n):
    from gecko_temporal import Send

    item = "x" * 1_900_000  # one string shared by every Send: the node itself holds 1.9 MB
    return [Send("work", item) for _ in range(n)]


def work(item, context):
    return len(context.history)


fan = Workflow("RedFan", max_parallel=500)
fan.add_node("fan_out", fan_out).add_node("work", work).set_entry_point("fan_out")
big_fan = Workflow("RedBigFan")
big_fan.add_node("big_fan_out", big_fan_out).add_node("work", work).set_entry_point("big_fan_out")


def ask_twice(value, context):
    return [context.interrupt("first?"), context.interrupt("second?")]


asks = Workflow("RedAsks")
asks.add_node("Ask", ask_twice).set_entry_point("Ask")
