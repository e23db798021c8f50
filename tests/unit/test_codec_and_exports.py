"""Values crossing the Temporal boundary, the public names, and the pure-core split."""

import dataclasses
import json
import subprocess
import sys

import pytest
from pydantic import BaseModel

import gecko_temporal
from gecko_temporal import MemberResult, Next, SerializationError
from gecko_temporal.core.codec import decode, encode, plain, revive


class Report(BaseModel):
    title: str
    score: float


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_plain_json_round_trips():
    value = {"a": [1, 2.5, None, True], "b": {"c": "ü"}}
    assert decode(encode(value)) == value


def test_pydantic_models_come_back_as_models():
    gecko_temporal.Workflow("Reports", types=[Report])  # a graph that names Report allows reviving it
    value = {"report": Report(title="t", score=0.5), "results": [MemberResult(member="m", index=0, status="succeeded")]}
    back = decode(encode(value))
    assert back["report"] == Report(title="t", score=0.5)
    assert isinstance(back["results"][0], MemberResult) and back["results"][0].is_success
    assert revive(json.loads(encode(value))) == back  # a run result, parsed by the SDK


def test_unlisted_dataclasses_arrive_as_dicts_tuples_as_lists():
    assert decode(encode({"p": Point(1, 2), "t": (1, 2), "s": {3, 1}})) == {
        "p": {"x": 1, "y": 2},
        "t": [1, 2],
        "s": {1, 3},
    }


def test_unserializable_value_names_what_and_the_type():
    with pytest.raises(SerializationError, match=r'the output of node "X" contains a socket'):
        import socket

        with socket.socket() as s:
            encode({"conn": s}, what='the output of node "X"')


def test_unimportable_model_degrades_to_its_data():
    text = '{"__gecko__":"nowhere.module:Gone","data":{"a":1}}'
    assert decode(text) == {"a": 1}


class Unlisted(BaseModel):
    a: int


def test_a_model_no_graph_names_arrives_as_its_data():
    assert decode(encode(Unlisted(a=1))) == {"a": 1}


def test_data_never_imports_a_module(tmp_path, monkeypatch):
    (tmp_path / "gecko_canary_mod.py").write_text(
        "import sys\nsys.modules['gecko_canary_ran'] = True\n"
        "from pydantic import BaseModel\nclass Boom(BaseModel):\n    x: int = 0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    forged = '{"__gecko__":"gecko_canary_mod:Boom","data":{"x":1}}'
    assert decode(forged) == {"x": 1} and revive(plain(forged)) == {"x": 1}
    assert "gecko_canary_mod" not in sys.modules and "gecko_canary_ran" not in sys.modules


@pytest.mark.parametrize(
    "data",
    [
        {"__gecko__": "gecko_temporal.spec:Next", "data": {"node": "Bad", "input": None}},
        [{"__gecko__": "dict", "items": [["a", 1]]}],
        {
            "outer": {
                "__gecko__": "gecko_temporal.team:MemberResult",
                "data": {"member": "m", "index": 0, "status": "succeeded"},
            }
        },
        {"__gecko__": 1},
    ],
)
def test_user_dicts_with_our_tag_key_round_trip_as_the_same_dicts(data):
    text = encode(data)
    assert decode(text) == data and plain(text) == data
    assert decode(encode({"wrapped": data, "model": Next("A", data)})) == {"wrapped": data, "model": Next("A", data)}


def test_tags_never_show_in_what_people_read():
    text = encode({"next": Next("B", {"x": 1})})
    assert plain(text) == {"next": {"node": "B", "input": {"x": 1}}}


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        {"scores": [1.0, float("inf")]},
        [{"x": -float("inf")}],
        (float("inf"), {"t": {"__gecko__": 1, "v": float("nan")}}),  # inside an escaped user dict
        {"s": {1.5, float("inf")}, "f": frozenset({-float("inf")})},
        Next("B", {"x": float("nan")}),
    ],
)
def test_nan_and_infinity_round_trip_as_floats_in_strict_json(value):
    text = encode(value, what='state key "s" written by node "N"')
    json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not strict JSON: {text}"))
    assert _same(decode(text), value)
    assert "nan" in text or "inf" in text
    assert decode(encode(float("nan"))) != decode(encode(float("nan")))  # a real NaN, not a stand-in


def _same(a, b):
    """Equal, with NaN equal to NaN (tuples come back as lists)."""
    if isinstance(a, float) and isinstance(b, float):
        return (a != a and b != b) or a == b
    if isinstance(b, tuple):
        b = list(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, Next) and isinstance(b, Next):
        return a.node == b.node and _same(a.input, b.input)
    if isinstance(a, (set, frozenset)) and isinstance(b, (set, frozenset)):
        return type(a) is type(b) and sorted(map(repr, a)) == sorted(map(repr, b))
    return a == b


def test_nan_and_infinity_read_as_text_by_people():
    assert plain(encode({"x": float("nan"), "y": [float("-inf")]})) == {"x": "nan", "y": ["-inf"]}


def test_a_nan_dict_key_is_still_refused_clearly():
    with pytest.raises(SerializationError, match="NaN and Infinity are not JSON"):
        encode({float("nan"): 1}, what="v")


