"""Agents report their usage by themselves: pydantic-ai (plain and durable) and LangChain nodes on a
real dev server, rolled up in gecko_state["usage"] without a line of reporting code."""

from __future__ import annotations

import uuid

import pytest

from gecko_temporal import Workflow, durable_agent, set_price

pytestmark = pytest.mark.asyncio


async def test_pydantic_ai_and_langchain_nodes_report_usage(session_id):
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage
    from pydantic_ai import Agent
    from pydantic_ai.models.test import TestModel

    set_price("fake-llm", 1.0, 1.0)
    reply = AIMessage(
        content="a summary",
        usage_metadata={"input_tokens": 30, "output_tokens": 20, "total_tokens": 50},
        response_metadata={"model_name": "fake-llm"},
    )
    wf = Workflow("AgentUsage")
    wf.add_node("Draft", Agent(TestModel(custom_output_text="a draft"), name="drafter"))
    wf.add_node("Summarise", GenericFakeChatModel(messages=iter([reply])))
    wf.add_edge("Draft", "Summarise").set_entry_point("Draft")
    handle = await wf.start("write about geckos", session_id=session_id)
    await handle.result()
    usage = (await handle.state())["usage"]
    draft, summary = (usage["nodes"][n] for n in ("Draft", "Summarise"))
    # TestModel counts tokens as pydantic-ai does; its model ("test") has no price: tokens, no cost
    assert draft["calls"] == 1 and draft["input_tokens"] > 0 and draft["unpriced"] == 1
    assert summary == {"input_tokens": 30, "output_tokens": 20, "tokens": 50, "cost_usd": 0.00005, "calls": 1}
    assert usage["total"]["tokens"] == draft["tokens"] + 50


async def test_a_durable_agent_reports_the_usage_of_its_own_workflow(session_id):
    from pydantic_ai import Agent
    from pydantic_ai.models.test import TestModel

    tag = uuid.uuid4().hex[:6]
    wf = Workflow("DurableAgentUsage")
    wf.add_node("Durable", durable_agent(Agent(TestModel(custom_output_text="checked"), name=f"checker_{tag}")))
    wf.set_entry_point("Durable")
    handle = await wf.start("check geckos", session_id=session_id)
    assert await handle.result() == "checked"
    durable = (await handle.state())["usage"]["nodes"]["Durable"]
    assert durable["calls"] == 1 and durable["input_tokens"] > 0  # from inside the agent's own workflow
