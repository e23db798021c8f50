"""Temporal's payload size limits, checked before Temporal enforces them. Pure: no temporalio import.

Temporal rejects any single payload over 2 MiB. An activity input that large does not fail the
run: the workflow task that schedules it fails and is retried forever, so the run stalls until its
timeout with no word about why. The interpreter measures what it is about to send first and fails
the node with a message that says what is big and how to fix it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

PAYLOAD_LIMIT = 2 * 1024 * 1024  # Temporal rejects a payload above this
PAYLOAD_WARN = 512 * 1024  # Temporal warns above this; so do we, once per node
FRAME = 8 * 1024  # room for a payload's other fields and its JSON framing
_KEEP_OUTSIDE = "keep large data outside the run (write it to a file or a store and pass its path)"


def json_size(text: str) -> int:
    """Bytes that ``text`` takes as a JSON string inside a Temporal payload (ASCII-escaped)."""
    return len(json.dumps(text))


def human(size: int) -> str:
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


class SizeTable:
    """The payload size of each entry of a ``{name: JSON text}`` mapping, measured once."""

    def __init__(self, encoded: Mapping[str, str]) -> None:
        self.sizes = {name: json_size(text) + len(name) + 4 for name, text in encoded.items()}
        self.total = sum(self.sizes.values())

    def of(self, names: Iterable[str] | None) -> int:
        """Size of the named entries (all of them when ``names`` is None)."""
        if names is None:
            return self.total
        return sum(self.sizes.get(n, 0) for n in names)

    def biggest(self, names: Iterable[str] | None = None, count: int = 3) -> str:
        chosen = self.sizes if names is None else {n: self.sizes[n] for n in names if n in self.sizes}
        top = sorted(chosen.items(), key=lambda item: (-item[1], item[0]))[:count]
        more = ", ..." if len(chosen) > count else ""
        return ", ".join(f'"{name}" {human(size)}' for name, size in top) + more


def limit_name(limit: int) -> str:
    """'Temporal's 2.0 MB payload limit', or the payload store's when one raised it."""
    whose = "Temporal's" if limit <= PAYLOAD_LIMIT else "the payload store's"
    return f"{whose} {human(limit)} payload limit"


def node_input_problem(
    node: str,
    *,
    input_size: int,
    state: SizeTable | None,
    reads: list[str] | None,
    history: SizeTable | None,
    history_names: list[str] | None,
    run_input_size: int = 0,
    limit: int = PAYLOAD_LIMIT,
) -> tuple[str | None, str | None]:
    """(error, warning) about the payload one call of ``node`` would send; None when fine.

    ``state``/``history`` are None for a node that receives no context (nothing of them is sent).
    ``limit`` is the run's payload limit; above Temporal's (a payload store) nothing warns.
    """
    state_size = state.of(reads) if state is not None else 0
    history_size = history.of(history_names) if history is not None else 0
    total = input_size + state_size + history_size + run_input_size + FRAME
    if total <= (PAYLOAD_WARN if limit <= PAYLOAD_LIMIT else limit):
        return None, None
    parts = [f"its input {human(input_size)}"]
    if state is not None:
        parts.append(f"state {human(state_size)}" + (f": {state.biggest(reads)}" if state_size else ""))
    if history is not None:
        parts.append(
            f"node outputs {human(history_size)}" + (f": {history.biggest(history_names)}" if history_size else "")
        )
    if run_input_size:
        parts.append(f"the run's input {human(run_input_size)}")
    fixes = []  # only for parts that weigh something: a fix that saves 16 bytes is noise
    if state is not None and reads is None and state_size * 10 >= total:
        fixes.append("reads=[...] with the state keys it uses")
    if history is not None and history_names is None and history_size * 10 >= total:
        fixes.append("history=[...] with the nodes whose outputs it reads")
    fix = ("declare " + " and ".join(fixes) + ", or " if fixes else "") + _KEEP_OUTSIDE
    what = f'node "{node}" would receive {human(total)} per call ({"; ".join(parts)})'
    if total > limit:
        return f"{what}, over {limit_name(limit)}; {fix}", None
    return None, f"{what}, over Temporal's {human(PAYLOAD_WARN)} warning size; {fix}"


def output_problem(
    where: str, value: str, writes: Mapping[str, str], jump_input: str = "", limit: int = PAYLOAD_LIMIT
) -> str | None:
    """An error if a node's output (value, state writes, Next input) cannot leave the worker."""
    table = SizeTable(writes)
    total = json_size(value) + table.total + (json_size(jump_input) if jump_input else 0) + FRAME
    if total <= limit:
        return None
    detail = f"its return value {human(json_size(value))}"
    if table.total:
        detail += f"; state writes {human(table.total)}: {table.biggest()}"
    fix = (
        _KEEP_OUTSIDE if limit > PAYLOAD_LIMIT else "set GECKO_PAYLOAD_STORE (see docs/payloads.md) or " + _KEEP_OUTSIDE
    )
    return f"the output of {where} is {human(total)} ({detail}), over {limit_name(limit)}; {fix}"


