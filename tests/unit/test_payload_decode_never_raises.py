"""Decoding a payload never raises inside the data converter (issue 28, part two): a payload that
cannot be decoded becomes a stand-in that says why, and only converting the stand-in raises."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import zlib

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.common import RawValue

from gecko_temporal import PayloadConfigError
from gecko_temporal.temporal.payloads import (
    COMPRESSED,
    ENCRYPTED,
    GeckoCodec,
    UndecodablePayload,
    data_converter,
    parse_keys,
    undecodable_reason,
)

KEY = "k1:" + base64.b64encode(os.urandom(32)).decode()
PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'"hi"')


def reference(claim: str, driver: str = "gecko.file") -> Payload:
    data = {"driver_name": driver, "driver_claim": {"claim_data": {"sha256": claim}}}
    return Payload(metadata={"encoding": b"json/external-storage-reference"}, data=json.dumps(data).encode())


async def decode_all(dc, payloads):
    """What a worker does to every payload of an activation, in its order."""
    payloads = await dc._decode_reference_payload_sequence(payloads)
    payloads = await dc._external_retrieve_payload_sequence(payloads)
    return await dc._decode_payload_sequence(payloads)


@pytest.mark.parametrize(
    ("store", "payload", "reason"),
    [
        (False, reference("0" * 64), "this worker has no payload store (GECKO_PAYLOAD_STORE)"),
        (True, reference("../../../../etc/hostname"), "malformed claim '../../../../etc/hostname'"),
        (True, reference("0" * 64), "has no 000000000000..."),
        (
            True,
            reference("0" * 64, driver="nobody"),
            "this worker has no such store: No driver found with name 'nobody'",
        ),
        (None, Payload(metadata={"encoding": ENCRYPTED, "encryption-key-id": b"k9"}, data=b"x" * 40), '"k9"'),
        (None, Payload(metadata={"encoding": ENCRYPTED, "encryption-key-id": b"k1"}, data=b"x" * 40), "cannot decrypt"),
        (None, Payload(metadata={"encoding": ENCRYPTED, "encryption-key-id": b"k1"}, data=b"x"), "cannot decrypt"),
        (None, Payload(metadata={"encoding": COMPRESSED}, data=b"garbage"), "compressed payload is corrupt"),
    ],
)
def test_an_undecodable_payload_becomes_a_stand_in_naming_why(tmp_path, store, payload, reason):
    env = {"GECKO_PAYLOAD_STORE": f"file://{tmp_path}" if store else "none"}
    if store is None:
        env["GECKO_ENCRYPTION_KEY"] = KEY
    dc = data_converter(env)
    out = asyncio.run(decode_all(dc, [PLAIN, payload, PLAIN]))
    assert out[0] == PLAIN and out[2] == PLAIN  # the others are untouched
    assert reason in (undecodable_reason(out[1]) or ""), undecodable_reason(out[1])
    assert reason[:40] in out[1].metadata["encoding"].decode()  # what a rejected signal shows
    assert not out[1].data  # history keeps the payload; the worker drops it
    with pytest.raises(UndecodablePayload) as raised:
        dc.payload_converter.from_payloads([out[1]])  # a handler, an update, a node's input: refused
    assert reason in str(raised.value)
    assert dc.payload_converter.from_payloads([out[1]], [RawValue])[0].payload == out[1]  # read later
    with pytest.raises(UndecodablePayload, match="refusing to write"):
        asyncio.run(dc._encode_payload_sequence([out[1]]))  # never written back in its place


def test_a_stand_in_reason_is_bounded_and_a_forged_claim_is_never_a_path(tmp_path):
    dc = data_converter({"GECKO_PAYLOAD_STORE": f"file://{tmp_path}"})
    [out] = asyncio.run(decode_all(dc, [reference("/" * 100_000)]))
    assert len(undecodable_reason(out) or "") < 400 and len(out.metadata["encoding"]) < 600


def test_decompression_is_bounded_by_the_payload_limit():
    codec = GeckoCodec(max_decoded=1000)
    inner = Payload(metadata={"encoding": b"json/plain"}, data=b"a" * 5000).SerializeToString()
    bomb = Payload(metadata={"encoding": COMPRESSED}, data=zlib.compress(inner))
    with pytest.raises(PayloadConfigError, match="inflates to more than 1,000 bytes"):
        codec.decode_sync([bomb])
    fits = Payload(metadata={"encoding": COMPRESSED}, data=zlib.compress(PLAIN.SerializeToString()))
    assert codec.decode_sync([fits]) == [PLAIN]
    cut = Payload(metadata={"encoding": COMPRESSED}, data=zlib.compress(PLAIN.SerializeToString())[:-3])
    with pytest.raises(PayloadConfigError, match="ends before its zlib stream does"):
        codec.decode_sync([cut])
    not_a_payload = Payload(metadata={"encoding": COMPRESSED}, data=zlib.compress(b"\xff\xff\xff"))
    with pytest.raises(PayloadConfigError, match="not a Temporal payload"):
        codec.decode_sync([not_a_payload])


def test_the_converters_bound_follows_the_store():
    assert data_converter({"GECKO_ENCRYPTION_KEY": KEY, "GECKO_PAYLOAD_STORE": "none"}).payload_codec.max_decoded == (
        2 * 1024 * 1024 + 64 * 1024
    )
    stored = data_converter({"GECKO_ENCRYPTION_KEY": KEY, "GECKO_PAYLOAD_STORE": "file:///tmp/x"})
    assert stored.payload_codec.max_decoded == 256 * 1024 * 1024 + 64 * 1024


def test_good_payloads_still_round_trip_through_the_converter(tmp_path):
    dc = data_converter({"GECKO_ENCRYPTION_KEY": KEY, "GECKO_PAYLOAD_STORE": f"file://{tmp_path}"})
    values = ["x" * 300_000, {"a": 1}, None]
    assert asyncio.run(dc.decode(asyncio.run(dc.encode(values)))) == values
    codec = GeckoCodec(parse_keys(KEY), compress_above=10)
    assert codec.decode_sync(codec.encode_sync([PLAIN])) == [PLAIN]


def test_a_converter_with_context_is_reused_per_session_but_never_across_derived_converters():
    import dataclasses
    from datetime import timedelta

    from temporalio.contrib.pydantic import PydanticPayloadConverter
    from temporalio.converter import WorkflowSerializationContext

    from gecko_temporal.temporal.payloads import data_converter

    plain = data_converter({})
    first, second = (WorkflowSerializationContext(namespace="default", workflow_id=w) for w in ("w-1", "w-2"))
    assert plain.with_context(first) is plain.with_context(first)  # one copy per session
    assert plain.with_context(first)._session == "w-1" and plain.with_context(second)._session == "w-2"
    # A durable agent's converter is derived with another payload converter: its context copies are its own.
    agent = dataclasses.replace(plain, payload_converter_class=PydanticPayloadConverter)
    plain.with_context(first)
    payloads = agent.with_context(first).payload_converter.to_payloads([timedelta(seconds=3)])
    assert json.loads(payloads[0].data) == "PT3S"
    with pytest.raises(TypeError):
        plain.with_context(first).payload_converter.to_payloads([timedelta(seconds=3)])


def _zlib_of(size: int) -> Payload:
    inner = Payload(metadata={"encoding": b"json/plain"}, data=b'"' + b"a" * size + b'"')
    return Payload(metadata={"encoding": COMPRESSED}, data=zlib.compress(inner.SerializeToString()))


def test_only_what_the_store_gave_back_may_inflate_beyond_temporals_limit(tmp_path):
    """With a store, a compressed payload sent inline is bounded by Temporal's 2 MiB (and room for
    metadata); one this process read back from the store, by the store's limit. Forging the store's
    mark does not lift the bound: it is a secret of the process."""
    dc = data_converter({"GECKO_COMPRESS_ABOVE": "100", "GECKO_PAYLOAD_STORE": f"file://{tmp_path}"})
    codec = dc.payload_codec
    with pytest.raises(PayloadConfigError, match="sent inline .* more than 2,162,688 bytes"):
        codec.decode_sync([_zlib_of(3_000_000)])
    forged = _zlib_of(3_000_000)
    forged.metadata["gecko-store-mark"] = b"0" * 32
    forged.metadata["gecko-from-store"] = b"1"
    with pytest.raises(PayloadConfigError, match="sent inline"):
        codec.decode_sync([forged])
    # A 3 MB value the engine writes: not compressed (it would be refused inline), so the store keeps it.
    [encoded] = asyncio.run(dc.encode(["a" * 3_000_000]))
    assert encoded.ByteSize() < 1000  # a claim-check reference
    [stored] = asyncio.run(dc._external_retrieve_payload_sequence([encoded]))
    assert stored.metadata["encoding"] == b"json/plain" and stored.metadata["gecko-from-store"] == b"1"
    assert "gecko-store-mark" not in stored.metadata  # the secret only goes on what the codec replaces
    assert asyncio.run(dc.decode([encoded])) == ["a" * 3_000_000]
    # A big compressed payload in the store (written by an earlier version) still inflates.
    low = data_converter(
        {"GECKO_COMPRESS_ABOVE": "100", "GECKO_PAYLOAD_STORE": f"file://{tmp_path}", "GECKO_PAYLOAD_STORE_ABOVE": "100"}
    )
    [ref] = asyncio.run(low._external_store_payload_sequence([_zlib_of(3_000_000)]))
    assert ref.ByteSize() < 1000
    [back] = asyncio.run(low._external_retrieve_payload_sequence([ref]))
    [inflated] = low.payload_codec.decode_sync([back])
    assert len(inflated.data) == 3_000_002 and inflated.metadata["gecko-from-store"] == b"1"
    assert "gecko-store-mark" not in inflated.metadata
    # The mark is never written anywhere again.
    [again] = low.payload_codec.encode_sync([back])
    assert "gecko-store-mark" not in again.metadata


def test_small_payloads_are_still_compressed_and_big_ones_left_to_the_store():
    codec = GeckoCodec(compress_above=10)
    small = Payload(metadata={"encoding": b"json/plain"}, data=b"a" * 1000)
    assert codec.encode_sync([small])[0].metadata["encoding"] == COMPRESSED
    big = Payload(metadata={"encoding": b"json/plain"}, data=b"a" * (2 * 1024 * 1024 + 64 * 1024))
    assert codec.encode_sync([big])[0] == big