def test_a_malformed_float_tag_comes_back_as_its_data():
    assert decode('{"__gecko__":"float","data":"Infinityyy"}') == "Infinityyy"
    assert decode('{"__gecko__":"float","data":[1]}') == [1]


def test_next_is_a_value_too():
    assert decode(encode(Next("B", {"x": 1}))) == Next("B", {"x": 1})


def test_public_names_are_pinned():
    assert sorted(gecko_temporal.__all__) == sorted(
        [
            "InterruptError",
            "CachePolicy",
            "EffectError",
            "RewindError",
            "StateEditError",
            "DevServer",
            "END",
            "START",
            "ExecutionStrategy",
            "GeckoError",
            "GeckoWorker",
            "GraphError",
            "GraphSpec",
            "JumpRejectedError",
            "Send",
            "MemberError",
            "MemberResult",
            "Next",
            "NodeError",
            "NodeSpec",
            "PayloadConfigError",
            "Progress",
            "RetryPolicy",
            "RunEvent",
            "RunHandle",
            "SerializationError",
            "ServerError",
            "StepLimitError",
            "StepOptions",
            "Team",
            "WaitForInput",
            "Workflow",
            "WorkflowContext",
            "WorkflowTimeoutError",
            "connect",
            "durable_agent",
            "get_handle",
            "step",
            # flow control (issue 25)
            "Budget",
            "BudgetExceeded",
            "Limit",
            "RetryAfter",
            "set_price",
        ]
    )
    for name in gecko_temporal.__all__:
        assert getattr(gecko_temporal, name) is not None


def test_errors_share_one_root():
    from gecko_temporal.core import errors

    for name in (
        "GraphError",
        "NodeError",
        "SerializationError",
        "StepLimitError",
        "WorkflowTimeoutError",
        "JumpRejectedError",
        "ServerError",
    ):
        assert issubclass(getattr(errors, name), errors.GeckoError)
    assert issubclass(errors.WorkflowTimeoutError, TimeoutError)


def test_the_shell_names_load_on_first_use():
    out = subprocess.run(
        [sys.executable, "-c", "import gecko_temporal as g; print(g.GeckoWorker.__name__)"],
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "GeckoWorker", out.stderr


# -- the exact text crossing the boundary, and every fallback path ------------------------------


class Stamp(BaseModel):
    when: "datetime.datetime"
    tags: set


class Outer:
    class Inner(BaseModel):
        v: int


import datetime  # noqa: E402

Stamp.model_rebuild()
gecko_temporal.Workflow("Stamps", types=[Stamp, Outer.Inner])  # a graph that names them allows reviving them


def test_encoding_is_compact_and_exact():
    assert (
        encode({"a": [1, {"b": None}], "c": "ü", "d": 1.5, "e": True})
        == '{"a":[1,{"b":null}],"c":"ü","d":1.5,"e":true}'
    )


def test_models_are_dumped_in_json_mode_and_sets_sorted_by_repr():
    stamp = Stamp(when=datetime.datetime(2026, 1, 2, 3, 4, 5), tags={"b", "a"})
    text = encode(stamp)
    assert '"when":"2026-01-02T03:04:05"' in text
    assert decode(text) == stamp
    # a set arrives as a set (issue 11); mixed types are sorted by repr, never a TypeError
    assert encode({1, "a"}) == '{"__gecko__":"set","data":["a",1]}' and decode(encode({1, "a"})) == {1, "a"}


def test_nested_model_classes_are_revived():
    assert decode(encode(Outer.Inner(v=3))) == Outer.Inner(v=3)
    assert isinstance(decode(encode([Outer.Inner(v=1)]))[0], Outer.Inner)


def test_only_an_exact_tag_object_is_revived():
    assert decode('{"__gecko__":"gecko_temporal.spec:Next","data":{"node":"B","input":null},"x":1}') == {
        "__gecko__": "gecko_temporal.spec:Next",
        "data": {"node": "B", "input": None},
        "x": 1,
    }
    assert decode('{"__gecko__":1,"data":2}') == {"__gecko__": 1, "data": 2}
    # an escaped tag is still a tag: it must not slip past the fast path
    assert decode('{"\\u005f_gecko__":"gecko_temporal.spec:Next","data":{"node":"B","input":null}}') == Next("B")


def test_decode_accepts_whitespace_and_refuses_extra_data():
    assert (decode("12"), decode(" 1"), decode("1 "), decode('"\\u00fc"')) == (12, 1, 1, "ü")
    with pytest.raises(ValueError):
        decode("1 x")
    with pytest.raises(ValueError):
        decode("")


def test_a_circular_value_is_a_serialization_error_naming_it():
    loop = []
    loop.append(loop)
    with pytest.raises(SerializationError) as err:
        encode(loop, what='the output of node "L"')
    assert str(err.value) == (
        'the output of node "L" of type list refers to itself (a circular reference), '
        "which cannot be serialized. Use JSON-compatible data (dict, list, str, int, float, "
        "bool, None, datetime, UUID, Decimal, bytes, ...), a dataclass or a pydantic model."
    )


def test_an_unserializable_value_names_its_module_and_type():
    with pytest.raises(SerializationError, match=r"value contains a lock \(_thread\.lock\)"):
        import threading

        encode({"k": threading.Lock()})
