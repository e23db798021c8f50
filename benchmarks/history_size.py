"""History and payload-store bytes a run writes, against the data it makes (issues 11 and 22).

    python benchmarks/history_size.py [--json] [--cluster] [--turns N] [--cases loop,io,chain,report]

Cases:
- ``loop``: an agent loop as a user writes one. Node ``Model`` appends a ~2 KB message to
  ``context.state["messages"]``, node ``Tool`` a ~1 KB one, and they jump to each other for N turns
  (2N node executions), then for 2N turns (the growth class: linear doubles the bytes);
- ``io``: the same conversation passed as node input and output (``Next("Tool", msgs)``);
- ``chain``: a 20-step chain of context nodes that each return 50 KB (every node reads
  ``context.history`` by default);
- ``report``: the README's report example.

History bytes are summed over every run of the session (continue-as-new included); "store" is what
the payload store gained. "x conv" is (history + store) per byte of the data the run made (the
conversation's JSON). Per-turn times are the mean of turns 8-12 and 88-92 (in wall seconds).
Run it under different settings: the embedded default has a payload store; ``--cluster`` runs a
worker of our own on a started dev server with no store at all.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import _common  # noqa: E402

from gecko_temporal import Next, Workflow, connect  # noqa: E402

STEPS, SIZE = 20, 50_000
MODEL_BYTES, TOOL_BYTES = 2_000, 1_000
_stamps: dict[str, dict[int, float]] = {}  # workflow name -> turn -> when Model started it (same process)


def chain() -> Workflow:
    wf = Workflow("HistoryChain")

    def node(i: int):
        def run(_, context) -> str:
            assert len(context.history) == i  # step i reads every earlier output
            return f"{i:02d}" + "x" * (SIZE - 2)

        return run

    for i in range(STEPS):
        wf.add_node(f"n{i:02d}", node(i))
        if i:
            wf.add_edge(f"n{i - 1:02d}", f"n{i:02d}")
    return wf.set_entry_point("n00")


def _message(role: str, turn: int, size: int) -> dict[str, Any]:
    filler = (f"{role} {turn} says " * (size // 12 + 1))[: size - 60]
    return {"role": role, "turn": turn, "content": filler}


def state_loop(turns: int) -> Workflow:
    """Model and Tool append to context.state["messages"] and jump to each other."""
    name = f"HistoryLoop{turns}"
    wf = Workflow(name)
    stamps = _stamps.setdefault(name, {})

    def model(_, context):
        messages = context.state.get("messages", [])
        turn = len(messages) // 2
        stamps.setdefault(turn, time.perf_counter())
        messages.append(_message("assistant", turn, MODEL_BYTES))
        context.state["messages"] = messages
        return Next("Tool") if turn + 1 < turns else len(messages)

    def tool(_, context):
        messages = context.state["messages"]
        messages.append(_message("tool", len(messages) // 2, TOOL_BYTES))
        context.state["messages"] = messages
        return Next("Model")

    wf.add_node("Model", model)
    wf.add_node("Tool", tool)
    return wf.set_entry_point("Model")


def io_loop(turns: int) -> Workflow:
    """The same conversation, passed along as each node's input and output."""
    name = f"HistoryIOLoop{turns}"
    wf = Workflow(name)
    stamps = _stamps.setdefault(name, {})

    def model(messages):
        messages = list(messages or [])
        turn = len(messages) // 2
        stamps.setdefault(turn, time.perf_counter())
        messages.append(_message("assistant", turn, MODEL_BYTES))
        return Next("Tool", messages) if turn + 1 < turns else {"turns": turn + 1}

    def tool(messages):
        messages.append(_message("tool", len(messages) // 2, TOOL_BYTES))
        return Next("Model", messages)

    wf.add_node("Model", model)
    wf.add_node("Tool", tool)
    return wf.set_entry_point("Model")


def conversation_bytes(turns: int) -> int:
    """The conversation's JSON bytes once all turns ran (what the run makes)."""
    messages = []
    for turn in range(turns):
        messages.append(_message("assistant", turn, MODEL_BYTES))
        if turn + 1 < turns:
            messages.append(_message("tool", turn, TOOL_BYTES))
    return len(json.dumps(messages, separators=(",", ":")).encode())


async def history_bytes(session_id: str) -> tuple[int, int, int]:
    """(bytes, events, runs) of every run of a session."""
    client = await connect()
    total = events = runs = 0
    for _ in range(20):  # visibility lags: wait until the last run is listed as closed
        listed = [r async for r in client.list_workflows(f'WorkflowId = "{session_id}"')]
        if listed and all(r.close_time is not None for r in listed):
            break
        await asyncio.sleep(0.5)
    for run in listed:
        history = await client.get_workflow_handle(session_id, run_id=run.run_id).fetch_history()
        total += sum(event.ByteSize() for event in history.events)
        events += len(history.events)
        runs += 1
    return total, events, runs


def store_root() -> str | None:
    from gecko_temporal.temporal import store

    root = os.environ.get("GECKO_PAYLOAD_STORE", "").removeprefix("file://") or store._embedded_store
    return None if not root or root == "none" else root


def store_bytes() -> int:
    root = store_root()
    if root is None:
        return 0
    return sum(f.stat().st_size for f in Path(root).rglob("*") if f.is_file())


def _per_turn(stamps: dict[int, float], around: int) -> float | None:
    lo, hi = around - 2, around + 3
    if lo < 0 or hi not in stamps or lo not in stamps:
        return None
    return (stamps[hi] - stamps[lo]) / (hi - lo)


async def _case(case: str, wf: Workflow, arg: Any, made: int | None, extra: dict[str, Any]) -> dict[str, Any]:
    before = store_bytes()
    started = time.perf_counter()
    handle = await wf.start(arg, timeout=1800)
    await handle.result()
    wall = time.perf_counter() - started
    history, events, runs = await history_bytes(handle.id)
    stored = store_bytes() - before
    row = {"case": case, "data_made": made, "history": history, "events": events, "runs": runs, "store": stored}
    row["ratio"] = round((history + stored) / made, 1) if made else None
    row["wall_s"] = round(wall, 2)
    row.update(extra)
    return row


async def measure(cluster: bool, turns: int, cases: list[str], log: Any) -> list[dict[str, Any]]:
    graphs: dict[str, Workflow] = {}
    if "loop" in cases:
        graphs.update({f"loop{t}": state_loop(t) for t in (turns, 2 * turns)})
    if "io" in cases:
        graphs.update({f"io{t}": io_loop(t) for t in (turns, 2 * turns)})
    if "chain" in cases:
        graphs["chain"] = chain()
    if "report" in cases:
        from examples.report_pipeline import workflow as report

        graphs["report"] = report
    worker = server = None
    if cluster:  # a named server and a worker of our own: no payload store anywhere
        from gecko_temporal import GeckoWorker
        from gecko_temporal.temporal.client import DevServer

        os.environ["GECKO_PAYLOAD_STORE"] = "none"
        server = DevServer()
        os.environ["TEMPORAL_ADDRESS"] = server.address
        os.environ["GECKO_TASK_QUEUE"] = "history-size"
        worker = GeckoWorker(await connect(), task_queue="history-size")
        for wf in graphs.values():
            worker.serve(wf)
        await worker.start()
    rows = []
    try:
        for key, wf in graphs.items():
            log(f"running {key} ...")
            if key.startswith(("loop", "io")):
                t = int(key.removeprefix("loop").removeprefix("io"))
                stamps = _stamps[wf.name]
                stamps.clear()
                what = "state" if key.startswith("loop") else "input/output"
                row = await _case(f"{t}-turn loop, {what}", wf, None, conversation_bytes(t), {"turns": t})
                row["turn10_s"], row["turn90_s"] = _per_turn(stamps, 10), _per_turn(stamps, 90)
            elif key == "chain":
                row = await _case(f"{STEPS}-step chain, {SIZE // 1000} KB outputs", wf, None, STEPS * SIZE, {})
            else:
                with tempfile.TemporaryDirectory() as out:
                    arg = {"folder": str(HERE.parent / "gecko_temporal"), "out": f"{out}/r.md"}
                    row = await _case("README report example", wf, arg, None, {})
            rows.append(row)
            log(_line(row))
    finally:
        if worker is not None:
            await worker.shutdown()
        if server is not None:
            server.stop()
    return rows


def _line(r: dict[str, Any]) -> str:
    mb = lambda n: f"{n / 1e6:.2f} MB"  # noqa: E731
    ratio = f", {r['ratio']}x the data" if r["ratio"] is not None else ""
    turns = ""
    for at in (10, 90):
        if r.get(f"turn{at}_s") is not None:
            turns += f", {r[f'turn{at}_s'] * 1000:.0f} ms per turn at {at}"
    return (
        f"{r['case']}: history {mb(r['history'])} ({r['events']} events, {r['runs']} runs), "
        f"store {mb(r['store'])}{ratio}, wall {r['wall_s']} s{turns}"
    )


def growth(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Bytes of the 2N-turn run per byte of the N-turn run, by path (2.0 is linear)."""
    out = {}
    for what in ("state", "input/output"):
        sized = sorted((r["turns"], r["history"] + r["store"]) for r in rows if r["case"].endswith(what))
        if len(sized) == 2:
            out[what] = round(sized[1][1] / sized[0][1], 2)
    return out


def main() -> int:
    p = _common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--cluster", action="store_true", help="a started dev server and our own worker: no payload store")
    p.add_argument("--turns", type=int, default=100, help="turns of the loop cases (also run at twice that)")
    p.add_argument("--cases", default="loop,io,chain,report", help="comma-separated: loop, io, chain, report")
    args = p.parse_args()
    turns = 12 if args.quick else args.turns
    rows = asyncio.run(measure(args.cluster, turns, args.cases.split(","), lambda m: _common.log(m, args.json)))
    settings = {k: v for k, v in os.environ.items() if k.startswith("GECKO_") and k != "GECKO_TASK_QUEUE"}
    settings["mode"] = "cluster (no store)" if args.cluster else "embedded (payload store)"
    result = {"machine": _common.machine(), "settings": settings, "rows": rows, "doubling": growth(rows)}

    def text() -> str:
        headers = ["case", "history MB", "events", "runs", "store MB", "x conv", "wall s", "ms/turn @10", "@90"]
        table = _common.table(
            headers,
            [
                [
                    r["case"],
                    r["history"] / 1e6,
                    r["events"],
                    r["runs"],
                    r["store"] / 1e6,
                    r["ratio"] if r["ratio"] is not None else "-",
                    r["wall_s"],
                    round(r["turn10_s"] * 1000) if r.get("turn10_s") else "-",
                    round(r["turn90_s"] * 1000) if r.get("turn90_s") else "-",
                ]
                for r in rows
            ],
        )
        return f"settings: {settings}\n{table}\ndoubling the turns multiplies bytes by: {result['doubling']}"

    _common.emit(result, args.json, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
