"""The pure side of watching runs: events, progress lines, UI texts, previews without internal tags."""

from __future__ import annotations

import datetime
import json
import uuid

from pydantic import BaseModel

from gecko_temporal.core import codec, control, events
from gecko_temporal.core.events import Progress, RunEvent


class Stamp(BaseModel):
    when: datetime.datetime


def test_a_big_state_value_previews_without_internal_tags():
    value = [datetime.date(2020, 1, 1), uuid.UUID(int=5), Stamp(when=datetime.datetime(2021, 2, 3))] * 5000
    text = codec.encode(value)
    assert codec.TAG in text
    shown, cut = control.shown_state({"big": text, "user": codec.encode({"__gecko__": "mine"})})
    assert cut == ["big"]
    assert codec.TAG not in shown["big"]
    assert '"2020-01-01","00000000-0000-0000-0000-000000000005",{"when":"2021-02-03T00:00:00"' in shown["big"]
    assert shown["user"] == {"__gecko__": "mine"}  # the user's own key is data, shown as it is


def test_progress_lines_follow_the_run():
    p = Progress(total=3)
    feed = [
        RunEvent.from_plain(events.event("node_started", node="A", step=1, total=3), 0),
        RunEvent.from_plain(events.event("custom", node="A", step=1, data={"token": "hi"}), 1),
        RunEvent.from_plain(events.event("node_finished", node="A", step=1, status="completed", duration=0.5), 2),
        RunEvent.from_plain(events.event("waiting", node="W", step=2, data={"prompt": "ok?"}), 3),
        RunEvent.from_plain(events.event("jump", node="B", step=3, data={"to": "A"}), 4),
        RunEvent.from_plain(events.event("node_finished", node="B", step=3, status="failed", error="X: y"), 5),
        RunEvent.from_plain(events.event("run_finished", status="failed", error="boom"), 6),
    ]
    lines = [line for e in feed for line in p.feed(e)]
    assert lines == [
        "[0/3] started A (step 1)",
        '  A: {"token": "hi"}',
        "[1/3] finished A in 0.50 s",
        "[1/3] waiting at W: ok?",
        "[1/3] jump B -> A",
        "[1/3] failed B: X: y",
        "run failed (1/3 nodes completed): boom",
    ]
    assert p.status == "failed"


def test_events_are_plain_json_and_unknown_fields_survive():
    e = events.event("custom", node="A", step=2, data=[1], time="t", member="m", attempt=1, novel="x")
    assert json.loads(json.dumps(e)) == e
    got = RunEvent.from_plain(e, 7)
    assert (got.type, got.node, got.step, got.member, got.offset, got.extra) == (
        "custom",
        "A",
        2,
        "m",
        7,
        {"novel": "x"},
    )
    assert RunEvent.from_plain("garbage", 3).type == "unknown"


def test_ui_texts():
    assert events.run_summary("P", 3, '"x"') == 'P: 3 nodes, input "x"'
    details = events.run_details("P", [f"n{i}" for i in range(50)], "n0", "eager", "1", "S")
    assert "(50): n0, n1" in details and "... (50 in all)" in details and "gecko-temporal watch S" in details
    now = events.current_details("waiting", {"A": 3, "W": 4}, {"W": {"prompt": "Approve?"}}, 2, 5, 4)
    assert now.splitlines() == [
        "**waiting**: 2 of 5 nodes completed, step 4",
        "Waiting for W: Approve? (answer with `gecko-temporal answer SESSION W --value JSON`)",
        "Running: A (step 3)",
    ]
    assert events.preview("x" * 500).endswith("...") and len(events.preview("x" * 500)) == events.PREVIEW_CHARS