def result_problem(result: str, last_layer: list[str], limit: int = PAYLOAD_LIMIT) -> tuple[str, str] | None:
    """(node, error) if the run's result (the output of ``last_layer``) is too big to return."""
    size = json_size(result)
    if size + FRAME <= limit:
        return None
    node = last_layer[0] if len(last_layer) == 1 else ", ".join(last_layer)
    return node, (
        f"the run's result (the output of {', '.join(repr(n) for n in last_layer)}) is "
        f"{human(size)}, over {limit_name(limit)}; make the last node return something smaller "
        "(a summary or a file path)"
    )


def snapshot_problem(next_run: str, workflow: str, state: Mapping[str, str], limit: int = PAYLOAD_LIMIT) -> str | None:
    """A warning if a run cannot continue as new because ``next_run`` (its input, as JSON) is too big."""
    size = len(next_run) + FRAME
    if size <= limit:
        return None
    return (
        f"run {workflow} cannot continue as new: its snapshot is {human(size)} (state: "
        f"{SizeTable(state).biggest()}), over {limit_name(limit)}; it goes on "
        "in this run, which Temporal ends at 51,200 events. Keep large data out of state (write it to a "
        "file and keep the path)"
    )


# Temporal refuses an activity type, a workflow id or an activity id longer than this (bytes, UTF-8),
# and a workflow task that would schedule one fails on every attempt: the run stalls for good.
ID_LIMIT = 1000


def id_size(text: str) -> int:
    return len(text.encode("utf-8"))


def name_problem(what: str, text: str, limit: int = ID_LIMIT) -> str | None:
    """An error if ``text`` (an activity type or a session id) is longer than Temporal accepts."""
    size = id_size(text)
    if size <= limit:
        return None
    return f"{what} is {size:,} bytes ({text[:40]!r}...), over Temporal's {limit:,}-byte limit; use a shorter name"


def child_session_id(parent: str, node: str, step: int, limit: int = ID_LIMIT) -> str:
    """The session id of a subgraph node's child run: ``parent.node.step``, or when that is too long
    for Temporal, its head and a hash of the whole (stable on replay, distinct per node and step).
    Ids that fit are the ones runs always had."""
    full = f"{parent}.{node}.{step}"
    if id_size(full) <= limit:
        return full
    tail = f"~{hashlib.sha256(full.encode('utf-8')).hexdigest()[:20]}.{step}"
    head = full.encode("utf-8")[: limit - id_size(tail)].decode("utf-8", "ignore")
    return head + tail


def sends_problem(where: str, count: int, size: int, at: int, limit: int = PAYLOAD_LIMIT) -> str | None:
    """An error once the Sends a node returned pass the payload limit: ``size`` bytes by Send ``at``
    of ``count``. All of them travel in the node's one output, so this fails the node before the
    worker encodes the rest (1,000 Sends of 1.9 MB once took a worker from 0.3 to 10 GB)."""
    if size + FRAME <= limit:
        return None
    fix = (
        "send smaller items (ids, paths or chunks to load in the instance)"
        if limit > PAYLOAD_LIMIT
        else "set GECKO_PAYLOAD_STORE (see docs/payloads.md) or send smaller items (ids, paths or "
        "chunks to load in the instance)"
    )
    return (
        f"{where} returned {count:,} Sends whose args pass {human(size)} by Send {at}, over "
        f"{limit_name(limit)} (one node output carries them all); {fix}"
    )
