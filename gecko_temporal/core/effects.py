"""Side effects run once per node execution: ``context.once`` and ``context.idempotency_key``. Pure.

A *node execution* is one step of a node (one Send instance, one Team member) in one session: its
attempts (retries, a worker crash, a local activity run again after a replay) and its re-runs after
``context.interrupt()`` share it, also when a wait goes on in the next run of a continue-as-new
chain, and so do the steps a rewind redoes (they keep their numbers). :class:`EffectScope` names it; :class:`Effects` keeps the
results of ``once`` calls in a :class:`RecordStore` (the shell gives a store on the payload store's
volume), so a later attempt finds the result and does not call the function again.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gecko_temporal.core import codec
from gecko_temporal.core.errors import EffectError, SerializationError

MAX_KEY_CHARS = 200  # a key names an effect in a person's words, and appears in error messages
EFFECTS = "effects"  # the record kind effect records are kept under


class RecordStore(Protocol):
    """Durable bytes by (kind, id): ``save`` returns only once the bytes would survive a crash."""

    def load(self, kind: str, group: str, record: str) -> bytes | None: ...

    def save(self, kind: str, group: str, record: str, data: bytes) -> None: ...


@dataclass(frozen=True)
class EffectScope:
    """One node execution: the session (its first Temporal run id and its id), the node, its step
    and Team member.

    ``first_run`` is the first run id of the session's continue-as-new chain: the same in every run
    of the session (a node waiting for a person may go on in the next run), and new when a session
    id is used again after the first session ended, which then starts with no records.
    """

    first_run: str
    session_id: str
    node: str
    step: int
    member: int | None = None

    def _digest(self, *parts: str) -> str:
        text = "\x1f".join(
            [
                self.first_run,
                self.session_id,
                self.node,
                str(self.step),
                "" if self.member is None else str(self.member),
            ]
            + list(parts)
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def idempotency_key(self, name: str = "") -> str:
        """A key (44 characters, ``gecko-`` and hex) the same on every attempt and re-run of this
        execution, and different for other executions and other names."""
        if not isinstance(name, str):
            raise EffectError(
                f'node "{self.node}": context.idempotency_key(name) takes a str name, got {type(name).__name__}'
            )
        return "gecko-" + self._digest("idempotency", name)[:38]

    def record_id(self, key: str) -> str:
        """The store id of the ``once`` record for ``key`` (64 hex characters)."""
        return self._digest("once", key)


def check_key(node: str, key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS:
        shown = repr(key)[:80]
        raise EffectError(
            f'node "{node}": context.once(key, fn) takes a non-empty str key of at most {MAX_KEY_CHARS} '
            f'characters naming the effect (e.g. "send-invoice"), got {shown}'
        )
    return key


class Effects:
    """The ``once`` records of one node execution.

    ``store`` is None when the worker has no store to keep records in: then ``once`` raises
    EffectError saying how to configure one, before calling anything. ``problem`` says why.
    """

    def __init__(self, scope: EffectScope, store: RecordStore | None, problem: str = "") -> None:
        self.scope = scope
        self._store = store
        self._problem = problem
        self._seen: dict[str, str] = {}  # key -> JSON text, this attempt's own calls

    def _need_store(self, key: str) -> RecordStore:
        if self._store is None:
            raise EffectError(
                f'node "{self.scope.node}": context.once("{key}", ...) cannot record its result: '
                f"{self._problem or 'this worker has no record store'}"
            )
        return self._store

    def recorded(self, key: str) -> tuple[bool, Any]:
        """(True, value) if ``key`` already ran in this node execution, else (False, None)."""
        check_key(self.scope.node, key)
        text = self._seen.get(key)
        if text is None:
            data = self._need_store(key).load(EFFECTS, "", self.scope.record_id(key))
            if data is None:
                return False, None
            text = _record_value(data, self.scope.node, key)
            self._seen[key] = text
        return True, codec.decode(text)

    def record(self, key: str, value: Any) -> Any:
        """Keep ``value`` as the result of ``key``; return it as a later attempt would get it."""
        where = f'the result of context.once("{key}") in node "{self.scope.node}"'
        try:
            text = codec.encode(value, what=where)
        except SerializationError as exc:
            raise EffectError(
                f"{exc}; the effect ran but its result cannot be recorded, so a later attempt would run it "
                "again: return JSON-like data (a dict, a str, a model) from the function"
            ) from None
        self._need_store(key).save(EFFECTS, "", self.scope.record_id(key), record_bytes(text))
        self._seen[key] = text
        return codec.decode(text)

    def once(self, key: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call ``fn(*args, **kwargs)`` unless ``key`` already ran; see ``WorkflowContext.once``."""
        if not callable(fn):
            raise EffectError(f'node "{self.scope.node}": context.once("{key}", fn): fn must be callable, got {fn!r}')
        done, value = self.recorded(key)
        if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__):
            return _ready(value) if done else self._once_async(key, fn(*args, **kwargs))
        if done:
            return value
        result = fn(*args, **kwargs)  # raises: nothing is recorded, a later attempt calls it again
        if inspect.isawaitable(result):
            # A later attempt would return the recorded value without calling fn, so it could not
            # know to give an awaitable: only an async function says so before it is called.
            close = getattr(result, "close", None)
            if close is not None:
                close()  # a coroutine never awaited did nothing
            raise EffectError(
                f'node "{self.scope.node}": context.once("{key}", fn): fn returned an awaitable; pass an async '
                "function (async def, or an object with an async __call__) and await context.once(...)"
            )
        return self.record(key, result)

    async def _once_async(self, key: str, pending: Awaitable[Any]) -> Any:
        return self.record(key, await pending)


async def _ready(value: Any) -> Any:
    return value


def record_bytes(text: str) -> bytes:
    """A record as stored (before the shell's codec): the JSON text, UTF-8."""
    return text.encode()


def _record_value(data: bytes, node: str, key: str) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise EffectError(
            f'node "{node}": the record of context.once("{key}") is not UTF-8 JSON (was it written by '
            "another tool?); delete it to run the effect again"
        ) from None
