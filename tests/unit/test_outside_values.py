"""What a Python client sends to a run from outside (answers, jumps, state edits) is plain JSON."""

from __future__ import annotations

import math

import pytest
from temporalio.client import Client, WorkflowHandle

from gecko_temporal import SerializationError, StateEditError
from gecko_temporal.temporal.client import RunHandle


@pytest.fixture
def handle() -> RunHandle:
    client = object.__new__(Client)
    return RunHandle(WorkflowHandle(client, "s-1"), client=client)


@pytest.mark.parametrize(
    "call, error, where",
    [
        (lambda h: h.answer("Review", {"score": math.nan}), SerializationError, "nan at ['score']"),
        (lambda h: h.jump("Next", [1.0, math.inf]), SerializationError, "inf at [1]"),
        (lambda h: h.signal_jump("Next", -math.inf), SerializationError, "-inf at the top level"),
        (lambda h: h.update_state({"scores": [0.5, math.nan]}), StateEditError, "nan at [1]"),
    ],
)
async def test_nan_and_infinity_are_refused_by_name_never_sent_as_strings(handle, call, error, where):
    # Plain JSON has no NaN: its plain form would reach the node as the string "nan". The client
    # refuses before it sends anything (this handle's client has no connection at all).
    with pytest.raises(error, match=r"contains " + where.replace("[", r"\[").replace("]", r"\]")):
        await call(handle)
