"""References and deltas: a run's history holds each byte a run makes once. Pure: no temporalio import.

Every value crosses the workflow/activity boundary as JSON text. Without this module a node's input
carried the whole state and its output wrote a grown list back whole, so an agent loop of n turns
wrote O(n^2) bytes to history. In runs that record the refs patch (``REFS_PATCH``):

- **Inputs carry references.** A text of at least :data:`MIN_REF` characters travels as
  ``"@" + digest`` (a content address: the first 128 bits of its SHA-256). The workflow keeps the
  text in its :class:`ValueTable` until the node's output arrives; the activity resolves the
  reference from the table itself when it runs in the workflow's process (:func:`live_table`),
  else from its own cache, else by asking the workflow (the ``gecko_values`` query: no history).
- **Outputs carry what is new.** The activity writes each output text (the jump's input, Send
  arguments, state writes, the value) as the cheapest of: the text itself; ``"@" + digest`` when
  it is a text the node received or produced already; or a *composition*, ``"+" + JSON`` of parts,
  each a literal string or ``[digest, start, end]``, a slice of a known text. A list the node
  appended to is its old text's prefix plus the new items; a ``Next`` value holds its input as a
  slice of the jump's text. :meth:`ValueTable.expand` rebuilds the exact text in the workflow.

No JSON text begins with ``@`` or ``+``, so a plain text is never mistaken for either. Both sides
go through the texts of one output in the same order (:func:`output_texts`), so a composition only
ever names texts the workflow has: the node's referenced inputs, and texts of the same output
expanded before it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from gecko_temporal.core.errors import GeckoError

REF = "@"
COMPOSED = "+"
#: Texts shorter than this travel as they are (a reference is 33 characters).
MIN_REF = 256
#: The shortest shared prefix or contained text worth a slice instead of a copy.
MIN_SHARED = 128
_DIGEST_CHARS = 32


class RefError(GeckoError):
    """A reference or composition names a value the run does not have (says which and where)."""


def digest(text: str) -> str:
    """The content address of ``text``: 128 bits of its SHA-256, in hex."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_CHARS]


def is_ref(text: str) -> bool:
    return text[:1] == REF


def is_packed(text: str) -> bool:
    """A reference or a composition (not plain JSON text)."""
    return text[:1] in (REF, COMPOSED)


def common_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix of ``a`` and ``b`` (C-speed compares, log n of them)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n - 1  # a[:lo] == b[:lo] holds; a[:hi+1] != b[:hi+1] somewhere below n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


# --- the workflow's side --------------------------------------------------------------------------

_live: weakref.WeakValueDictionary[str, ValueTable] = weakref.WeakValueDictionary()


def live_table(run_id: str) -> ValueTable | None:
    """The value table of run ``run_id`` when that run's workflow lives in this process."""
    return _live.get(run_id)


