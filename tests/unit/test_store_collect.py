"""The file store's collection and concurrent writers, on a real directory (no server)."""

import os
import threading
import time

from gecko_temporal.temporal.store import FileStorageDriver, claims_in, collect


def _age(root, name, seconds):
    path = os.path.join(root, name[:2], name)
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_collect_removes_only_unreferenced_entries_older_than_the_grace(tmp_path):
    root = str(tmp_path)
    driver = FileStorageDriver(root)
    kept, old, new = (driver._write(b) for b in (b"referenced", b"orphan", b"orphan, just written"))
    _age(root, kept, 7200)
    _age(root, old, 7200)
    stale_tmp = tmp_path / kept[:2] / (kept + ".1.2.tmp")
    stale_tmp.write_bytes(b"half")
    os.utime(stale_tmp, (time.time() - 7200,) * 2)

    dry = collect(root, {kept}, grace=3600, dry_run=True)
    assert (dry.removed, dry.kept, dry.recent, dry.leftovers) == (1, 1, 1, 1)
    assert os.path.exists(_age(root, old, 7200)) and stale_tmp.exists()  # a dry run removes nothing

    done = collect(root, {kept}, grace=3600)
    assert (done.removed, done.removed_bytes, done.leftovers) == (1, len(b"orphan"), 1)
    names = {p.name for p in tmp_path.rglob("*") if p.is_file()}
    assert names == {kept, new}


def test_storing_a_value_that_is_there_refreshes_it_so_a_collection_keeps_it(tmp_path):
    root = str(tmp_path)
    driver = FileStorageDriver(root)
    key = driver._write(b"the same input, started again")
    _age(root, key, 7200)
    assert driver._write(b"the same input, started again") == key
    assert collect(root, set(), grace=3600).removed == 0
    assert (tmp_path / key[:2] / key).read_bytes() == b"the same input, started again"


def test_concurrent_writers_of_one_value_leave_one_whole_file(tmp_path):
    root = str(tmp_path)
    data = os.urandom(1 << 20)
    keys, errors = [], []

    def write():
        try:
            for _ in range(10):
                keys.append(FileStorageDriver(root)._write(bytes(data)))  # (a copy: a value of its own)
                keys.append(FileStorageDriver(root)._write(data))  # (one object shared by every thread)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(keys) == 160 and len(set(keys)) == 1
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert [p.name for p in files] == keys[:1] and files[0].read_bytes() == data


def test_claims_are_found_in_serialized_history_bytes():
    digest = "ab" * 32
    blob = b'\x12\x05{"driver_claim":{"claim_data":{"sha256":"' + digest.encode() + b'"}}}'
    assert claims_in(blob) == {digest}
    assert claims_in(b"no keys here " + b"0" * 63) == set()
