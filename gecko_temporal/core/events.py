"""What a run tells its watchers: stream events, progress lines, and the texts the Temporal UI shows.
Pure: no temporalio import.

A run publishes :class:`RunEvent` records on its event stream (``RunHandle.stream()``): the workflow
publishes ``node_started``, ``node_finished``, ``waiting``, ``jump`` and ``run_finished``; a node
publishes ``custom`` with ``context.emit(data)`` while it runs. Events travel as plain dicts (see
:func:`event`), so any Temporal client can read them; :class:`Progress` turns them into the lines
``gecko-temporal watch`` prints.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

NODE_STARTED = "node_started"
NODE_FINISHED = "node_finished"
CUSTOM = "custom"
WAITING = "waiting"
JUMP = "jump"
RUN_FINISHED = "run_finished"
CACHED = "cached"  # a node's output came from its cache (core/cache.py): its function did not run
TYPES = (NODE_STARTED, NODE_FINISHED, CUSTOM, WAITING, JUMP, RUN_FINISHED, CACHED)

PREVIEW_CHARS = 120  # what a summary, a detail line or a progress line shows of a value


def event(
    type: str, *, node: str | None = None, step: int | None = None, time: str = "", data: Any = None, **extra: Any
) -> dict[str, Any]:
    """One event as it travels on the stream: a plain dict (``None`` fields left out)."""
    out: dict[str, Any] = {"type": type, "time": time}
    if node is not None:
        out["node"] = node
    if step is not None:
        out["step"] = step
    if data is not None:
        out["data"] = data
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


@dataclass(frozen=True)
class RunEvent:
    """One event of a run's stream.

    ``type`` is one of ``node_started``, ``node_finished`` (with ``status`` ``completed`` or
    ``failed``/``cancelled`` and ``duration`` in seconds), ``custom`` (``data`` is what the node
    passed to ``context.emit``), ``waiting`` (``data`` holds the prompt), ``jump`` (``data["to"]``
    is the target) and ``run_finished`` (``status``: completed, failed, cancelled, terminated, ...).
    ``offset`` is the event's place in the stream: ``handle.stream(from_offset=e.offset + 1)``
    resumes after it. ``completed``/``total`` count distinct finished nodes and the graph's nodes.
    """

    type: str
    offset: int = 0
    node: str | None = None
    step: int | None = None
    data: Any = None
    time: str = ""
    status: str | None = None
    duration: float | None = None
    member: str | None = None
    attempt: int | None = None
    run: int | None = None
    completed: int | None = None
    total: int | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_plain(cls, data: Any, offset: int = 0) -> RunEvent:
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            return cls(type="unknown", offset=offset, data=data)
        known = {k: data[k] for k in _FIELDS if k in data}
        return cls(offset=offset, extra={k: v for k, v in data.items() if k not in _FIELDS}, **known)


_FIELDS = (
    "type",
    "node",
    "step",
    "data",
    "time",
    "status",
    "duration",
    "member",
    "attempt",
    "run",
    "completed",
    "total",
    "error",
)


def preview(value: Any, limit: int = PREVIEW_CHARS) -> str:
    """A one-line rendering of ``value`` for people (strings as they are)."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=repr, sort_keys=True)
        except (TypeError, ValueError, RecursionError):
            text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- Temporal UI texts ------------------------------------------------------------------------------
# The UI renders summaries and details as markdown: names and inputs come from users (and outsiders),
# so each goes in escaped, never as a link, an image, HTML or emphasis of theirs.
# Escaped wherever they stand: they start links, images, emphasis, code, headings, strikethrough.
# A newline is folded away, so what starts a block (a list's "-", "+" or "1.") can only stand first.
_MARKDOWN_INLINE = frozenset("\\`*[]()#!~")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def md_text(text: str) -> str:
    """``text`` as literal markdown text: markdown punctuation backslash-escaped where it could act,
    and ``& < >`` written as HTML entities, so ``[l](javascript:...)`` or ``<img onerror=...>`` shows
    as those characters and does nothing. A path or name stays readable: ``-`` and ``.`` inside it,
    and ``_`` between letters or digits (never emphasis there), are left as they are."""
    text = " ".join(text.splitlines())  # a newline would start a block of its own (a heading, a list)
    out = []
    for i, c in enumerate(text):
        if c in _HTML:
            out.append(_HTML[c])
        elif c in _MARKDOWN_INLINE or (c == "_" and not _between_word_characters(text, i)):
            out.append(f"\\{c}")
        else:
            out.append(c)
    if text[:1] in ("-", "+"):  # a list item
        out[0] = f"\\{text[0]}"
    digits = len(text) - len(text.lstrip("0123456789"))
    if digits and text[digits : digits + 1] in (".", ")"):  # an ordered list item ("1." or "1)")
        out[digits] = f"\\{text[digits]}"
    return "".join(out)


def _between_word_characters(text: str, i: int) -> bool:
    return 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()


