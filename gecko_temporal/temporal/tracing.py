"""Optional OpenTelemetry tracing (``pip install 'gecko-temporal[otel]'``, ``GECKO_OTEL=1``).

Temporal's ``TracingInterceptor`` (``temporalio.contrib.opentelemetry``) on every client the
engine creates carries the trace from the starting client through the workflow into each node's
activity (workers take client interceptors); each node then runs inside a ``gecko.node`` span with
the pipeline, node, step, session and attempt as attributes. Spans go to the tracer provider the
application configured (``opentelemetry.trace.set_tracer_provider``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from gecko_temporal.core.errors import GeckoError


def enabled() -> bool:
    return os.environ.get("GECKO_OTEL", "") not in ("", "0")


def interceptors() -> list[Any]:
    """The client interceptors tracing needs (none unless GECKO_OTEL is set)."""
    if not enabled():
        return []
    try:
        from temporalio.contrib.opentelemetry import TracingInterceptor
    except ImportError as exc:
        raise GeckoError(
            f"GECKO_OTEL is set but OpenTelemetry is not installed ({exc}); install it with "
            "pip install 'gecko-temporal[otel]', or unset GECKO_OTEL"
        ) from None
    return [TracingInterceptor()]


@contextlib.contextmanager
def node_span(
    pipeline: str, node: str, step: int, session: str, attempt: int, member: str | None = None
) -> Iterator[Any]:
    """A span around one node attempt (nothing when tracing is off)."""
    if not enabled():
        yield None
        return
    from opentelemetry import trace

    attributes: dict[str, str | int] = {
        "gecko.pipeline": pipeline,
        "gecko.node": node,
        "gecko.step": step,
        "gecko.session": session,
        "gecko.attempt": attempt,
    }
    if member:
        attributes["gecko.member"] = member
    name = f"gecko.node {pipeline}.{node}" + (f".{member}" if member else "")
    with trace.get_tracer("gecko_temporal").start_as_current_span(name, attributes=attributes) as span:
        yield span
