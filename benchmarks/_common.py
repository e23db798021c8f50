"""Shared helpers for the benchmarks: command line, machine facts, medians, tables, JSON.

Each benchmark runs as a plain script (``python benchmarks/x.py``) from a fresh clone, so this
module is imported by path (the benchmark puts its own folder and the repository root on
``sys.path``), never as an installed package.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

CLIENT_ENV = ("TEMPORAL_ADDRESS", "GECKO_TASK_QUEUE")  # what a benchmark points at its own server and queue


def saved_client_env() -> dict[str, Any]:
    """The caller's client settings, to put back with :func:`restore_env` once the benchmark ends."""
    return {k: os.environ.get(k) for k in CLIENT_ENV}


def restore_env(saved: dict[str, Any]) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout (no table)")
    p.add_argument("--quick", action="store_true", help="tiny sizes and one repeat: a smoke test, not a measurement")
    p.add_argument("--repeat", type=int, default=None, help="timed repeats per case (median reported)")
    return p


def machine() -> dict[str, Any]:
    """Where the numbers come from: they only compare with numbers from the same machine."""
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table: readable in a terminal and pasteable into the docs."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells[1:]]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def emit(result: dict[str, Any], as_json: bool, text: Callable[[], str]) -> None:
    """Print ``result`` as JSON or as the benchmark's readable text."""
    if as_json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(text())


def log(message: str, as_json: bool) -> None:
    """Progress for a human: to stderr, so ``--json`` output stays clean."""
    print(message, file=sys.stderr if as_json else sys.stdout, flush=True)
