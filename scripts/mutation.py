"""Mutation testing of the pure core, on demand (scripts/mutation.py).

    .venv/bin/python scripts/mutation.py                 # mutate every pure module, print the score per module
    .venv/bin/python scripts/mutation.py --changed       # only the pure modules changed since origin/main (or HEAD~1)
    .venv/bin/python scripts/mutation.py --changed main  # ... changed since the merge base with main
    .venv/bin/python scripts/mutation.py --report        # only print the score of the last run
    .venv/bin/mutmut results                             # list the surviving mutants; `mutmut show NAME`

mutmut (config in pyproject.toml, [tool.mutmut]; the pure modules are its `only_mutate`) copies the
project to mutants/, changes one thing at a time in the pure modules and runs the unit tests (no
server) that reach the changed function. A mutant is *killed* when a test fails.

The score of a module is killed / all its mutants. A mutant that no unit test reaches counts as
survived; a mutant that was not run at all (mutmut stopped early, was interrupted, skipped it)
counts against the score too and is listed, so a broken run can never look like a good one.
Exit code: 0 every module reached the goal, 1 a module is below it, 2 the run itself failed.

Measured on a 2-core machine (--max-children 2): a full run (~3,000 mutants) 7.5 min when the
machine is otherwise idle, 19-28 min when other jobs share it; --changed with one module (state.py,
279 mutants) under a minute. mutmut runs the unit tests more than once in one process (its stats
run, then its clean run), so a unit test must not depend on state an earlier run of it left behind.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10: mutmut depends on toml there
    import toml as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
LOG = MUTANTS / "mutmut-run.log"
GOAL = 0.90
# mutmut's exit codes per mutant (mutmut.stats.status_by_exit_code). A test failed (1), pytest broke
# (3), the tests timed out on the mutant (24/-24/152/255/36: a hang), the process died (-9/-11) or the
# type checker refused it (37): the mutant was detected, it is killed.
KILLED = {1, 3, 24, -24, 36, 152, 255, -9, -11, 37}
# All tests passed (0), or no unit test reaches the mutated function (33; 5 "no tests collected").
SURVIVED = {0, 5, 33}
# Anything else (None: never checked; 2: interrupted; 34: skipped; 35: suspicious) was not run:
# it counts against the score and is listed.


def classify(code: int | None) -> str:
    return "killed" if code in KILLED else "survived" if code in SURVIVED else "not run"


def pure_module_patterns() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


def is_pure_module(path: str, patterns: list[str]) -> bool:
    return path.endswith(".py") and any(fnmatch.fnmatch(path, pattern) for pattern in patterns)


def default_base() -> str:
    ok = subprocess.run(["git", "rev-parse", "--verify", "-q", "origin/main"], cwd=ROOT, capture_output=True)
    return "origin/main" if ok.returncode == 0 else "HEAD~1"


def changed_pure_modules(base: str) -> list[str]:
    """The pure modules (only_mutate) that differ between the merge base with BASE and the work tree."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout

    merge_base = git("merge-base", base, "HEAD").strip()
    names = git("diff", "--name-only", merge_base).split() + git("ls-files", "--others", "--exclude-standard").split()
    patterns = pure_module_patterns()
    return sorted({name for name in names if is_pure_module(name, patterns) and (ROOT / name).exists()})


def mutant_filter(module: str) -> str:
    """mutmut's name pattern for every mutant of one module: gecko_temporal/core/state.py ->
    gecko_temporal.core.state.x[_ǁ]* (mutmut names a mutant module.x_function__mutmut_N or
    module.xǁClassǁmethod__mutmut_N, and a package's __init__ by the package's name)."""
    return module.removesuffix(".py").removesuffix("/__init__").replace("/", ".") + ".x[_ǁ]*"


def run_mutmut(max_children: int, modules: list[str] | None) -> int:
    mutmut = Path(sys.executable).with_name("mutmut")
    # mutants/ is rebuilt from scratch: mutmut's cache would keep results of older tests
    shutil.rmtree(MUTANTS, ignore_errors=True)
    command = [str(mutmut), "run", "--max-children", str(max_children)]
    if modules:
        command += [mutant_filter(module) for module in modules]
    start = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, check=False, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    MUTANTS.mkdir(exist_ok=True)
    LOG.write_text(result.stdout + result.stderr)
    print(f"mutmut ran {elapsed:.0f}s (exit code {result.returncode}; its output: {LOG.relative_to(ROOT)})")
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
        print("mutmut failed, its last lines:\n    " + "\n    ".join(tail), file=sys.stderr)
    return result.returncode


def score(modules: list[str] | None = None) -> int:
    """Print the score per module of the last run (only MODULES if given); the exit code of the check."""
    metas = {meta.relative_to(MUTANTS).as_posix().removesuffix(".meta"): meta for meta in MUTANTS.rglob("*.py.meta")}
    if modules is not None:
        metas = {name: meta for name, meta in metas.items() if name in modules}
    if not metas:
        print("no results: run without --report first", file=sys.stderr)
        return 2
    print("| module | mutants | killed | survived | not run | score |\n|---|---|---|---|---|---|")
    failing, not_run = [], []
    totals: Counter[str] = Counter()
    for name, meta in sorted(metas.items()):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        c = Counter(classify(code) for code in codes.values())
        totals.update(c)
        total = len(codes)
        shown = f"{c['killed'] / total:.1%}" if total else "no mutants"
        print(f"| {name} | {total} | {c['killed']} | {c['survived']} | {c['not run']} | {shown} |")
        if total and c["killed"] / total < GOAL:
            failing.append(name)
        not_run += sorted(key for key, code in codes.items() if classify(code) == "not run")
    total = sum(totals.values())
    shown = f"{totals['killed'] / total:.1%}" if total else "no mutants"
    print(f"| all | {total} | {totals['killed']} | {totals['survived']} | {totals['not run']} | {shown} |")
    if not_run:
        listed = "\n    ".join(not_run[:20]) + (f"\n    ... and {len(not_run) - 20} more" if len(not_run) > 20 else "")
        print(f"{len(not_run)} mutants were not run (they count against the score):\n    {listed}")
    if failing:
        print(f"below the {GOAL:.0%} goal: {', '.join(failing)} (see `mutmut results`)")
    return 1 if failing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--report", action="store_true", help="print the last run's score only")
    mode.add_argument(
        "--changed",
        nargs="?",
        const="",
        metavar="BASE",
        help="mutate only the pure modules changed since BASE (default origin/main, else HEAD~1)",
    )
    parser.add_argument("--max-children", type=int, default=2, help="parallel test processes (default 2)")
    args = parser.parse_args(argv)
    modules = None
    if args.changed is not None:
        base = args.changed or default_base()
        modules = changed_pure_modules(base)
        if not modules:
            print(f"no pure module changed since {base}: nothing to mutate")
            return 0
        print(f"pure modules changed since {base}: {', '.join(modules)}")
    if not args.report:
        code = run_mutmut(args.max_children, modules)
        verdict = score(modules)
        return 2 if code != 0 else verdict
    return score(modules)


if __name__ == "__main__":
    sys.exit(main())
