"""Encode user values as strict JSON text and back, keeping pydantic models (MemberResult, Next, the
user's own) as real objects on the other side. Pure: no temporalio import.

The workflow never decodes user values; it moves this text around, so its cost does not depend on
what users put in it, and replay never runs user (de)serialization code.

Two rules keep data from turning into objects it should not be:
- A model, dataclass or Enum travels as ``{"__gecko__": "module:Class", "data": ...}``, and decoding
  revives only classes in :data:`_KNOWN` (the engine's own, and the ones the built or served graphs
  name); a tag naming anything else comes back as its plain data. No module is ever imported
  because of data.
- A dict of the user's that has a ``"__gecko__"`` key of its own (data from a signal, a file, a web
  page) is escaped as ``{"__gecko__": "dict", "items": [[key, value], ...]}``, so it comes back as
  the same dict and can never pose as a tag.

Values JSON has no type for travel under a fixed tag with no ':' (so never a class name):
``datetime``, ``date``, ``time``, ``timedelta``, ``uuid``, ``decimal``, ``bytes`` (base64), ``set``
and ``frozenset``; each comes back as the same type. NaN, ``inf`` and ``-inf`` travel as
``{"__gecko__": "float", "data": "nan"}`` (``"inf"``, ``"-inf"``) and come back as those floats. Tuples arrive as lists and ``IntEnum``/
``StrEnum`` members as their int/str value (JSON writes those natively, equal to the original);
tuples inside a set or frozenset come back as tuples (a set cannot hold lists).

Text is strict JSON (never a bare NaN or Infinity), which the Go CLI and the Temporal UI parse.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import enum
import functools
import inspect
import json
import math
import sys
import typing
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, cast

from pydantic import BaseModel

from gecko_temporal.core.errors import SerializationError

TAG = "__gecko__"
_ESCAPED = "dict"  # the tag of an escaped user dict (a model's tag always holds a ':')

#: Classes decoding may build (pydantic models, dataclasses, Enums), by "module:qualname".
_KNOWN: dict[str, type] = {}
_SCANNED_MODULES: set[str] = set()


def type_ref(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def revivable(cls: Any) -> bool:
    """True for the classes decoding can revive: pydantic models, dataclasses, Enums with members."""
    if not isinstance(cls, type):
        return False
    if issubclass(cls, BaseModel):
        return cls is not BaseModel
    if issubclass(cls, enum.Enum):
        return len(cls.__members__) > 0
    return dataclasses.is_dataclass(cls)


def register_type(cls: type, _depth: int = 0) -> None:
    """Allow decoding to revive ``cls`` (a pydantic model, dataclass or Enum class); other classes
    are ignored. A dataclass brings the dataclasses and Enums its fields name (a model's fields
    are rebuilt by the model's own validation)."""
    if not revivable(cls) or type_ref(cls) in _KNOWN:
        return
    _KNOWN[type_ref(cls)] = cls
    if dataclasses.is_dataclass(cls) and _depth < 5:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # unresolvable annotations: the class itself is still registered
            hints = {}
        for hint in hints.values():
            for inner in _classes_in_hint(hint):
                register_type(inner, _depth + 1)


def register_types_of(fn: Any) -> None:
    """Register the model classes a node's code names: its return annotation, and the models in the
    namespace of the module that defines it (where a pipeline's own models usually live)."""
    try:
        hint = inspect.signature(fn).return_annotation
        if isinstance(hint, str):
            hint = typing.get_type_hints(fn).get("return")
    except Exception:  # unresolvable annotations: the module scan below still runs
        hint = None
    for cls in _classes_in_hint(hint):
        register_type(cls)
    module_name = getattr(fn, "__module__", None) or type(fn).__module__
    if module_name and module_name not in _SCANNED_MODULES:
        _SCANNED_MODULES.add(module_name)
        module = sys.modules.get(module_name)
        for value in list(vars(module).values()) if module is not None else ():
            register_type(value)


def _classes_in_hint(hint: Any, depth: int = 0) -> Iterable[type]:
    if hint is None or depth > 5:
        return
    if isinstance(hint, type):
        yield hint
    for arg in typing.get_args(hint):
        yield from _classes_in_hint(arg, depth + 1)


def _default(obj: Any) -> Any:
    """The JSON form of a value the json module has no type for (it calls this for nothing else)."""
    if isinstance(obj, BaseModel):
        data = _model_data(obj)
        return {TAG: type_ref(type(obj)), "data": _escape(data) if _has_tag_key(data) else data}
    kind = type(obj)
    if kind in _RICH_ENCODERS:
        return {TAG: _RICH_ENCODERS[kind][0], "data": _RICH_ENCODERS[kind][1](obj)}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        # One level only: the encoder calls back here for nested dataclasses, which keep their class.
        data = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return {TAG: type_ref(kind), "data": _escape(data) if _has_tag_key(data) else data}
    if isinstance(obj, enum.Enum):
        return {TAG: type_ref(kind), "data": obj.value}
    for base, (tag, to_json) in _RICH_ENCODERS.items():  # subclasses, e.g. pendulum's DateTime
        if isinstance(obj, base):
            return {TAG: tag, "data": to_json(obj)}
    raise _Unserializable(obj)


_MODEL_DUMPERS: dict[type, Callable[[Any], Any]] = {}


def _model_data(obj: BaseModel) -> Any:
    """``obj.model_dump(mode="json")``, except that NaN and infinities stay floats (the encoder tags
    them): pydantic's JSON mode turns those in ``Any``/``dict`` fields into None, losing them."""
    dump = _MODEL_DUMPERS.get(type(obj))
    if dump is None:
        dump = functools.partial(type(obj).model_dump, mode="json")
        if type(obj).model_dump is BaseModel.model_dump:  # (a model_dump of the user's own is kept)
            try:
                from pydantic_core import CoreConfig, SchemaSerializer

                schema: Any = type(obj).__pydantic_core_schema__
                # the model's own core config (a CoreConfig dict already), with NaN and infinities kept
                config = cast(CoreConfig, {**(schema.get("config") or {}), "ser_json_inf_nan": "constants"})
                dump = functools.partial(SchemaSerializer(schema, config).to_python, mode="json")
            except Exception:  # a schema pydantic cannot build a serializer from: model_dump, as before
                pass
        _MODEL_DUMPERS[type(obj)] = dump
    return dump(obj)


def _sorted(items: Iterable[Any]) -> list[Any]:
    # Encoding a set must be deterministic (the same value, the same text): sort by the encoding.
    return sorted(items, key=lambda v: encode(v))


_NON_FINITE: dict[str, float] = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}

