"""How payloads are stored: encryption at rest, compression, and a store for big payloads.

Every client and worker the engine creates (embedded, ``gecko-temporal worker``/``dev``, the CLI)
gets its data converter from :func:`data_converter`, configured by the environment:

``GECKO_ENCRYPTION_KEY``
    ``id:base64key[,id2:base64key2...]`` (16, 24 or 32 bytes each): payloads are encrypted with
    AES-GCM under the *first* key; the others still decrypt what older keys wrote, so keys rotate
    by putting a new key first. A bare ``base64key`` gets an id derived from the key.
``GECKO_ENCRYPTION_KEY_FILE``
    a file holding the same (one key per line or comma-separated), instead of the variable.
``GECKO_COMPRESS_ABOVE``
    payloads of at least this many bytes are zlib-compressed (default 16384 with encryption,
    off without it, so unencrypted values stay readable in the Temporal UI).
``GECKO_PAYLOAD_STORE`` / ``GECKO_PAYLOAD_STORE_ABOVE``
    see :func:`payload_store` (claim-check storage for big payloads).

The codec works on whole payloads (it never decodes user values), so the workflow still only moves
text around. Temporal applies it outside the workflow sandbox, before the external store.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import dataclasses
import hashlib
import hmac
import os
import re
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, PayloadCodec, SerializationContext

from gecko_temporal.core.errors import PayloadConfigError
from gecko_temporal.core.limits import PAYLOAD_LIMIT
from gecko_temporal.protocol import FROM_STORE_METADATA
from gecko_temporal.temporal.store import (
    DEFAULT_STORE_ABOVE,
    STORE_PAYLOAD_LIMIT,
    Env,
    embedded_store_dir,
    int_env,
    parse_payload,
    payload_store,
)

if TYPE_CHECKING:
    from typing_extensions import Self

# The claim-check store lives in store.py; these names stay importable from here.
__all__ = [
    "COMPRESSED",
    "DEFAULT_COMPRESS_ABOVE",
    "DEFAULT_STORE_ABOVE",
    "ENCRYPTED",
    "KEY_ID",
    "STORE_PAYLOAD_LIMIT",
    "UNDECODABLE",
    "Env",
    "GeckoCodec",
    "GeckoDataConverter",
    "UndecodablePayload",
    "data_converter",
    "embedded_store_dir",
    "keys_from_env",
    "parse_keys",
    "payload_limit_of",
    "payload_store",
    "undecodable",
    "undecodable_reason",
]

ENCRYPTED = b"binary/encrypted"
COMPRESSED = b"binary/zlib"
KEY_ID = "encryption-key-id"
DEFAULT_COMPRESS_ABOVE = 16 * 1024
MAX_DECODED = 256 * 1024 * 1024 + 64 * 1024  # STORE_PAYLOAD_LIMIT and room for a payload's metadata
#: The most a payload that arrived inline (in history, a signal, an update) may inflate to: Temporal's
#: limit and room for metadata. The codec compresses only payloads this small, so only one read back
#: from the payload store (which this process marks, see from_store) may inflate further.
INLINE_DECODED = PAYLOAD_LIMIT + 64 * 1024
_NONCE = 12
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def parse_keys(text: str, source: str = "GECKO_ENCRYPTION_KEY") -> list[tuple[str, bytes]]:
    """``[(key id, key), ...]`` from ``id:base64key`` entries (comma, space or newline separated)."""
    keys: list[tuple[str, bytes]] = []
    text = "\n".join(line.split("#", 1)[0] for line in text.splitlines())  # comments: '# rotated ...'
    for n, entry in enumerate((e for e in re.split(r"[,\s]+", text) if e), 1):
        key_id, sep, b64 = entry.rpartition(":")
        if not sep:
            key_id, b64 = "", entry
        try:
            key = base64.b64decode(b64, validate=True)
        except ValueError:
            raise PayloadConfigError(
                f"{source}: entry {n} is not base64 (expected id:base64key, e.g. made by "
                "`python -c \"import os,base64;print('k1:'+base64.b64encode(os.urandom(32)).decode())\"`)"
            ) from None
        if len(key) not in (16, 24, 32):
            raise PayloadConfigError(
                f"{source}: entry {n} decodes to {len(key)} bytes; an AES key has 16, 24 or 32 (32 recommended)"
            )
        key_id = key_id or "k" + hashlib.sha256(key).hexdigest()[:8]
        if not _ID.match(key_id):
            raise PayloadConfigError(
                f"{source}: key id {key_id!r} of entry {n} may hold only letters, digits, '_', '.' and '-' (at most 64)"
            )
        if any(k == key_id for k, _ in keys):
            raise PayloadConfigError(f"{source}: key id {key_id!r} is listed twice")
        keys.append((key_id, key))
    if not keys:
        raise PayloadConfigError(f"{source} is set but holds no key (expected id:base64key)")
    return keys


def keys_from_env(env: Env | None = None) -> list[tuple[str, bytes]]:
    """The encryption keys the environment configures (empty when encryption is off)."""
    env = os.environ if env is None else env
    text, path = env.get("GECKO_ENCRYPTION_KEY"), env.get("GECKO_ENCRYPTION_KEY_FILE")
    if text and path:
        raise PayloadConfigError("set GECKO_ENCRYPTION_KEY or GECKO_ENCRYPTION_KEY_FILE, not both")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise PayloadConfigError(f"GECKO_ENCRYPTION_KEY_FILE: cannot read {path}: {exc.strerror}") from None
        return parse_keys(text, f"GECKO_ENCRYPTION_KEY_FILE {path}")
    return parse_keys(text) if text else []


class GeckoCodec(PayloadCodec):
    """Compress payloads above ``compress_above`` bytes (zlib), then encrypt them (AES-GCM) with the
    first of ``keys``; decoding undoes both and passes every other payload through unchanged.

    An encrypted payload carries its key id in its metadata (and as the cipher's associated data, so
    the id cannot be swapped): a process holding that id's key decrypts it whichever key is first.
    """

    def __init__(
        self,
        keys: Sequence[tuple[str, bytes]] = (),
        compress_above: int | None = None,
        max_decoded: int | None = None,
    ) -> None:
        self.keys = list(keys)
        self.compress_above = compress_above
        # A compressed payload never inflates beyond the most the engine writes (a zlib bomb of 97 KB
        # would otherwise become 100 MB in the worker): the data converter passes its payload limit.
        self.max_decoded = MAX_DECODED if max_decoded is None else max_decoded
        self._ciphers: dict[str, object] = {}
        if self.keys:
            try:
                from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            except ImportError:
                raise PayloadConfigError(
                    "encryption needs the cryptography package: pip install 'gecko-temporal[encryption]'"
                ) from None
            self._ciphers = {key_id: AESGCM(key) for key_id, key in self.keys}

    @classmethod
    def from_env(cls, env: Env | None = None, max_decoded: int | None = None) -> GeckoCodec:
        """The codec the environment configures (one that encodes nothing when nothing is)."""
        env = os.environ if env is None else env
        keys = keys_from_env(env)
        return cls(keys, int_env(env, "GECKO_COMPRESS_ABOVE", DEFAULT_COMPRESS_ABOVE if keys else None), max_decoded)

    @property
    def encodes(self) -> bool:
        return bool(self.keys) or self.compress_above is not None

    # Sync cores: the codec server calls them from plain threads.
    def encode_sync(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encode_one(p) for p in payloads]

    def decode_sync(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decode_one(p) for p in payloads]

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if not self.encodes:
            return list(payloads)
        if sum(p.ByteSize() for p in payloads) > 256 * 1024:  # keep the event loop responsive
            return await asyncio.to_thread(self.encode_sync, payloads)
        return self.encode_sync(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if not any(p.metadata.get("encoding") in (ENCRYPTED, COMPRESSED) for p in payloads):
            return list(payloads)
        if sum(p.ByteSize() for p in payloads) > 256 * 1024 or self.max_decoded > 4 * 1024 * 1024:
            # a few KB of zlib can inflate to max_decoded: off the event loop unless that is small
            return await asyncio.to_thread(self.decode_sync, payloads)
        return self.decode_sync(payloads)

    def _encode_one(self, payload: Payload) -> Payload:
        if _STORE_MARK in payload.metadata:  # (never written anywhere: it would give the mark away)
            payload = Payload(
                metadata={k: v for k, v in payload.metadata.items() if k != _STORE_MARK}, data=payload.data
            )
        size = payload.ByteSize()
        # Bigger payloads stay uncompressed: inline, a compressed one may inflate only to INLINE_DECODED
        # (a zlib bomb of 97 KB would otherwise become 100 MB in the worker); they go to the store.
        if self.compress_above is not None and self.compress_above <= size <= INLINE_DECODED:
            raw = payload.SerializeToString()
            packed = zlib.compress(raw, 6)
            if len(packed) < len(raw):
                payload = Payload(metadata={"encoding": COMPRESSED}, data=packed)
        if self.keys:
            key_id = self.keys[0][0]
            nonce = os.urandom(_NONCE)
            sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())  # type: ignore[attr-defined]
            payload = Payload(metadata={"encoding": ENCRYPTED, KEY_ID: key_id.encode()}, data=nonce + sealed)
        return payload

    def _decode_one(self, payload: Payload) -> Payload:
        encoding = payload.metadata.get("encoding", b"")
        stored = from_store(payload)
        limit = self.max_decoded if stored else min(self.max_decoded, INLINE_DECODED)
        if encoding == ENCRYPTED:
            key_id = payload.metadata.get(KEY_ID, b"").decode("utf-8", "replace")
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                have = ", ".join(f'"{k}"' for k in self._ciphers) or "none (encryption is off here)"
                raise PayloadConfigError(
                    f'a payload is encrypted with key id "{key_id}", which this process does not have '
                    f"(its key ids: {have}); add that key to GECKO_ENCRYPTION_KEY (or the key file)"
                )
            from cryptography.exceptions import InvalidTag

            try:
                if len(payload.data) < _NONCE + 16:  # AES-GCM needs a 12-byte nonce and a 16-byte tag
                    raise InvalidTag
                inner = cipher.decrypt(payload.data[:_NONCE], payload.data[_NONCE:], key_id.encode())  # type: ignore[attr-defined]
            except InvalidTag:
                raise PayloadConfigError(
                    f'cannot decrypt a payload with key id "{key_id}": the configured key of that id is not the '
                    "one that encrypted it, or the payload was altered"
                ) from None
            payload = parse_payload(inner, "a decrypted payload")
            encoding = payload.metadata.get("encoding", b"")
        if encoding == COMPRESSED:
            inflater = zlib.decompressobj()
            try:
                raw = inflater.decompress(payload.data, limit + 1)
            except zlib.error as exc:
                raise PayloadConfigError(f"a compressed payload is corrupt: {exc}") from None
            if len(raw) > limit:
                where = "read from the payload store" if stored else "sent inline (not through the payload store)"
                raise PayloadConfigError(
                    f"a compressed payload of {len(payload.data):,} bytes {where} inflates to more than "
                    f"{limit:,} bytes, the most it may weigh: refused"
                )
            if not inflater.eof:
                raise PayloadConfigError("a compressed payload is corrupt: it ends before its zlib stream does")
            payload = parse_payload(raw, "a decompressed payload")
        if stored:  # the value inside came from the store too (handlers show no preview of it)
            payload.metadata[FROM_STORE_METADATA] = b"1"
        return payload


# -- payloads read from the payload store --------------------------------------------------------------
# The worker's converter marks each payload it reads back from the store. A compressed or encrypted
# one also gets a secret of this process, which no payload that arrives inline can know: only such a
# payload may inflate beyond INLINE_DECODED. The codec replaces it with the payload inside (so the
# secret never travels further) and never encodes the secret.

_STORE_MARK = "gecko-store-mark"
_mark: list[bytes] = []


def _store_secret() -> bytes:
    if not _mark:
        _mark.append(os.urandom(16).hex().encode())
    return _mark[0]


def mark_from_store(payload: Payload) -> None:
    """Mark ``payload`` as read back from the payload store by this process."""
    payload.metadata[FROM_STORE_METADATA] = b"1"
    if payload.metadata.get("encoding") in (ENCRYPTED, COMPRESSED):
        payload.metadata[_STORE_MARK] = _store_secret()


def from_store(payload: Payload) -> bool:
    """Whether this process read the compressed or encrypted ``payload`` back from the payload store."""
    mark = payload.metadata.get(_STORE_MARK)
    return mark is not None and hmac.compare_digest(mark, _store_secret())


# -- payloads that cannot be decoded ---------------------------------------------------------------
#
# Temporal decodes every payload of a workflow activation (claim-check references, the store, the
# codec) before any handler runs, and one that fails fails the workflow task, on every attempt: a
# client could wedge a run with one forged signal or an update that is never accepted. So decoding
# never raises here: a payload that cannot be decoded becomes a stand-in that says why, and only
# *converting* that stand-in to a value raises (UndecodablePayload). A signal handler then rejects
# it (gecko_state["rejected"]), an update is refused to its caller, a query fails alone; while a
# payload of the run's own history (its input, a node's output) still fails the workflow task,
# naming the key id or the store file, so a worker that has the key or the file can go on.

_REFERENCE = b"json/external-storage-reference"  # the SDK's claim-check reference (legacy JSON form)
UNDECODABLE = "gecko-undecodable"  # metadata key of a stand-in: why the payload could not be decoded
_REASON_CHARS = 400


def undecodable(payload: Payload, reason: str) -> Payload:
    """The stand-in for ``payload``: its encoding says what arrived and why it cannot be read (a
    handler that rejects it shows the encoding), its data is dropped (history still holds it)."""
    reason = reason if len(reason) <= _REASON_CHARS else reason[:_REASON_CHARS] + "..."
    encoding = payload.metadata.get("encoding", b"").decode("utf-8", "replace")[:80] or "no encoding"
    return Payload(metadata={"encoding": f"{encoding} (undecodable: {reason})".encode(), UNDECODABLE: reason.encode()})


def undecodable_reason(payload: Payload) -> str | None:
    """Why ``payload`` is a stand-in for one that could not be decoded (None: it is not one)."""
    reason = payload.metadata.get(UNDECODABLE)
    return None if reason is None else reason.decode("utf-8", "replace")


async def _each(
    step: Callable[[Sequence[Payload]], Awaitable[list[Payload]]], payloads: Sequence[Payload], session: str = ""
) -> list[Payload]:
    """``step`` over ``payloads``; when it fails, payload by payload, each failure a stand-in."""
    try:
        return list(await step(payloads))
    except Exception as exc:  # any failure of a decoding step: find the payloads at fault
        if len(payloads) != 1:
            return [(await _each(step, [p], session))[0] for p in payloads]
        reason = _message(exc, payloads[0])
        return [undecodable(payloads[0], f"session {session}: {reason}" if session else reason)]


def _message(exc: BaseException, payload: Payload) -> str:
    text = str(exc) if isinstance(exc, PayloadConfigError) else f"{type(exc).__name__}: {exc}"
    if "TMPRL1105" in text:
        text = "this worker has no payload store (GECKO_PAYLOAD_STORE)"
    elif "No driver found" in text:
        text = f"this worker has no such store: {exc}"
    if isinstance(exc, PayloadConfigError):  # ours: it names the store, the file, the key id
        return text
    if payload.metadata.get("encoding") in (_REFERENCE, b"json/protobuf") or "TMPRL" in str(exc):
        shown = payload.data[:120].decode("utf-8", "replace")
        return f"claim-check reference {shown}: {text}"
    return text


_KEEP_COPIES = 1024  # sessions whose converter copy is kept (a worker serves this many at once at most)


@dataclasses.dataclass(frozen=True)
class GeckoDataConverter(DataConverter):
    """Temporal's data converter, except that decoding a payload never raises (see ``undecodable``)
    and a stand-in is never encoded again (it would lose the payload it stands for). A reason names
    the session (workflow id) when the converter knows it."""

    _session: str = dataclasses.field(default="", compare=False, repr=False)
    # The SDK asks for a converter with context for each payload it visits (three or four per
    # activity); asking every part each time and copying cost ~5% of a busy worker's CPU samples.
    # So: whether this kind of context changes any part (asked once), and one copy per session.
    # (Not init fields: a converter derived with dataclasses.replace, e.g. with another payload
    # converter for durable agents, must not answer with this one's copies.)
    _copies: dict[str, Any] = dataclasses.field(default_factory=dict, init=False, compare=False, repr=False)
    _static: dict[type, bool] = dataclasses.field(default_factory=dict, init=False, compare=False, repr=False)

    def with_context(self, context: SerializationContext) -> Self:
        session = getattr(context, "workflow_id", None) or ""
        kind = type(context)
        if self._static.get(kind, False):  # its parts ignore contexts of this kind: no need to ask
            converter = self
        else:
            converter = super().with_context(context)
            self._static.setdefault(kind, converter is self)
        if converter is not self:  # a fresh clone (the store or codec took the context): mark it
            object.__setattr__(converter, "_session", session)
            return converter
        if session == self._session:
            return self
        copied = self._copies.get(session)
        if copied is None:
            if len(self._copies) >= _KEEP_COPIES:
                del self._copies[next(iter(self._copies))]
            copied = self._copies[session] = copy.copy(self)
            object.__setattr__(copied, "_session", session)
        return copied

    async def _decode_reference_payload_sequence(self, payloads: Sequence[Payload]) -> list[Payload]:
        return await _each(super()._decode_reference_payload_sequence, payloads, self._session)

    async def _external_retrieve_payload_sequence(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = await _each(super()._external_retrieve_payload_sequence, payloads, self._session)
        for before, after in zip(payloads, out):
            if after is not before and UNDECODABLE not in after.metadata:  # a reference, resolved
                mark_from_store(after)
        return out

    async def _decode_payload_sequence(self, payloads: Sequence[Payload]) -> list[Payload]:
        return await _each(super()._decode_payload_sequence, payloads, self._session)

    async def _encode_payload_sequence(self, payloads: Sequence[Payload]) -> list[Payload]:
        for p in payloads:
            if UNDECODABLE in p.metadata:
                raise UndecodablePayload(f"refusing to write a payload that could not be read: {undecodable_reason(p)}")
        return await super()._encode_payload_sequence(payloads)


_ENV_NAMES = (
    "GECKO_ENCRYPTION_KEY",
    "GECKO_ENCRYPTION_KEY_FILE",
    "GECKO_COMPRESS_ABOVE",
    "GECKO_PAYLOAD_STORE",
    "GECKO_PAYLOAD_STORE_ABOVE",
)
_converters: dict[tuple[object, ...], DataConverter] = {}


def data_converter(env: Env | None = None, *, embedded: bool = False, embedded_worker: bool = False) -> DataConverter:
    """The data converter every client and worker of the engine uses, as the environment configures
    it (``embedded``: for the embedded dev server, which has a payload store of its own by default;
    the embedded worker keeps it even with ``GECKO_PAYLOAD_STORE=none``, which then only lowers the
    limit of the runs a client starts). Built once per configuration; a bad setting raises
    PayloadConfigError naming the variable."""
    import temporalio.converter

    env = os.environ if env is None else env
    if embedded_worker:
        embedded = True
        if env.get("GECKO_PAYLOAD_STORE") == "none":
            env = {k: v for k, v in env.items() if k != "GECKO_PAYLOAD_STORE"}
    settings = (embedded, *(env.get(name) for name in _ENV_NAMES))
    converter = _converters.get(settings)
    if converter is None:
        store = payload_store(env, embedded=embedded)
        limit = STORE_PAYLOAD_LIMIT if store is not None else PAYLOAD_LIMIT
        codec = GeckoCodec.from_env(env, max_decoded=limit + 64 * 1024)
        # No codec unless it encodes: the SDK walks every activation for a codec, a no-op one included
        # (measured: +35% on a chain of local activities). A payload this process cannot decrypt is
        # then named by the payload converter instead (_payload_converter_class).
        converter = GeckoDataConverter(
            payload_codec=codec if codec.encodes else None,
            payload_converter_class=_payload_converter_class(),
            failure_converter_class=temporalio.converter.default().failure_converter_class,
            external_storage=store,
        )
        _converters[settings] = converter
    return converter


def payload_limit_of(converter: object) -> int:
    """The most one payload may weigh with ``converter``: Temporal's 2 MiB, or the store's limit."""
    return STORE_PAYLOAD_LIMIT if getattr(converter, "external_storage", None) is not None else PAYLOAD_LIMIT


_converter_class: type | None = None


class UndecodablePayload(RuntimeError):
    """A payload is encrypted or compressed and this process has no codec for it (no key)."""


def _payload_converter_class() -> type:
    """Temporal's default payload converter, plus converters for the codec's encodings that only
    ever fail, clearly: they are reached only when no codec decoded the payload (no key here)."""
    global _converter_class
    if _converter_class is None:
        from temporalio.common import RawValue
        from temporalio.converter import DefaultPayloadConverter, EncodingPayloadConverter

        class EncodedByGecko(EncodingPayloadConverter):
            def __init__(self, encoding: bytes) -> None:
                self._encoding = encoding

            @property
            def encoding(self) -> str:
                return self._encoding.decode()

            def to_payload(self, value: object) -> Payload | None:
                return None  # never encodes: the codec does

            def from_payload(self, payload: Payload, type_hint: type | None = None) -> object:
                try:
                    return GeckoCodec().decode_sync([payload])  # raises, naming the key id
                except PayloadConfigError as exc:
                    # Not a GeckoError: those fail the workflow (workflow_failure_exception_types), and a
                    # worker that lacks a key must only fail its task, so one that has it can go on.
                    raise UndecodablePayload(str(exc)) from None

        class GeckoPayloadConverter(DefaultPayloadConverter):
            def __init__(self) -> None:
                super(DefaultPayloadConverter, self).__init__(
                    *DefaultPayloadConverter.default_encoding_payload_converters,
                    EncodedByGecko(ENCRYPTED),
                    EncodedByGecko(COMPRESSED),
                )

            def from_payloads(self, payloads: Sequence[Payload], type_hints: list[type] | None = None) -> list[Any]:
                hints = list(type_hints or [])
                for n, payload in enumerate(payloads):  # a stand-in for a payload that could not be decoded
                    reason = undecodable_reason(payload)
                    if reason is not None and (n >= len(hints) or hints[n] is not RawValue):
                        raise UndecodablePayload(reason)  # (a RawValue stays raw: its reader converts it)
                return super().from_payloads(payloads, type_hints)

        _converter_class = GeckoPayloadConverter
    return _converter_class
