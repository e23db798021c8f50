"""How much smaller is the slimmed snapshot than the full in-memory context?

Drives the engine's own pure scheduler and state merge through a realistic agent loop
(planner -> tool -> critic, looping with Next, text outputs of a few hundred bytes to a few KB)
and compares, after N steps:

* slimmed: exactly what GeckoWorkflow carries across continue-as-new (scheduler snapshot with the
  latest output of each node, global state, completed names, rejected jumps, counters);
* full: what a non-slimming engine keeps in memory for the same run: every step's input and output
  plus a per-step trace (node, step, start/end time, duration, attempt, worker), and the state.

Usage: python benchmarks/snapshot_benchmark.py [--steps 300 600 1500] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gecko_temporal.core import codec
from gecko_temporal.core.build.graph import Workflow
from gecko_temporal.core.scheduler import Scheduler
from gecko_temporal.core.spec import Jump, Next
from gecko_temporal.core.state import StateDelta, merge_layer

WORDS = [
    "the",
    "agent",
    "considers",
    "the",
    "user's",
    "request",
    "and",
    "the",
    "retrieved",
    "documents",
    "before",
    "it",
    "drafts",
    "a",
    "plan",
    "with",
    "tool",
    "calls",
    "observations",
    "citations",
    "and",
    "a",
    "critique",
    "of",
    "its",
    "previous",
    "answer",
]


def _text(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def _graph() -> Workflow:
    wf = Workflow("agent_loop", max_steps=1_000_000)
    for name in ("Planner", "Tool", "Critic", "Answer"):
        wf.add_node(name, lambda x: x)
    wf.add_edge("Planner", "Tool")
    wf.add_edge("Tool", "Critic")
    wf.set_entry_point("Planner")
    return wf


def measure(steps: int, seed: int = 7) -> dict:
    rng = random.Random(seed)
    spec = _graph().compile()
    sched = Scheduler(spec)
    state: dict[str, str] = {}
    completed: list[str] = []
    full_steps: list[dict] = []  # what a non-slimming engine keeps: every step, with its trace
    clock = 0.0
    sched.start(codec.encode("Find the three most cited papers on durable agent workflows"))
    while sched.step < steps:
        tasks = sched.next_layer()
        if not tasks:
            break
        for task in tasks:
            if task.node == "Planner":
                out = {
                    "plan": _text(rng, 40, 120),
                    "tool": rng.choice(["search", "fetch", "python"]),
                    "args": {"query": _text(rng, 4, 12)},
                }
                delta = StateDelta({"plan": codec.encode(out["plan"])})
            elif task.node == "Tool":
                out = {"observation": _text(rng, 150, 450), "status": 200}
                delta = StateDelta({"observations": codec.encode(sched.step)})
            else:  # Critic: loop back to the planner with feedback, as agent loops do
                out = Next("Planner", {"feedback": _text(rng, 20, 60), "score": rng.random()})
                delta = StateDelta({"score": codec.encode(round(rng.random(), 3))})
            text = codec.encode(out)
            jump = Jump("Planner", codec.encode(out.input), task.node) if isinstance(out, Next) else None
            duration = rng.uniform(0.2, 4.0)
            full_steps.append(
                {
                    "node": task.node,
                    "step": task.step,
                    "input": codec.plain(task.input),
                    "output": codec.plain(text),
                    "trace": {
                        "started": clock,
                        "finished": clock + duration,
                        "duration": duration,
                        "attempt": 1,
                        "worker": "worker-1@host",
                        "activity_id": f"1.{task.step}",
                    },
                }
            )
            clock += duration
            sched.finish(task, text, jump)
            merge_layer(state, [(task.node, delta)])
            completed.append(task.node)
    # Exactly the snapshot GeckoWorkflow._continue_as_new builds.
    slim = {
        "scheduler": sched.snapshot(),
        "state": state,
        "deadline": None,
        "run": 2,
        "completed": completed[-1000:],
        "rejected": [],
        "answers": {},
        "layer": sched.step,
    }
    full = {"steps": full_steps, "state": {k: codec.plain(v) for k, v in state.items()}}
    slim_bytes = len(json.dumps(slim, separators=(",", ":")).encode())
    full_bytes = len(json.dumps(full, separators=(",", ":")).encode())
    return {
        "steps": sched.step,
        "slim_bytes": slim_bytes,
        "full_bytes": full_bytes,
        "reduction": round(1 - slim_bytes / full_bytes, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[30, 300, 600, 1500])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    rows = [measure(n) for n in args.steps]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'steps':>6} {'full context':>14} {'slim snapshot':>14} {'smaller by':>11}")
    for r in rows:
        print(f"{r['steps']:>6} {r['full_bytes']:>12,} B {r['slim_bytes']:>12,} B {r['reduction']:>10.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
