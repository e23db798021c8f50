"""Encode user values as JSON text and back, keeping pydantic models (MemberResult, Next, the
user's own) as real objects on the other side. Pure: no temporalio import.

The workflow never decodes user values; it moves this text around, so its cost does not depend on
what users put in it, and replay never runs user (de)serialization code.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from typing import Any

from pydantic import BaseModel

from .errors import SerializationError

TAG = "__gecko__"


def _default(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        cls = type(obj)
        return {TAG: f"{cls.__module__}:{cls.__qualname__}", "data": obj.model_dump(mode="json")}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)  # sorted: encoding a set must be deterministic
    raise _Unserializable(obj)


class _Unserializable(TypeError):
    def __init__(self, obj: Any) -> None:
        super().__init__(f"{type(obj).__module__}.{type(obj).__qualname__}")
        self.type_name = type(obj).__qualname__


# Built once: json.dumps/json.loads with keyword arguments build a new encoder/decoder per call,
# which costs more than encoding a small value. Both are stateless between calls (thread-safe).
_ENCODER = json.JSONEncoder(default=_default, separators=(",", ":"), ensure_ascii=False)
_scan = json.JSONDecoder().scan_once
try:  # the C encoder _ENCODER builds on every call, built once; no circular-reference markers,
    # so a circular value ends in RecursionError and is re-encoded by _ENCODER, which names it.
    _fast_encode: Any = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, _default, json.encoder.encode_basestring, None, ":", ",", False, False, True)
except Exception:  # no C accelerator on this interpreter
    _fast_encode = None


def encode(value: Any, *, what: str = "value") -> str:
    """Return ``value`` as JSON text; raise SerializationError naming ``what`` and the type."""
    try:
        if _fast_encode is not None:
            try:
                return "".join(_fast_encode(value, 0))
            except RecursionError:
                pass
        return _ENCODER.encode(value)
    except _Unserializable as exc:
        problem = f"contains a {exc.type_name} ({exc})"
    except (TypeError, ValueError) as exc:  # e.g. a dict key that is not a str/int/float/bool
        problem = f"of type {type(value).__name__} cannot be encoded ({exc})"
    raise SerializationError(
        f"{what} {problem}, which cannot be serialized. Use JSON-compatible data (dict, list, "
        "str, int, float, bool, None), a dataclass or a pydantic model."
    )


def _revive_tagged(obj: dict) -> Any:
    ref = obj.get(TAG)
    if not isinstance(ref, str) or set(obj) != {TAG, "data"}:
        return obj
    module, _, qualname = ref.partition(":")
    try:
        target: Any = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
        return target.model_validate(obj["data"])
    except Exception:  # the class is not importable here: hand back its data, not an error
        return obj["data"]


def decode(text: str) -> Any:
    """Return the value ``text`` encodes, pydantic models revived."""
    if isinstance(text, str) and TAG not in text and "\\u" not in text:
        # No tag can be inside (not even \u-escaped): the C scanner alone, no per-dict hook.
        # Anything but one bare JSON value (whitespace, extra data, an error) goes to json.loads.
        try:
            value, end = _scan(text, 0)
        except StopIteration:
            return json.loads(text)
        return value if end == len(text) else json.loads(text)
    return json.loads(text, object_hook=_revive_tagged)


def revive(obj: Any) -> Any:
    """Revive tagged models inside an already-parsed JSON value."""
    if isinstance(obj, list):
        return [revive(v) for v in obj]
    if isinstance(obj, dict):
        return _revive_tagged({k: revive(v) for k, v in obj.items()})
    return obj


def plain(text: str) -> Any:
    """Parse ``text`` as plain JSON (tags left as data): what the workflow and queries show."""
    return json.loads(text)