#: type -> (tag, to JSON); tag -> from JSON. Tags hold no ':' so they never name a class.
#: Order matters for subclass lookups: datetime is a date.
_RICH_ENCODERS: dict[type, tuple[str, Callable[[Any], Any]]] = {
    _dt.datetime: ("datetime", lambda v: v.isoformat()),
    _dt.date: ("date", lambda v: v.isoformat()),
    _dt.time: ("time", lambda v: v.isoformat()),
    _dt.timedelta: ("timedelta", lambda v: [v.days, v.seconds, v.microseconds]),
    uuid.UUID: ("uuid", str),
    Decimal: ("decimal", str),
    bytes: ("bytes", lambda v: base64.b64encode(v).decode("ascii")),
    bytearray: ("bytes", lambda v: base64.b64encode(v).decode("ascii")),
    set: ("set", _sorted),
    frozenset: ("frozenset", _sorted),
}
_RICH_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": _dt.datetime.fromisoformat,
    "date": _dt.date.fromisoformat,
    "time": _dt.time.fromisoformat,
    "timedelta": lambda d: _dt.timedelta(days=d[0], seconds=d[1], microseconds=d[2]),
    "uuid": uuid.UUID,
    "decimal": Decimal,
    "bytes": lambda d: base64.b64decode(d, validate=True),
    "set": lambda d: set(map(_hashable, _list(d))),
    "frozenset": lambda d: frozenset(map(_hashable, _list(d))),
    "float": lambda d: _NON_FINITE[d],
}


