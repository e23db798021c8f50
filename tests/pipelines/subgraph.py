"""A pipeline whose middle node is a subgraph, for tests with worker processes.

``SubgraphCrash``: prepare -> Work (the ``Work`` workflow as a child: slow -> done) -> finish.
Every node logs through :func:`tests.pipelines.crash.log` (GECKO_CRASH_LOG), so a test can count
executions across a worker SIGKILL while the child's ``slow`` node runs.
"""

from __future__ import annotations

from gecko_temporal import Workflow
from tests.pipelines.crash import log, slow  # in the child, slow writes the child's own state


def done(n: int, context) -> dict:
    log("done")
    return {"child": n, "child_state": dict(context.state), "child_session": context.session_id}


work = Workflow("Work")
work.add_node("slow", slow).add_node("done", done).add_edge("slow", "done").set_entry_point("slow")


def prepare(n: int, context) -> int:
    log("prepare")
    context.state["prepared"] = True
    return n + 1


def finish(out: dict, context) -> dict:
    log("finish")
    return {**out, "parent_state": dict(context.state)}


wf = Workflow("SubgraphCrash")
wf.add_node("prepare", prepare).add_node("Work", work).add_node("finish", finish)
wf.add_edge("prepare", "Work").add_edge("Work", "finish").set_entry_point("prepare")
