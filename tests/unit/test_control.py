"""Live control without a server: what outsiders may send, and the bounded gecko_state answer."""

import json

import pytest

from gecko_temporal.core import control
from gecko_temporal.core.control import Arg, parse_request
from gecko_temporal.core.spec import Jump


def test_a_well_formed_jump_is_accepted_with_its_input_encoded():
    request, problem = parse_request("jump", [Arg({"node": "Done", "input": {"k": [1, 2]}})])
    assert problem is None and request == {"node": "Done", "input": '{"k":[1,2]}'}


@pytest.mark.parametrize(
    "args, reason",
    [
        ([], 'takes exactly one argument, a JSON object like {"node": "Name", "input": ...}; got 0 arguments'),
        ([Arg({"node": "A"}), Arg({"node": "B"})], "got 2 arguments"),
        ([Arg("Done")], "needs a JSON object like"),
        ([Arg({"node": 5})], 'needs "node": the name of a node as a string, got a number'),
        ([Arg({"node": ""})], 'needs "node": the name of a node as a string'),
        ([Arg({"node": "A", "value": 1})], "unknown field(s) 'value' in the jump (valid: 'node', 'input')"),
        ([Arg({"node": "A", "input": {"x": object()}})], 'the "input" of the jump contains a object'),
        ([Arg(b"\x00")], "got raw bytes (send JSON)"),
        ([Arg(encoding="x/y", problem="encoding 'x/y': unknown")], "could not be read: encoding 'x/y'"),
    ],
)
def test_malformed_jumps_are_rejected_with_a_reason(args, reason):
    request, problem = parse_request("jump", args)
    assert request is None and reason in problem


def test_nan_and_infinity_from_outside_are_accepted_as_floats():
    # JSON from a client that Python reads as NaN/inf (the literal NaN, 1e999) is the float it reads as.
    request, problem = parse_request("jump", [Arg({"node": "A", "input": [float("nan"), 1e999, -1e999]})])
    assert problem is None and json.loads(request["input"]) == [
        {"__gecko__": "float", "data": "nan"},
        {"__gecko__": "float", "data": "inf"},
        {"__gecko__": "float", "data": "-inf"},
    ]


def test_answers_use_value_not_input():
    assert parse_request("answer", [Arg({"node": "Review", "value": "yes"})]) == (
        {"node": "Review", "value": '"yes"'},
        None,
    )
    assert "unknown field(s) 'input'" in parse_request("answer", [Arg({"node": "Review", "input": 1})])[1]


def test_a_rejection_keeps_a_short_preview_of_a_huge_request():
    entry = control.rejection("gecko_next", [Arg({"node": "Nope", "input": "x" * 1_500_000})], "why " * 500, 7)
    assert entry["signal"] == "gecko_next" and entry["step"] == 7
    assert len(entry["request"]) < control.PREVIEW_CHARS + 60 and "characters in all" in entry["request"]
    assert len(entry["reason"]) <= control.REASON_CHARS + 3
    assert len(json.dumps(entry)) < 1100


def test_gecko_state_previews_big_values_and_stays_within_budget():
    state = {"small": '"ok"', "huge": json.dumps("y" * 200_000)}
    state.update({f"mid{i}": json.dumps("z" * 60_000) for i in range(30)})  # 1.8 MB of mid-sized values
    shown, truncated = control.shown_state(state)
    assert shown["small"] == "ok" and "huge" in truncated
    assert shown["huge"].startswith('<200,002 characters of JSON, too big to show; starts with: "yyy')
    assert len(json.dumps(shown)) < control.STATE_BUDGET + 64 * 1024
    assert [k for k in state if k in truncated] == truncated  # in state order
    kept = [k for k in state if k.startswith("mid") and k not in truncated]
    assert kept and all(shown[k] == "z" * 60_000 for k in kept)


def test_the_state_answer_has_no_internal_tags_and_splits_rejections():
    answer = control.state_answer(
        workflow="W",
        status="running",
        state={"m": '{"__gecko__":"a.b:C","data":{"x":1}}'},
        completed=["A"],
        running=["B"],
        waiting={},
        step=2,
        layer=1,
        run=1,
        nodes=["A", "B"],
        pending_jumps=[Jump("B", '{"__gecko__":"dict","items":[["__gecko__",1]]}', "signal")],
        rejected=[
            {"signal": "gecko_next", "request": "1", "reason": "r", "step": 1},
            {"signal": "gecko_answer", "request": "2", "reason": "r", "step": 1},
        ],
        conflicts=[],
    )
    assert answer["state"] == {"m": {"x": 1}}
    assert answer["pending_jumps"] == [{"node": "B", "input": {"__gecko__": 1}, "source": "signal"}]
    assert [r["signal"] for r in answer["rejected_jumps"]] == ["gecko_next"] and len(answer["rejected"]) == 2
