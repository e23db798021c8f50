"""Flow control around a node's call: ``RetryAfter`` and the HTTP 429 errors that mean it. Pure.

A node that is told "too many requests, come back in N seconds" should neither burn one of its
``retries`` nor hammer the provider on its generic backoff. It raises :class:`RetryAfter`, or lets
an agent library's rate-limit error through: httpx's ``HTTPStatusError``, openai's and anthropic's
``RateLimitError`` (and anything else carrying a ``response`` with status 429 and a ``Retry-After``
header, or a ``status_code`` of 429 and ``headers``) are recognised, anywhere in the exception's
cause chain (pydantic-ai and LangChain wrap the provider's error).

Temporal counts every attempt toward ``maximum_attempts``, and ``next_retry_delay`` cannot take one
back; so the activity fails this attempt as ``RetryAfter`` (non-retryable, the delay in its details)
and the workflow starts the node's activity again after a durable timer, with its retries whole.
"""

from __future__ import annotations

import email.utils
import math
import time
from typing import Any

from gecko_temporal.core.errors import GeckoError

#: The failure type the activity reports and the workflow recognises.
RETRY_AFTER_TYPE = "RetryAfter"
#: A delay longer than this is cut to it (a provider asking for a day means something is wrong).
MAX_DELAY = 3600.0
#: Rate-limited restarts of one node at most, then it fails like any other error.
MAX_RATE_LIMITED = 100


class RetryAfter(GeckoError):
    """Raise from a node to run it again after ``seconds``, without using one of its retries.

    ``raise RetryAfter(2.5)`` (e.g. when a provider answered 429 with ``Retry-After: 2.5``). The
    run waits durably (a Temporal timer, no worker slot held); a node is rate-limited at most
    ``MAX_RATE_LIMITED`` times in a row before it fails.
    """

    def __init__(self, seconds: float, reason: str = "") -> None:
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds):
            raise TypeError(f"RetryAfter(seconds) takes a finite number of seconds, got {seconds!r}")
        if seconds < 0:
            raise ValueError(f"RetryAfter(seconds) takes seconds >= 0, got {seconds!r}")
        self.seconds = float(seconds)
        self.reason = reason
        super().__init__(f"rate limited: retry after {self.seconds:g} s" + (f" ({reason})" if reason else ""))


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    try:
        value = getter(name) or getter(name.title())
    except Exception:
        return None
    return value if isinstance(value, str) else None


def parse_retry_after(headers: Any, now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``."""
    millis = _header(headers, "retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000
            if math.isfinite(value) and value >= 0:
                return value
        except ValueError:
            pass
    text = _header(headers, "retry-after")
    if text is None:
        return None
    text = text.strip()
    try:
        value = float(text)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _status(exc: BaseException) -> tuple[int | None, Any]:
    """(HTTP status, headers) an exception carries, if any."""
    response = getattr(exc, "response", None)
    status = getattr(exc, "status_code", None)
    headers = getattr(exc, "headers", None)
    if response is not None:
        status = getattr(response, "status_code", status)
        headers = getattr(response, "headers", headers)
    return (status if isinstance(status, int) else None), headers


def retry_after_of(exc: BaseException, now: float | None = None) -> float | None:
    """The delay ``exc`` asks for: a RetryAfter's seconds, or a 429's Retry-After, looked for along
    the cause chain; None when it is not a rate-limit error that says how long to wait."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, RetryAfter):
            return min(current.seconds, MAX_DELAY)
        status, headers = _status(current)
        if status == 429:
            delay = parse_retry_after(headers, now)
            if delay is not None:
                return min(delay, MAX_DELAY)
        current = current.__cause__ or current.__context__
    return None


def rate_limited_details(delay: float, attempt: int) -> dict[str, Any]:
    """What the activity's RetryAfter failure carries to the workflow."""
    return {"retry_after": delay, "attempt": attempt}


def delay_of(details: Any) -> float | None:
    """The delay a RetryAfter failure's details ask for (None when they are not ours)."""
    if isinstance(details, dict):
        delay = details.get("retry_after")
        if isinstance(delay, (int, float)) and not isinstance(delay, bool) and math.isfinite(delay) and delay >= 0:
            return min(float(delay), MAX_DELAY)
    return None
