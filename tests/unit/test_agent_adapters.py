"""Agent objects as nodes, without a server: names, adapters, and the errors for unusable objects."""

from __future__ import annotations

import sys

import pytest
from pydantic import BaseModel

from gecko_temporal import GraphError, Team, Workflow, step
from gecko_temporal.core.build.adapters import agent_name
from gecko_temporal.integrations.agents import AgentNode, adapt, prompt_text


class Verdict(BaseModel):
    winner: str


def test_plain_objects_are_not_agents():
    assert adapt(lambda x: x) is None and adapt(object()) is None and agent_name(len) is None


def test_an_unusable_object_is_refused_with_what_would_work():
    class Crew:
        def kickoff(self, inputs):
            return inputs

    with pytest.raises(GraphError) as info:
        Workflow("w").add_node("Crew", Crew())
    message = str(info.value)
    assert message.startswith(
        'node "Crew" must be a function, a callable object or an object with a run() method; got Crew <'
    )
    assert "pydantic-ai, LangChain runnables and OpenAI Agents SDK agents work as they are" in message
    assert "this object has kickoff(): pass the bound method, e.g. add_node(name, obj.kickoff)" in message
    with pytest.raises(GraphError, match=r"Team member 0 \"int\" must be a function"):
        Team([42])


def test_step_on_a_bound_method_marks_a_wrapper_named_after_its_owner():
    class Model:
        name = "tiny-model"

        async def ainvoke(self, text):
            return text.upper()

    model = Model()
    marked = step(name="LLM", retries=1)(model.ainvoke)
    wf = Workflow("w").add_node(marked)
    assert list(wf.nodes) == ["LLM"] and wf.nodes["LLM"].options.retries == 1
    assert wf.nodes["LLM"].callee.is_async
    unnamed = step(retries=2)(model.ainvoke)
    assert Workflow("v").add_node(unnamed).nodes.keys() == {"tiny-model"}
    assert Team([model.ainvoke, model.ainvoke]).names == ["tiny-model", "tiny-model#2"]


def test_prompt_text_keeps_strings_and_writes_other_values_as_json():
    assert prompt_text("hi") == "hi" and prompt_text(None) is None
    assert prompt_text({"a": [1, 2]}) == '{"a": [1, 2]}'
    assert prompt_text(Verdict(winner="x")) == '{"winner":"x"}'


def test_pydantic_ai_agents_are_named_by_name_output_type_or_agent():
    pytest.importorskip("pydantic_ai", reason="pydantic-ai-slim is not installed")
    from pydantic_ai import Agent
    from pydantic_ai.models.test import TestModel

    from gecko_temporal.core import codec

    named, typed, plain = (
        Agent(TestModel(), name="writer"),
        Agent(TestModel(), output_type=Verdict),
        Agent(TestModel()),
    )
    assert Team([named, typed, plain, plain]).names == ["writer", "Verdict", "agent", "agent#4"]
    node = adapt(typed)
    assert isinstance(node, AgentNode) and node.library == "pydantic-ai" and node.output_type is Verdict
    assert codec.type_ref(Verdict) in codec._KNOWN  # the output model is allowed: the graph names it


def test_durable_agent_needs_a_stable_name_and_a_unique_one(monkeypatch):
    pytest.importorskip("pydantic_ai", reason="pydantic-ai-slim is not installed")
    from pydantic_ai import Agent
    from pydantic_ai.models.test import TestModel

    from gecko_temporal import durable_agent
    from gecko_temporal.integrations import durable_agents

    # The process-wide registry of durable agents starts empty for this test and is restored after it:
    # a second run of the test in the same process (mutmut runs the suite twice in one process) must not
    # meet the "unit-durable" agent the first run registered.
    monkeypatch.setattr(durable_agents, "_AGENTS", {})

    with pytest.raises(GraphError, match=r'durable_agent\(\) needs a stable name .*name="writer"'):
        durable_agent(Agent(TestModel()))
    agent = Agent(TestModel(), name="unit-durable")
    assert durable_agent(agent).name == "unit-durable"
    assert durable_agent(agent).name == "unit-durable"  # the same agent again (module re-import) is fine
    with pytest.raises(GraphError, match='two different durable agents are named "unit-durable"'):
        durable_agent(Agent(TestModel(), name="unit-durable"))
    with pytest.raises(GraphError, match="durable_agent\\(\\) takes a pydantic-ai Agent, got str"):
        durable_agent("writer")
    assert list(Workflow("d").add_node(durable_agent(agent)).nodes) == ["unit-durable"]
    with pytest.raises(
        GraphError,
        match=r"durable_agent\(\): model_timeout must be a positive number of seconds, "
        r"got -1; model_retries counts attempts and must be an int >= 1, got 0",
    ):
        durable_agent(agent, model_timeout=-1, model_retries=0)


def test_langchain_runnables_are_named_after_the_runnable():
    pytest.importorskip("langchain_core", reason="langchain-core is not installed")
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.output_parsers import StrOutputParser

    from gecko_temporal.core import codec

    llm = FakeListChatModel(responses=["a"])
    assert list(Workflow("l").add_node(llm).add_node(llm | StrOutputParser()).nodes) == [
        "FakeListChatModel",
        "RunnableSequence",
    ]
    message = AIMessage(content="hi", id="1", tool_calls=[{"name": "t", "args": {"a": 1}, "id": "c"}])
    assert codec.decode(codec.encode(message)) == message  # allowed explicitly by the adapter


def test_importing_the_engine_loads_no_agent_library():
    import subprocess

    code = (
        "import sys, gecko_temporal, gecko_temporal.integrations.agents; from gecko_temporal import Workflow; "
        "Workflow('w').add_node('a', lambda x: x); "
        "print([m for m in ('pydantic_ai', 'langchain_core', 'agents', 'langgraph') if sys.modules.get(m) is not None])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
