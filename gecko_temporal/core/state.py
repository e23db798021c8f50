"""Copy-on-read state and the per-layer merge. Pure: no temporalio import.

The global state lives in the workflow as ``{key: JSON text}``. A node sees it through a
:class:`StateView`: a key is decoded (a private copy) only when the node reads it, so keys a node
never touches cost nothing, and mutating what it read changes nothing outside the node unless it
assigns the value back. Writes and deletes (tombstones) become a :class:`StateDelta`; the deltas of
one layer are merged into the global state in node order, and a Team's members' deltas into one
(:func:`combine`) by the same rule.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from gecko_temporal.core import codec
from gecko_temporal.core.errors import GeckoError, SerializationError, StateKeyError

_ABSENT = object()


@dataclass
class StateDelta:
    """What one node did to the state: keys it set (encoded) and keys it deleted."""

    writes: dict[str, str] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)


class StateView(MutableMapping[str, Any]):
    """A node's private, copy-on-read view of the global state."""

    def __init__(self, base: Mapping[str, str], *, node: str = "", limited_to: list[str] | None = None) -> None:
        self._base = base
        self._node = node
        self._limited_to = None if limited_to is None else frozenset(limited_to)
        self._local: dict[str, Any] = {}  # decoded reads and writes, by key
        self._written: dict[str, None] = {}  # ordered set of keys assigned
        self._deleted: dict[str, None] = {}  # ordered set of tombstones

    def _check_declared(self, key: str) -> None:
        if self._limited_to is not None and key not in self._limited_to:
            raise StateKeyError(
                f'node "{self._node}" read state key {key!r} that it did not declare in reads='
                f"{sorted(self._limited_to)}; add it to reads or drop reads to receive all keys"
            )

    def __getitem__(self, key: str) -> Any:
        if key in self._local:
            return self._local[key]
        if key in self._deleted:  # the node deleted it itself: absent, whatever reads= says
            raise KeyError(key)
        if key not in self._base:
            self._check_declared(key)
            raise KeyError(key)
        value = codec.decode(self._base[key])  # decoding makes the private copy
        self._local[key] = value
        return value

    def get(self, key: str, default: Any = None) -> Any:
        # Same result as Mapping.get, without raising and catching KeyError for absent keys.
        if key in self._local:
            return self._local[key]
        if key in self._deleted:
            return default
        if key not in self._base:
            self._check_declared(key)  # the same rule as state[key]: reads= limits every read path
            return default
        value = self._local[key] = codec.decode(self._base[key])
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"state keys must be str, got {type(key).__name__} {key!r}")
        self._local[key] = value
        self._written[key] = None
        self._deleted.pop(key, None)

    def __delitem__(self, key: str) -> None:
        if self._limited_to is not None and key not in self._limited_to:
            # reads= kept this key from the node, so it cannot tell whether the key exists: delete
            # blindly (a tombstone for a missing key is a no-op in the merge). reads= limits reads only.
            self._local.pop(key, None)
            self._written.pop(key, None)
            self._deleted[key] = None
            return
        if key not in self:
            raise KeyError(key)
        self._local.pop(key, None)
        self._written.pop(key, None)
        if key in self._base:
            self._deleted[key] = None

    def __contains__(self, key: object) -> bool:
        if key in self._deleted:
            return False
        if key in self._written or key in self._base:
            return True
        # reads= kept undeclared keys from the node: "absent" would be a guess, so refuse to answer
        self._check_declared(key)  # type: ignore[arg-type]
        return False

    def __iter__(self) -> Iterator[str]:
        for key in self._base:
            if key not in self._deleted:
                yield key
        for key in self._written:
            if key not in self._base:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"StateView({dict(self)!r})"

    def delta(self) -> StateDelta:
        """Encode this node's writes (their values as they are now) and list its tombstones."""
        writes = {}
        for key in self._written:
            try:
                writes[key] = codec.encode(self._local[key])
            except SerializationError:  # encode again to name the key and node in the error
                codec.encode(self._local[key], what=f'state key {key!r} written by node "{self._node}"')
                raise
        return StateDelta(writes=writes, deletes=list(self._deleted))


