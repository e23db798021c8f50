"""One session's event stream as the live page reads it: read once for every page that shows the
session, kept to the newest events, and waited on by each page's server-sent-events response."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gecko_temporal.ops.ui.server import UiServer

MAX_EVENTS = 2_000  # kept per watched session (the page shows the newest)


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class SessionWatch:
    """One session's event stream, read once for every page that shows the session."""

    def __init__(self, server: UiServer, session: str) -> None:
        self.session = session
        self.events: list[dict[str, Any]] = []
        self.finished = False
        self.error: str | None = None
        self.changed = asyncio.Condition()
        self.used = time.monotonic()
        self.task = asyncio.ensure_future(self._read(server))

    async def _read(self, server: UiServer) -> None:
        try:
            handle = await server.handle(self.session)
            async for event in handle.stream():
                plain = {k: v for k, v in vars(event).items() if k != "extra" and v is not None}
                plain.update(event.extra)
                self.events.append(jsonable(plain))
                del self.events[:-MAX_EVENTS]
                async with self.changed:
                    self.changed.notify_all()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
        self.finished = True
        async with self.changed:
            self.changed.notify_all()
