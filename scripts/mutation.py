"""Mutation testing of the pure core, on demand (not in CI: it takes a minute or two).

    .venv/bin/python scripts/mutation.py            # run mutmut, then print the score per module
    .venv/bin/python scripts/mutation.py --report   # only print the score of the last run
    .venv/bin/mutmut results                        # list the surviving mutants; `mutmut show NAME`

mutmut (config in pyproject.toml, [tool.mutmut]) copies the project to mutants/, changes one thing
at a time in the pure modules (scheduler, state, spec, _codec, limits, context) and runs the unit
tests (no server) that reach the changed function. A mutant is *killed* when a test fails. The
score is killed / (killed + survived); mutants that no unit test reaches count as survived.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 0.90
# mutmut's exit codes (mutmut.stats): 1 a test failed (killed), 0 all passed (survived),
# 33 no test reaches the mutant (counts as survived here), 36/-24/152 timeout (a hang: killed).
KILLED = {1, 3, 36, -24, 152, 37}
SURVIVED = {0, 33, 5}


def score() -> int:
    metas = sorted((ROOT / "mutants" / "gecko_temporal").glob("*.py.meta"))
    if not metas:
        print("no results: run without --report first", file=sys.stderr)
        return 2
    print("| module | mutants | killed | survived | not run | score |\n|---|---|---|---|---|---|")
    failing = []
    totals: Counter = Counter()
    for meta in metas:
        codes = json.loads(meta.read_text())["exit_code_by_key"].values()
        c = Counter("killed" if code in KILLED else "survived" if code in SURVIVED else "not run" for code in codes)
        decided = c["killed"] + c["survived"]
        pct = c["killed"] / decided if decided else 1.0
        totals.update(c)
        name = meta.name.removesuffix(".meta")
        print(f"| {name} | {sum(c.values())} | {c['killed']} | {c['survived']} | {c['not run']} | {pct:.1%} |")
        if pct < GOAL:
            failing.append(name)
    decided = totals["killed"] + totals["survived"]
    print(
        f"| all | {sum(totals.values())} | {totals['killed']} | {totals['survived']} | {totals['not run']} "
        f"| {totals['killed'] / decided:.1%} |"
    )
    if failing:
        print(f"below the {GOAL:.0%} goal: {', '.join(failing)} (see `mutmut results`)")
    return 1 if failing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true", help="print the last run's score only")
    parser.add_argument("--max-children", type=int, default=2, help="parallel test processes (default 2)")
    args = parser.parse_args(argv)
    if not args.report:
        mutmut = Path(sys.executable).with_name("mutmut")
        # mutants/ is rebuilt from scratch: mutmut's cache would keep results of older tests
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
        subprocess.run(
            [str(mutmut), "run", "--max-children", str(args.max_children)],
            cwd=ROOT,
            check=False,
            stdout=subprocess.DEVNULL,
        )
    return score()


if __name__ == "__main__":
    sys.exit(main())
