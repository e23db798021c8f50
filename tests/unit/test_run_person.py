"""One wait for a person (core/run/person.py): WaitForInput and context.interrupt() alike."""

import pytest

from gecko_temporal.core.control import RunControl
from gecko_temporal.core.run.failure import NodeFailed
from gecko_temporal.core.run.person import PersonWait
from gecko_temporal.core.scheduler import Scheduler
from gecko_temporal.core.spec import KIND_WAIT, GraphSpec, NodeSpec, RunSnapshot

REVIEW = NodeSpec("Review", KIND_WAIT, "", [], [], wait_timeout=30.0, wait_default='"ok"', wait_prompt="Approve?")


def _control():
    spec = GraphSpec("W", "W", "Review", [REVIEW])
    return RunControl(spec, Scheduler(spec), RunSnapshot())


def test_a_wait_node_shows_its_prompt_and_takes_its_default():
    wait = PersonWait.for_node(REVIEW)
    assert wait == PersonWait("Review", "Approve?", 30.0, '"ok"')
    assert wait.index is None and wait.payload is None and wait.edits_first is False
    live = _control()
    assert wait.begin(live, '{"a": 1}', "T") == "Approve?"
    assert live.waiting["Review"] == {"prompt": "Approve?", "input": {"a": 1}, "since": "T", "timeout": 30.0}
    assert wait.timed_out() == '"ok"'


def test_a_wait_node_without_default_fails_saying_how_to_answer():
    wait = PersonWait("Review", "", 2.5, None)
    with pytest.raises(NodeFailed) as caught:
        wait.timed_out()
    assert (caught.value.node, caught.value.error_type) == ("Review", "WaitTimeout")
    assert caught.value.message == (
        'no answer within 2.5 s (answer with handle.answer("Review", value) or give WaitForInput a default)'
    )


def test_an_interrupt_shows_its_payload_and_lets_edits_land_first():
    asked = {"payload": '{"q": "sure?"}', "index": 9, "timeout": None, "default": None}
    wait = PersonWait.for_interrupt("Plan", asked, 2)
    assert wait == PersonWait("Plan", "", None, None, '{"q": "sure?"}', 2)
    assert wait.edits_first is True
    live = _control()
    assert wait.begin(live, '"in"', "T") == {"q": "sure?"}
    assert live.waiting["Plan"] == {
        "prompt": "",
        "input": "in",
        "since": "T",
        "timeout": None,
        "payload": {"q": "sure?"},
        "interrupt": 2,
        "interrupted": True,
    }
    with pytest.raises(NodeFailed) as caught:
        wait.timed_out()
    assert caught.value.message == (
        'no answer to interrupt 2 within None s (answer with handle.answer("Plan", value) or give interrupt() a default)'
    )
    assert PersonWait.for_interrupt("Plan", {"payload": "1", "timeout": 3, "default": "0"}, 0).timed_out() == "0"
    assert PersonWait.for_interrupt("Plan", {"payload": "1"}, 0).edits_first is True


def test_an_interrupts_timeout_is_its_own():
    assert PersonWait.for_interrupt("Plan", {"payload": "1", "timeout": 3.5}, 0).timeout == 3.5


def test_a_wait_moved_to_the_next_run_keeps_its_deadline_and_answers():
    wait = PersonWait.for_node(REVIEW)
    assert wait.time_left(None, 100.0) == (30.0, 130.0)  # begun here: the full timeout
    assert wait.time_left(130.0, 120.0) == (10.0, 130.0)  # begun by an earlier run: what is left
    assert wait.time_left(130.0, 200.0)[0] == 0.001  # already past: ends at once, with the default
    untimed = PersonWait("Gate", "?", None, None)
    assert untimed.time_left(None, 5.0) == (None, None)
    paused = PersonWait.again(['"a0"'], 130.0)
    assert paused.again == {"resume": ['"a0"'], "until": 130.0}
