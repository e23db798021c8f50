"""OpenTelemetry through temporalio.contrib.opentelemetry (GECKO_OTEL=1): one span per node, in the
trace the starting client opened, exported to an in-memory exporter, on the real dev server."""

from __future__ import annotations

import uuid

import pytest

trace = pytest.importorskip("opentelemetry.trace")
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from gecko_temporal import ExecutionStrategy, Team, Workflow  # noqa: E402

EXPORTER = InMemorySpanExporter()


def _provider() -> None:
    # The global provider can be set once per process; this module is its only user.
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)


def fetch(x):
    return x + 1


async def think(x, context):
    return x * 2


traced = Workflow("OtelPipeline")
traced.add_node("Fetch", fetch).add_node("Think", think).add_node("Pair", Team([fetch, think], ExecutionStrategy.ALL))
traced.add_edge("Fetch", "Think").add_edge("Think", "Pair").set_entry_point("Fetch")


async def test_one_span_per_node_with_pipeline_node_and_step(dev_server, monkeypatch, session_id):
    from gecko_temporal.temporal.client import connect
    from gecko_temporal.temporal.worker import GeckoWorker

    _provider()
    EXPORTER.clear()
    queue = f"otel-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("GECKO_OTEL", "1")
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_server.address)  # a worker of its own, with the interceptor
    monkeypatch.setenv("GECKO_TASK_QUEUE", queue)
    monkeypatch.setenv("GECKO_PAYLOAD_STORE", "none")
    client = await connect()
    worker = GeckoWorker(client, queue)
    worker.serve(traced)
    await worker.start()
    try:
        handle = await traced.start(1, session_id=session_id)
        assert [r.result for r in await handle.result()] == [5, 8]
    finally:
        await worker.shutdown()

    spans = EXPORTER.get_finished_spans()
    nodes = [s for s in spans if s.name.startswith("gecko.node ")]
    assert sorted(s.name for s in nodes) == [
        "gecko.node OtelPipeline.Fetch",
        "gecko.node OtelPipeline.Pair.fetch",
        "gecko.node OtelPipeline.Pair.think",
        "gecko.node OtelPipeline.Think",
    ]
    by_name = {s.name: s for s in nodes}
    fetch_span = by_name["gecko.node OtelPipeline.Fetch"]
    assert dict(fetch_span.attributes) == {
        "gecko.pipeline": "OtelPipeline",
        "gecko.node": "Fetch",
        "gecko.step": 1,
        "gecko.session": session_id,
        "gecko.attempt": 1,
    }
    assert by_name["gecko.node OtelPipeline.Think"].attributes["gecko.step"] == 2
    assert by_name["gecko.node OtelPipeline.Pair.think"].attributes["gecko.member"] == "think"
    # One trace from the client's StartWorkflow span down to each node, through Temporal's spans.
    start = next(s for s in spans if s.name.startswith("StartWorkflow:GeckoWorkflow"))
    assert {s.context.trace_id for s in nodes} == {start.context.trace_id}
    parents = {s.context.span_id: s for s in spans}
    parent = parents[fetch_span.parent.span_id]
    assert parent.name == "RunActivity:OtelPipeline.Fetch"


async def test_tracing_off_makes_no_spans(dev_server, session_id, monkeypatch):
    _provider()
    EXPORTER.clear()
    monkeypatch.delenv("GECKO_OTEL", raising=False)
    wf = Workflow("OtelOff").add_node("a", fetch).set_entry_point("a")
    assert await (await wf.start(1, session_id=session_id)).result() == 2
    assert not [s for s in EXPORTER.get_finished_spans() if s.name.startswith("gecko.node")]
