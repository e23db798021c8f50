"""Determinism of the durable agent workflow (GeckoAgent): a recorded agent run replays on today's code.

The agent of tests/pipelines/agent_crash.py (four model calls, three tool calls) ran once on the
embedded dev server; its GeckoAgent history is tests/histories/durable_agent.json. Re-record on
purpose only: ``GECKO_RECORD_HISTORIES=durable_agent python -m pytest tests/test_agent_replay.py``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

pytest.importorskip("pydantic_ai", reason="pydantic-ai-slim is not installed (pip install -e '.[dev]' brings it)")

from pydantic_ai.durable_exec.temporal import AgentPlugin, PydanticAIPayloadConverter, PydanticAIPlugin
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from gecko_temporal.integrations.durable_agents import _AGENTS, GeckoAgentWorkflow

HISTORY = Path(__file__).parent / "histories" / "durable_agent.json"
RECORD = (
    "durable_agent" in os.environ.get("GECKO_RECORD_HISTORIES", "").split(",")
    or os.environ.get("GECKO_RECORD_HISTORIES") == "1"
)


@pytest.mark.skipif(not RECORD, reason="set GECKO_RECORD_HISTORIES=durable_agent to re-record the history")
async def test_record_the_durable_agent_history(dev_server, tmp_path, monkeypatch):
    monkeypatch.setenv("GECKO_AGENT_LOG", str(tmp_path / "calls.log"))
    from gecko_temporal.temporal.client import connect
    from tests.pipelines import agent_crash

    handle = await agent_crash.wf.start("count", session_id="replay-durable-agent")
    await handle.result()
    client = await connect()
    (run,) = [w async for w in client.list_workflows("WorkflowId STARTS_WITH 'replay-durable-agent/agent/'")]
    history = await client.get_workflow_handle(run.id).fetch_history()
    HISTORY.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")


async def test_the_durable_agent_history_replays():
    import tests.pipelines.agent_crash  # noqa: F401  builds the durable agent "counter", as a worker would

    history = WorkflowHistory.from_json("replay-durable-agent", HISTORY.read_text())
    kinds = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert kinds.count("agent__counter__model_request") == 4 and len(kinds) == 7
    replayer = Replayer(
        workflows=[GeckoAgentWorkflow],
        plugins=[PydanticAIPlugin(), AgentPlugin(_AGENTS["counter"].runnable)],
        data_converter=dataclasses.replace(DataConverter.default, payload_converter_class=PydanticAIPayloadConverter),
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules("gecko_temporal")
        ),
    )
    await replayer.replay_workflow(history)
