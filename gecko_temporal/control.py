"""Live control of a run: check what outsiders send (jumps, answers) and build what they see
(``gecko_state``). Pure: no temporalio import.

:class:`RunControl` is one run's side of it: the workflow's query, signal and update handlers
decode their arguments and hand them here, and the workflow's loop asks it where jumps from outside
redirect the run and whether a WaitForInput node has its answer.

Anything can arrive from outside: no argument or three, a string instead of an object, NaN, a
1.5 MB blob, a payload in an encoding nobody here reads. Every check returns a reason instead of
raising, so the workflow can record the request as rejected and go on; nothing a client sends may
fail a workflow task. What the run keeps of a rejected request is a short preview, and the
``gecko_state`` answer stays bounded however big the state grows (see :data:`STATE_BUDGET`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from . import _codec
from .errors import GeckoError, suggest
from .protocol import ANSWER_SIGNAL, NEXT_SIGNAL
from .scheduler import Scheduler
from .spec import KIND_WAIT, GraphSpec, Jump, RunSnapshot

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
    return f"<{len(text):,} characters of JSON, too big to show; starts with: {_untagged(text[:2000])[:200]}>"


# The engine's type tags inside JSON text (see _codec): a tagged scalar (datetime, date, UUID, ...)
# and the head of a tagged model. Previews of values too big to parse show the data without them.
_TAGGED_SCALAR = re.compile(r'\{"__gecko__":"[^"]*","data":("(?:[^"\\]|\\.)*"|[-+\w.]+)\}')
_TAG_HEAD = re.compile(r'\{"__gecko__":"[^"]*:[^"]*","data":')


def _untagged(text: str) -> str:
    """A cut piece of encoded JSON as people read it: internal ``__gecko__`` tags left out."""
    if _codec.TAG not in text:
        return text
    return _TAG_HEAD.sub("", _TAGGED_SCALAR.sub(r"\1", text))


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


OUTSIDE = ("signal", "update")  # Jump.source of jumps sent from outside the run


class RunControl:
    """One run's live control: checks jumps and answers against its graph, queues them on its
    scheduler, keeps what it rejected and what waits for a person, and answers ``gecko_state``.

    Nothing here raises on what a client sent: a check returns ``(request, None)`` or
    ``(None, why)``, and :meth:`signal` records a bad request instead of failing the run.
    """

    def __init__(self, spec: GraphSpec, scheduler: Scheduler, snapshot: RunSnapshot) -> None:
        self._spec = spec
        self._sched = scheduler
        self._kinds = {n.name: n.kind for n in spec.nodes}
        self.rejected: list[dict[str, Any]] = snapshot.rejected
        self.answers: dict[str, str] = snapshot.answers  # answers not yet taken, by node
        self.waiting: dict[str, dict[str, Any]] = {}  # nodes waiting for a person: prompt, input, since

    # -- requests from outside -----------------------------------------------------------------
    def check_jump(self, received: Sequence[Arg]) -> tuple[Optional[dict[str, Any]], Optional[str]]:
        request, problem = parse_request("jump", received)
        if request is not None:
            problem = self._sched.check_target(request["node"])
        return (None, problem) if problem else (request, None)

    def check_answer(self, received: Sequence[Arg]) -> tuple[Optional[dict[str, Any]], Optional[str]]:
        request, problem = parse_request("answer", received)
        if request is not None and self._kinds.get(request["node"]) != KIND_WAIT:
            waits = [name for name, kind in self._kinds.items() if kind == KIND_WAIT]
            problem = f'"{request["node"]}" is not a WaitForInput node (those are: {", ".join(waits) or "none"})'
        return (None, problem) if problem else (request, None)

    def queue_jump(self, request: dict[str, Any], source: str) -> dict[str, Any]:
        """Queue a checked jump; it redirects the run when the running layer ends."""
        self._sched.jumps.append(Jump(node=request["node"], input=request["input"], source=source))
        return {"node": request["node"], "queued_after_step": self._sched.step}

    def give_answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """Keep a checked answer for its node (which may start waiting only later)."""
        self.answers[request["node"]] = request["value"]
        return {"node": request["node"], "waiting": request["node"] in self.waiting}

    def signal(self, name: str, received: Sequence[Arg]) -> Optional[dict[str, Any]]:
        """Act on a gecko_next or gecko_answer signal; return the rejection record of a bad one."""
        try:
            if name == NEXT_SIGNAL:
                request, problem = self.check_jump(received)
                if request is not None:
                    self.queue_jump(request, "signal")
            elif name == ANSWER_SIGNAL:
                request, problem = self.check_answer(received)
                if request is not None:
                    self.give_answer(request)
            else:
                problem = (f'unknown signal "{name}"{suggest(name, [NEXT_SIGNAL, ANSWER_SIGNAL])}; '
                           "jump with gecko_next, answer a WaitForInput node with gecko_answer")
        except Exception as exc:  # a bug here must cost one request, not the run
            problem = f"could not be handled: {type(exc).__name__}"
        if not problem:
            return None
        entry = rejection(name, received, problem, self._sched.step)
        self.rejected.append(entry)
        del self.rejected[:-KEEP_REJECTED]
        return entry

    # -- the run's side ------------------------------------------------------------------------
    def apply_redirects(self, seen: Optional[list[Jump]] = None) -> bool:
        """Jumps sent from outside redirect the run: drop where it was going on its own.

        Applied at each layer boundary, so a jump signalled while a layer runs (or while the run
        switches to a new run) replaces the static successors and Next returns of that layer.
        Eager runs pass ``seen`` (the outside jumps already applied, compared by identity) so that
        one jump redirects once, though it may wait while its target still runs. True if the run
        was redirected.
        """
        jumps = self._sched.jumps
        fresh = [j for j in jumps if j.source in OUTSIDE and (seen is None or not any(j is s for s in seen))]
        if seen is not None:
            seen[:] = [s for s in seen if any(s is j for j in jumps)] + fresh  # only jumps still queued
        if fresh:
            self._sched.inbox.clear()
            self._sched.sends = []  # Sends not started yet go where the run was going: nowhere now
            self._sched.jumps = [j for j in jumps if j.source in OUTSIDE or j.source == "input"]
            return True
        return False

    def start_waiting(self, node: str, prompt: str, input_text: str, since: str, timeout: Optional[float]) -> None:
        self.waiting[node] = {"prompt": prompt, "input": shown_value(input_text)[0], "since": since,
                              "timeout": timeout}

    def stop_waiting(self, node: str) -> None:
        self.waiting.pop(node, None)

    def answer_for(self, node: str) -> str:
        """Take the answer given for ``node`` (the caller waited until there was one)."""
        return self.answers.pop(node)

    def state_answer(self, *, status: str, state: dict[str, str], completed: Sequence[str],
                     running: Sequence[str], step: int, layer: int, run: int,
                     conflicts: Sequence[str]) -> dict[str, Any]:
        """The ``gecko_state`` answer; a running run that waits for a person shows as ``waiting``."""
        return state_answer(
            workflow=self._spec.name, status="waiting" if self.waiting and status == "running" else status,
            state=state, completed=completed, running=running, waiting=self.waiting, step=step, layer=layer,
            run=run, nodes=list(self._kinds), pending_jumps=self._sched.jumps, rejected=self.rejected,
            conflicts=conflicts)