def after_own_writes(
    base: Mapping[str, str], delta: StateDelta, reducers: Mapping[str, str], *, node: str = ""
) -> dict[str, str]:
    """The state as a router sees it: ``base`` (what the node saw) with the node's own ``delta``
    applied through the reducers, as LangGraph's routers read the state after their node's update.
    A reduced key then holds the combined value, not the node's contribution alone."""
    state = dict(base)
    merge_layer(state, [(node, delta)], reducers)
    return state


def merge_layer(
    state: dict[str, str], deltas: list[tuple[str, StateDelta]], reducers: Mapping[str, str] | None = None
) -> list[str]:
    """Apply one layer's deltas to ``state`` in place, in the order given (node order).

    The caller passes deltas in node order, never completion order, so a replayed workflow merges
    identically. A later node's write or delete of a key overrides an earlier node's, except for a
    key with a reducer (``reducers``: key -> name in :data:`REDUCERS`): each write to it is combined
    with the value so far, in the same order, and is never a conflict. Returns the keys that more
    than one node of the layer touched (a conflict worth reporting). Raises :class:`ReducerError`
    naming the node and key when a written value cannot be combined.
    """
    touched: dict[str, str] = {}
    conflicts: dict[str, None] = {}
    for node, delta in deltas:
        for key in delta.deletes:
            state.pop(key, None)
            if touched.setdefault(key, node) != node and not (reducers and key in reducers):
                conflicts[key] = None
        if reducers:
            for key, text in delta.writes.items():
                how = reducers.get(key, REPLACE)
                state[key] = text if how == REPLACE else reduce_value(how, state.get(key), text, node=node, key=key)
        else:
            state.update(delta.writes)
        for key in delta.writes:
            if touched.setdefault(key, node) != node and not (reducers and key in reducers):
                conflicts[key] = None
    return list(conflicts)


# --- reducers ---------------------------------------------------------------------------------
# They run in workflow code, so they are the engine's own pure functions over the values' JSON
# (never user code, which a replaying worker might not have, or have changed). Working on the JSON
# keeps tagged values (models, dates) intact inside lists and never revives a class in the workflow.

REPLACE = "replace"


class ReducerError(GeckoError):
    """A node wrote a value its key's reducer cannot combine (names the node, key, reducer, value)."""

    def __init__(self, message: str, *, node: str, key: str) -> None:
        super().__init__(message)
        self.node, self.key = node, key


def _tagged(value: Any) -> bool:
    return isinstance(value, dict) and codec.TAG in value


def _kind(value: Any) -> str:
    if _tagged(value):
        tag = str(value[codec.TAG])
        return tag.rsplit(":", 1)[-1] if ":" in tag else tag
    return {dict: "dict", list: "list", str: "str", bool: "bool", int: "int", float: "float", type(None): "None"}.get(
        type(value), type(value).__name__
    )


def _append(old: Any, new: Any) -> Any:
    if old is None:
        return [new]
    if not isinstance(old, list):
        raise TypeError(f"the value so far is a {_kind(old)}, not a list")
    return [*old, new]


def _extend(old: Any, new: Any) -> Any:
    if not isinstance(new, list):
        raise TypeError(f'extend needs a list, got a {_kind(new)} (use "append" to add one item)')
    if old is None:
        return new
    if not isinstance(old, list):
        raise TypeError(f"the value so far is a {_kind(old)}, not a list")
    return [*old, *new]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _add(old: Any, new: Any) -> Any:
    if old is None:
        if not (_is_number(new) or isinstance(new, (str, list))):
            raise TypeError(f"add needs a number, str or list, got a {_kind(new)}")
        return new
    if _is_number(old) and _is_number(new):
        return old + new
    if type(old) is type(new) and isinstance(new, (str, list)):
        return old + new
    raise TypeError(f"cannot add a {_kind(new)} to a {_kind(old)}")


def _merge(old: Any, new: Any) -> Any:
    if not isinstance(new, dict) or _tagged(new):
        raise TypeError(f"merge needs a dict, got a {_kind(new)}")
    if old is None:
        return new
    if not isinstance(old, dict) or _tagged(old):
        raise TypeError(f"the value so far is a {_kind(old)}, not a dict")
    return {**old, **new}


