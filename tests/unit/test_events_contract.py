"""The exact wire form of stream events and the exact texts people read (core/events.py): what any
Temporal client parses, and what `gecko-temporal watch` and the Temporal UI show."""

from __future__ import annotations

from gecko_temporal.core import events
from gecko_temporal.core.events import Progress, RunEvent


def test_event_type_names_are_the_wire_names():
    assert events.TYPES == ("node_started", "node_finished", "custom", "waiting", "jump", "run_finished", "cached")
    assert events.CACHED == "cached"
    assert (events.NODE_STARTED, events.NODE_FINISHED, events.CUSTOM) == ("node_started", "node_finished", "custom")
    assert (events.WAITING, events.JUMP, events.RUN_FINISHED) == ("waiting", "jump", "run_finished")


def test_an_event_leaves_out_none_fields_only():
    assert events.event("run_finished") == {"type": "run_finished", "time": ""}
    assert events.event("x", node="", step=0, time="t", data=0, status=None, attempt=0, error="") == {
        "type": "x",
        "time": "t",
        "node": "",
        "step": 0,
        "data": 0,
        "attempt": 0,
        "error": "",
    }
    assert list(events.event("x", node="A", step=1, data=[1], total=3)) == [
        "type",
        "time",
        "node",
        "step",
        "data",
        "total",
    ]


def test_run_event_defaults_and_every_field_read_back():
    assert RunEvent(type="t") == RunEvent(
        type="t",
        offset=0,
        node=None,
        step=None,
        data=None,
        time="",
        status=None,
        duration=None,
        member=None,
        attempt=None,
        run=None,
        completed=None,
        total=None,
        error=None,
        extra={},
    )
    plain = {
        "type": "node_finished",
        "node": "N",
        "step": 3,
        "data": {"k": 1},
        "time": "2024-01-01T00:00:00Z",
        "status": "failed",
        "duration": 1.5,
        "member": "m",
        "attempt": 2,
        "run": 4,
        "completed": 5,
        "total": 6,
        "error": "E: x",
        "new_field": [1],
    }
    assert RunEvent.from_plain(plain, 9) == RunEvent(
        type="node_finished",
        offset=9,
        node="N",
        step=3,
        data={"k": 1},
        time="2024-01-01T00:00:00Z",
        status="failed",
        duration=1.5,
        member="m",
        attempt=2,
        run=4,
        completed=5,
        total=6,
        error="E: x",
        extra={"new_field": [1]},
    )
    assert RunEvent.from_plain({"node": "A"}) == RunEvent(type="unknown", offset=0, data={"node": "A"})
    assert RunEvent.from_plain({"type": 5}, 2) == RunEvent(type="unknown", offset=2, data={"type": 5})
    assert RunEvent.from_plain([1, 2], 1) == RunEvent(type="unknown", offset=1, data=[1, 2])


def test_preview_is_one_line_sorted_readable_json_cut_to_the_limit():
    assert events.preview("  several\n  lines\there  ") == "several lines here"
    assert events.preview({"b": 1, "a": "é"}) == '{"a": "é", "b": 1}'
    assert events.preview({"o": object}) == '{"o": "<class \'object\'>"}'  # what JSON has no type for: repr
    loop: list = []
    loop.append(loop)
    assert events.preview(loop) == "[[...]]"  # not JSON at all: repr
    assert events.PREVIEW_CHARS == 120
    exact = "x" * 120
    assert events.preview(exact) == exact
    assert events.preview(exact + "y") == "x" * 117 + "..."
    assert events.preview("abcdefgh", limit=6) == "abc..." and events.preview("abcdef", limit=6) == "abcdef"


def test_run_summary_is_cut_at_400_characters():
    assert events.run_summary("P", 2, "1") == "P: 2 nodes, input 1"
    long = events.run_summary("P", 2, "x" * 1000)
    assert len(long) == 400 and long.startswith("P: 2 nodes, input xxx")


def test_run_details_lists_up_to_40_nodes():
    assert events.run_details("P", ["A", "B"], "A", "layers", '"hi"', "S-1").splitlines() == [
        "**Pipeline** P (gecko-temporal)",
        "**Session** S-1",
        "**Nodes** (2): A, B",
        "**Entry point** A, scheduling layers",
        '**Input** "hi"',
        "Watch it: `gecko-temporal watch S-1`; state: `gecko-temporal status S-1`",
    ]
    forty = [f"n{i}" for i in range(40)]
    assert "**Nodes** (40): " + ", ".join(forty) + "\n" in events.run_details("P", forty, "n0", "eager", "1", "S")
    forty_one = [*forty, "n40"]
    line = events.run_details("P", forty_one, "n0", "eager", "1", "S").splitlines()[2]
    assert line == "**Nodes** (41): " + ", ".join(forty) + ", ... (41 in all)"


