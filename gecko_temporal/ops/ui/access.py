"""Who may use the live page: the loopback check, the bearer token, the request guard (DNS
rebinding, token, the write header) and the security headers on every response."""

from __future__ import annotations

import hmac
import ipaddress
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from aiohttp.typedefs import Middleware

    from gecko_temporal.ops.ui.server import UiServer

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def bearer_ok(token: str | None, request: web.Request) -> bool:
    """Whether the request carries ``token`` as its bearer token (never, with no token configured)."""
    if not token:
        return False
    header = request.headers.get("Authorization") or ""
    return hmac.compare_digest(header.encode(), f"Bearer {token}".encode())


def guard(server: UiServer) -> Middleware:
    """The middleware every request passes: host, token and write checks, then errors as JSON."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if is_loopback(server.host):  # a page elsewhere must not reach us by a name it controls (DNS rebinding)
            host = (request.host or "").rsplit(":", 1)[0] if not (request.host or "").startswith("[") else "[::1]"
            if host not in LOOPBACK_HOSTS:
                return json_error(403, f"host {request.host!r} not allowed: open the page at {server.url}")
        if request.path.startswith("/api/"):
            if not is_loopback(server.host) and not server.token_ok(request):
                return json_error(401, "missing or wrong bearer token (open the page with ?token=... once)")
            if request.method == "POST":
                if request.headers.get("X-Gecko-UI") != "1":  # forces a CORS preflight, which we never answer
                    return json_error(403, "writes need the X-Gecko-UI: 1 header (the page sends it)")
                if server.token and not server.token_ok(request):
                    return json_error(401, "this ui has a token: writes need it (open the page with ?token=...)")
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException:
            raise
        except Exception as exc:  # e.g. no such session, the server gone: a message, not a traceback
            response = json_error(502, f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}")
        return response

    return middleware


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response, before it is sent (streams too): scripts and styles from here only."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
