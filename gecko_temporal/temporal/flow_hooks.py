"""Flow control on the activity side: a rate-limited attempt, and the usage a node reported.

Usage of a failed attempt was spent, so it counts: the attempt heartbeats it before failing (the
next attempt of the same activity reads it back and adds it to its own), and its failure carries
it to the workflow (``usage`` in the failure's details), for a node that fails for good or is
rate limited (started again under a new activity id).

Called from ``activities.py`` around user code; the decisions are in ``core/flow.py`` and
``core/usage.py``.
"""

from __future__ import annotations

import logging
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from gecko_temporal.core import flow, usage

#: The heartbeat detail that carries what earlier attempts of a node's activity spent.
SPENT = "gecko_spent"

_log = logging.getLogger("gecko_temporal.worker")


def spent_before(meter: usage.Meter) -> int:
    """Add what earlier failed attempts of this activity spent (their last heartbeat) to ``meter``;
    return their tokens (already settled on a token limit by those attempts)."""
    details = activity.info().heartbeat_details
    first = details[0] if details else None
    if not isinstance(first, dict) or not isinstance(first.get(SPENT), dict):
        return 0
    earlier = usage.Usage.from_plain(first[SPENT])
    meter.add(earlier)
    return earlier.tokens


def keep_spent(meter: usage.Meter) -> dict[str, Any] | None:
    """A failing attempt's usage (its own and earlier attempts'), heartbeaten for the next attempt."""
    spent = meter.plain()
    if spent and not activity.info().is_local:
        activity.heartbeat({SPENT: spent})
    return spent


def rate_limited(exc: BaseException, where: str, spent: dict[str, Any] | None = None) -> ApplicationError | None:
    """The failure of an attempt that ``exc`` says was rate limited (RetryAfter, or an HTTP 429
    with Retry-After), or None: non-retryable, so the workflow waits and starts the node again."""
    delay = flow.retry_after_of(exc)
    if delay is None:
        return None
    attempt = activity.info().attempt
    _log.info("%s rate limited (attempt %d): runs again in %.3g s", where, attempt, delay)
    return ApplicationError(
        f"{where} was rate limited ({type(exc).__name__}: {exc}); runs again after {delay:g} s",
        {**flow.rate_limited_details(delay, attempt), **({"usage": spent} if spent else {})},
        type=flow.RETRY_AFTER_TYPE,
        non_retryable=True,
        category=ApplicationErrorCategory.BENIGN,
    )
