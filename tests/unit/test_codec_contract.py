"""The codec's contract at its edges (core/codec.py): which classes decoding may revive and how they
get allowed, the messages of values that cannot be encoded, and how malformed or look-alike tagged
data decodes. Each test uses classes of its own: the allowed classes are process-wide."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math
import sys
import types
import typing

import pytest
from pydantic import BaseModel, field_serializer

from gecko_temporal.core import codec
from gecko_temporal.core.errors import SerializationError


@pytest.fixture(autouse=True)
def _own_registry(monkeypatch):
    """Each test starts from the process's allowed classes and leaves them as they were, so the tests
    can run again in the same process (mutmut runs them more than once)."""
    monkeypatch.setattr(codec, "_KNOWN", dict(codec._KNOWN))
    monkeypatch.setattr(codec, "_SCANNED_MODULES", set(codec._SCANNED_MODULES))


def _allowed(cls: type) -> bool:
    return codec.type_ref(cls) in codec._KNOWN


def test_only_models_dataclasses_and_enums_with_members_are_revivable():
    class Empty(enum.Enum):
        pass

    class One(enum.Enum):
        A = 1

    @dataclasses.dataclass
    class D:
        x: int = 0

    class Plain:
        pass

    assert [codec.revivable(v) for v in (5, "x", BaseModel, Empty, One, D, Plain, D())] == [
        False,
        False,
        False,
        False,
        True,
        True,
        False,
        False,
    ]


def test_registering_allows_a_class_and_ignores_other_classes():
    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    class Plain:
        pass

    codec.register_type(Plain)
    assert not _allowed(Plain)
    text = codec.encode(Point(1, 2))
    assert codec.decode(text) == {"x": 1, "y": 2}  # not allowed yet: its data
    codec.register_type(Point)
    codec.register_type(Point)  # again: nothing changes
    assert codec._KNOWN[codec.type_ref(Point)] is Point
    assert codec.decode(text) == Point(1, 2)


def test_a_dataclass_brings_the_classes_its_fields_name_five_levels_deep():
    classes: list[type] = []
    inner: typing.Any = int
    for i in range(8):  # D7 holds D6 holds ... holds D0
        cls = dataclasses.make_dataclass(f"Chain{i}_{id(classes)}", [("v", inner)])
        cls.__qualname__ = cls.__name__
        classes.append(cls)
        inner = typing.Optional[cls]  # noqa: UP045 (the hint a user would write)
    top = classes[-1]
    codec.register_type(top)
    # the top class is level 0: levels 0 to 5 are allowed, deeper classes are not
    assert [_allowed(c) for c in reversed(classes)] == [True] * 6 + [False] * 2


def test_a_dataclass_with_annotations_that_do_not_resolve_is_still_allowed():
    @dataclasses.dataclass
    class Odd:
        x: NotDefinedAnywhere  # type: ignore[name-defined]  # noqa: F821

    codec.register_type(Odd)
    assert _allowed(Odd)


def test_a_nodes_return_annotation_is_allowed_up_to_five_levels_inside_a_hint():
    class AtFive(BaseModel):
        x: int

    class AtSix(BaseModel):
        x: int

    # executed without `from __future__ import annotations`: the annotations are the hint objects
    namespace = {"typing": typing, "AtFive": AtFive, "AtSix": AtSix, "__name__": "gecko_no_such_module"}
    L = "typing.List["
    exec(
        f"def five() -> {L * 5}AtFive{']' * 5}:\n    pass\ndef six() -> {L * 6}AtSix{']' * 6}:\n    pass\n",
        namespace,
    )
    codec.register_types_of(namespace["five"])  # its module is not imported: nothing else to scan
    codec.register_types_of(namespace["six"])
    assert (_allowed(AtFive), _allowed(AtSix)) == (True, False)


def test_a_string_return_annotation_is_resolved_and_a_missing_module_is_no_error():
    class Answer(BaseModel):
        text: str

    namespace = {"Answer": Answer, "__name__": "gecko_no_such_module_either"}
    exec("def node() -> 'Answer':\n    pass", namespace)
    codec.register_types_of(namespace["node"])
    assert _allowed(Answer)


def test_the_models_of_a_nodes_module_are_allowed_once_even_when_its_annotation_fails(monkeypatch):
    module = types.ModuleType("gecko_test_pipeline_module")

    class First(BaseModel):
        a: int

    class Later(BaseModel):
        b: int

    module.First = First
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = {"__name__": module.__name__}
    exec("def node() -> 'Missing':\n    pass", namespace)
    codec.register_types_of(namespace["node"])
    assert _allowed(First)
    module.Later = Later  # the module was scanned: a class added afterwards is not picked up
    codec.register_types_of(namespace["node"])
    assert not _allowed(Later)


# -- encoding ----------------------------------------------------------------------------------------
def test_a_subclass_of_a_rich_type_travels_under_its_base_tag():
    class Stamp(datetime.datetime):
        pass

    text = codec.encode(Stamp(2024, 1, 2, 3, 4, 5))
    assert text == '{"__gecko__":"datetime","data":"2024-01-02T03:04:05"}'
    assert codec.decode(text) == datetime.datetime(2024, 1, 2, 3, 4, 5)


def test_what_cannot_be_encoded_is_named_with_the_reason():
    assert codec.encode(math.inf, what="the input") == '{"__gecko__":"float","data":"inf"}'  # tagged, not refused
    with pytest.raises(SerializationError) as info:  # a NaN key has no tagged form: a JSON key is a string
        codec.encode({math.nan: 1}, what="the input")
    assert str(info.value) == (
        "the input contains a NaN or infinite float: NaN and Infinity are not JSON, and Temporal's CLI and "
        "UI cannot read them here; use None or a string instead"
    )
    with pytest.raises(SerializationError) as info:
        codec.encode({(1, 2): "pair"})
    assert str(info.value).startswith("value of type dict cannot be encoded (TypeError: keys must be str")

    class Touchy(BaseModel):
        x: int

        @field_serializer("x")
        def _no(self, value):
            raise ValueError("not today")

    with pytest.raises(SerializationError) as info:
        codec.encode(Touchy(x=1))
    assert str(info.value).startswith("value of type Touchy cannot be encoded (")
    assert "not today" in str(info.value)


def test_nan_and_infinities_travel_tagged_wherever_they_are_and_where_is_said():
    @dataclasses.dataclass
    class Holder:
        score: float

    tagged_nan = '{"__gecko__":"float","data":"nan"}'
    assert codec.encode([Holder(math.nan)]).endswith('Holder","data":{"score":' + tagged_nan + "}}]")
    assert codec.encode([1.5, -math.inf]) == '[1.5,{"__gecko__":"float","data":"-inf"}]'

    def nested(levels: int) -> typing.Any:
        value: typing.Any = math.nan
        for _ in range(levels):
            value = [value]
        return value

    assert codec.encode(nested(51)) == "[" * 51 + tagged_nan + "]" * 51
    assert math.isnan(codec.decode(codec.encode(nested(3)))[0][0][0])
    assert codec.where_non_finite(nested(50)) == "nan at " + "[0]" * 50
    assert codec.where_non_finite(nested(51)) == ""  # deeper than the search goes
    assert codec.where_non_finite({"a": [1, {"b": math.inf}]}) == "inf at ['a'][1]['b']"
    assert codec.where_non_finite({"a": [1.0, 2]}) == ""


# -- decoding look-alikes and malformed tags -------------------------------------------------------------
def test_an_escaped_dict_must_be_exactly_the_escape_form():
    assert codec.decode('{"__gecko__":"dict","items":[["a",1]],"x":2}') == {
        "__gecko__": "dict",
        "items": [["a", 1]],
        "x": 2,
    }
    assert codec.decode('{"__gecko__":"dict","items":[["a",1],[1,2,3],"b"]}') == {"a": 1}


def test_a_malformed_rich_value_decodes_as_its_data():
    assert codec.decode('{"__gecko__":"date","data":"not a date"}') == "not a date"
    assert codec.decode('{"__gecko__":"set","data":"abc"}') == "abc"


def test_plain_unwraps_a_tag_written_with_unicode_escapes():
    assert codec.plain('{"\\u005f_gecko__":"app:Model","data":{"x":1}}') == {"x": 1}
    assert codec.plain('{"a":"\\u00e9"}') == {"a": "é"}


def test_a_value_of_a_class_that_changed_since_it_was_written_decodes_as_its_data():
    class Renamed(BaseModel):
        title: str

    codec.register_type(Renamed)
    text = '{"__gecko__":"' + codec.type_ref(Renamed) + '","data":{"name":"old field"}}'
    assert codec.decode(text) == {"name": "old field"}


def test_a_nan_inside_a_model_is_found_by_its_field_name():
    class Scores(BaseModel):
        best: float

    assert codec.where_non_finite({"s": Scores(best=math.nan)}) == "nan at ['s'].best"
    # pydantic's JSON mode would make it None: the model's NaN stays a (tagged) float
    assert codec.encode(Scores(best=math.nan)).endswith('"data":{"best":{"__gecko__":"float","data":"nan"}}}')


def test_a_set_encodes_to_the_same_text_whatever_its_iteration_order():
    # members sorted by their own encoding (so "16" before "3"), not in the set's iteration order
    assert list({8, 1, 16, 3}) != [1, 16, 3, 8]
    assert codec.encode({8, 1, 16, 3}) == '{"__gecko__":"set","data":[1,16,3,8]}'
    assert codec.encode(frozenset({64, 33, 2, 1})) == '{"__gecko__":"frozenset","data":[1,2,33,64]}'


def test_a_builtin_method_as_a_node_is_no_error_though_it_names_no_module():
    assert not hasattr(str.upper, "__module__")  # a method descriptor: only its type names a module
    codec.register_types_of(str.upper)
    assert "builtins" in codec._SCANNED_MODULES


# -- how models are dumped ---------------------------------------------------------------------------
def test_a_models_nan_and_infinities_stay_floats_in_every_kind_of_field():
    class Mixed(BaseModel):
        f: float
        a: typing.Any
        d: dict

    # pydantic's own JSON mode would write None for the Any and dict fields
    assert Mixed(f=1.0, a=math.nan, d={"x": 1}).model_dump(mode="json")["a"] is None
    text = codec.encode(Mixed(f=math.nan, a=-math.inf, d={"x": math.inf}))
    assert text == (
        '{"__gecko__":"' + codec.type_ref(Mixed) + '","data":{"f":{"__gecko__":"float","data":"nan"},'
        '"a":{"__gecko__":"float","data":"-inf"},"d":{"x":{"__gecko__":"float","data":"inf"}}}}'
    )


def test_a_model_is_dumped_in_json_mode_with_its_own_serialization_config():
    from pydantic import ConfigDict

    class Timed(BaseModel):
        model_config = ConfigDict(ser_json_timedelta="float", ser_json_bytes="hex")
        at: datetime.datetime
        took: datetime.timedelta
        raw: bytes

    value = Timed(at=datetime.datetime(2024, 1, 2, 3, 4, 5), took=datetime.timedelta(seconds=90), raw=b"hi")
    # JSON mode: the datetime is the model's own ISO text, not a tagged datetime; the config's
    # float timedelta and hex bytes are kept (pydantic's defaults: "PT1M30S" and "hi")
    assert codec.encode(value) == (
        '{"__gecko__":"' + codec.type_ref(Timed) + '","data":{"at":"2024-01-02T03:04:05","took":90.0,"raw":"6869"}}'
    )


def test_a_models_own_model_dump_is_used_and_asked_for_json_mode():
    class Stamped(BaseModel):
        at: datetime.datetime

        def model_dump(self, **kwargs: typing.Any) -> dict[str, typing.Any]:
            data = super().model_dump(**kwargs)
            data["kind"] = "stamped"
            return data

    text = codec.encode(Stamped(at=datetime.datetime(2024, 1, 2)))
    assert (
        text == '{"__gecko__":"' + codec.type_ref(Stamped) + '","data":{"at":"2024-01-02T00:00:00","kind":"stamped"}}'
    )


# -- NaN with the other escapes --------------------------------------------------------------------
def test_a_user_dict_with_the_tag_key_and_a_nan_is_escaped_and_tagged():
    value = {"__gecko__": "mine", "v": math.nan}
    text = codec.encode(value)
    assert text == '{"__gecko__":"dict","items":[["__gecko__","mine"],["v",{"__gecko__":"float","data":"nan"}]]}'
    back = codec.decode(text)
    assert back["__gecko__"] == "mine" and math.isnan(back["v"])


def test_a_nan_that_cannot_be_tagged_is_reported_where_it_is_found():
    with pytest.raises(SerializationError) as info:  # a NaN key has no tagged form
        codec.encode({"w": {math.nan: math.nan}}, what="the output")
    assert str(info.value).startswith("the output contains nan at ['w'][nan]: NaN and Infinity are not JSON")
