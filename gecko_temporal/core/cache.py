"""Node outputs reused across runs: ``CachePolicy``, the cache key, and which nodes may be cached. Pure.

A cached node's key covers what its output may depend on: the fingerprint of its code (and of its
router's), its input, the state keys it declares with ``reads=``, the node outputs and run input its
context is shipped, and ``policy.key(input, context)`` when given. A hit returns the stored output
(value, state writes, routes, Sends) and the node's function does not run. The shell keeps entries
in a :class:`gecko_temporal.core.effects.RecordStore` beside the payload store, with their TTL.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gecko_temporal.core.code_hash import code_hash
from gecko_temporal.core.spec import KIND_FUNCTION, KIND_SUBGRAPH, KIND_TEAM, KIND_WAIT

CACHE = "cache"  # the record kind cache entries are kept under
_KEY_VERSION = "gecko-cache-1"


@dataclass(frozen=True)
class CachePolicy:
    """Reuse a node's output across runs for ``ttl`` seconds.

    ``key(input, context)``, when given, returns extra JSON-like data the cache key covers (e.g. a
    model name from the environment, a version); it runs on the worker before the node.
    """

    ttl: float
    key: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        ttl = self.ttl
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl) or ttl <= 0:
            raise _graph_error(f"CachePolicy(ttl=...) must be a positive number of seconds, got {ttl!r}")
        if self.key is not None and not callable(self.key):
            raise _graph_error(f"CachePolicy(key=...) must be a function (input, context) -> data, got {self.key!r}")


def _graph_error(message: str) -> Exception:
    from gecko_temporal.core.errors import GraphError

    return GraphError(message)


def refusal(name: str, kind: str, obj: Any, policy: Any, takes_context: bool, reads: Any) -> str | None:
    """Why node ``name`` cannot be cached (its output is not a function of what the key covers), or
    None. ``obj`` is what was added (a Team, a WaitForInput, a function)."""
    if policy is None:
        return None
    where = f'node "{name}": cache='
    if not isinstance(policy, CachePolicy):
        return f"{where} takes a CachePolicy(ttl=SECONDS, key=None), got {type(policy).__name__} {policy!r}"
    if kind == KIND_WAIT:
        return f"{where} cannot cache a WaitForInput: its output is a person's answer, not a function of its input"
    if kind == KIND_TEAM:
        strategy = getattr(getattr(obj, "strategy", None), "value", "")
        if strategy == "race":
            return (
                f"{where} cannot cache a RACE Team: its output is whichever member finished first, not a "
                "function of its input; cache a function node instead"
            )
        return f"{where} is not supported on a Team; wrap the work in a function node and cache that"
    if kind == KIND_SUBGRAPH:
        return f"{where} is not supported on a subgraph; cache nodes inside it"
    if kind == KIND_FUNCTION and takes_context and reads is None:
        return (
            f"{where} needs reads=[...] on a node that takes context: the cache key covers only the state "
            "keys it declares, so undeclared reads could return a stale output (declare reads=[] if it "
            "reads none)"
        )
    return None


def code_fingerprint(*objs: Any) -> str:
    """A hash of the code of ``objs`` (the node's function and its router; None for none): each
    one's code hash (``core/code_hash.py``, the one the graph fingerprint uses), in order."""
    return hashlib.sha256("\x1e".join(code_hash(obj) if obj is not None else "" for obj in objs).encode()).hexdigest()


def cache_key(
    *,
    graph: str,
    node: str,
    fingerprint: str,
    input_text: str,
    state: Mapping[str, str] | None = None,
    history: Mapping[str, str] | None = None,
    run_input: str | None = None,
    extra: str | None = None,
) -> str:
    """The entry id (64 hex characters) of one node's output for these inputs (encoded JSON text)."""
    parts = {
        "v": _KEY_VERSION,
        "graph": graph,
        "node": node,
        "code": fingerprint,
        "input": input_text,
        "state": dict(sorted((state or {}).items())),
        "history": dict(sorted((history or {}).items())),
        "run_input": run_input,
        "extra": extra,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=True).encode()).hexdigest()


def node_group(node: str) -> str:
    """The folder of one node's entries, so ``cache clear --node N`` finds them (any pipeline)."""
    return "n" + hashlib.sha256(node.encode()).hexdigest()[:24]


def entry_bytes(node: str, output: Mapping[str, Any], expires: float) -> bytes:
    """An entry as stored (before the shell's codec): the node, its expiry (epoch seconds), its output."""
    return json.dumps({"node": node, "expires": expires, "output": dict(output)}, sort_keys=True).encode()


def entry_output(data: bytes, now: float) -> dict[str, Any] | None:
    """The stored output, or None when the entry has expired or is not one of ours."""
    try:
        entry = json.loads(data)
    except ValueError:  # (UnicodeDecodeError is one)
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("output"), dict):
        return None
    expires = entry.get("expires")
    if not isinstance(expires, (int, float)) or isinstance(expires, bool) or expires <= now:
        return None
    output: dict[str, Any] = entry["output"]
    return output