def test_current_details_say_who_waits_and_who_runs():
    assert events.current_details("running", {}, {}, 0, 3, 1) == "**running**: 0 of 3 nodes completed, step 1"
    text = events.current_details("waiting", {"W": 2}, {"W": None, "V": {"prompt": ""}}, 1, 4, 2, session="S-9")
    assert text.splitlines() == [
        "**waiting**: 1 of 4 nodes completed, step 2",
        "Waiting for W: an answer (answer with `gecko-temporal answer S-9 W --value JSON`)",
        "Waiting for V: an answer (answer with `gecko-temporal answer S-9 V --value JSON`)",
    ]
    twenty = {f"n{i}": i for i in range(20)}
    assert events.current_details("running", twenty, {}, 0, 20, 1).splitlines()[1] == "Running: " + ", ".join(
        f"n{i} (step {i})" for i in range(20)
    )
    lines = events.current_details("running", {**twenty, "n20": 20, "n21": 21}, {}, 0, 22, 1).splitlines()
    assert lines[1].endswith("n19 (step 19) and 2 more") and "n20" not in lines[1]


def test_progress_starts_from_what_already_happened():
    p = Progress(total=4, completed=["A", "B"], running=["C"])
    assert (p.total, p.completed, p.running, p.status, p.error) == (4, {"A", "B"}, {"C": 0}, None, None)
    assert Progress().feed(RunEvent(type="node_started", node="X", step=1)) == ["[0/?] started X (step 1)"]
    assert p.feed(RunEvent(type="node_finished", node="C", status="completed")) == ["[3/4] finished C"]


def test_progress_lines_for_each_kind_of_event():
    p = Progress()
    assert p.feed(RunEvent(type="node_started", node="A", step=2, total=5)) == ["[0/5] started A (step 2)"]
    assert p.running == {"A": 2}
    assert p.feed(RunEvent(type="node_started", node="B")) == ["[0/5] started B (step None)"]
    assert p.running == {"A": 2, "B": 0}
    assert p.feed(RunEvent(type="node_finished", node="B", status="cancelled", duration=0.125)) == [
        "[0/5] cancelled B in 0.12 s; running: A"
    ]
    assert p.completed == set()  # a cancelled node does not count as completed
    assert p.feed(RunEvent(type="node_finished", node="A")) == ["[0/5] finished A"]
    assert p.running == {}
    assert p.feed(RunEvent(type="custom", data="tok")) == ["  ?: tok"]
    assert p.feed(RunEvent(type="custom", node="T", member="m2", data=[1])) == ["  T/m2: [1]"]
    assert p.feed(RunEvent(type="waiting", node="W", data="plain prompt")) == ["[0/5] waiting at W: plain prompt"]
    assert p.feed(RunEvent(type="jump", data="Z")) == ["[0/5] jump from outside -> Z"]
    assert p.feed(RunEvent(type="cached", node="Embed", step=3)) == [
        "[0/5] cached Embed: its output came from the cache (step 3)"
    ]
    assert p.feed(RunEvent(type="node_started")) == []  # no node: nothing to say
    assert p.feed(RunEvent(type="node_finished")) == []
    assert p.feed(RunEvent(type="something_new", node="A")) == []
    assert p.feed(RunEvent(type="run_finished")) == ["run finished (0/5 nodes completed)"]
    assert (p.status, p.error) == (None, None)
    assert p.feed(RunEvent(type="run_finished", status="completed", total=7)) == ["run completed (0/7 nodes completed)"]
    assert p.status == "completed"


def test_progress_without_a_total_shows_a_question_mark_and_keeps_the_error():
    p = Progress()
    p.feed(RunEvent(type="node_started", node="A", step=1))
    p.feed(RunEvent(type="node_started", node="B", step=1))
    assert p.feed(RunEvent(type="node_started", node="C", step=1)) == ["[0/?] started C (step 1)"]
    assert p.feed(RunEvent(type="node_finished", node="C", status="completed")) == ["[1/?] finished C; running: A, B"]
    assert p.completed == {"C"}
    assert p.feed(RunEvent(type="run_finished", status="failed", error="E: x")) == [
        "run failed (1/? nodes completed): E: x"
    ]
    assert (p.status, p.error) == ("failed", "E: x")


def test_current_details_count_the_running_nodes_past_twenty():
    running = {f"n{i}": i for i in range(21)}
    assert events.current_details("running", running, {}, 0, 21, 1).splitlines()[1].endswith("n19 (step 19) and 1 more")
