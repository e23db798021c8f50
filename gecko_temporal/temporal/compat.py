"""Every private ``temporalio`` name the engine relies on, in one place.

``temporalio.contrib.workflow_streams`` is experimental: its wire names and helpers may change in
any minor release, and a changed publish signal name or wire item would break running workflows
on upgrade. ``tests/unit/test_compat.py`` checks each name below against the installed SDK and
fails with the name that moved, so an upgrade is caught by the suite, not by a running pipeline.
Where the SDK has public API for the same thing, use that instead and delete the entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from temporalio.client import Client, WorkflowHandle

try:
    # The signal name a WorkflowStreamClient publishes on (the run's own handler must match it).
    from temporalio.contrib.workflow_streams._stream import _POLL as STREAM_POLL_UPDATE
    from temporalio.contrib.workflow_streams._stream import _PUBLISH_SIGNAL as STREAM_PUBLISH_SIGNAL

    # The log's wire item (WorkflowStreamState.log holds these) and its payload decoding, used to
    # check a publish batch and to rebuild a carried stream after continue-as-new.
    from temporalio.contrib.workflow_streams._types import _decode_payload as decode_stream_payload
    from temporalio.contrib.workflow_streams._types import _WorkflowStreamWireItem as StreamWireItem
except ImportError as exc:  # pragma: no cover - only on an SDK that moved them
    import temporalio

    raise ImportError(
        f"gecko_temporal relies on private names of temporalio.contrib.workflow_streams that temporalio "
        f"{temporalio.__version__} no longer has ({exc}); pin temporalio to a version the engine was tested "
        "with (see pyproject.toml) or update gecko_temporal/temporal/compat.py"
    ) from exc


def handle_client(handle: WorkflowHandle[Any, Any]) -> Client:
    """The client a workflow handle was made by (same namespace, converter and codec).
    The SDK keeps it private; every handle has one."""
    return handle._client


__all__ = ["STREAM_POLL_UPDATE", "STREAM_PUBLISH_SIGNAL", "StreamWireItem", "decode_stream_payload", "handle_client"]


def workflow_readers() -> tuple[Callable[[], int], Callable[[], str], Callable[[], str | None]]:
    """Readers of the running workflow's history length and time (ISO text) that also work where
    ``workflow.info()`` and ``workflow.now()`` raise: in a ``workflow.register_random_seed_callback``
    callback, which the SDK calls while it applies an activation's jobs, outside its event loop.
    Call it from workflow code; the readers give what those two functions would. The third gives
    the run id a gecko_rewound must name (the run its reset made), or None in runs recorded before
    the patch ``gecko-rewound-names-its-run``, which took one naming none (call it in a handler)."""
    from temporalio import workflow
    from temporalio.workflow import _Runtime

    from gecko_temporal.protocol import REWOUND_RUN_PATCH

    runtime = _Runtime.current()

    def now() -> str:
        return datetime.fromtimestamp(runtime.workflow_time_ns() / 1e9, timezone.utc).isoformat()

    def rewound_run() -> str | None:
        return workflow.info().run_id if workflow.patched(REWOUND_RUN_PATCH) else None

    return runtime.workflow_get_current_history_length, now, rewound_run
