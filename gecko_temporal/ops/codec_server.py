"""``gecko-temporal codec-server``: Temporal's remote codec protocol, so an authorised Temporal UI or
``temporal`` CLI (``--codec-endpoint``) can read runs whose payloads are encrypted or compressed.

The protocol: ``POST .../decode`` and ``POST .../encode`` with a JSON body ``{"payloads": [...]}``
(each payload in protobuf's JSON form, bytes as base64), answered in the same form; the UI sends
a CORS preflight first and may send ``Authorization``. Keys come from the same environment as the
workers' (:mod:`gecko_temporal.temporal.payloads`). The standard library's threaded HTTP server is enough
for a handful of people reading histories, and adds no dependency.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from gecko_temporal.core.errors import PayloadConfigError
from gecko_temporal.temporal.payloads import GeckoCodec

#: The dev server's UI (``temporal server start-dev --ui-port``, default 8233).
DEFAULT_ORIGINS = ("http://localhost:8233", "http://127.0.0.1:8233")
MAX_BODY = 256 * 1024 * 1024  # a history page of big payloads; beyond that, refuse rather than swap
MAX_CONNECTIONS = 32  # connections served at once (a thread each); more are refused with 503
IDLE_TIMEOUT = 30.0  # seconds a connection may sit without sending what it announced


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, but at most MAX_CONNECTIONS of them: the rest get a 503 at once."""

    daemon_threads = True

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: object, client_address: object) -> None:
        if not self._slots.acquire(blocking=False):
            try:
                request.settimeout(1.0)  # type: ignore[attr-defined]
                request.sendall(  # type: ignore[attr-defined]
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
            except OSError:
                pass
            self.shutdown_request(request)  # type: ignore[arg-type]
            return
        super().process_request(request, client_address)  # type: ignore[arg-type]

    def handle_error(self, request: object, client_address: object) -> None:
        """One line, never a traceback: a client that left mid-answer is no server error."""
        kind, exc = sys.exc_info()[:2]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        print(
            f"codec-server: request from {client_address} failed: {kind.__name__ if kind else '?'}: {exc}",
            file=sys.stderr,
            flush=True,
        )

    def process_request_thread(self, request: object, client_address: object) -> None:
        try:
            super().process_request_thread(request, client_address)  # type: ignore[arg-type]
        finally:
            self._slots.release()


class CodecServer:
    """Serve ``codec`` over HTTP on ``host:port`` (port 0 picks a free one) in a daemon thread.

    ``origins`` are the browser origins allowed by CORS (``"*"`` for any); with ``token`` every
    request must carry ``Authorization: Bearer <token>``.
    """

    def __init__(
        self,
        codec: GeckoCodec,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        origins: Sequence[str] = DEFAULT_ORIGINS,
        token: str | None = None,
    ) -> None:
        self.codec = codec
        self.origins = [o.rstrip("/") for o in origins]
        self.token = token
        self._httpd = _BoundedServer((host, port), _handler_for(self))
        host_, self.port = self._httpd.server_address[:2]
        self.host = host_.decode() if isinstance(host_, bytes) else str(host_)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> CodecServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="gecko-codec-server", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def allowed_origin(self, origin: str | None) -> str | None:
        if origin and ("*" in self.origins or origin.rstrip("/") in self.origins):
            return origin
        return None

    def authorised(self, header: str | None) -> bool:
        if not self.token:
            return True
        return hmac.compare_digest((header or "").encode(), f"Bearer {self.token}".encode())

    def apply(self, operation: str, body: bytes) -> bytes:
        payloads = list(json_format.Parse(body, Payloads()).payloads)
        if operation == "encode":
            out = self.codec.encode_sync(payloads)
        else:  # one payload this server cannot decode stays as it is; the rest of the page still reads
            out = []
            for payload in payloads:
                try:
                    [payload] = self.codec.decode_sync([payload])
                except Exception as exc:  # never one payload's fault for the whole page
                    message = str(exc) if isinstance(exc, PayloadConfigError) else type(exc).__name__
                    print(f"codec-server: a payload stays encoded: {message}", file=sys.stderr, flush=True)
                out.append(readable(payload) if self.readable else payload)
        return json_format.MessageToJson(Payloads(payloads=out), indent=None).encode()

    readable = True


# The engine's boundary values hold user values as JSON *text* (the workflow never decodes them), so
# the UI shows them as escaped strings. For people, the codec server splices them back in as JSON.
_TEXT_FIELDS = frozenset({"input", "value", "run_input"})
_TEXT_MAPS = frozenset({"state", "history", "writes", "outputs"})
_NESTED = frozenset({"jump", "jumps", "snapshot", "scheduler"})


def readable(payload: Payload) -> Payload:
    """``payload`` for display: in a gecko NodeInput, NodeOutput or run input, every user value
    held as JSON text shown as the JSON it is (models as their data). Anything else, or anything
    that does not parse, is returned unchanged. Only for reading: never fed back to a worker."""
    if payload.metadata.get("encoding") != b"json/plain" or not payload.data.startswith(b"{"):
        return payload
    try:
        value = json.loads(payload.data)
    except ValueError:
        return payload
    if not isinstance(value, dict) or not (_TEXT_FIELDS | _TEXT_MAPS) & value.keys():
        return payload
    shown = Payload()
    shown.CopyFrom(payload)
    shown.data = json.dumps(_splice(value), ensure_ascii=False, separators=(",", ":")).encode()
    return shown


def _splice(value: object, depth: int = 0) -> object:
    from gecko_temporal.core.codec import plain

    def text(t: object) -> object:
        if isinstance(t, str):
            try:
                return plain(t)
            except ValueError:
                return t
        return t

    if depth > 4:
        return value
    if isinstance(value, list):
        return [_splice(v, depth + 1) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key in _TEXT_FIELDS:
            out[key] = text(item)
        elif key in _TEXT_MAPS and isinstance(item, dict):
            out[key] = {name: text(t) for name, t in item.items()}
        elif key in _NESTED:
            out[key] = _splice(item, depth + 1)
        else:
            out[key] = item
    return out


def _handler_for(server: CodecServer) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = IDLE_TIMEOUT  # a client that stops sending frees its thread

        def log_message(self, format: str, *args: object) -> None:  # quiet: one line per request is noise
            pass

        def _cors(self) -> None:
            origin = server.allowed_origin(self.headers.get("Origin"))
            if origin:
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
                self.send_header("Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization")
                self.send_header("Access-Control-Allow-Credentials", "true")
                self.send_header("Vary", "Origin")

        def _reply(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
            self.send_response(status)
            self._cors()
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, message: str) -> None:
            self._reply(status, json.dumps({"message": message}).encode())

        def do_OPTIONS(self) -> None:  # the browser's CORS preflight: no credentials are sent with it
            self._reply(200)

        def _refuse(self, status: int, message: str) -> None:
            """Answer without reading the body, and close: the client's upload is not our memory."""
            self.close_connection = True
            self._error(status, message)

        def do_POST(self) -> None:
            # Refuse first, read later: path, token and length are checked before one body byte is read.
            operation = self.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            if operation not in ("encode", "decode"):
                return self._refuse(404, "POST /encode or /decode")
            if not server.authorised(self.headers.get("Authorization")):
                return self._refuse(401, "missing or wrong bearer token")
            announced = self.headers.get("Content-Length")
            if announced is None:
                return self._refuse(411, "a Content-Length header is required")
            if not announced.strip().isdigit():
                return self._refuse(400, f"Content-Length must be a number of bytes, got {announced[:40]!r}")
            length = int(announced)
            if length > MAX_BODY:
                return self._refuse(413, f"body over {MAX_BODY} bytes")
            try:
                body = self.rfile.read(length)
            except OSError:  # the client went quiet (IDLE_TIMEOUT) or away
                self.close_connection = True
                return None
            if len(body) < length:
                return self._refuse(400, f"the body ended after {len(body)} of {length} bytes")
            try:
                answer = server.apply(operation, body)
            except (json_format.ParseError, ValueError) as exc:
                return self._error(400, f'expected {{"payloads": [...]}}: {exc}')
            except PayloadConfigError as exc:
                return self._error(400, str(exc))
            self._reply(200, answer)

    return Handler


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=8081, help="port to listen on (default 8081)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--origin",
        action="append",
        default=None,
        metavar="URL",
        help="browser origin of the Temporal UI allowed by CORS; repeatable, '*' for any "
        f"(default {' and '.join(DEFAULT_ORIGINS)})",
    )
    p.add_argument(
        "--token",
        default=None,
        metavar="T",
        help="require 'Authorization: Bearer T' (default: GECKO_CODEC_TOKEN, else none)",
    )
    p.add_argument(
        "--raw", action="store_true", help="decode only; do not show node values held as JSON text as plain JSON"
    )


def run(args: argparse.Namespace) -> int:
    """The ``codec-server`` command: serve until interrupted."""
    codec = GeckoCodec.from_env()
    token = args.token or os.environ.get("GECKO_CODEC_TOKEN") or None
    server = CodecServer(codec, host=args.host, port=args.port, origins=args.origin or DEFAULT_ORIGINS, token=token)
    server.readable = not args.raw
    what = (
        f"decrypts key ids {', '.join(k for k, _ in codec.keys)}"
        if codec.keys
        else "no GECKO_ENCRYPTION_KEY: decompresses only"
    )
    print(
        f"codec server: {server.url} ({what}; CORS for {', '.join(server.origins)}"
        f"{'; bearer token required' if token else ''})",
        flush=True,
    )
    auth = ' --codec-auth "Bearer ..."' if token else ""
    print(f"  temporal workflow show --workflow-id ID --codec-endpoint {server.url}{auth}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0
