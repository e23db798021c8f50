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

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gecko_temporal.core import codec
from gecko_temporal.core.errors import suggest

# Request parsing lives in requests.py; its names stay importable from here, where they always were.
from gecko_temporal.core.requests import EDIT_KEYS as EDIT_KEYS
from gecko_temporal.core.requests import EDIT_LIMIT as EDIT_LIMIT
from gecko_temporal.core.requests import PREVIEW_CHARS as PREVIEW_CHARS
from gecko_temporal.core.requests import REASON_CHARS as REASON_CHARS
from gecko_temporal.core.requests import Arg as Arg
from gecko_temporal.core.requests import one_object as one_object
from gecko_temporal.core.requests import parse_edit as parse_edit
from gecko_temporal.core.requests import parse_request as parse_request
from gecko_temporal.core.requests import preview as preview
from gecko_temporal.core.requests import rejection as rejection
from gecko_temporal.core.scheduler import Scheduler
from gecko_temporal.core.spec import KIND_WAIT, GraphSpec, Jump, RunSnapshot
from gecko_temporal.core.state import ReducerError, reduce_value
from gecko_temporal.protocol import ANSWER_SIGNAL, ANSWER_UPDATE, JUMP_UPDATE, NEXT_SIGNAL, REWOUND_SIGNAL, STATE_UPDATE

KEEP_REJECTED = 50  # rejected requests kept for gecko_state (and the continue-as-new snapshot)
KEEP_COMPLETED = 1000  # names of finished nodes kept likewise
VALUE_LIMIT = 64 * 1024  # a state value (or jump/wait input) above this shows as a preview
STATE_BUDGET = 1024 * 1024  # the state part of gecko_state never exceeds this (JSON characters)
KEEP_EDITS = 50  # state edits listed in gecko_state (and carried across continue-as-new)
KEEP_CHECKPOINTS = 5000  # rewind points a run keeps (one per layer; steps_per_run bounds them anyway)
KEEP_JUMPS = 100  # jumps from outside that may wait for a layer's end (kept and carried)
SHOWN_KEYS = 20  # keys an edit's record lists (then how many more): records are kept and carried
REDO_LIMIT = 100  # updates a gecko_rewound may redo (a reset drops those of one workflow task)
RUN_ID_CHARS = 100  # a Temporal run id is a 36-character UUID


def shown_value(text: str) -> tuple[Any, bool]:
    """(what gecko_state shows for a value's JSON text, whether it was cut to a preview)."""
    if len(text) <= VALUE_LIMIT:
        return codec.plain(text), False
    return _preview_text(text), True


def _preview_text(text: str) -> str:
    return f"<{len(text):,} characters of JSON, too big to show; starts with: {_untagged(text[:2000])[:200]}>"


# The engine's type tags inside JSON text (see _codec): a tagged scalar (datetime, date, UUID, ...)
# and the head of a tagged model. Previews of values too big to parse show the data without them.
_TAGGED_SCALAR = re.compile(r'\{"__gecko__":"[^"]*","data":("(?:[^"\\]|\\.)*"|[-+\w.]+)\}')
_TAG_HEAD = re.compile(r'\{"__gecko__":"[^"]*:[^"]*","data":')


def _untagged(text: str) -> str:
    """A cut piece of encoded JSON as people read it: internal ``__gecko__`` tags left out."""
    if codec.TAG not in text:
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
    shown = {k: _preview_text(t) if k in cut else codec.plain(t) for k, t in state.items()}
    return shown, [k for k in state if k in cut]


