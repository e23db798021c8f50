"""The private temporalio names in gecko_temporal/temporal/compat.py still mean what the engine needs.

An SDK upgrade that renames or reshapes one of them fails here, naming it, before a running
workflow meets it (a changed publish signal name would strand every node's emitted events).
"""

from __future__ import annotations

import base64

from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.workflow_streams import WorkflowStreamState

from gecko_temporal.temporal import compat


def test_stream_wire_names_are_the_ones_running_workflows_recorded():
    # Recorded histories (tests/histories/observed_*.json) carry these names: they must never change.
    assert compat.STREAM_PUBLISH_SIGNAL == "__temporal_workflow_stream_publish", (
        "temporalio renamed the workflow_streams publish signal: running workflows would drop every emitted event"
    )
    assert compat.STREAM_POLL_UPDATE == "__temporal_workflow_stream_poll", (
        "temporalio renamed the workflow_streams poll update: readers of running workflows would fail"
    )


def test_stream_payload_decoding_reads_what_a_publisher_writes():
    payload = Payload(metadata={"encoding": b"json/plain"}, data=b'{"type":"custom"}')
    wire = base64.b64encode(payload.SerializeToString()).decode()
    assert compat.decode_stream_payload(wire) == payload


def test_stream_state_still_holds_wire_items_with_topic_and_data():
    item = compat.StreamWireItem(topic="gecko", data="eA==")
    state = WorkflowStreamState(log=[item], base_offset=3, publishers={})
    assert (state.log[0].topic, state.log[0].data, state.base_offset) == ("gecko", "eA==", 3)


def test_a_workflow_handle_still_keeps_its_client():
    client = object.__new__(Client)
    handle = WorkflowHandle(client, "wf-id")
    assert compat.handle_client(handle) is client, "WorkflowHandle no longer keeps its client as _client"


def test_the_workflow_runtime_still_reads_history_length_and_time_outside_its_event_loop():
    # RunControl.reseeded reads both in a random-seed callback, where workflow.info()/now() raise.
    from temporalio.workflow import _Runtime

    for name in ("current", "workflow_get_current_history_length", "workflow_time_ns"):
        assert callable(getattr(_Runtime, name, None)), (
            f"temporalio's workflow runtime lost {name}: update compat.workflow_readers"
        )