#: The reducers a key may name in ``Workflow(reducers={key: name})``. ``replace`` is the default rule.
REDUCERS: dict[str, Any] = {REPLACE: None, "append": _append, "extend": _extend, "add": _add, "merge": _merge}


#: Reducers of the user's own, by qualified name (``"module:qualname"``). A Workflow that names one
#: registers it, so a worker that imported the graph's module has it where reducers run (workflow
#: code, which shares this module with the worker: it passes through Temporal's sandbox).
CUSTOM_REDUCERS: dict[str, Callable[[Any, Any], Any]] = {}


def custom_reducer(how: Any) -> tuple[str | None, str | None]:
    """(qualified name, None) for a pure function importable by its qualified name, registered;
    else (None, why not). ``how`` is the function or its ``"module:qualname"``."""
    if isinstance(how, str):
        module, _, qualname = how.partition(":")
        try:
            fn: Any = importlib.import_module(module)
            for part in qualname.split("."):
                fn = getattr(fn, part)
        except (ImportError, AttributeError, ValueError) as exc:
            return None, f"cannot import {how!r} ({type(exc).__name__}: {exc})"
    else:
        fn = how
    owner, qualified = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not callable(fn) or not owner or not qualified or "<" in qualified:
        return None, (
            f"{how!r} has no qualified name a worker can import it by (a lambda or a nested function); "
            "define the reducer at module level"
        )
    name = f"{owner}:{qualified}"
    CUSTOM_REDUCERS[name] = fn
    return name, None


def reduce_value(how: str, old_text: str | None, new_text: str, *, node: str = "", key: str = "") -> str:
    """The JSON text of ``key`` after ``node`` wrote ``new_text`` under reducer ``how``."""
    fn = REDUCERS.get(how)
    if fn is None:
        if how == REPLACE:
            return new_text
        custom = CUSTOM_REDUCERS.get(how)
        if custom is None:
            raise ReducerError(
                f"state key {key!r} names no reducer {how!r} (valid: {', '.join(REDUCERS)}, or a function "
                "of yours by qualified name, registered when the worker imports the module that builds the "
                "Workflow)",
                node=node,
                key=key,
            )
        return _reduce_custom(how, custom, old_text, new_text, node=node, key=key)
    old = json.loads(old_text) if old_text is not None else None
    new = json.loads(new_text)
    try:
        combined = fn(old, new)
    except TypeError as exc:
        raise ReducerError(
            f'node "{node}" wrote state key {key!r} = {_preview(new_text)}, which reducer "{how}" cannot '
            f"combine: {exc}",
            node=node,
            key=key,
        ) from None
    return json.dumps(combined, separators=(",", ":"), ensure_ascii=False)


def _reduce_custom(
    how: str, fn: Callable[[Any, Any], Any], old_text: str | None, new_text: str, *, node: str, key: str
) -> str:
    """A user's reducer over the values' plain JSON (what it raises or returns unserializable fails
    the run naming the reducer, the key and the node, never retried: it would do the same again)."""
    try:
        combined = fn(json.loads(old_text) if old_text is not None else None, json.loads(new_text))
        return json.dumps(combined, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except Exception as exc:
        raise ReducerError(
            f'reducer "{how}" of state key {key!r} raised {type(exc).__name__}: {exc} combining node '
            f'"{node}"\'s write {_preview(new_text)}',
            node=node,
            key=key,
        ) from None


def _preview(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def combine(deltas: Iterable[StateDelta]) -> StateDelta:
    """The one delta that does what ``deltas`` do applied in order, by :func:`merge_layer`'s rule
    (a later write or delete of a key wins): a Team's members' writes, as the Team's own."""
    writes: dict[str, str] = {}
    deletes: dict[str, None] = {}  # ordered set of tombstones
    for delta in deltas:
        merge_layer(writes, [("", delta)])
        deletes.update(dict.fromkeys(delta.deletes))
        for key in delta.writes:
            deletes.pop(key, None)
    return StateDelta(writes=writes, deletes=list(deletes))
