"""What the event stream costs in history, and how soon a reader sees an emitted event (issue 14).

    python benchmarks/stream_cost.py [--json] [--quick]

Cases, each a chain of STEPS context nodes on the embedded dev server:
  quiet      no reader, nodes emit nothing (the gecko-observe patch marker and status upserts only)
  emit       no reader, each node emits TOKENS events (batched into signals, GECKO_EMIT_INTERVAL)
  read       a reader follows the run (its long polls are updates), nodes emit nothing
  emit+read  both
History events are counted per case; "per emitted" and "per step" are the differences from quiet.
Latency: a node emits one event, waits for the reader to acknowledge it (through a file), then stays
quiet for 0.25 s; each measure is node -> signal -> workflow -> update reply -> reader (median of ROUNDS).
Events in a burst go out at most once per GECKO_EMIT_INTERVAL (default 0.2 s), as one signal.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import _common  # noqa: E402

from gecko_temporal import Workflow  # noqa: E402


def chain(steps: int, tokens: int) -> Workflow:
    wf = Workflow(f"StreamCost{tokens}")

    def node(_, context):
        for i in range(tokens):
            context.emit(i)
        return None

    for i in range(steps):
        wf.add_node(f"n{i}", node)
        if i:
            wf.add_edge(f"n{i - 1}", f"n{i}")
    return wf.set_entry_point("n0")


def echo(rounds: int) -> Workflow:
    def ping(folder: str, context):
        for i in range(rounds):
            Path(folder, f"sent-{i}").write_text(str(time.monotonic()))
            context.emit(i)
            deadline = time.monotonic() + 30
            while not Path(folder, f"ack-{i}").exists() and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(0.25)  # a quiet spell longer than GECKO_EMIT_INTERVAL: the next event goes out at once
        return None

    return Workflow("StreamEcho").add_node("Ping", ping).set_entry_point("Ping")


async def count(handle) -> Counter:
    history = await handle.temporal_handle.fetch_history()
    return Counter(e.WhichOneof("attributes").replace("_event_attributes", "") for e in history.events)


async def measure(steps: int, tokens: int, rounds: int) -> dict:
    rows = []
    for case, emits, read in [
        ("quiet", 0, False),
        ("emit", tokens, False),
        ("read", 0, True),
        ("emit+read", tokens, True),
    ]:
        wf = chain(steps, emits)
        handle = await wf.start(None)
        events = 0
        if read:
            events = len([e async for e in handle.stream()])
        await handle.result()
        kinds = await count(handle)
        rows.append(
            {
                "case": case,
                "steps": steps,
                "emitted": emits * steps,
                "events_read": events,
                "history_events": sum(kinds.values()),
                "signals": kinds["workflow_execution_signaled"],
                "updates": kinds["workflow_execution_update_completed"],
                "workflow_tasks": kinds["workflow_task_completed"],
            }
        )
    quiet = rows[0]["history_events"]
    for r in rows:
        r["extra_per_step"] = round((r["history_events"] - quiet) / steps, 2)
        r["extra_per_emitted"] = round((r["history_events"] - quiet) / r["emitted"], 3) if r["emitted"] else None

    with tempfile.TemporaryDirectory() as folder:
        handle = await echo(rounds).start(folder)
        seen = []
        async for e in handle.stream():
            if e.type == "custom":
                seen.append(time.monotonic() - float(Path(folder, f"sent-{e.data}").read_text()))
                Path(folder, f"ack-{e.data}").write_text("ok")
        await handle.result()
    return {
        "rows": rows,
        "latency_ms": {
            "median": round(statistics.median(seen) * 1000, 1),
            "max": round(max(seen) * 1000, 1),
            "rounds": len(seen),
        },
    }


def main() -> int:
    args = _common.parser(__doc__.split("\n\n")[0]).parse_args()
    steps, tokens, rounds = (3, 5, 3) if args.quick else (20, 50, 20)
    result = asyncio.run(measure(steps, tokens, rounds))
    result["machine"] = _common.machine()
    cols = [
        "case",
        "steps",
        "emitted",
        "events_read",
        "history_events",
        "signals",
        "updates",
        "workflow_tasks",
        "extra_per_step",
        "extra_per_emitted",
    ]

    def text() -> str:
        lat = result["latency_ms"]
        return (
            _common.table(cols, [[r[c] if r[c] is not None else "-" for c in cols] for r in result["rows"]])
            + f"\n\nemit -> reader, one event at a time: median {lat['median']} ms, max {lat['max']} ms "
            f"over {lat['rounds']} round trips"
        )

    _common.emit(result, args.json, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
