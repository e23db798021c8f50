"""Claim-check storage for big payloads: ``GECKO_PAYLOAD_STORE`` (files or S3) keeps payloads of at
least ``GECKO_PAYLOAD_STORE_ABOVE`` bytes and history keeps a reference (see :func:`payload_store`).
Also the two readers payloads.py shares with it: a byte-count setting, and a payload from its bytes."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from temporalio.api.common.v1 import Payload

from gecko_temporal.core.errors import PayloadConfigError

if TYPE_CHECKING:
    from temporalio.converter import ExternalStorage, StorageDriverClaim, StorageDriverStoreContext

#: Free space a file store keeps beyond a payload before it counts as full.
STORE_MARGIN = 1024 * 1024
#: The largest payload kept in history while the file store is full (Temporal takes up to 2 MiB).
INLINE_WHEN_FULL = 1024 * 1024

#: The environment a setting is read from: os.environ, or a dict of the same (tests, the CLI).
Env = Mapping[str, str]


def int_env(env: Env, name: str, default: int | None) -> int | None:
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise PayloadConfigError(f"{name} must be a number of bytes, got {value!r}") from None
    if number < 0:
        raise PayloadConfigError(f"{name} must be >= 0, got {number}")
    return number


def parse_payload(data: bytes, what: str) -> Payload:
    try:
        return Payload.FromString(data)
    except Exception as exc:  # protobuf's DecodeError
        raise PayloadConfigError(f"{what} is not a Temporal payload ({type(exc).__name__})") from None


DEFAULT_STORE_ABOVE = 256 * 1024  # Temporal's own default threshold for external storage
STORE_PAYLOAD_LIMIT = 256 * 1024 * 1024  # what one payload may weigh with a store (it is held in memory)


class FileStorageDriver:
    """Keep payloads as files under ``root`` (one machine, or a shared volume), named by the
    SHA-256 of their bytes: history holds only ``{"sha256": ...}``, a value stored twice is one
    file, and a file that changed on disk is detected when read. Storing a value that is there
    already refreshes the file's time, so ``gecko-temporal store gc`` (:func:`collect`), which only
    removes files unreferenced and untouched for a grace period, never takes one a run just wrote.
    """

    def __init__(self, root: str, name: str = "gecko.file") -> None:
        self.root = os.path.abspath(root)
        self._name = name

    def name(self) -> str:
        return self._name

    def type(self) -> str:
        return "gecko.file"

    def has_room(self, size: int) -> bool:
        """Whether the store's disk has room for ``size`` more bytes (and a margin); True when the
        disk cannot say (the write itself reports then)."""
        try:
            disk = os.statvfs(self.root if os.path.isdir(self.root) else os.path.dirname(self.root) or "/")
        except OSError:
            return True
        return disk.f_bavail * disk.f_frsize >= size + STORE_MARGIN

    def _path(self, digest: str) -> str:
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):  # never a path
            raise PayloadConfigError(f"payload store {self.root}: malformed claim {str(digest)[:80]!r}")
        return os.path.join(self.root, digest[:2], digest)

    def _write(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        try:
            os.utime(path)  # there already: fresh again, so a collection running now keeps it
            return digest
        except FileNotFoundError:
            pass
        except OSError:
            return digest  # (a read-only store that has it: nothing to write)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temp = f"{path}.{uuid.uuid4().hex}.tmp"  # each writer its own (threads of one process write the same value)
        try:
            with open(temp, "wb") as f:
                f.write(data)
            os.replace(temp, path)  # atomic: a reader never sees half a payload
        except OSError as exc:
            try:  # a full disk must not stay full of our half-written attempts
                os.remove(temp)
            except OSError:
                pass
            raise PayloadConfigError(
                f"payload store {self.root}: cannot write {len(data):,} bytes to {path}: {exc.strerror}"
            ) from None
        return digest

    def _read(self, digest: str) -> Payload:
        path = self._path(digest)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise PayloadConfigError(
                f"payload store {self.root} has no {digest[:12]}... (file {path}: was it deleted, or does this "
                "process use another GECKO_PAYLOAD_STORE than the one that wrote it?)"
            ) from None
        except OSError as exc:
            raise PayloadConfigError(f"payload store {self.root}: cannot read {path}: {exc.strerror}") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise PayloadConfigError(
                f"payload store {self.root}: {path} changed on disk since it was written (key {digest[:12]}...); "
                "restore that file and the run goes on"
            )
        return parse_payload(data, f"payload store {self.root}: {path}")

    async def store(self, context: StorageDriverStoreContext, payloads: Sequence[Payload]) -> list[StorageDriverClaim]:
        from temporalio.converter import StorageDriverClaim

        def write_all() -> list[StorageDriverClaim]:
            return [StorageDriverClaim(claim_data={"sha256": self._write(p.SerializeToString())}) for p in payloads]

        return await asyncio.to_thread(write_all)

    async def retrieve(self, context: object, claims: Sequence[StorageDriverClaim]) -> list[Payload]:
        return await asyncio.to_thread(lambda: [self._read(c.claim_data.get("sha256", "")) for c in claims])


def _as_driver(cls: type) -> type:
    """FileStorageDriver as a real temporalio StorageDriver subclass (imported lazily: experimental API)."""
    from temporalio.converter import StorageDriver

    return type(cls.__name__, (cls, StorageDriver), {})


_embedded_store: str | None = None


def embedded_store_dir() -> str:
    """A directory for the embedded dev server's big payloads, removed when the process exits
    (the embedded server's history does not outlive the process either)."""
    global _embedded_store
    if _embedded_store is None:
        import atexit
        import shutil
        import tempfile

        _embedded_store = tempfile.mkdtemp(prefix="gecko-payloads-")
        atexit.register(shutil.rmtree, _embedded_store, True)
    return _embedded_store


def payload_store(env: Env | None = None, *, embedded: bool = False) -> ExternalStorage | None:
    """The claim-check store ``GECKO_PAYLOAD_STORE`` names: payloads of at least
    ``GECKO_PAYLOAD_STORE_ABOVE`` bytes (default 256 KiB) go there and history keeps a reference.

    - ``file:///dir``: files under ``dir`` (one machine, or a volume every worker mounts);
    - ``s3://bucket/prefix``: Temporal's S3 driver (``pip install aioboto3``; credentials and region
      from the usual AWS settings, ``AWS_ENDPOINT_URL`` for S3-compatible servers);
    - unset: none, except for the embedded dev server, which gets a per-process temporary directory;
    - ``none``: none, not even for the embedded dev server (runs keep Temporal's 2 MiB limit).
    """
    from temporalio.converter import ExternalStorage

    env = os.environ if env is None else env
    url = env.get("GECKO_PAYLOAD_STORE") or ""
    above = int_env(env, "GECKO_PAYLOAD_STORE_ABOVE", DEFAULT_STORE_ABOVE) or 0  # (never None: it has a default)
    if url == "none":
        return None
    if not url:
        if not embedded:
            return None
        url = "file://" + embedded_store_dir()
    if url.startswith("file://"):
        root = url[len("file://") :]
        if not root.startswith("/"):
            raise PayloadConfigError(f"GECKO_PAYLOAD_STORE={url!r}: use an absolute path, file:///dir")
        files = _as_driver(FileStorageDriver)(root)
        return ExternalStorage(drivers=[files], driver_selector=_inline_when_full(files), payload_size_threshold=above)
    elif url.startswith("s3://"):
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not bucket:
            raise PayloadConfigError(f"GECKO_PAYLOAD_STORE={url!r}: name the bucket, s3://bucket[/prefix]")
        driver = _s3_driver(bucket, prefix)
    else:
        raise PayloadConfigError(f"GECKO_PAYLOAD_STORE={url!r}: expected file:///dir or s3://bucket[/prefix]")
    return ExternalStorage(drivers=[driver], payload_size_threshold=above)


def _inline_when_full(driver: FileStorageDriver) -> Callable[[Any, Payload], Any]:
    """Keep a payload in history when the store's disk is full and the payload fits there.

    A failed store write inside a workflow task fails the task on every attempt ("Failed encoding
    completion: [Errno 28]") and the run stops answering; history takes payloads up to Temporal's
    limit, so the run goes on and only payloads too big for history still need the disk.
    """
    warned = [0.0]

    def select(_context: Any, payload: Payload) -> Any:
        size = payload.ByteSize()
        if size > INLINE_WHEN_FULL or driver.has_room(size):
            return driver
        if time.monotonic() - warned[0] > 60:
            warned[0] = time.monotonic()
            logging.getLogger("gecko_temporal.worker").warning(
                "payload store %s is full: payloads up to %d bytes stay in history until it has room again "
                "(free space there, or remove old entries)",
                driver.root,
                INLINE_WHEN_FULL,
            )
        return None

    return select


def _s3_driver(bucket: str, prefix: str) -> Any:  # an S3StorageDriver (temporalio.contrib, lazily imported)
    try:
        import aioboto3
        from temporalio.contrib.aws.s3driver import S3StorageDriver, S3StorageDriverClient
        from temporalio.contrib.aws.s3driver.aioboto3 import new_aioboto3_client
    except ImportError as exc:
        raise PayloadConfigError(
            f"GECKO_PAYLOAD_STORE=s3://{bucket}/{prefix} needs aioboto3 ({exc.name} is missing): "
            "pip install 'gecko-temporal[s3]' (or use file:///dir on one machine)"
        ) from None

    class _LazyClient(S3StorageDriverClient):
        """One aioboto3 client per event loop, opened on first use (the embedded worker and the
        caller's script run on different loops, and an aioboto3 client belongs to one)."""

        def __init__(self) -> None:
            self._clients: dict[int, Any] = {}

        async def _client(self) -> Any:  # the S3StorageDriverClient of the running loop
            loop = id(asyncio.get_running_loop())
            if loop not in self._clients:
                context = aioboto3.Session().client("s3")
                self._clients[loop] = new_aioboto3_client(await context.__aenter__())
            return self._clients[loop]

        def _key(self, key: str) -> str:
            return f"{prefix.rstrip('/')}/{key}" if prefix else key

        async def put_object(self, *, bucket: str, key: str, data: bytes) -> None:
            await (await self._client()).put_object(bucket=bucket, key=self._key(key), data=data)

        async def object_exists(self, *, bucket: str, key: str) -> bool:
            return bool(await (await self._client()).object_exists(bucket=bucket, key=self._key(key)))

        async def get_object(self, *, bucket: str, key: str) -> bytes:
            return bytes(await (await self._client()).get_object(bucket=bucket, key=self._key(key)))

    return S3StorageDriver(client=_LazyClient(), bucket=bucket, max_payload_size=STORE_PAYLOAD_LIMIT)


# -- collecting a file store -------------------------------------------------------------------------

_DIGEST = re.compile(rb"[0-9a-f]{64}")


def claims_in(data: bytes) -> set[str]:
    """Every file-store key a serialized history (or any bytes) could refer to (over-inclusive:
    any 64 hex digits, so a value that merely looks like one only keeps a file longer)."""
    return {m.decode() for m in _DIGEST.findall(data)}


@dataclasses.dataclass
class Collected:
    """What :func:`collect` did (or would do, with ``dry_run``)."""

    kept: int = 0
    kept_bytes: int = 0
    removed: int = 0
    removed_bytes: int = 0
    recent: int = 0  # unreferenced, but written or refreshed within the grace period
    leftovers: int = 0  # half-written temporary files of crashed writers, removed


def collect(
    root: str, referenced: set[str], *, grace: float, dry_run: bool = False, now: float | None = None
) -> Collected:
    """Remove the files under ``root`` whose key is not in ``referenced`` and whose time is older
    than ``grace`` seconds. Safe beside running writers: a writer refreshes a file's time when it
    stores a value that is there already, and a file is renamed aside, its time checked again, and
    only then removed (a writer that refreshed it meanwhile wins and the file is put back)."""
    import time

    now = time.time() if now is None else now
    done = Collected()
    if not os.path.isdir(root):
        raise PayloadConfigError(f"payload store {root} is not a directory")
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            try:
                info = os.stat(path)
            except FileNotFoundError:
                continue
            old = now - info.st_mtime > grace
            if name.endswith(".tmp") or ".gc-" in name:
                if old:
                    done.leftovers += 1
                    if not dry_run:
                        _remove(path)
                continue
            if not re.fullmatch(r"[0-9a-f]{64}", name) or name in referenced:
                done.kept += 1
                done.kept_bytes += info.st_size
                continue
            if not old:
                done.recent += 1
                continue
            if dry_run or _remove_if_still_old(path, now, grace):
                done.removed += 1
                done.removed_bytes += info.st_size
            else:
                done.recent += 1
    return done


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _remove_if_still_old(path: str, now: float, grace: float) -> bool:
    aside = f"{path}.gc-{os.getpid()}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    if now - os.stat(aside).st_mtime > grace:
        os.remove(aside)
        return True
    os.rename(aside, path)  # refreshed by a writer between the scan and now: keep it
    return False