def state_answer(
    *,
    workflow: str,
    status: str,
    state: dict[str, str],
    completed: Sequence[str],
    running: Sequence[str],
    waiting: dict[str, dict[str, Any]],
    step: int,
    layer: int,
    run: int,
    nodes: Sequence[str],
    pending_jumps: Sequence[Any],
    rejected: Sequence[dict[str, Any]],
    conflicts: Sequence[str],
    edits: Sequence[dict[str, Any]] = (),
    pending_edits: Sequence[dict[str, Any]] = (),
    rewound_from: dict[str, Any] | None = None,
) -> dict[str, Any]:
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
        "pending_jumps": [
            {"node": j.node, "input": shown_value(j.input)[0], "source": j.source} for j in pending_jumps
        ],
        "rejected_jumps": [r for r in rejected if r.get("signal", NEXT_SIGNAL) == NEXT_SIGNAL],
        "rejected": list(rejected),
        "conflicts": list(conflicts),
        "state_edits": list(edits),
        "pending_edits": [
            {"set": shown_keys(e["values"]), "deleted": shown_keys(e["delete"]), "source": e["source"]}
            for e in pending_edits
        ],
        "rewound_from": rewound_from,
    }


def shown_keys(keys: Any) -> list[str]:
    """Key names as an edit's record lists them: the first SHOWN_KEYS, then how many more."""
    names = [k[:PREVIEW_CHARS] for k in list(keys)[:SHOWN_KEYS]]
    more = len(keys) - len(names)
    return names + [f"... and {more:,} more"] if more > 0 else names