def md_code(text: str) -> str:
    """``text`` as a markdown code span (literal by definition): fenced with more backticks than it
    holds in a row, so a backtick in it cannot end the span."""
    run = cur = 0
    for c in text:
        cur = cur + 1 if c == "`" else 0
        run = max(run, cur)
    fence = "`" * (run + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def run_summary(pipeline: str, node_count: int, input_preview: str) -> str:
    """The run's one-line summary in the UI (``start_workflow(static_summary=...)``)."""
    # Cut before escaping, so an escape is never cut in half (escaping may lengthen the text).
    return md_text(f"{pipeline}: {node_count} nodes, input {input_preview}"[:400])


def run_details(
    pipeline: str, nodes: Sequence[str], entry: str, scheduling: str, input_preview: str, session_id: str
) -> str:
    """The run's details in the UI (Temporal markdown, ``static_details``)."""
    shown = ", ".join(map(md_text, nodes[:40])) + (f", ... ({len(nodes)} in all)" if len(nodes) > 40 else "")
    return "\n".join(
        [
            f"**Pipeline** {md_text(pipeline)} (gecko-temporal)",
            f"**Session** {md_text(session_id)}",
            f"**Nodes** ({len(nodes)}): {shown}",
            f"**Entry point** {md_text(entry)}, scheduling {md_text(scheduling)}",
            f"**Input** {md_text(input_preview)}",
            f"Watch it: {md_code(f'gecko-temporal watch {session_id}')}; "
            f"state: {md_code(f'gecko-temporal status {session_id}')}",
        ]
    )


def current_details(
    status: str,
    running: dict[str, int],
    waiting: dict[str, Any],
    completed: int,
    total: int,
    step: int,
    session: str = "SESSION",
) -> str:
    """What the run is doing now (``workflow.set_current_details``)."""
    lines = [f"**{status}**: {completed} of {total} nodes completed, step {step}"]
    if waiting:
        for name, w in waiting.items():
            lines.append(
                f"Waiting for {md_text(name)}: {md_text(preview((w or {}).get('prompt') or 'an answer'))} "
                f"(answer with {md_code(f'gecko-temporal answer {session} {name} --value JSON')})"
            )
    running = {n: s for n, s in running.items() if n not in waiting}  # a waiting node is shown as such
    if running:
        lines.append(
            "Running: "
            + ", ".join(f"{md_text(n)} (step {s})" for n, s in list(running.items())[:20])
            + (f" and {len(running) - 20} more" if len(running) > 20 else "")
        )
    return "\n".join(lines)


# -- terminal progress ------------------------------------------------------------------------------
class Progress:
    """Turns events into the lines a person reads (``gecko-temporal watch``, ``run``, the example).

    Keeps completed/total and what is running, so each line can say where the run stands.
    """

    def __init__(self, total: int = 0, completed: Sequence[str] = (), running: Sequence[str] = ()) -> None:
        self.total = total
        self.completed: set[str] = set(completed)
        self.running: dict[str, int] = {name: 0 for name in running}
        self.status: str | None = None
        self.error: str | None = None

    def feed(self, e: RunEvent) -> list[str]:
        if e.total:
            self.total = e.total
        head = f"[{len(self.completed)}/{self.total or '?'}]"
        if e.type == NODE_STARTED and e.node:
            self.running[e.node] = e.step or 0
            return [f"{head} started {e.node} (step {e.step})"]
        if e.type == NODE_FINISHED and e.node:
            self.running.pop(e.node, None)
            if e.status == "completed":
                self.completed.add(e.node)
            head = f"[{len(self.completed)}/{self.total or '?'}]"
            took = f" in {e.duration:.2f} s" if e.duration is not None else ""
            what = "finished" if e.status == "completed" else (e.status or "finished")
            tail = f": {e.error}" if e.error else ""
            now = f"; running: {', '.join(self.running)}" if self.running else ""
            return [f"{head} {what} {e.node}{took}{tail}{now}"]
        if e.type == CUSTOM:
            who = e.node + (f"/{e.member}" if e.member else "") if e.node else "?"
            return [f"  {who}: {preview(e.data)}"]
        if e.type == WAITING:
            prompt = e.data.get("prompt") if isinstance(e.data, dict) else e.data
            return [f"{head} waiting at {e.node}: {preview(prompt)}"]
        if e.type == JUMP:
            target = e.data.get("to") if isinstance(e.data, dict) else e.data
            return [f"{head} jump {e.node or 'from outside'} -> {target}"]
        if e.type == CACHED:
            return [f"{head} cached {e.node}: its output came from the cache (step {e.step})"]
        if e.type == RUN_FINISHED:
            self.status = e.status
            self.error = e.error
            tail = f": {e.error}" if e.error else ""
            return [f"run {e.status or 'finished'} ({len(self.completed)}/{self.total or '?'} nodes completed){tail}"]
        return []
