"""GECKO_PAYLOAD_STORE: which store it names, and clear errors for what cannot work."""

import asyncio
import os

import pytest
from temporalio.api.common.v1 import Payload

from gecko_temporal import PayloadConfigError
from gecko_temporal.core.limits import PAYLOAD_LIMIT
from gecko_temporal.temporal.payloads import data_converter, payload_limit_of
from gecko_temporal.temporal.store import STORE_PAYLOAD_LIMIT, payload_store


def test_no_store_unless_named_or_embedded():
    assert payload_store({}) is None
    assert payload_store({"GECKO_PAYLOAD_STORE": "none"}, embedded=True) is None
    assert payload_store({}, embedded=True) is not None
    assert payload_limit_of(data_converter({})) == PAYLOAD_LIMIT
    assert payload_limit_of(data_converter({}, embedded=True)) == STORE_PAYLOAD_LIMIT
    # The embedded worker keeps its store with "none": runs started with "none" bound themselves.
    assert (
        payload_limit_of(data_converter({"GECKO_PAYLOAD_STORE": "none"}, embedded_worker=True)) == STORE_PAYLOAD_LIMIT
    )


def test_threshold_and_file_store(tmp_path):
    store = payload_store({"GECKO_PAYLOAD_STORE": f"file://{tmp_path}", "GECKO_PAYLOAD_STORE_ABOVE": "1000"})
    assert store.payload_size_threshold == 1000
    driver = store.drivers[0]
    payload = Payload(metadata={"encoding": b"json/plain"}, data=b'"' + b"x" * 5000 + b'"')
    [claim] = asyncio.run(driver.store(None, [payload]))
    assert asyncio.run(driver.retrieve(None, [claim])) == [payload]
    [again] = asyncio.run(driver.store(None, [payload]))  # the same bytes: the same file
    assert again == claim and sum(len(f) for _, _, f in os.walk(tmp_path)) == 1


@pytest.mark.parametrize(
    "url, problem",
    [
        ("ftp://x", "expected file:///dir or s3://bucket"),
        ("file://relative/dir", "absolute path"),
        ("s3://", "name the bucket"),
    ],
)
def test_bad_store_urls_are_clear(url, problem):
    with pytest.raises(PayloadConfigError, match=problem):
        payload_store({"GECKO_PAYLOAD_STORE": url})


def test_s3_without_aioboto3_says_what_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "aioboto3", None)  # as if not installed
    with pytest.raises(PayloadConfigError, match=r"needs aioboto3.*pip install 'gecko-temporal\[s3\]'"):
        payload_store({"GECKO_PAYLOAD_STORE": "s3://bucket/prefix"})


@pytest.mark.parametrize(
    "claim, problem",
    [
        ({"sha256": "../../etc/passwd"}, "malformed claim"),
        ({"sha256": "a" * 64}, "has no aaaaaaaaaaaa"),
    ],
)
def test_claims_from_history_are_never_paths(tmp_path, claim, problem):
    from temporalio.converter import StorageDriverClaim

    driver = payload_store({"GECKO_PAYLOAD_STORE": f"file://{tmp_path}"}).drivers[0]
    with pytest.raises(PayloadConfigError, match=problem):
        asyncio.run(driver.retrieve(None, [StorageDriverClaim(claim_data=claim)]))


def test_a_changed_file_is_detected(tmp_path):
    driver = payload_store({"GECKO_PAYLOAD_STORE": f"file://{tmp_path}"}).drivers[0]
    [claim] = asyncio.run(driver.store(None, [Payload(data=b"original")]))
    path = tmp_path / claim.claim_data["sha256"][:2] / claim.claim_data["sha256"]
    path.write_bytes(Payload(data=b"tampered").SerializeToString())
    with pytest.raises(PayloadConfigError, match="changed on disk"):
        asyncio.run(driver.retrieve(None, [claim]))
