"""The graphs send_benchmark.py measures; a worker process serves them (``python worker.py send_graphs:...``).

``_fan`` builds Plan -> router returning n ``Send("Work", i)`` -> Work (n instances) -> Collect.
Work sleeps GECKO_SEND_SLEEP seconds (0.5 for ``send100``, none for ``send1000``), as a sync node
on the worker's thread pool. Collect sums what the instances returned, so a lost or doubled
instance shows in the result.
"""

from __future__ import annotations

import time

from gecko_temporal import Send, Workflow


def _fan(name: str, sleep: float, local: bool = False) -> Workflow:
    def work(i: int) -> int:
        if sleep:
            time.sleep(sleep)
        return i

    def fan_out(n: int) -> list[Send]:
        return [Send("Work", i) for i in range(n)]

    wf = Workflow(name)
    wf.add_node("Plan", lambda n: n).add_node("Work", work, local=local).add_node(
        "Collect", lambda xs: {"n": len(xs), "sum": sum(xs)}
    )
    wf.add_conditional_edges("Plan", fan_out, ["Work"]).add_edge("Work", "Collect")
    return wf.set_entry_point("Plan")


send100 = _fan("SendSlow", 0.5)
send1000 = _fan("SendInstant", 0.0)
send1000_local = _fan("SendInstantLocal", 0.0, local=True)  # Work as local activities: no task queue round trip
