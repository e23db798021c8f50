"""What ``context.once`` leaves open, and what a node cache hit costs.

1. **The window of ``once``**: a crash after ``fn`` returned and before its record landed runs the
   effect again. The record is the engine's JSON of the result, through the payload codec, written
   to a temporary file, fsync'ed, renamed and its folder fsync'ed (``temporal/effects.py``); this
   times exactly that call (``Effects.record``) on the machine's temporary folder, for a small and a
   100 KB result, with and without encryption.
2. **A cache hit on a 1-second node**: one-node runs on the embedded default (dev server and worker in
   this process), median of ``--repeat`` runs each: the node uncached, a cache miss (new input), a cache
   hit (an input seen before), and a node that does nothing (the floor of a run).

Run: ``python benchmarks/effects_benchmark.py [--json] [--quick] [--repeat N]``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

import _common  # noqa: E402

from gecko_temporal import CachePolicy, Workflow, step  # noqa: E402
from gecko_temporal.core.effects import Effects, EffectScope  # noqa: E402
from gecko_temporal.temporal.effects import FileRecords  # noqa: E402
from gecko_temporal.temporal.payloads import GeckoCodec, parse_keys  # noqa: E402

NODE_SECONDS = 1.0


def window(records: int) -> list[dict[str, Any]]:
    key = base64.b64encode(os.urandom(32)).decode()
    rows = []
    for label, codec in (("plain", None), ("AES-GCM", GeckoCodec(parse_keys(f"k1:{key}")))):
        for size_label, value in (("small result", {"id": "INV-1", "ok": True}), ("100 KB result", "x" * 100_000)):
            with tempfile.TemporaryDirectory() as folder:
                store = FileRecords(folder, codec)
                times = []
                for i in range(records):
                    effects = Effects(EffectScope("run", "s", "Node", i), store)
                    began = time.perf_counter()
                    effects.record("effect", value)
                    times.append((time.perf_counter() - began) * 1000)
            times.sort()
            rows.append(
                {
                    "codec": label,
                    "result": size_label,
                    "median_ms": round(statistics.median(times), 3),
                    "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 3),
                    "max_ms": round(times[-1], 3),
                    "records": records,
                }
            )
    return rows


def _sleep(text: str) -> str:
    time.sleep(NODE_SECONDS)
    return text.upper()


def _graphs() -> dict[str, Workflow]:
    cached = step(name="Slow", cache=CachePolicy(ttl=3600))(lambda text: _sleep(text))
    return {
        "uncached": Workflow("BenchUncached").add_node("Slow", lambda text: _sleep(text)).set_entry_point("Slow"),
        "cached": Workflow("BenchCached").add_node(cached).set_entry_point("Slow"),
        "no-op": Workflow("BenchNoop").add_node("Noop", lambda text: text).set_entry_point("Noop"),
    }


async def hits(repeat: int, as_json: bool) -> list[dict[str, Any]]:
    graphs = _graphs()

    async def timed(wf: Workflow, text: str) -> float:
        began = time.perf_counter()
        await wf.execute(text, session_id=f"bench-{uuid.uuid4().hex[:8]}", timeout=120)
        return (time.perf_counter() - began) * 1000

    for wf in graphs.values():  # warm up: the embedded server and worker, each graph registered
        await timed(wf, "warm")
    cases: dict[str, list[float]] = {"uncached 1 s node": [], "cache miss": [], "cache hit": [], "no-op node": []}
    for i in range(repeat):
        fresh = uuid.uuid4().hex
        cases["uncached 1 s node"].append(await timed(graphs["uncached"], fresh))
        cases["cache miss"].append(await timed(graphs["cached"], fresh))
        cases["cache hit"].append(await timed(graphs["cached"], fresh))
        cases["no-op node"].append(await timed(graphs["no-op"], fresh))
        _common.log(f"  round {i + 1}: " + ", ".join(f"{k} {v[-1]:.0f} ms" for k, v in cases.items()), as_json)
    return [{"case": k, "median_ms": round(statistics.median(v), 1), "runs": len(v)} for k, v in cases.items()]


def main() -> None:
    args = _common.parser(__doc__ or "").parse_args()
    repeat = args.repeat or (1 if args.quick else 5)
    saved = _common.saved_client_env()
    for name in _common.CLIENT_ENV:
        os.environ.pop(name, None)  # the embedded default, always
    try:
        window_rows = window(20 if args.quick else 500)
        hit_rows = asyncio.run(hits(repeat, args.json))
    finally:
        _common.restore_env(saved)
    by_case = {r["case"]: r["median_ms"] for r in hit_rows}
    result = {
        "benchmark": "effects",
        "machine": _common.machine(),
        "window": window_rows,
        "cache": hit_rows,
        "hit_saves_ms": round(by_case["cache miss"] - by_case["cache hit"], 1),
        "hit_costs_ms_over_noop": round(by_case["cache hit"] - by_case["no-op node"], 1),
    }

    def text() -> str:
        return "\n".join(
            [
                "once: the window between fn returning and its record landing (Effects.record)",
                _common.table(
                    ["codec", "result", "median ms", "p99 ms", "max ms", "records"],
                    [list(r.values()) for r in window_rows],
                ),
                "",
                f"cache: one-node runs, median of {repeat}",
                _common.table(["case", "median ms", "runs"], [list(r.values()) for r in hit_rows]),
                "",
                f"a hit saves {result['hit_saves_ms']} ms on a {NODE_SECONDS:.0f} s node; it costs "
                f"{result['hit_costs_ms_over_noop']} ms more than a run of a node that does nothing",
            ]
        )

    _common.emit(result, args.json, text)
    os._exit(0)  # the embedded worker's threads: nothing left to flush (see ops/cli._exit_process)


if __name__ == "__main__":
    main()
