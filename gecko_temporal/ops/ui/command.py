"""The ``ui`` command's arguments and entry point, and the embedded default's live page
(``GECKO_UI=1``). Imports aiohttp only when the page is served, so the CLI works without it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import threading
from typing import Any

TOKEN_ENV = "GECKO_UI_TOKEN"
DEFAULT_PORT = 8234
_MISSING = "the live page needs aiohttp: pip install 'gecko-temporal[ui]'"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--token", default=None, metavar="T", help=f"require 'Authorization: Bearer T' (default: {TOKEN_ENV})"
    )
    p.add_argument("--address", help="Temporal server HOST:PORT (default: TEMPORAL_ADDRESS)")
    p.add_argument(
        "--temporal-ui", default=None, metavar="URL", help="the Temporal UI's base URL, for links to runs there"
    )


def run(args: argparse.Namespace) -> int:
    """The ``ui`` command: serve until interrupted."""
    from gecko_temporal.temporal.client import is_embedded

    try:
        from gecko_temporal.ops.ui.server import Refused, UiServer, is_loopback
    except ImportError:
        print(f"gecko-temporal ui: {_MISSING}", file=sys.stderr)
        return 2
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if is_embedded():
        print(
            "gecko-temporal ui: no Temporal server named: set TEMPORAL_ADDRESS or --address "
            "(or use `gecko-temporal dev --ui`)",
            file=sys.stderr,
        )
        return 2
    try:
        server = UiServer(host=args.host, port=args.port, token=token, temporal_ui=args.temporal_ui)
    except Refused as exc:
        print(f"gecko-temporal ui: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        await server.start()
        note = " (bearer token required)" if token and not is_loopback(args.host) else ""
        print(f"live page: {server.url}{note}", flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0


# -- the embedded default: GECKO_UI=1 ----------------------------------------------------------------
_embedded: Any = None
_embedded_lock = threading.Lock()


def embedded_page_url(session: str) -> str | None:
    """With the embedded default: start the live page once (its own thread and event loop,
    loopback, no token) and return the run's URL; None if it cannot start."""
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            try:
                from gecko_temporal.ops.ui.server import UiServer
            except ImportError:
                print(f"GECKO_UI: {_MISSING}", file=sys.stderr)
                return None
            ready = threading.Event()
            holder: dict[str, Any] = {}

            def main() -> None:
                async def go() -> None:
                    try:
                        port = int(os.environ.get("GECKO_UI_PORT") or 0)
                        holder["server"] = await UiServer(port=port, temporal_ui=_temporal_ui()).start()
                    finally:
                        ready.set()
                    await asyncio.Event().wait()

                with contextlib.suppress(Exception):
                    asyncio.run(go())
                ready.set()

            threading.Thread(target=main, name="gecko-ui", daemon=True).start()
            ready.wait(30)
            _embedded = holder.get("server")
        if _embedded is None:
            return None
        return f"{_embedded.url}/runs/{session}"


def _temporal_ui() -> str | None:
    from gecko_temporal.temporal.embedded import running_server

    server = running_server()
    return f"http://127.0.0.1:{server.ui_port}" if server is not None and server.ui_port else None
