"""Live control of a run: check what outsiders send (jumps, answers) and build what they see
(``gecko_state``). Pure: no temporalio import.

Anything can arrive from outside: no argument or three, a string instead of an object, NaN, a
1.5 MB blob, a payload in an encoding nobody here reads. Every check returns a reason instead of
raising, so the workflow can record the request as rejected and go on; nothing a client sends may
fail a workflow task. What the run keeps of a rejected request is a short preview, and the
``gecko_state`` answer stays bounded however big the state grows (see :data:`STATE_BUDGET`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from . import _codec
from .errors import GeckoError
from .protocol import NEXT_SIGNAL

PREVIEW_CHARS = 300  # what a rejected request keeps of what was sent
REASON_CHARS = 600
KEEP_REJECTED = 50  # rejected requests kept for gecko_state (and the continue-as-new snapshot)
KEEP_COMPLETED = 1000  # names of finished nodes kept likewise
VALUE_LIMIT = 64 * 1024  # a state value (or jump/wait input) above this shows as a preview
STATE_BUDGET = 1024 * 1024  # the state part of gecko_state never exceeds this (JSON characters)

_FIELDS = {"jump": ("node", "input"), "answer": ("node", "value")}
_EXAMPLE = {"jump": '{"node": "Name", "input": ...}', "answer": '{"node": "Name", "value": ...}'}


@dataclass(frozen=True)
class Arg:
    """One argument of a signal or update as it arrived: its value, or why it could not be read."""

    value: Any = None
    encoding: str = ""
    problem: Optional[str] = None


def preview(args: Sequence[Arg]) -> str:
    """A short, printable rendering of what was sent (never more than PREVIEW_CHARS + a note)."""
    shown = [a.value if a.problem is None else f"<unreadable {a.encoding or 'payload'}>" for a in args]
    try:
        text = json.dumps(shown[0] if len(shown) == 1 else shown, ensure_ascii=False, default=repr)
    except (ValueError, TypeError, RecursionError):
        text = repr(shown)
    if len(text) > PREVIEW_CHARS:
        text = f"{text[:PREVIEW_CHARS]}... ({len(text):,} characters in all)"
    return text


def parse_request(kind: str, args: Sequence[Arg]) -> tuple[Optional[dict[str, Any]], Optional[str]]:
    """(request, None) for a well-formed jump/answer request, else (None, why it is rejected).

    ``request`` has ``node`` and the value already encoded as JSON text (``input`` / ``value``).
    """
    node_key, value_key = _FIELDS[kind]
    if len(args) != 1:
        return None, (f"a {kind} takes exactly one argument, a JSON object like {_EXAMPLE[kind]}; "
                      f"got {len(args)} arguments")
    arg = args[0]
    if arg.problem is not None:
        return None, f"the argument could not be read: {arg.problem}"
    payload = arg.value
    if not isinstance(payload, dict):
        return None, f"a {kind} needs a JSON object like {_EXAMPLE[kind]}, got {_json_type(payload)}"
    unknown = [k for k in payload if k not in (node_key, value_key)]
    if unknown:
        return None, (f"unknown field(s) {', '.join(repr(k) for k in unknown[:5])} in the {kind} "
                      f"(valid: {node_key!r}, {value_key!r})")
    node = payload.get(node_key)
    if not isinstance(node, str) or not node:
        return None, f'a {kind} needs "{node_key}": the name of a node as a string, got {_json_type(node)}'
    try:
        text = _codec.encode(payload.get(value_key), what=f'the "{value_key}" of the {kind}')
    except GeckoError as exc:
        return None, str(exc)
    return {node_key: node, value_key: text}, None


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null", bytes: "raw bytes (send JSON)"}
    return names.get(type(value), type(value).__name__)


def rejection(signal: str, args: Sequence[Arg], reason: str, step: int) -> dict[str, Any]:
    """The record of one rejected request, bounded in size."""
    if len(reason) > REASON_CHARS:
        reason = reason[:REASON_CHARS] + "..."
    return {"signal": signal, "request": preview(args), "reason": reason, "step": step}


def shown_value(text: str) -> tuple[Any, bool]:
    """(what gecko_state shows for a value's JSON text, whether it was cut to a preview)."""
    if len(text) <= VALUE_LIMIT:
        return _codec.plain(text), False
    return _preview_text(text), True


def _preview_text(text: str) -> str:
    return f"<{len(text):,} characters of JSON, too big to show; starts with: {text[:200]}>"


def shown_state(state: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The state as gecko_state shows it (within STATE_BUDGET) and the keys shown as previews."""
    cut = {k for k, text in state.items() if len(text) > VALUE_LIMIT}
    total = sum(len(t) + len(k) for k, t in state.items() if k not in cut)
    if total > STATE_BUDGET:  # many mid-sized values: preview the biggest until it fits
        for key in sorted((k for k in state if k not in cut), key=lambda k: (-len(state[k]), k)):
            cut.add(key)
            total -= len(state[key]) + len(key)
            if total <= STATE_BUDGET:
                break
    shown = {k: _preview_text(t) if k in cut else _codec.plain(t) for k, t in state.items()}
    return shown, [k for k in state if k in cut]


def state_answer(*, workflow: str, status: str, state: dict[str, str], completed: Sequence[str],
                 running: Sequence[str], waiting: dict[str, dict[str, Any]], step: int, layer: int, run: int,
                 nodes: Sequence[str], pending_jumps: Sequence[Any], rejected: Sequence[dict[str, Any]],
                 conflicts: Sequence[str]) -> dict[str, Any]:
    """The ``gecko_state`` answer: plain, strict JSON, bounded whatever the run holds."""
    shown, truncated = shown_state(state)
    return {
        "workflow": workflow,
        "status": status,
        "state": shown,
        "truncated": truncated,
        "completed": list(completed),
        "running": list(running),
        "waiting": waiting,
        "step": step,
        "layer": layer,
        "run": run,
        "nodes": list(nodes),
        "pending_jumps": [{"node": j.node, "input": shown_value(j.input)[0], "source": j.source}
                          for j in pending_jumps],
        "rejected_jumps": [r for r in rejected if r.get("signal", NEXT_SIGNAL) == NEXT_SIGNAL],
        "rejected": list(rejected),
        "conflicts": list(conflicts),
    }
