"""What a node sees of its run (core/context.py), exactly: the interrupt's numbering, its checks and
messages, the emitter, and the errors of a limited history."""

from __future__ import annotations

import math

import pytest

from gecko_temporal import InterruptError
from gecko_temporal.core.context import INTERRUPT_PAYLOAD_LIMIT, History, NodeInterrupted, WorkflowContext
from gecko_temporal.core.errors import StateKeyError
from tests.pipelines.core_parts import node_context


def _context(resume=None, member=None, emitter=None) -> WorkflowContext:
    return node_context(member=member, resume=resume, emitter=emitter)


def _interrupt(ctx: WorkflowContext, *args, **kwargs) -> NodeInterrupted:
    with pytest.raises(NodeInterrupted) as info:
        ctx.interrupt(*args, **kwargs)
    return info.value


def test_each_interrupt_call_takes_the_next_answer_then_waits_with_its_index():
    ctx = _context(resume=['"a"', "2"])
    assert ctx.interrupt("first?") == "a"
    assert ctx.interrupt("second?") == 2
    raised = _interrupt(ctx, "third?")
    assert raised.fields == {"payload": '"third?"', "index": 2, "timeout": None, "default": None}
    assert str(raised) == "node interrupted (interrupt 2)"


def test_the_timeout_must_be_positive_and_a_fraction_of_a_second_is_fine():
    assert _interrupt(_context(), timeout=0.5).fields["timeout"] == 0.5
    with pytest.raises(InterruptError) as info:
        _context().interrupt(timeout=0)
    assert str(info.value) == (
        'node "Review": context.interrupt(timeout=...) must be a positive number of seconds, got 0'
    )


def test_a_default_that_is_not_json_names_the_default():
    with pytest.raises(InterruptError) as info:
        _context().interrupt("ok?", timeout=5, default=object())
    assert str(info.value).startswith('the default of context.interrupt() in node "Review" contains a object')
    assert _interrupt(_context(), "ok?", timeout=5, default=[1]).fields["default"] == "[1]"
    # NaN is a float the codec carries (tagged), so it is a default like any other
    nan_default = _interrupt(_context(), "ok?", timeout=5, default=math.nan).fields["default"]
    assert nan_default == '{"__gecko__":"float","data":"nan"}'


def test_a_payload_of_exactly_the_limit_is_allowed():
    at_limit = "x" * (INTERRUPT_PAYLOAD_LIMIT - 2)  # plus its two quotes
    assert len(_interrupt(_context(), at_limit).fields["payload"]) == INTERRUPT_PAYLOAD_LIMIT
    with pytest.raises(InterruptError) as info:
        _context().interrupt(at_limit + "x")
    assert str(info.value) == (
        'the payload of context.interrupt() in node "Review" is 1,048,577 characters of JSON, '
        "over 1,048,576; show a person a summary or a file path"
    )


def test_a_team_member_is_told_where_to_interrupt_instead():
    with pytest.raises(InterruptError) as info:
        _context(member="m1").interrupt("ok?")
    assert str(info.value) == (
        'node "Review" member "m1" called context.interrupt(): Team members cannot interrupt (their siblings '
        "would have to wait or re-run too); interrupt in a node before or after the Team, or use a WaitForInput node"
    )


def test_emit_hands_the_data_to_the_emitter_and_is_a_no_op_without_one():
    sent: list = []
    _context(emitter=sent.append).emit({"token": "hi"})
    assert sent == [{"token": "hi"}]
    assert _context().emit({"token": "hi"}) is None


def test_a_limited_history_of_an_unnamed_node_still_says_what_to_declare():
    with pytest.raises(StateKeyError) as info:
        History({"A": "1"}, limited_to=["B"])["A"]
    assert str(info.value) == (
        'node "" read context.history["A"] but declared history=[\'B\']; add it there or drop history= to '
        "receive every output"
    )
