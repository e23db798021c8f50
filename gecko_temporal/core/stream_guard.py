"""What a run's event stream accepts from outside: reader polls and published batches.
Pure: no temporalio import.

Temporal lets a workflow have at most 10 updates in flight, and a stream reader's long poll is an
update that stays in flight until the run has a new event for it, also after its reader went away
(a Ctrl-C'd ``watch``). Ten such polls once blocked every answer, jump and state edit of a waiting
run. So a run keeps at most :data:`MAX_WAITING_POLLS` polls waiting: when another arrives, the
oldest is answered at once with an error that tells a live reader to come back later (readers then
read by query, which costs no update and no history), and a poll for an offset far beyond the
log's end (which would wait forever) is refused at its validator.

Anyone who may signal a run can publish on its stream. What a publish may add is bounded here: a
batch's and an item's bytes, the publisher id a batch is deduplicated by (kept per publisher and
carried across continue-as-new), and what an item on the run's own topic may claim to be (only a
node's ``custom`` event: the run's own events, ``run_finished`` above all, come only from the run).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gecko_temporal.core import events

MAX_WAITING_POLLS = 5  # of Temporal's 10 updates in flight: the other 5 stay free for control
OFFSET_MARGIN = 1000  # a poll may ask for events this far beyond the log's end (not more)
BUSY_ERROR = "GeckoStreamBusy"  # the error type of a poll answered early to make room
OFFSET_ERROR = "GeckoStreamOffset"  # the error type of a poll refused for its offset

ITEM_BYTES = 256 * 1024  # one published item (base64 of its payload)
BATCH_BYTES = 1024 * 1024  # one publish signal's items together
BATCH_ITEMS = 1000
PUBLISHER_ID_CHARS = 200  # a longer publisher id is refused (ids are kept, and carried)
KEEP_PUBLISHERS = 200  # publisher ids a run keeps for deduplication (the most recent)


def poll_offset_problem(from_offset: Any, end: int) -> str | None:
    """Why a reader's poll for ``from_offset`` is refused when the log ends at ``end``, or None."""
    if not isinstance(from_offset, int) or isinstance(from_offset, bool) or from_offset < 0:
        return f"a stream poll needs a non-negative integer offset, got {from_offset!r}"
    if from_offset > end + OFFSET_MARGIN:
        return (
            f"offset {from_offset} is beyond the end of this run's event stream ({end} events so far); "
            f"read from an offset up to {end} (watch --from-offset N, or 0 for all)"
        )
    return None


class WaitingPolls:
    """The stream polls waiting in a run, oldest first; says which to answer early to make room."""

    def __init__(self, limit: int = MAX_WAITING_POLLS) -> None:
        self._limit = limit
        self._waiting: list[int] = []
        self._released: set[int] = set()
        self._count = 0

    def arrive(self) -> tuple[int, list[int]]:
        """A new poll's token, and the tokens of the oldest polls to release for it."""
        self._count += 1
        token = self._count
        self._waiting.append(token)
        extra = len(self._waiting) - self._limit
        release = self._waiting[:extra] if extra > 0 else []
        del self._waiting[: len(release)]
        self._released.update(release)
        return token, release

    def unrelease(self, tokens: list[int]) -> None:
        """Keep these polls waiting after all (a run recorded before the bound)."""
        self._released.difference_update(tokens)
        self._waiting[:0] = tokens

    def released(self, token: int) -> bool:
        return token in self._released

    def leave(self, token: int) -> None:
        if token in self._waiting:
            self._waiting.remove(token)
        self._released.discard(token)

    def __len__(self) -> int:
        return len(self._waiting)


BUSY_MESSAGE = (
    f"more than {MAX_WAITING_POLLS} readers wait on this run's stream; the oldest poll was answered "
    "to keep room for answers, jumps and state edits: read again shortly"
)


def publish_problem(
    topic_items: list[tuple[str, int]], publisher_id: str, own_topic: str, decoded: Mapping[int, Any]
) -> str | None:
    """Why a publish batch is refused, or None.

    ``topic_items`` is each item's (topic, bytes of its data); ``decoded`` maps the index of each
    item on ``own_topic`` to its decoded value (what it claims to be).
    """
    if len(publisher_id) > PUBLISHER_ID_CHARS:
        return f"publisher_id is {len(publisher_id):,} characters; at most {PUBLISHER_ID_CHARS} are kept"
    if len(topic_items) > BATCH_ITEMS:
        return f"a publish batch of {len(topic_items):,} items; at most {BATCH_ITEMS:,} per signal"
    total = 0
    for i, (topic, size) in enumerate(topic_items):
        if len(topic) > PUBLISHER_ID_CHARS:
            return f"item {i}: topic name of {len(topic):,} characters (at most {PUBLISHER_ID_CHARS})"
        if size > ITEM_BYTES:
            return (
                f"item {i} on topic {topic[:50]!r} is {size:,} bytes, over {ITEM_BYTES:,}: "
                "emit a summary or a path, not the data"
            )
        total += size
        if total > BATCH_BYTES:
            return f"the batch is over {BATCH_BYTES:,} bytes at item {i}: send smaller events"
    for i, value in decoded.items():
        kind = value.get("type") if isinstance(value, dict) else None
        if kind != events.CUSTOM:
            return (
                f"item {i} on the run's own topic {own_topic!r} is {_kind(kind)}; from outside only "
                f'"{events.CUSTOM}" events (context.emit) may be published there'
            )
    return None


def _kind(kind: Any) -> str:
    return f"a {kind[:40]!r} event" if isinstance(kind, str) else "not an event object"
