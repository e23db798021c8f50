"""Where ``context.once`` records and node cache entries live: beside the payload store.

The worker's payload store (``GECKO_PAYLOAD_STORE=file:///dir``, or the embedded default's
temporary directory) names the volume; records go under ``dir/records/<kind>/<group>/<id>``,
written to a temporary file, flushed to disk (fsync) and renamed, so a record is whole and durable
once ``save`` returns. With ``s3://bucket/prefix`` they are objects under ``prefix/records/``. Records pass through the same payload codec as history (encrypted and
compressed when ``GECKO_ENCRYPTION_KEY`` / ``GECKO_COMPRESS_ABOVE`` say so). The decisions (record
ids, cache keys, what may be cached) are pure, in ``core/effects.py`` and ``core/cache.py``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Mapping
from typing import Any

from temporalio.api.common.v1 import Payload

from gecko_temporal.core import codec
from gecko_temporal.core.build.nodes import NodeCode
from gecko_temporal.core.cache import CACHE, cache_key, code_fingerprint, entry_bytes, entry_output, node_group
from gecko_temporal.core.context import WorkflowContext
from gecko_temporal.core.effects import Effects, EffectScope
from gecko_temporal.core.spec import NodeInput, NodeOutput

_log = logging.getLogger("gecko_temporal.worker")
_NAME = re.compile(r"[0-9a-z]{1,64}")
_ENCODING = b"binary/gecko-record"
NO_STORE = (
    "this worker has no payload store to keep records in: set GECKO_PAYLOAD_STORE=file:///dir (a volume "
    "every worker of the pipeline mounts) or s3://bucket/prefix on every worker"
)


class FileRecords:
    """Records as files under ``root`` (``records/<kind>/<group>/<id>``), through ``codec``."""

    def __init__(self, root: str, codec: Any = None) -> None:
        self.root = os.path.join(os.path.abspath(root), "records")
        self._codec = codec if codec is not None and hasattr(codec, "encode_sync") else None

    def _parts(self, kind: str, group: str, record: str) -> tuple[str, str, str]:
        for part in (kind, group or "x", record):
            if not _NAME.fullmatch(part):  # ids are hashes the engine made: never a path of someone's choosing
                raise ValueError(f"malformed record name {part[:80]!r}")
        return kind, group or record[:2], record

    def _path(self, kind: str, group: str, record: str) -> str:
        return os.path.join(self.root, *self._parts(kind, group, record))

    def load(self, kind: str, group: str, record: str) -> bytes | None:
        try:
            with open(self._path(kind, group, record), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        return self._unseal(data)

    def _seal(self, data: bytes) -> bytes:
        payload = Payload(metadata={"encoding": _ENCODING}, data=data)
        if self._codec is not None:
            payload = self._codec.encode_sync([payload])[0]
        return bytes(payload.SerializeToString())

    def _unseal(self, data: bytes) -> bytes:
        payload = Payload.FromString(data)
        if self._codec is not None:
            payload = self._codec.decode_sync([payload])[0]
        return bytes(payload.data)

    def save(self, kind: str, group: str, record: str, data: bytes) -> None:
        sealed = self._seal(data)
        path = self._path(kind, group, record)
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        temp = f"{path}.{os.getpid()}.{time.monotonic_ns()}.tmp"
        try:
            with open(temp, "wb") as f:
                f.write(sealed)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, path)  # atomic: a reader sees the whole record or none
        except BaseException:
            try:
                os.remove(temp)
            except OSError:
                pass
            raise
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)  # the rename itself survives a power cut
        finally:
            os.close(fd)

    def delete(self, kind: str, group: str, record: str) -> None:
        try:
            os.remove(self._path(kind, group, record))
        except FileNotFoundError:
            pass

    def clear(self, kind: str, group: str | None = None) -> int:
        """Delete every record of ``kind`` (of one ``group``); return how many there were."""
        folder = os.path.join(self.root, kind, group) if group else os.path.join(self.root, kind)
        count = sum(len(files) for _, _, files in os.walk(folder))
        shutil.rmtree(folder, ignore_errors=True)
        return count


class S3Records(FileRecords):
    """Records as objects ``prefix/records/<kind>/<group>/<id>`` of an S3 bucket (boto3, which the
    ``s3`` extra brings): a record is durable once ``put_object`` returned (S3 writes are strongly
    consistent). Calls block their thread for one S3 round trip."""

    def __init__(self, bucket: str, prefix: str, codec: Any = None, client: Any = None) -> None:
        super().__init__("/", codec)
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.root = f"s3://{bucket}/{self.prefix + '/' if self.prefix else ''}records"
        self._client = client

    def _s3(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def _key(self, kind: str, group: str, record: str) -> str:
        return "/".join(p for p in (self.prefix, "records", *self._parts(kind, group, record)) if p)

    def _get(self, key: str) -> bytes | None:
        try:
            return bytes(self._s3().get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except self._s3().exceptions.NoSuchKey:
            return None

    def _put(self, key: str, data: bytes) -> None:
        self._s3().put_object(Bucket=self.bucket, Key=key, Body=data)

    def load(self, kind: str, group: str, record: str) -> bytes | None:
        data = self._get(self._key(kind, group, record))
        return None if data is None else self._unseal(data)

    def save(self, kind: str, group: str, record: str, data: bytes) -> None:
        self._put(self._key(kind, group, record), self._seal(data))

    def delete(self, kind: str, group: str, record: str) -> None:
        self._s3().delete_object(Bucket=self.bucket, Key=self._key(kind, group, record))

    def clear(self, kind: str, group: str | None = None) -> int:
        folder = "/".join(p for p in (self.prefix, "records", kind, group or "") if p) + "/"
        count = 0
        for page in self._s3().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=folder):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
            if keys:
                self._s3().delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
                count += len(keys)
        return count


def store_root(converter: Any) -> str | None:
    """The folder of the file payload store ``converter`` (or an ExternalStorage) writes to, if any."""
    storage = getattr(converter, "external_storage", converter)
    for driver in getattr(storage, "drivers", None) or ():
        root = getattr(driver, "root", None)
        if isinstance(root, str):
            return root
    return None


def records_of(converter: Any, env: Mapping[str, str] | None = None) -> FileRecords | None:
    """Where ``converter``'s process keeps records: beside its file payload store, or under the
    ``s3://bucket/prefix`` that GECKO_PAYLOAD_STORE names when its store is S3; else None."""
    codec = getattr(converter, "payload_codec", None)
    root = store_root(converter)
    if root is not None:
        return FileRecords(root, codec)
    url = (os.environ if env is None else env).get("GECKO_PAYLOAD_STORE") or ""
    if url.startswith("s3://") and getattr(converter, "external_storage", converter) is not None:
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if bucket:
            return S3Records(bucket, prefix, codec)
    return None


