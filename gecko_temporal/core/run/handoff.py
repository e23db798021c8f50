"""What a run hands on: the one builder of GeckoWorkflow's input. Pure.

Three places start a GeckoWorkflow: a client's start, a run continuing as new, and a subgraph node
starting its child run. All build the input here, so its keys are written once. The input is a
plain :class:`~gecko_temporal.core.spec.RunParams` dict; which keys each writes is part of the wire
format (recorded histories hold them), so a start writes every key, a continued run only what it
carries, and a default payload limit is left out where it always was.
"""

from __future__ import annotations

import json
from typing import Any

from gecko_temporal.core.limits import (
    FRAME,
    PAYLOAD_LIMIT,
    child_session_id,
    human,
    json_size,
    limit_name,
    snapshot_problem,
)
from gecko_temporal.core.run.failure import NodeFailed
from gecko_temporal.core.spec import RunSnapshot


def workflow_input(
    spec: dict[str, Any],
    input: str,
    *,
    payload_limit: int = PAYLOAD_LIMIT,
    start: bool = False,
    timeout: float | None = None,
    snapshot: dict[str, Any] | None = None,
    state: dict[str, str] | None = None,
    stream: dict[str, Any] | None = None,
    flow: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """GeckoWorkflow's input: ``spec`` (plain, compact form) run on ``input`` (JSON text).

    ``start``: a client's start, which writes every key of RunParams (as it always has); otherwise
    ``snapshot`` (a continued run) and ``payload_limit`` only when set. ``state`` (a seeded state)
    and ``stream`` (the carried event stream) only when given."""
    plain: dict[str, Any] = {"spec": spec, "input": input}
    if start:
        plain.update(timeout=timeout, snapshot=None, payload_limit=payload_limit)
    else:
        if snapshot is not None:
            plain["snapshot"] = snapshot
        if payload_limit != PAYLOAD_LIMIT:  # a payload store raised it; runs without one stay as before
            plain["payload_limit"] = payload_limit
    if state:
        plain["state"] = state
    if stream is not None:
        plain["stream"] = stream
    if flow:  # a first run's budget and tenant (a continued run carries them in its snapshot)
        plain["flow"] = flow
    return plain


def next_run(
    spec: dict[str, Any],
    input: str,
    snapshot: RunSnapshot,
    payload_limit: int,
    stream: dict[str, Any] | None,
    workflow: str,
    notes: list[str] | None = None,
) -> tuple[dict[str, Any], str | None]:
    """(the continued run's input, why the run cannot switch or None).

    A snapshot over the payload limit would fail the workflow task forever; staying in this run
    only costs history, so the caller goes on instead (and says why). ``notes`` gets what a payload
    store would save on this switch, if anything worth a warning."""
    plain = workflow_input(spec, input, payload_limit=payload_limit, snapshot=snapshot.to_plain(), stream=stream)
    text = json.dumps(plain)
    note = store_note(len(text), payload_limit, workflow)
    if note and notes is not None:
        notes.append(note)
    return plain, snapshot_problem(text, workflow, snapshot.state, payload_limit)


#: A continued run's input of at least this many bytes is worth a store (Temporal's store threshold).
CARRIED_NOTE_ABOVE = 256 * 1024


def store_note(size: int, payload_limit: int, workflow: str) -> str | None:
    """What a payload store would save when a run without one continues as new with ``size`` bytes."""
    if payload_limit > PAYLOAD_LIMIT or size < CARRIED_NOTE_ABOVE:
        return None
    return (
        f"run {workflow} continues as new carrying {human(size)} (its state and node outputs), which "
        "Temporal records twice: in this run's last event and the next run's first. With "
        "GECKO_PAYLOAD_STORE set on workers and clients both would hold a reference of about 200 bytes "
        "and the store one copy (docs/payloads.md); gecko_state['payloads'] shows it"
    )


def payloads_note(references: bool, payload_limit: int, carried: int) -> dict[str, Any]:
    """gecko_state["payloads"]: how this run ships values, and what a payload store would save.

    ``carried``: bytes of the snapshot this run started from (0 for a session's first run)."""
    store = payload_limit > PAYLOAD_LIMIT
    saved = 0 if store else 2 * carried
    return {
        "references": references,  # node inputs refer to long texts, outputs hold only what is new
        "store": store,
        "carried": carried,
        "store_would_save": saved,  # history bytes of the last switch a store would have kept as references
    }


def child_session(parent: str, node: str, step: int) -> str:
    """A subgraph node's child session id: stable on replay, unique in the session (steps count
    across continue-as-new), and within Temporal's id limit (a long one ends in a hash)."""
    return child_session_id(parent, node, step)


def child_run(node: str, spec: dict[str, Any], input: str, payload_limit: int) -> dict[str, Any]:
    """The input of a subgraph node's child run: the child graph as this run received it (never as
    deployed now), the node's input. Raise NodeFailed when Temporal would refuse to start it (and
    fail this workflow task forever)."""
    child = workflow_input(spec, input, payload_limit=payload_limit)
    size = json_size(input) + len(json.dumps(spec)) + FRAME
    if size > payload_limit:
        raise NodeFailed(
            node,
            "PayloadTooLarge",
            f'subgraph node "{node}" would start its child run with {human(size)} '
            f"(its input {human(json_size(input))}), over {limit_name(payload_limit)}; set "
            "GECKO_PAYLOAD_STORE on workers and clients, or keep large data outside the run "
            "(write it to a file or a store and pass its path)",
        )
    return child