UNTOLD = (
    "gecko_rewound is sent by gecko-temporal rewind right after it resets the run; this run has seen "
    "no reset it was not told about"
)
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
        self.edits: list[dict[str, Any]] = snapshot.edits  # state edits applied (update_state, rewind)
        self.pending_edits: list[dict[str, Any]] = []  # checked edits waiting for a safe point
        self.rewound_from: dict[str, Any] | None = snapshot.rewound_from
        self.rewinds = 0  # gecko_rewound signals taken in this run
        self.clock: Any = lambda: ""  # the workflow's time as ISO text (set by the workflow)
        self.resets = 0  # resets this run has seen: Temporal reseeded it (the workflow calls reseeded())
        self.task_marker: Any = lambda: 0  # what tells workflow tasks apart (history length; set by the workflow)
        # the run id a gecko_rewound must name (the run its reset made), or None: any (set by the workflow)
        self.rewound_run: Callable[[], str | None] = lambda: None
        self._held_rewound: tuple[list[Arg], Any] | None = None
        self._answered: dict[str, int] = {}  # node -> the interrupt an untaken answer named

    # -- requests from outside -----------------------------------------------------------------
    def check_jump(self, received: Sequence[Arg]) -> tuple[dict[str, Any] | None, str | None]:
        request, problem = parse_request("jump", received)
        if request is not None:
            problem = self._sched.check_target(request["node"])
        if request is not None and not problem:
            waiting = [j for j in self._sched.jumps if j.source in OUTSIDE]
            if len(waiting) >= KEEP_JUMPS:
                problem = (
                    f"{len(waiting)} jumps from outside already wait for the running layer to end; at most "
                    f"{KEEP_JUMPS} (they redirect the run at once: the last ones decide)"
                )
        return (None, problem) if problem else (request, None)

    def check_answer(self, received: Sequence[Arg]) -> tuple[dict[str, Any] | None, str | None]:
        request, problem = parse_request("answer", received)
        if (
            request is not None
            and self._kinds.get(request["node"]) != KIND_WAIT
            and not self.waiting.get(request["node"], {}).get("interrupted")
        ):
            waits = [name for name, kind in self._kinds.items() if kind == KIND_WAIT]
            interrupted = [name for name, w in self.waiting.items() if w.get("interrupted")]
            problem = (
                f'"{request["node"]}" is not a WaitForInput node (those are: {", ".join(waits) or "none"}) '
                "nor a node waiting in context.interrupt() (waiting now: "
                f"{', '.join(interrupted) or 'none'})"
            )
        if request is not None and not problem:
            problem = self._answer_problem(request)
        return (None, problem) if problem else (request, None)

    def _answer_problem(self, request: dict[str, Any]) -> str | None:
        """An answer that would be lost or taken by the wrong question: refused, never dropped silently."""
        node = request["node"]
        if node in self.answers:
            return (
                f'node "{node}" already has an answer it has not taken yet; one answer per wait '
                "(the first one sent is kept)"
            )
        index = request.get("interrupt")
        if index is None:
            return None
        waiting = self.waiting.get(node, {}).get("interrupt")
        if waiting != index:
            now = f"it waits in interrupt {waiting}" if waiting is not None else "it is not waiting now"
            return f'this answer is for interrupt {index} of node "{node}", but {now}; look at gecko_state.waiting'
        return None

    def queue_jump(self, request: dict[str, Any], source: str) -> dict[str, Any]:
        """Queue a checked jump; it redirects the run when the running layer ends."""
        self._sched.jumps.append(Jump(node=request["node"], input=request["input"], source=source))
        return {"node": request["node"], "queued_after_step": self._sched.step}

    def give_answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """Keep a checked answer for its node (which may start waiting only later)."""
        self.answers[request["node"]] = request["value"]
        if "interrupt" in request:
            self._answered[request["node"]] = request["interrupt"]
        return {"node": request["node"], "waiting": request["node"] in self.waiting}

    def signal(self, name: str, received: Sequence[Arg]) -> dict[str, Any] | None:
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
            elif name == REWOUND_SIGNAL:
                problem = self.rewound(received)
            else:
                problem = (
                    f'unknown signal "{name}"{suggest(name, [NEXT_SIGNAL, ANSWER_SIGNAL])}; '
                    "jump with gecko_next, answer a WaitForInput node with gecko_answer"
                )
        except Exception as exc:  # a bug here must cost one request, not the run
            problem = f"could not be handled: {type(exc).__name__}"
        if not problem:
            return None
        entry = rejection(name, received, problem, self._sched.step)
        self.rejected.append(entry)
        del self.rejected[:-KEEP_REJECTED]
        return entry

    # -- the run's side ------------------------------------------------------------------------
    def apply_redirects(self, seen: list[Jump] | None = None) -> bool:
        """Jumps sent from outside redirect the run: drop where it was going on its own.

        Applied at each layer boundary, so a jump signalled while a layer runs (or while the run
        switches to a new run) replaces the static successors and Next returns of that layer.
        Eager runs pass ``seen`` (the outside jumps already applied, compared by identity) so that
        one jump redirects once, though it may wait while its target still runs. True if the run
        was redirected.
        """
        jumps = self._sched.jumps
        fresh = self.fresh_redirects(seen)
        if seen is not None:
            seen[:] = [s for s in seen if any(s is j for j in jumps)] + fresh  # only jumps still queued
        if fresh:
            self._sched.inbox.clear()
            self._sched.sends = []  # Sends not started yet go where the run was going: nowhere now
            self._sched.jumps = [j for j in jumps if j.source in OUTSIDE or j.source == "input"]
            return True
        return False

    def fresh_redirects(self, seen: list[Jump] | None = None) -> list[Jump]:
        """The queued jumps from outside that have not redirected the run yet (``seen``: as in
        :meth:`apply_redirects`)."""
        return [j for j in self._sched.jumps if j.source in OUTSIDE and (seen is None or not any(j is s for s in seen))]

    def start_waiting(
        self,
        node: str,
        prompt: str,
        input_text: str,
        since: str,
        timeout: float | None,
        payload: str | None = None,
        index: int | None = None,
    ) -> None:
        self.waiting[node] = {"prompt": prompt, "input": shown_value(input_text)[0], "since": since, "timeout": timeout}
        if payload is not None:  # a node in context.interrupt(): what it shows, which of its interrupts
            self.waiting[node].update(payload=shown_value(payload)[0], interrupt=index, interrupted=True)

    # -- state edits from outside ----------------------------------------------------------------
    def check_edit(self, received: Sequence[Arg], status: str = "running") -> tuple[dict[str, Any] | None, str | None]:
        """(edit, None) for a well-formed update_state request, else (None, why).

        One JSON object ``{"values": {key: value, ...}, "delete": [key, ...]}`` (either may be
        omitted, not both); values are strict JSON, at most EDIT_LIMIT characters in all.
        """
        if status != "running":
            return None, f"the run has ended ({status}); its state can no longer change (rewind it to go on)"
        payload, problem = one_object(received, "update_state", '{"values": {"key": ...}, "delete": ["key"]}')
        if problem:
            return None, problem
        edit, problem = parse_edit(
            payload.get("values"),
            payload.get("delete"),
            [k for k in payload if k not in ("values", "delete", "as_node")],
            "update",
        )
        as_node = payload.get("as_node")
        if edit is None or as_node is None:
            return edit, problem
        if not isinstance(as_node, str) or as_node not in self._kinds:
            return None, f'"as_node" names no node: {str(as_node)[:80]!r}{suggest(str(as_node), self._kinds)}'
        return {**edit, "as_node": as_node}, None  # values go through the reducers, as that node's write

    def queue_edit(self, edit: dict[str, Any]) -> None:
        self.pending_edits.append(edit)

    def apply_edits(self, state: dict[str, str], step: int, layer: int) -> bool:
        """Apply the queued edits to ``state`` in arrival order and record them; True if any."""
        if not self.pending_edits:
            return False
        for edit in self.pending_edits:
            for key in edit["delete"]:
                state.pop(key, None)
            refused = reduce_edit(state, edit, self._spec.reducers)
            self.edits.append(
                {
                    "step": step,
                    "layer": layer,
                    "time": self.clock(),
                    "source": edit["source"],
                    "set": shown_keys(edit["values"]),
                    "deleted": shown_keys(edit["delete"]),
                    **({"as_node": edit["as_node"]} if "as_node" in edit else {}),
                    **({"refused": refused} if refused else {}),
                }
            )
        del self.edits[:-KEEP_EDITS]
        self.pending_edits = []
        return True

    def rewound(self, received: Sequence[Arg]) -> str | None:
        """The gecko_rewound signal a rewind sends with its reset: record where the run came from,
        redo what the reset dropped (answers, jumps and edits taken in the task it resets), queue
        the rewind's own edit. Returns why it is rejected, or None."""
        if len(received) != 1 or received[0].problem is not None or not isinstance(received[0].value, dict):
            return "gecko_rewound takes one JSON object (sent by gecko-temporal rewind)"
        info = received[0].value
        redo = info.get("redo") or []
        from_run, to_step = info.get("from_run"), info.get("to_step")
        if from_run is not None and (not isinstance(from_run, str) or len(from_run) > RUN_ID_CHARS):
            return f'"from_run" must be a run id (a string of at most {RUN_ID_CHARS} characters)'
        if to_step is not None and (not isinstance(to_step, int) or isinstance(to_step, bool)):
            return '"to_step" must be an integer step'
        if not isinstance(redo, list) or len(redo) > REDO_LIMIT:
            return f'"redo" must be a list of at most {REDO_LIMIT} updates'
        edit, problem = parse_edit(info.get("values"), info.get("delete"), [], "rewind")
        if problem and (info.get("values") or info.get("delete")):
            return problem
        if not self.reset_untold():
            # The Python SDK runs a signal's handler before it applies the reseed that tells of a reset
            # in the same workflow task: hold it for that reseed (reseeded), refuse it until then.
            self._held_rewound = (list(received), self.task_marker())
            return UNTOLD
        return self._rewound(info, from_run, to_step, redo, edit)

    def reset_untold(self) -> bool:
        """Whether the run was reset and not yet told about it by gecko_rewound: a gecko_rewound at any
        other time is forged or stale and is refused."""
        return self.rewinds < self.resets

    def reseeded(self) -> None:
        """Temporal reseeded the run: it was reset (no other API says so; a reset reseeds it once, and
        replay reseeds it again at the same point). A gecko_rewound held in this same workflow task is
        the reset's own: it is taken and its rejection withdrawn. One held in an earlier task was sent
        before the reset (forged, or reapplied by it) and stays refused."""
        self.resets += 1
        held, self._held_rewound = self._held_rewound, None
        if held is None or held[1] != self.task_marker():
            return
        received = held[0]
        self.rejected[:] = [
            r for r in self.rejected if not (r.get("signal") == REWOUND_SIGNAL and r["reason"] == UNTOLD)
        ]
        info = received[0].value
        edit, _ = parse_edit(info.get("values"), info.get("delete"), [], "rewind")
        problem = self._rewound(info, info.get("from_run"), info.get("to_step"), info.get("redo") or [], edit)
        if problem:
            self.rejected.append(rejection(REWOUND_SIGNAL, received, problem, self._sched.step))
            del self.rejected[:-KEEP_REJECTED]

    def _rewound(self, info: dict[str, Any], from_run: Any, to_step: Any, redo: list[Any], edit: Any) -> str | None:
        """Take a gecko_rewound for the reset this run has not been told about; why not, if it is not
        that reset's (it names no run, or another)."""
        made = self.rewound_run()
        if made is not None and info.get("run") != made:
            # A reset reapplies the signals sent before it: none of those can name the run it made.
            return f'"run" must name the run the reset made ({made}); gecko-temporal rewind sends it after the reset'
        self.rewound_from = {"run_id": from_run, "step": to_step, "time": self.clock()}
        self.rewinds += 1
        for item in redo:
            if not isinstance(item, dict):
                continue
            name, args = item.get("update"), [Arg(a) for a in (item.get("args") or [])]
            if name == ANSWER_UPDATE:
                request, _ = self.check_answer(args)
                if request is not None:
                    self.give_answer(request)
            elif name == JUMP_UPDATE:
                request, _ = self.check_jump(args)
                if request is not None:
                    self.queue_jump(request, "update")
            elif name == STATE_UPDATE:
                again, _ = self.check_edit(args)
                if again is not None:
                    self.queue_edit(again)
        if edit is not None:
            self.queue_edit(edit)
        return None

    def stop_waiting(self, node: str) -> None:
        ended = self.waiting.pop(node, None)
        index = self._answered.pop(node, None)
        if ended is not None and ended.get("interrupted") and node in self.answers:
            # An interrupt takes answers only while it waits, so this one came for the interrupt that
            # just ended (its timeout fired in the same workflow task): never the node's next one.
            index = ended.get("interrupt")
            value = self.answers.pop(node)
            entry = rejection(
                ANSWER_SIGNAL,
                [Arg({"node": node, "value": codec.plain(value), "interrupt": index})],
                f'interrupt {index} of node "{node}" ended (timeout) as this answer arrived; it was not used',
                self._sched.step,
            )
            self.rejected.append(entry)
            del self.rejected[:-KEEP_REJECTED]

    def answer_for(self, node: str) -> str:
        """Take the answer given for ``node`` (the caller waited until there was one)."""
        self._answered.pop(node, None)
        return self.answers.pop(node)

    def state_answer(
        self,
        *,
        status: str,
        state: dict[str, str],
        completed: Sequence[str],
        running: Sequence[str],
        step: int,
        layer: int,
        run: int,
        conflicts: Sequence[str],
    ) -> dict[str, Any]:
        """The ``gecko_state`` answer; a running run that waits for a person shows as ``waiting``."""
        return state_answer(
            workflow=self._spec.name,
            status="waiting" if self.waiting and status == "running" else status,
            state=state,
            completed=completed,
            running=running,
            waiting=self.waiting,
            step=step,
            layer=layer,
            run=run,
            nodes=list(self._kinds),
            pending_jumps=self._sched.jumps,
            rejected=self.rejected,
            conflicts=conflicts,
            edits=self.edits,
            pending_edits=self.pending_edits,
            rewound_from=self.rewound_from,
        )


def reduce_edit(state: dict[str, str], edit: dict[str, Any], reducers: Mapping[str, str]) -> list[str]:
    """Set an edit's values in ``state``. One sent ``as_node`` goes through the reduced keys' reducers
    as that node's write (LangGraph's update_state); others set the values. Returns why a value a
    reducer could not combine was left out: the run goes on, an edit never fails it."""
    as_node = edit.get("as_node")
    if as_node is None or not reducers:
        state.update(edit["values"])
        return []
    refused = []
    for key, text in edit["values"].items():
        how = reducers.get(key)
        try:
            state[key] = text if how is None else reduce_value(how, state.get(key), text, node=as_node, key=key)
        except ReducerError as exc:
            refused.append(str(exc)[:300])
    return refused
