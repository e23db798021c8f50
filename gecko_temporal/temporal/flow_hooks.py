"""Flow control on the activity side: a rate-limited attempt, and the usage a node reported.

Called from ``activities.py`` around user code; the decisions are in ``core/flow.py`` and
``core/usage.py``.
"""

from __future__ import annotations

import logging

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from gecko_temporal.core import flow

_log = logging.getLogger("gecko_temporal.worker")


def rate_limited(exc: BaseException, where: str) -> ApplicationError | None:
    """The failure of an attempt that ``exc`` says was rate limited (RetryAfter, or an HTTP 429
    with Retry-After), or None: non-retryable, so the workflow waits and starts the node again."""
    delay = flow.retry_after_of(exc)
    if delay is None:
        return None
    attempt = activity.info().attempt
    _log.info("%s rate limited (attempt %d): runs again in %.3g s", where, attempt, delay)
    return ApplicationError(
        f"{where} was rate limited ({type(exc).__name__}: {exc}); runs again after {delay:g} s",
        flow.rate_limited_details(delay, attempt),
        type=flow.RETRY_AFTER_TYPE,
        non_retryable=True,
        category=ApplicationErrorCategory.BENIGN,
    )
