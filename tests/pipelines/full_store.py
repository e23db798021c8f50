"""A pipeline whose values go to the payload store (400 KB, over its 256 KiB threshold): for the
full-disk drill, where the store has no room left."""

from gecko_temporal import Workflow


def make(size):
    return "w" * size


def measure(text, context):
    context.state["seen"] = len(text)
    return len(text)


wf = Workflow("FullStore")
wf.add_node("make", make).add_node("measure", measure).add_edge("make", "measure").set_entry_point("make")
