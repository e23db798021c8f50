"""What a ``gecko-temporal`` command line names, read and checked: MODULE:WF specs, JSON options,
the Temporal server to talk to, and the error for a wrong command line (exit code 2)."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

from gecko_temporal.core.build.graph import Workflow
from gecko_temporal.core.errors import GeckoError


class UsageError(GeckoError):
    """The command line is wrong (exit code 2)."""


# -- loading MODULE:WF specs ----------------------------------------------------------------------
def load_workflow(spec: str) -> Workflow:
    """Import ``package.module:attr`` and return that :class:`Workflow` (compiled, so invalid graphs fail here)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(
            f'"{spec}" is not MODULE:WF: name a module and a Workflow object in it, like "myapp.pipelines:wf"'
        )
    if os.getcwd() not in sys.path and "" not in sys.path:  # console scripts: import from where we run
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):  # the module itself, not one it imports
            raise UsageError(
                f'"{spec}": no module named "{exc.name}"; run from the directory that contains '
                "it, add that directory to PYTHONPATH, or check the spelling"
            ) from None
        raise UsageError(f'"{spec}": importing "{module_name}" failed: {exc}; install what it needs') from None
    except Exception as exc:
        raise UsageError(f'"{spec}": importing "{module_name}" failed: {type(exc).__name__}: {exc}') from None
    if not hasattr(module, attr):
        found = [n for n, v in vars(module).items() if isinstance(v, Workflow)]
        hint = f"Workflow objects there: {', '.join(found)}" if found else "it defines no Workflow object"
        raise UsageError(f'"{spec}": module "{module_name}" has no attribute "{attr}" ({hint})')
    wf = getattr(module, attr)
    if not isinstance(wf, Workflow):
        raise UsageError(
            f'"{spec}" is a {type(wf).__name__}, not a gecko_temporal Workflow; '
            f"point at the object built with Workflow(...)"
        )
    try:
        wf.compile()  # every problem of the graph, before anything is served
    except GeckoError as exc:
        raise UsageError(f'"{spec}": {exc}') from None
    return wf


def json_arg(text: str | None, option: str) -> Any:
    if text is None:
        return None
    from gecko_temporal.core import codec

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{option} must be JSON (a string needs quotes: {option} '\"text\"'), got {text!r}: "
            f"{exc.msg} at position {exc.pos}"
        ) from None
    except RecursionError:
        raise UsageError(f"{option} is nested too deeply to read") from None
    try:
        codec.encode(value, what=option)
    except GeckoError as exc:  # e.g. nested too deeply (NaN, Infinity and 1e999 are floats: tagged)
        raise UsageError(str(exc)) from None
    return value


@contextlib.contextmanager
def environ(**values: str | None) -> Iterator[None]:
    """Set environment variables for one command (so main() may be called in-process too)."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is not None:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def require_server(address: str | None) -> None:
    from gecko_temporal.temporal.client import connect_config

    if not (address or "target_host" in connect_config()):
        raise UsageError(
            "no Temporal server: pass --address HOST:PORT or set TEMPORAL_ADDRESS (or a Temporal "
            "config profile: TEMPORAL_CONFIG_FILE / TEMPORAL_PROFILE); start one with "
            "`gecko-temporal dev MODULE:WF`"
        )
