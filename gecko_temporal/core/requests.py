"""Requests from outside a run, read and checked: a jump, an answer, a state edit. Pure: no
temporalio import.

Anything can arrive: no argument or three, a string instead of an object, NaN, a 1.5 MB blob, a
payload in an encoding nobody here reads. Every parser returns ``(request, None)`` or ``(None, why)``
instead of raising, so the workflow records the request as rejected and goes on; what it keeps of a
rejected request is a short :func:`preview` (:func:`rejection`). :mod:`gecko_temporal.core.control`
acts on what these accept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gecko_temporal.core import codec
from gecko_temporal.core.errors import GeckoError

PREVIEW_CHARS = 300  # what a rejected request keeps of what was sent
REASON_CHARS = 600
EDIT_LIMIT = 1024 * 1024  # JSON characters one update_state may write
EDIT_KEYS = 10_000  # keys one update_state may set and delete together

_FIELDS = {"jump": ("node", "input"), "answer": ("node", "value")}
_EXAMPLE = {"jump": '{"node": "Name", "input": ...}', "answer": '{"node": "Name", "value": ...}'}


@dataclass(frozen=True)
class Arg:
    """One argument of a signal or update as it arrived: its value, or why it could not be read."""

    value: Any = None
    encoding: str = ""
    problem: str | None = None
    # Read back from the payload store (a claim-check reference): never previewed, since the store is
    # shared and content-addressed, a reference may name another session's data.
    stored: bool = False


def preview(args: Sequence[Arg]) -> str:
    """A short, printable rendering of what was sent (never more than PREVIEW_CHARS + a note)."""
    shown = [
        f"<unreadable {a.encoding or 'payload'}>"
        if a.problem is not None
        else "<a value from the payload store: not shown>"
        if a.stored
        else a.value
        for a in args
    ]
    try:
        text = json.dumps(shown[0] if len(shown) == 1 else shown, ensure_ascii=False, default=repr)
    except (ValueError, TypeError, RecursionError):
        text = repr(shown)
    if len(text) > PREVIEW_CHARS:
        text = f"{text[:PREVIEW_CHARS]}... ({len(text):,} characters in all)"
    return text


def parse_request(kind: str, args: Sequence[Arg]) -> tuple[dict[str, Any] | None, str | None]:
    """(request, None) for a well-formed jump/answer request, else (None, why it is rejected).

    ``request`` has ``node`` and the value already encoded as JSON text (``input`` / ``value``).
    """
    node_key, value_key = _FIELDS[kind]
    a_kind = f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"  # "an answer", "a jump"
    payload, problem = one_object(args, a_kind, _EXAMPLE[kind])
    if problem:
        return None, problem
    optional = ("interrupt",) if kind == "answer" else ()
    unknown = [k for k in payload if k not in (node_key, value_key, *optional)]
    if unknown:
        return None, (
            f"unknown field(s) {', '.join(repr(k) for k in unknown[:5])} in the {kind} "
            f"(valid: {', '.join(repr(k) for k in (node_key, value_key, *optional))})"
        )
    index = payload.get("interrupt")
    if index is not None and (not isinstance(index, int) or isinstance(index, bool) or index < 0):
        return None, f'"interrupt" names which interrupt() call is answered (0, 1, ...), got {_json_type(index)}'

    node = payload.get(node_key)
    if not isinstance(node, str) or not node:
        return None, f'{a_kind} needs "{node_key}": the name of a node as a string, got {_json_type(node)}'
    try:
        text = codec.encode(payload.get(value_key), what=f'the "{value_key}" of the {kind}')
    except GeckoError as exc:
        return None, str(exc)
    if len(text) > EDIT_LIMIT:  # kept by the run (and carried across continue-as-new) until taken
        return None, (
            f'the "{value_key}" of the {kind} is {len(text):,} characters of JSON, over {EDIT_LIMIT:,}; '
            "keep big data in files and pass a path"
        )
    request: dict[str, Any] = {node_key: node, value_key: text}
    if index is not None:
        request["interrupt"] = index
    return request, None


def one_object(args: Sequence[Arg], what: str, example: str) -> tuple[Any, str | None]:
    """(the JSON object, None) when ``args`` is exactly one readable JSON object, else (None, why)."""
    if len(args) != 1:
        return None, f"{what} takes exactly one argument, a JSON object like {example}; got {len(args)} arguments"
    arg = args[0]
    if arg.problem is not None:
        return None, f"the argument could not be read: {arg.problem}"
    if not isinstance(arg.value, dict):
        return None, f"{what} needs a JSON object like {example}, got {_json_type(arg.value)}"
    return arg.value, None


def _json_type(value: Any) -> str:
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
        bytes: "raw bytes (send JSON)",
    }
    return names.get(type(value), type(value).__name__)


def rejection(signal: str, args: Sequence[Arg], reason: str, step: int) -> dict[str, Any]:
    """The record of one rejected request, bounded in size."""
    if len(reason) > REASON_CHARS:
        reason = reason[:REASON_CHARS] + "..."
    return {"signal": signal, "request": preview(args), "reason": reason, "step": step}


def parse_edit(
    values: Any, delete: Any, unknown: Sequence[str], source: str
) -> tuple[dict[str, Any] | None, str | None]:
    """(edit, None) or (None, why): ``values`` a JSON object of keys to set, ``delete`` a list of keys.

    An edit is ``{"values": {key: JSON text}, "delete": [key], "source": source}``. Deleting is
    explicit (a ``null`` value sets the key to null), so no value is ever ambiguous.
    """
    if unknown:
        return None, (
            f"unknown field(s) {', '.join(repr(k) for k in list(unknown)[:5])} in update_state "
            "(valid: 'values', 'delete')"
        )
    if values is None:
        values = {}
    if delete is None:
        delete = []
    if not isinstance(values, dict):
        return None, f'"values" must be a JSON object of state keys to set, got {_json_type(values)}'
    if not isinstance(delete, list) or not all(isinstance(k, str) and k for k in delete):
        return None, '"delete" must be a list of state keys (non-empty strings)'
    if not values and not delete:
        return None, 'update_state needs "values" to set or "delete" keys to remove; both are empty'
    if any(not k for k in values):
        return None, "state keys must be non-empty strings"
    if len(values) + len(delete) > EDIT_KEYS:
        return None, (
            f"update_state names {len(values) + len(delete):,} keys; at most {EDIT_KEYS:,} per update "
            "(send several, or keep many small values under one key)"
        )
    if sum(len(k) for k in delete) > EDIT_LIMIT:
        return None, f'the "delete" key names are over {EDIT_LIMIT:,} characters in all'
    both = [k for k in delete if k in values]
    if both:
        return None, f"keys both set and deleted: {', '.join(repr(k) for k in both[:5])}; pick one"
    encoded, size = {}, 0
    for key, value in values.items():
        try:
            encoded[key] = codec.encode(value, what=f"state key {key!r} of update_state")
        except GeckoError as exc:
            return None, str(exc)
        size += len(encoded[key]) + len(key)
        if size > EDIT_LIMIT:
            return None, (
                f"update_state values are over {EDIT_LIMIT:,} characters of JSON (at key {key!r}); "
                "keep big data in files and put paths in state"
            )
    return {"values": encoded, "delete": list(dict.fromkeys(delete)), "source": source}, None
