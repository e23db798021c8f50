"""A durable pydantic-ai agent that makes four model calls and three tool calls, logging each.

Every model call and tool call appends ``<event> <pid>`` to the file named by GECKO_AGENT_LOG, so a
test can count them across a worker crash. The model's call number is the number of responses
already in the conversation, so a call made again after a crash logs the same event again.
In a worker started with GECKO_AGENT_HANG_AT=N, model call N hangs (the test kills that worker).
"""

from __future__ import annotations

import asyncio
import os

from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from gecko_temporal import Workflow, durable_agent
from tests.pipelines.procs import read_event_log

TOOL_CALLS = 3


class Tally(BaseModel):
    steps: list[int]
    note: str


def log(event: str) -> None:
    with open(os.environ["GECKO_AGENT_LOG"], "a") as f:
        f.write(f"{event} {os.getpid()}\n")


read_log = read_event_log  # (event, pid) per node execution


async def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    n = sum(isinstance(m, ModelResponse) for m in messages)
    log(f"model-{n}")
    if os.environ.get("GECKO_AGENT_HANG_AT") == str(n):
        await asyncio.sleep(3600)  # this worker is about to be killed
    if n < TOOL_CALLS:
        return ModelResponse(parts=[ToolCallPart("record", {"i": n}, tool_call_id=f"call-{n}")])
    output = info.output_tools[0]
    return ModelResponse(
        parts=[ToolCallPart(output.name, {"steps": list(range(TOOL_CALLS)), "note": "counted"}, tool_call_id="final")]
    )


counter = Agent(FunctionModel(model), output_type=Tally, name="counter")


@counter.tool_plain
async def record(i: int) -> str:
    log(f"tool-{i}")
    return f"recorded {i}"


def report(tally: Tally) -> dict:
    return {"type": type(tally).__name__, "steps": tally.steps, "note": tally.note}


wf = Workflow("AgentCrash")
wf.add_node("Count", durable_agent(counter))
wf.add_node("Report", report)
wf.add_edge("Count", "Report").set_entry_point("Count")
