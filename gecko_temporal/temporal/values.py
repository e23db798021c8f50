"""The activity's side of references (core/refs.py): resolve a node input's references, pack its
output. A reference is read from the run's own value table when the workflow lives in this process
(always, for a local activity), else from this worker's cache, else by asking the run (the
``gecko_values`` query: no history event, no store)."""

from __future__ import annotations

from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from gecko_temporal.core.refs import Unpacked, ValueCache, digest, input_refs, live_table
from gecko_temporal.protocol import VALUES_QUERY

_cache = ValueCache()


async def unpack(plain: dict[str, Any]) -> Unpacked:
    """``plain`` (a NodeInput's plain form with references) resolved; fails the attempt (retryable,
    naming the session and the values) when the run cannot be asked for a value it no longer holds."""
    keys = input_refs(plain)
    found: dict[str, str] = {}
    info = activity.info()
    run_id = info.workflow_run_id or ""
    table = live_table(run_id)
    missing = []
    for key in keys:
        text = (table.get(key) if table is not None else None) or _cache.get(key)
        if text is None:
            missing.append(key)
        else:
            found[key] = text
    if missing:
        handle = activity.client().get_workflow_handle(info.workflow_id or "", run_id=run_id)
        while missing:
            answer = await handle.query(VALUES_QUERY, missing)
            good = {k: t for k, t in (answer or {}).items() if k in missing and isinstance(t, str) and digest(t) == k}
            if not good:
                raise ApplicationError(
                    f"session {info.workflow_id}: the run does not hold the values {', '.join(missing[:3])} "
                    "this node's input refers to (the node is retried)",
                    type="ValuesMissing",
                )
            for key, text in good.items():
                found[key] = text
                _cache.put(key, text)
            missing = [k for k in missing if k not in found]
    return Unpacked(plain, found)


def pack(unpacked: Unpacked, output: dict[str, Any]) -> dict[str, Any]:
    """The node's output (plain form) as references and compositions; what it made is cached here,
    so the next node on this worker reads it without asking."""
    packed = unpacked.pack(output)
    for key, text in unpacked.composer.produced():
        _cache.put(key, text)
    return packed
