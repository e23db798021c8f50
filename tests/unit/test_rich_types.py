"""Values JSON has no type for (datetime, UUID, Decimal, bytes, Enum, sets, nested dataclasses)
arrive as the same type, and tags for them can never be forged from outside data."""

import dataclasses
import datetime as dt
import enum
import json
import uuid
from decimal import Decimal
from typing import Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gecko_temporal
from gecko_temporal.core.codec import decode, encode, plain, revive


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Stamp:
    at: dt.datetime
    colour: Colour


@dataclasses.dataclass(frozen=True)
class Doc:
    id: uuid.UUID
    stamps: list[Stamp]
    parent: Optional["Doc"] = None


class Unlisted(enum.Enum):
    A = 1


EVERY = {
    "datetime": dt.datetime(2026, 11, 24, 23, 1, 2, 345678, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    "naive": dt.datetime(2026, 1, 2, 3, 4, 5),
    "date": dt.date(2026, 11, 24),
    "time": dt.time(23, 59, 58, 1),
    "timedelta": dt.timedelta(days=-1, seconds=5, microseconds=7),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "decimal": Decimal("3.14159265358979323846264338327950288"),
    "bytes": b"\x00\xff binary",
    "set": {3, 1, 2},
    "frozenset": frozenset({"a", "b"}),
    "nested": [{"when": dt.date(2000, 1, 1)}],
}


def setup_module():
    gecko_temporal.Workflow("RichTypes", types=[Doc])  # names Doc: it brings Stamp and Colour


@pytest.mark.parametrize("key", sorted(EVERY))
def test_each_type_round_trips_as_itself(key):
    back = decode(encode({key: EVERY[key]}))[key]
    assert back == EVERY[key] and type(back) is type(EVERY[key])


def test_nested_dataclasses_and_enums_keep_their_classes():
    doc = Doc(uuid.uuid4(), [Stamp(EVERY["datetime"], Colour.BLUE)], parent=Doc(uuid.uuid4(), []))
    back = decode(encode(doc))
    assert back == doc and isinstance(back.stamps[0], Stamp) and back.stamps[0].colour is Colour.BLUE
    assert revive(json.loads(encode(doc))) == doc  # a run result, parsed by the SDK first


def test_documented_equivalents_tuples_and_int_enums():
    back = decode(encode({"t": (1, "a"), "level": Level.HIGH}))
    assert back == {"t": [1, "a"], "level": 2} and back["level"] == Level.HIGH


def test_unlisted_enum_arrives_as_its_value():
    assert decode(encode([Unlisted.A])) == [1]


def test_sets_encode_deterministically():
    assert encode({"b", "a", "c"}) == encode({"c", "b", "a"})


def test_text_is_strict_json_and_people_see_plain_values():
    text = encode(EVERY)
    json.loads(text, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    shown = plain(text)
    assert shown["datetime"] == "2026-11-24T23:01:02.345678+02:00" and shown["uuid"] == str(EVERY["uuid"])


@pytest.mark.parametrize(
    "forged",
    [
        {"__gecko__": "datetime", "data": "2020-01-01T00:00:00"},
        {"__gecko__": "bytes", "data": "AAAA"},
        {"__gecko__": "tests.unit.test_rich_types:Colour", "data": "red"},
        {"__gecko__": "set", "data": [1]},
    ],
)
def test_outside_data_with_a_tag_key_stays_data(forged):
    assert decode(encode({"from_a_web_page": forged})) == {"from_a_web_page": forged}
    assert decode(encode(Stamp(at=forged, colour=Colour.RED))).at == forged  # inside a dataclass too


@pytest.mark.parametrize(
    "text",
    [
        '{"__gecko__":"datetime","data":"not a date"}',
        '{"__gecko__":"bytes","data":"***"}',
        '{"__gecko__":"timedelta","data":"x"}',
        '{"__gecko__":"set","data":[{"a":1}]}',
        '{"__gecko__":"frozenset","data":"abc"}',
        '{"__gecko__":"tests.unit.test_rich_types:Colour","data":"green"}',
    ],
)
def test_malformed_tags_degrade_to_their_data(text):
    assert decode(text) == json.loads(text)["data"]


def test_types_accepts_dataclasses_and_enums_only():
    with pytest.raises(gecko_temporal.GraphError, match="dataclass or Enum"):
        gecko_temporal.Workflow("Bad", types=[int])


def test_tuples_inside_sets_come_back_as_tuples():
    value = {"pairs": {(1, "a"), (2, ("b", 3))}, "frozen": frozenset({(1, 2)})}
    assert decode(encode(value)) == value


_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
    st.dates(),
    st.times(),
    st.timedeltas(),
    st.uuids(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.binary(max_size=8),
    st.sampled_from(list(Colour)),
)
_hashable_leaves = st.one_of(st.integers(), st.text(max_size=5), st.uuids(), st.dates())
_values = st.recursive(
    _leaves | st.sets(_hashable_leaves, max_size=3) | st.frozensets(_hashable_leaves, max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_any_mix_of_supported_values_round_trips_exactly(value):
    back = decode(encode(value))
    assert _instants(back) == _instants(value) and encode(back) == encode(value)


def _instants(value):
    """``value`` with aware datetimes as (local wall time, offset), which fixes the instant: a ZoneInfo
    zone arrives as its fixed offset, and Python's == is False across zones for a local time in a
    DST gap or fold (PEP 495) even when instant and offset are the same. Not the UTC instant itself:
    year 1 at a positive offset has none (OverflowError), and hypothesis finds that."""
    if isinstance(value, dt.datetime) and value.utcoffset() is not None:
        return ("aware", value.replace(tzinfo=None), value.utcoffset())
    if isinstance(value, dict):
        return {k: _instants(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_instants(v) for v in value)
    return value


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.text(max_size=5) | st.integers(),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(["__gecko__", "data", "items", "x"]), inner, max_size=3)
        ),
        max_leaves=10,
    )
)
def test_outside_data_always_comes_back_as_itself(value):
    assert decode(encode(value)) == value  # whatever keys it uses, no tag can be forged
