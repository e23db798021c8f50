"""Encryption at rest and compression: the codec every engine client and worker uses."""

import base64
import os

import pytest
from temporalio.api.common.v1 import Payload

from gecko_temporal import PayloadConfigError
from gecko_temporal.temporal.payloads import (
    COMPRESSED,
    ENCRYPTED,
    KEY_ID,
    GeckoCodec,
    data_converter,
    keys_from_env,
    parse_keys,
)


def _key(n: int = 32) -> str:
    return base64.b64encode(os.urandom(n)).decode()


def _payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


def test_encrypts_with_the_first_key_and_names_it():
    codec = GeckoCodec(parse_keys(f"new:{_key()},old:{_key()}"))
    [sealed] = codec.encode_sync([_payload('{"api_key":"sk-secret"}')])
    assert sealed.metadata["encoding"] == ENCRYPTED and sealed.metadata[KEY_ID] == b"new"
    assert b"sk-secret" not in sealed.SerializeToString()
    assert codec.decode_sync([sealed]) == [_payload('{"api_key":"sk-secret"}')]


def test_rotation_old_payloads_still_decrypt():
    old = f"old:{_key()}"
    [sealed] = GeckoCodec(parse_keys(old)).encode_sync([_payload('"x"')])
    rotated = GeckoCodec(parse_keys(f"new:{_key()},{old}"))
    assert rotated.decode_sync([sealed]) == [_payload('"x"')]
    assert rotated.encode_sync([_payload('"y"')])[0].metadata[KEY_ID] == b"new"


def test_a_missing_key_id_is_named():
    [sealed] = GeckoCodec(parse_keys(f"k2026:{_key()}")).encode_sync([_payload('"x"')])
    with pytest.raises(PayloadConfigError, match=r'key id "k2026", which this process does not have .*"other"'):
        GeckoCodec(parse_keys(f"other:{_key()}")).decode_sync([sealed])
    with pytest.raises(PayloadConfigError, match=r'"k2026".*encryption is off here'):
        GeckoCodec(compress_above=10).decode_sync([sealed])


def test_a_wrong_key_or_altered_payload_is_clear():
    [sealed] = GeckoCodec(parse_keys(f"k:{_key()}")).encode_sync([_payload('"x"')])
    with pytest.raises(PayloadConfigError, match='cannot decrypt a payload with key id "k"'):
        GeckoCodec(parse_keys(f"k:{_key()}")).decode_sync([sealed])


# Fixed ids: the keys are random, and pytest-xdist needs every worker to collect the same test names.
@pytest.mark.parametrize(
    "text, problem",
    [
        ("k1:not base64!", "entry 1 is not base64"),
        (f"k1:{_key(10)}", "decodes to 10 bytes"),
        (f"a b:{_key()}", "entry 1 is not base64"),
        (f"k:{_key()},k:{_key()}", "listed twice"),
        (f"bad/id:{_key()}", "may hold only"),
        (" , ", "holds no key"),
    ],
    ids=["not-base64", "10-bytes", "space-in-id", "id-twice", "slash-in-id", "no-key"],
)
def test_malformed_keys_are_clear(text, problem):
    with pytest.raises(PayloadConfigError, match=problem):
        parse_keys(text)


def test_a_bare_key_gets_a_stable_id(tmp_path):
    key = _key()
    assert parse_keys(key)[0][0] == parse_keys(key)[0][0]
    (tmp_path / "keys").write_text(f"# rotated 2026-11\nk2:{_key()}\nk1:{key}\n")
    assert [k for k, _ in keys_from_env({"GECKO_ENCRYPTION_KEY_FILE": str(tmp_path / "keys")})] == ["k2", "k1"]
    with pytest.raises(PayloadConfigError, match="cannot read"):
        keys_from_env({"GECKO_ENCRYPTION_KEY_FILE": str(tmp_path / "missing")})


def test_compresses_above_the_threshold_only():
    codec = GeckoCodec(compress_above=1000)
    big, small = _payload('"' + "abc" * 1000 + '"'), _payload('"small"')
    packed, kept = codec.encode_sync([big, small])
    assert packed.metadata["encoding"] == COMPRESSED and packed.ByteSize() < big.ByteSize() / 10
    assert kept == small
    assert codec.decode_sync([packed, kept]) == [big, small]


def test_environment_builds_one_converter_per_setting():
    assert data_converter({}).payload_codec is None  # a no-op codec would cost every workflow task
    env = {"GECKO_ENCRYPTION_KEY": f"k:{_key()}"}
    assert data_converter(env) is data_converter(dict(env))
    assert data_converter(env).payload_codec.compress_above == 16384
    with pytest.raises(PayloadConfigError, match="GECKO_COMPRESS_ABOVE"):
        data_converter({"GECKO_COMPRESS_ABOVE": "lots"})


def test_without_a_key_the_converter_names_the_missing_key_id():
    from gecko_temporal.temporal.payloads import UndecodablePayload

    [sealed] = GeckoCodec(parse_keys(f"k2026:{_key()}")).encode_sync([_payload('"x"')])
    with pytest.raises(Exception) as err:
        data_converter({}).payload_converter.from_payloads([sealed])
    chain, exc = [], err.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__
    assert any(isinstance(e, UndecodablePayload) and 'key id "k2026"' in str(e) for e in chain)
    assert not any(isinstance(e, PayloadConfigError) for e in chain)  # a GeckoError would fail the run