class ValueTable:
    """The texts a run's nodes in flight were sent references to, by digest, held until each
    node's output has been expanded (``owner``: one activity, e.g. a task key and member).

    What it holds never decides a command: it only answers the activities' reads (and the
    ``gecko_values`` query), so replay is unaffected by when entries come and go."""

    def __init__(self, run_id: str = "") -> None:
        self._texts: dict[str, str] = {}
        self._count: dict[str, int] = {}
        self._pins: dict[str, list[str]] = {}
        self._memo: dict[int, tuple[str, str]] = {}  # id(text) -> (text, digest): state texts repeat
        if run_id:
            _live[run_id] = self

    def __len__(self) -> int:
        return len(self._texts)

    def get(self, key: str) -> str | None:
        return self._texts.get(key)

    def _digest(self, text: str) -> str:
        seen = self._memo.get(id(text))
        if seen is not None and seen[0] is text:
            return seen[1]
        d = digest(text)
        self._memo[id(text)] = (text, d)
        return d

    def _pin(self, owner: str, text: str) -> str:
        d = self._digest(text)
        self._texts[d] = text
        self._count[d] = self._count.get(d, 0) + 1
        self._pins.setdefault(owner, []).append(d)
        return d

    def ref(self, owner: str, text: str | None) -> str | None:
        """What to send for ``text``: a reference held for ``owner``, or the text when short."""
        if text is None or len(text) < MIN_REF:
            return text
        return REF + self._pin(owner, text)

    def refs(self, owner: str, texts: Mapping[str, str] | None) -> dict[str, str] | None:
        return None if texts is None else {k: self.ref(owner, v) or v for k, v in texts.items()}

    def release(self, owner: str) -> None:
        """``owner``'s output has been expanded (or it will never come): let its texts go."""
        for d in self._pins.pop(owner, ()):
            left = self._count[d] - 1
            if left:
                self._count[d] = left
            else:
                del self._count[d]
                del self._texts[d]
        if not self._pins:
            self._memo.clear()

    def expand(self, owner: str, text: str, where: str = "") -> str:
        """The plain text ``text`` stands for; it is held for ``owner`` so later texts of the same
        output may name it. Raise RefError when it names a text this run does not hold."""
        if not is_packed(text):
            if len(text) >= MIN_REF:
                self._pin(owner, text)
            return text
        if text[0] == REF:
            plain = self._known(text[1:], where)
        else:
            try:
                parts = json.loads(text[1:])
            except ValueError:
                raise RefError(f"{where}: a malformed composition {text[:80]!r}") from None
            plain = "".join(self._part(p, where) for p in parts)
        self._pin(owner, plain)
        return plain

    def _known(self, key: str, where: str) -> str:
        known = self._texts.get(key)
        if known is None:
            raise RefError(
                f"{where} names value {key[:12]}..., which this run does not hold (an output from a worker "
                "of another version of gecko-temporal?)"
            )
        return known

    def _part(self, part: Any, where: str) -> str:
        if isinstance(part, str):
            return part
        if isinstance(part, list) and len(part) == 3 and isinstance(part[0], str):
            start, end = part[1], part[2]
            if isinstance(start, int) and isinstance(end, int):
                return self._known(part[0], where)[start:end]
        raise RefError(f"{where}: a malformed part {str(part)[:80]!r} of a composition")

    def answer(self, keys: Iterable[Any], budget: int = 300_000) -> dict[str, str]:
        """The texts of ``keys`` this run holds, at most about ``budget`` characters (at least one):
        the ``gecko_values`` query's answer (the caller asks again for the rest)."""
        found: dict[str, str] = {}
        size = 0
        for key in keys:
            text = self._texts.get(key) if isinstance(key, str) else None
            if text is None:
                continue
            if found and size + len(text) > budget:
                break
            found[key] = text
            size += len(text)
        return found


# --- the activity's side --------------------------------------------------------------------------


class ValueCache:
    """A worker's recently seen texts by digest, at most ``limit`` characters (least recent go)."""

    def __init__(self, limit: int = 64 * 1024 * 1024) -> None:
        self.limit = limit
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._size = 0

    def get(self, key: str) -> str | None:
        text = self._texts.get(key)
        if text is not None:
            self._texts.move_to_end(key)
        return text

    def put(self, key: str, text: str) -> None:
        if key in self._texts or len(text) > self.limit // 4:
            return
        self._texts[key] = text
        self._size += len(text)
        while self._size > self.limit:
            _, old = self._texts.popitem(last=False)
            self._size -= len(old)


def wanted(texts: Iterable[str | None]) -> list[str]:
    """The digests the references among ``texts`` name, each once."""
    return list(dict.fromkeys(t[1:] for t in texts if t is not None and is_ref(t)))


class Composer:
    """Writes one node's output texts as references and compositions of the texts it knows: those
    it received as references (``received``: digest -> text) and those it wrote before."""

    def __init__(self, received: Mapping[str, str]) -> None:
        self._known: dict[str, str] = dict(received)
        self._bases = [d for d, t in received.items() if len(t) >= MIN_SHARED]
        self._written: list[str] = []  # digests of texts this output wrote, newest last

    def produced(self) -> Iterator[tuple[str, str]]:
        """(digest, text) of each text this output wrote that the node did not receive."""
        return ((d, self._known[d]) for d in self._written)

    def write(self, text: str, prefer: str | None = None) -> str:
        """What to ship for ``text``; ``prefer`` is the digest of the text it most likely grew from."""
        if len(text) < MIN_REF:
            return text
        d = digest(text)
        if d in self._known:
            return REF + d
        parts = self._slice_of_written(text) or self._grown(text, prefer)
        self._known[d] = text
        self._written.append(d)
        if parts is None:
            return text
        packed = COMPOSED + json.dumps(parts, separators=(",", ":"), ensure_ascii=False)
        return packed if len(packed) < len(text) else text

    def _grown(self, text: str, prefer: str | None) -> list[Any] | None:
        """[a slice of a received text, the rest] when ``text`` starts with much of one: its prefix
        (a list appended to) or a part of it (a list taken out of the dict it came in)."""
        best, best_at, best_len = None, 0, MIN_SHARED - 1
        head = text[:MIN_SHARED]
        order = [prefer] if prefer in self._known else []
        for d in order + self._bases:
            base = self._known[d]
            at = 0 if base.startswith(head) else base.find(head)
            if at < 0:
                continue
            n = common_prefix(base[at:] if at else base, text)
            if n > best_len:
                best, best_at, best_len = d, at, n
            if n >= len(text) - 1 or n == len(base) - at:
                break
        if best is None:
            return None
        whole = [best, best_at, best_at + best_len]
        return [whole, text[best_len:]] if best_len < len(text) else [whole]

    def _slice_of_written(self, text: str) -> list[Any] | None:
        """[before, this output's earlier text, after] when ``text`` contains one (a Next value holds
        its jump's input; a list of Sends their arguments)."""
        for d in reversed(self._written):
            inner = self._known[d]
            at = text.find(inner) if len(inner) >= MIN_SHARED else -1
            if at >= 0:
                after = text[at + len(inner) :]
                return [text[:at], [d, 0, len(inner)], *([after] if after else [])]
        return None