def _float_tag(value: float) -> dict[str, str]:
    return {TAG: "float", "data": "nan" if value != value else ("inf" if value > 0 else "-inf")}


def _tag_floats(value: Any) -> Any:
    """``value`` with every NaN or infinite float tagged (strict JSON has no token for them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else _float_tag(value)
    if isinstance(value, dict):
        return {k: _tag_floats(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tag_floats(v) for v in value]
    return value


def _list(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise TypeError("a set's data is a list")
    return data


def _hashable(value: Any) -> Any:
    """A set's member as it went in: JSON turned its tuples into lists, which no set can hold."""
    return tuple(map(_hashable, value)) if isinstance(value, list) else value


def _revive_known(cls: type, data: Any) -> Any:
    if issubclass(cls, BaseModel):
        return cls.model_validate(data)
    if issubclass(cls, enum.Enum):
        return cls(data)
    if not dataclasses.is_dataclass(cls):  # revivable() lets in nothing else; fields() would raise the same
        raise TypeError(f"{type_ref(cls)} is not a dataclass")
    init = {f.name for f in dataclasses.fields(cls) if f.init}
    return cls(**{k: v for k, v in data.items() if k in init})


def _has_tag_key(value: Any) -> bool:
    if isinstance(value, dict):
        return TAG in value or any(_has_tag_key(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_tag_key(v) for v in value)
    return False


def _escape(value: Any) -> Any:
    """``value`` with every dict that has a TAG key of its own escaped (models are left to _default)."""
    if isinstance(value, dict):
        if TAG in value:
            return {TAG: _ESCAPED, "items": [[k, _escape(v)] for k, v in value.items()]}
        return {k: _escape(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_escape(v) for v in value]
    return value


class _Unserializable(TypeError):
    def __init__(self, obj: Any) -> None:
        super().__init__(f"{type(obj).__module__}.{type(obj).__qualname__}")
        self.type_name = type(obj).__qualname__


# Built once: json.dumps/json.loads with keyword arguments build a new encoder/decoder per call,
# which costs more than encoding a small value. Both are stateless between calls (thread-safe).
_ENCODER = json.JSONEncoder(default=_default, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_FLOAT_ENCODER = json.JSONEncoder(
    default=lambda obj: _tag_floats(_default(obj)), separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
# scan_once is set in JSONDecoder.__init__ (the C scanner when there is one) but not in typeshed.
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
try:  # the C encoder _ENCODER builds on every call, built once; no circular-reference markers,
    # so a circular value ends in RecursionError and is re-encoded by _ENCODER, which names it.
    _fast_encode: Any = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, _default, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
except Exception:  # no C accelerator on this interpreter
    _fast_encode = None


def encode(value: Any, *, what: str = "value") -> str:
    """Return ``value`` as strict JSON text; raise SerializationError naming ``what`` and the problem."""
    try:
        text = None
        if _fast_encode is not None:
            try:
                text = "".join(_fast_encode(value, 0))
            except RecursionError:
                pass
        if text is None:
            text = _ENCODER.encode(value)
        if TAG in text and _has_tag_key(value):  # a user dict with our key: escape it (rare)
            text = _ENCODER.encode(_escape(value))
        return text
    except _Unserializable as exc:
        problem = f"contains a {exc.type_name} ({exc})"
    except ValueError as exc:
        if "Out of range float" in str(exc):  # NaN or +-inf somewhere: tagged, as rich values are
            try:
                return _FLOAT_ENCODER.encode(_tag_floats(_escape(value) if _has_tag_key(value) else value))
            except ValueError:  # still one where no walk reaches (e.g. inside a set): say where
                raise SerializationError(
                    f"{what} contains {_non_finite(value)}: NaN and Infinity are not JSON, and Temporal's CLI "
                    "and UI cannot read them here; use None or a string instead"
                ) from None
        if "Circular" in str(exc):
            problem = f"of type {type(value).__name__} refers to itself (a circular reference)"
        else:
            problem = f"of type {type(value).__name__} cannot be encoded ({exc})"
    except (TypeError, RecursionError) as exc:  # e.g. a dict key that is not a str/int/float/bool
        problem = f"of type {type(value).__name__} cannot be encoded ({type(exc).__name__}: {exc})"
    raise SerializationError(
        f"{what} {problem}, which cannot be serialized. Use JSON-compatible data (dict, list, "
        "str, int, float, bool, None, datetime, UUID, Decimal, bytes, ...), a dataclass or a pydantic model."
    )


def where_non_finite(value: Any) -> str:
    """Where the first NaN or infinite float in ``value`` is (e.g. 'nan at ["scores"][2]'), or ""."""
    found = _non_finite(value)
    return "" if found == "a NaN or infinite float" else found


def _non_finite(value: Any, path: str = "", depth: int = 0) -> str:
    """Where the first NaN/Infinity in ``value`` is, e.g. 'nan at ["scores"][2]'."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r} at {path or 'the top level'}"
    if depth < 50:
        items: Iterable[tuple[str, Any]] = ()
        if isinstance(value, dict):
            items = ((f"[{k!r}]", v) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            items = ((f"[{i}]", v) for i, v in enumerate(value))
        elif isinstance(value, BaseModel):
            items = ((f".{k}", v) for k, v in vars(value).items())
        for step, item in items:
            found = _non_finite(item, path + step, depth + 1)
            if found:
                return found
    return "" if path or depth else "a NaN or infinite float"


def _unescaped(obj: dict[str, Any]) -> dict[Any, Any] | None:
    """The user's dict an escaped ``{TAG: "dict", "items": [...]}`` stands for, else None."""
    if obj.get(TAG) == _ESCAPED and set(obj) == {TAG, "items"} and isinstance(obj["items"], list):
        return {pair[0]: pair[1] for pair in obj["items"] if isinstance(pair, list) and len(pair) == 2}
    return None


def _revive_tagged(obj: dict[str, Any]) -> Any:
    ref = obj.get(TAG)
    if ref is None or not isinstance(ref, str):
        return obj
    escaped = _unescaped(obj)
    if escaped is not None:
        return escaped
    if set(obj) != {TAG, "data"}:
        return obj
    rich = _RICH_DECODERS.get(ref)
    if rich is not None:
        try:
            return rich(obj["data"])
        except Exception:  # malformed (never written by encode): its data, as for an unknown class
            return obj["data"]
    cls = _KNOWN.get(ref)
    if cls is None:  # not a class this process allows: hand back its data, never import anything
        return obj["data"]
    try:
        return _revive_known(cls, obj["data"])
    except Exception:  # the class changed since the value was written: its data is still useful
        return obj["data"]


def _unwrap_tagged(obj: dict[str, Any]) -> Any:
    """Like _revive_tagged, but models become their plain data: what people read."""
    if isinstance(obj.get(TAG), str):
        escaped = _unescaped(obj)
        if escaped is not None:
            return escaped
        if set(obj) == {TAG, "data"}:
            return obj["data"]
    return obj


def decode(text: str) -> Any:
    """Return the value ``text`` encodes, known pydantic models revived."""
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
    """Parse ``text`` as plain JSON for people and queries: models shown as their data, no tags."""
    if TAG not in text and "\\u" not in text:
        return json.loads(text)
    return json.loads(text, object_hook=_unwrap_tagged)