_first_runs: dict[str, str] = {}  # run id -> the first run id of its continue-as-new chain


async def first_run_of(client: Any, workflow_id: str, run_id: str) -> str:
    """The first run id of the chain ``run_id`` belongs to: the same in every run a session continues
    as new into (a node waiting for a person may go on in the next run), and new when a session id is
    used again. One describe per run and worker process; on failure, ``run_id`` itself."""
    known = _first_runs.get(run_id)
    if known is not None:
        return known
    try:
        described = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
        first = described.raw_description.workflow_execution_info.first_run_id or run_id
    except Exception as exc:  # records then hold for this run only: say so, and try again next time
        _log.warning("cannot describe run %s of %s (%s): once records are scoped to this run", run_id, workflow_id, exc)
        return run_id
    if len(_first_runs) >= 10_000:
        _first_runs.clear()
    _first_runs[run_id] = first
    return first


def node_effects(inp: NodeInput, first_run: str, converter: Any) -> Effects:
    """The ``once`` records of the node execution ``inp`` in the session whose chain began with run
    ``first_run``."""
    scope = EffectScope(first_run, inp.session_id, inp.node, inp.step, inp.member)
    store = records_of(converter)
    return Effects(scope, store, "" if store is not None else NO_STORE)


class NodeCache:
    """One cached node's entry for one input: ``hit()`` before the node runs, ``keep()`` after."""

    def __init__(self, records: FileRecords, node: str, key: str, ttl: float) -> None:
        self.records, self.node, self.key, self.ttl = records, node, key, ttl

    def hit(self) -> NodeOutput | None:
        data = self.records.load(CACHE, node_group(self.node), self.key)
        if data is None:
            return None
        output = entry_output(data, time.time())
        if output is None:  # expired (or not ours): the node runs and a new entry replaces it
            self.records.delete(CACHE, node_group(self.node), self.key)
            return None
        found = NodeOutput.from_plain(output)
        found.cached = True
        return found

    def keep(self, out: NodeOutput) -> None:
        data = entry_bytes(self.node, out.to_plain(), time.time() + self.ttl)
        self.records.save(CACHE, node_group(self.node), self.key, data)


_warned: set[str] = set()
_fingerprints: dict[int, tuple[NodeCode, str]] = {}  # by id of the served node code (kept alive here)


def node_cache(
    inp: NodeInput, code: NodeCode | None, data: Any, context: WorkflowContext | None, converter: Any
) -> NodeCache | None:
    """The cache entry of this node run, or None when the node has no cache policy (or no store)."""
    policy = code.cache if code is not None else None
    if policy is None or code is None or inp.member is not None:
        return None
    records = records_of(converter)
    if records is None:
        if inp.node not in _warned:
            _warned.add(inp.node)
            _log.warning('node "%s" has cache= but %s; it runs uncached', inp.node, NO_STORE)
        return None
    known = _fingerprints.get(id(code))
    if known is not None and known[0] is code:
        fingerprint = known[1]
    else:
        callee, router = code.callee, code.router
        fingerprint = code_fingerprint(callee.call if callee else None, router.call if router else None)
        _fingerprints[id(code)] = (code, fingerprint)
    extra = None
    if policy.key is not None:
        extra = codec.encode(policy.key(data, context), what=f'the cache key of node "{inp.node}"')
    key = cache_key(
        graph=inp.graph,
        node=inp.node,
        fingerprint=fingerprint,
        input_text=inp.input,
        state=inp.state,
        history=inp.history,
        run_input=inp.run_input,
        extra=extra,
    )
    return NodeCache(records, inp.node, key, policy.ttl)


INTERRUPT_REFUSED = (
    'node "{node}" has cache= and called context.interrupt(): a cached node cannot wait for a person '
    "(its output would depend on the answer, which the cache key does not cover); drop cache= or "
    "move the interrupt to a node of its own"
)