# --- one output's texts, in the order both sides go through them ------------------------------------

#: What ``bases`` calls the node's own input (a state key may be any string, even "": this one
#: holds a NUL, which no sane key does; at worst a write then grows from the input instead).
INPUT = "\x00input"


def output_texts(plain: dict[str, Any]) -> Iterator[tuple[str, Callable[[str], None], str | None, str]]:
    """(text, a setter that replaces it, the state key it is written to or None, what it is) for each
    text of a NodeOutput's plain form that may be packed, in the one order both sides use: the jump's
    input, Send inputs, state writes, the value."""
    jump = plain.get("jump")
    if jump:
        yield jump["input"], functools.partial(dict.__setitem__, jump, "input"), None, f'the jump to "{jump["node"]}"'
    for i, send in enumerate(plain.get("sends") or ()):
        yield send["input"], functools.partial(dict.__setitem__, send, "input"), None, f"Send {i}"
    writes = plain.get("writes") or {}
    for key in list(writes):
        yield writes[key], functools.partial(dict.__setitem__, writes, key), key, f"state key {key!r}"
    if "value" in plain:
        yield plain["value"], functools.partial(dict.__setitem__, plain, "value"), None, "the output value"


def pack_output(plain: dict[str, Any], composer: Composer, bases: Mapping[str, str]) -> dict[str, Any]:
    """``plain`` (a NodeOutput's plain form) with its texts written by ``composer``, in place.
    ``bases``: state key (or :data:`INPUT`) -> digest of the text the node received for it."""
    for text, put, key, _ in output_texts(plain):
        put(composer.write(text, bases.get(INPUT if key is None else key)))
    return plain


def expand_output(plain: dict[str, Any], table: ValueTable, owner: str, node: str) -> dict[str, Any]:
    """``plain`` (a NodeOutput's plain form from the activity) with every text plain again, in place."""
    for text, put, _, what in output_texts(plain):
        put(table.expand(owner, text, f'{what} of node "{node}"'))
    return plain


def as_shipped(text: str) -> str:
    """What travels for ``text`` in a node input with references (for measuring payloads)."""
    return text if len(text) < MIN_REF else REF + "0" * _DIGEST_CHARS


def pack_input(arg: dict[str, Any], table: ValueTable, owner: str) -> dict[str, Any]:
    """A NodeInput's plain form with its long texts as references held for ``owner`` (the activity)."""
    packed = dict(arg)
    packed["input"] = table.ref(owner, arg["input"])
    for field in ("run_input", "state", "history"):  # the optional ones travel only when set
        if arg.get(field) is not None:
            packed[field] = table.ref(owner, arg[field]) if field == "run_input" else table.refs(owner, arg[field])
    packed["refs"] = 1
    return packed


class Unpacked:
    """A NodeInput's plain form with its references resolved, and how its output is to be packed."""

    def __init__(self, plain: dict[str, Any], found: Mapping[str, str]) -> None:
        def opened(text: Any) -> Any:
            return found[text[1:]] if isinstance(text, str) and is_ref(text) else text

        self.bases: dict[str, str] = {}
        if isinstance(plain.get("input"), str) and is_ref(plain["input"]):
            self.bases[INPUT] = plain["input"][1:]
        for key, text in (plain.get("state") or {}).items():
            if is_ref(text):
                self.bases[key] = text[1:]
        self.plain = dict(plain)
        self.plain.pop("refs", None)
        for field in ("input", "run_input"):
            self.plain[field] = opened(plain.get(field))
        for field in ("state", "history"):
            texts = plain.get(field)
            self.plain[field] = None if texts is None else {k: opened(v) for k, v in texts.items()}
        self.composer = Composer(found)

    def pack(self, output: dict[str, Any]) -> dict[str, Any]:
        return pack_output(output, self.composer, self.bases)


def input_refs(plain: Mapping[str, Any]) -> list[str]:
    """The digests a NodeInput's plain form refers to."""
    return wanted(
        [
            plain.get("input"),
            plain.get("run_input"),
            *(plain.get("state") or {}).values(),
            *(plain.get("history") or {}).values(),
        ]
    )
