"""Agents users already have, as nodes and Team members, on a real dev server with the real libraries.

pydantic-ai agents run offline on TestModel/FunctionModel, LangChain on its fake chat models, the
OpenAI Agents SDK on a fake Model; each test is skipped, naming the package, when its library is
missing. The embedded worker runs in this process, so a model function can record what happened
to it (started, cancelled) in a module-level list the test reads.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import pytest
from pydantic import BaseModel

from gecko_temporal import ExecutionStrategy, MemberResult, NodeError, Team, Workflow, step

pytestmark = pytest.mark.asyncio


def _need(module: str, package: str):
    return pytest.importorskip(module, reason=f"{package} is not installed (pip install -e '.[dev]' brings it)")


class Verdict(BaseModel):
    winner: str
    score: int


EVENTS: list[str] = []  # what the model functions below saw, in this process


async def _poll(predicate, within: float, what: str) -> None:
    deadline = time.monotonic() + within  # a failure bound only
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {within} s; events: {EVENTS}")
        await asyncio.sleep(0.05)


async def _agent_runs(client, prefix: str, count: int = 1) -> list:
    """The GeckoAgent workflows whose id starts with ``prefix``; polled, as visibility is eventually
    consistent (a run started a moment ago may not be listed yet)."""
    query = f"WorkflowType = 'GeckoAgent' AND WorkflowId STARTS_WITH '{prefix}'"
    deadline = time.monotonic() + 30  # a failure bound only
    while True:
        found = [w async for w in client.list_workflows(query)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)


# -- pydantic-ai -----------------------------------------------------------------------------------
def _model_that_hangs(label: str, reply: str):
    """A pydantic-ai FunctionModel body that notes "<label>-start" in EVENTS, waits an hour, and notes
    "<label>-cancelled" when it is cancelled (what a race's loser or a cancelled session must see)."""
    from pydantic_ai.messages import ModelResponse, TextPart

    async def model(messages, info) -> ModelResponse:
        EVENTS.append(f"{label}-start")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            EVENTS.append(f"{label}-cancelled")
            raise
        return ModelResponse(parts=[TextPart(reply)])

    return model


async def test_pydantic_ai_agent_is_a_node_and_its_structured_output_arrives_typed(session_id):
    _need("pydantic_ai", "pydantic-ai-slim")
    from pydantic_ai import Agent
    from pydantic_ai.models.test import TestModel

    judge = Agent(TestModel(custom_output_args={"winner": "fast", "score": 9}), output_type=Verdict)
    writer = Agent(TestModel(custom_output_text="a short draft"), name="writer")

    def check(parts: dict) -> dict:
        verdict = parts["Verdict"]
        return {"verdict_type": type(verdict).__name__, "winner": verdict.winner, "draft": parts["writer"]}

    wf = Workflow(f"AgentNode-{uuid.uuid4().hex[:6]}")
    wf.add_node(judge).add_node(writer).add_node("Start", lambda x: x).add_node("Check", check)
    for name in ("Verdict", "writer"):  # unnamed agent: named after its output type
        wf.add_edge("Start", name).add_edge(name, "Check")
    wf.set_entry_point("Start")
    assert list(wf.nodes) == ["Verdict", "writer", "Start", "Check"]
    result = await wf.execute("which is better?", session_id=session_id, timeout=60)
    assert result == {"verdict_type": "Verdict", "winner": "fast", "draft": "a short draft"}


async def test_pydantic_ai_agents_as_team_members_return_typed_results(session_id):
    _need("pydantic_ai", "pydantic-ai-slim")
    from pydantic_ai import Agent
    from pydantic_ai.models.test import TestModel

    members = [
        Agent(TestModel(custom_output_args={"winner": w, "score": s}), output_type=Verdict, name=w)
        for w, s in (("ann", 1), ("bob", 2))
    ]
    wf = Workflow(f"AgentTeam-{uuid.uuid4().hex[:6]}")
    wf.add_node("Panel", Team(members, strategy=ExecutionStrategy.ALL))
    wf.add_node("Sum", lambda results: [(r.member, type(r.result).__name__, r.result.score) for r in results])
    wf.add_edge("Panel", "Sum").set_entry_point("Panel")
    handle = await wf.start("judge this", session_id=session_id, timeout=60)
    assert await handle.result() == [["ann", "Verdict", 1], ["bob", "Verdict", 2]]
    history = await handle.temporal_handle.fetch_history()
    types = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert sorted(t.split(".", 1)[1] for t in types[:2]) == ["Panel.ann", "Panel.bob"]


@pytest.mark.long
async def test_race_of_agents_cancels_the_losers_model_calls(session_id):
    _need("pydantic_ai", "pydantic-ai-slim")
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelResponse, TextPart
    from pydantic_ai.models.function import FunctionModel

    from gecko_temporal import durable_agent

    tag = uuid.uuid4().hex[:6]

    def slow_model(label: str):
        return _model_that_hangs(f"{label}-{tag}", "too late")

    async def fast_model(messages, info) -> ModelResponse:
        # Wins only once both slow agents are mid-call, so their cancellation is what the test sees.
        while not {f"slow-{tag}-start", f"durable-{tag}-start"} <= set(EVENTS):
            await asyncio.sleep(0.02)
        return ModelResponse(parts=[TextPart("quick answer")])

    fast = Agent(FunctionModel(fast_model), name="fast")
    slow = Agent(FunctionModel(slow_model("slow")), name="slow")
    slow_durable = durable_agent(Agent(FunctionModel(slow_model("durable")), name=f"slow_durable_{tag}"))
    wf = Workflow(f"AgentRace-{tag}")
    wf.add_node("Race", Team([slow, slow_durable, fast], strategy=ExecutionStrategy.RACE)).set_entry_point("Race")
    handle = await wf.start("go", session_id=session_id, timeout=120)
    results = await handle.result()
    assert [(r.member, r.status) for r in results] == [
        ("slow", "cancelled"),
        (f"slow_durable_{tag}", "cancelled"),
        ("fast", "succeeded"),
    ]
    assert results[2].result == "quick answer" and isinstance(results[2], MemberResult)
    # The losers' model calls were cancelled where they waited: each saw CancelledError.
    await _poll(
        lambda: {f"slow-{tag}-cancelled", f"durable-{tag}-cancelled"} <= set(EVENTS),
        60,
        "both losers' model calls cancelled",
    )
    # The durable loser's agent workflow was cancelled through Temporal, with its model activity.
    from temporalio.client import WorkflowExecutionStatus

    from gecko_temporal.temporal.client import connect

    client = await connect()
    found = await _agent_runs(client, f"{session_id}/")
    assert len(found) == 1

    async def agent_status():
        return (await client.get_workflow_handle(found[0].id).describe()).status

    deadline = time.monotonic() + 30
    while await agent_status() != WorkflowExecutionStatus.CANCELED and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert await agent_status() == WorkflowExecutionStatus.CANCELED
    assert Counter(e for e in EVENTS if tag in e) == Counter(
        {f"slow-{tag}-start": 1, f"slow-{tag}-cancelled": 1, f"durable-{tag}-start": 1, f"durable-{tag}-cancelled": 1}
    )


async def test_race_of_agents_that_all_fail_names_each_failure(session_id):
    _need("pydantic_ai", "pydantic-ai-slim")
    from pydantic_ai import Agent
    from pydantic_ai.models.function import FunctionModel

    def broken(message: str):
        def model(messages, info):
            raise RuntimeError(message)

        return model

    wf = Workflow(f"AgentRaceFails-{uuid.uuid4().hex[:6]}")
    wf.add_node(
        "Race",
        Team(
            [Agent(FunctionModel(broken("quota")), name="a"), Agent(FunctionModel(broken("offline")), name="b")],
            strategy=ExecutionStrategy.RACE,
            retries=1,
        ),
    ).set_entry_point("Race")
    with pytest.raises(
        NodeError,
        match=r'Team has no winner: member "a" failed: RuntimeError: quota; '
        r'member "b" failed: RuntimeError: offline',
    ):
        await wf.execute("go", session_id=session_id, timeout=60)


async def test_durable_agent_runs_each_model_and_tool_call_as_an_activity(session_id, tmp_path, monkeypatch):
    _need("pydantic_ai", "pydantic-ai-slim")
    monkeypatch.setenv("GECKO_AGENT_LOG", str(tmp_path / "calls.log"))
    from tests.pipelines import agent_crash

    handle = await agent_crash.wf.start("count", session_id=session_id, timeout=120)
    assert await handle.result() == {"type": "Tally", "steps": [0, 1, 2], "note": "counted"}
    events = Counter(e for e, _ in agent_crash.read_log(str(tmp_path / "calls.log")))
    assert events == Counter(
        {"model-0": 1, "tool-0": 1, "model-1": 1, "tool-1": 1, "model-2": 1, "tool-2": 1, "model-3": 1}
    )
    from gecko_temporal.temporal.client import connect

    client = await connect()
    (agent_run,) = await _agent_runs(client, f"{session_id}/agent/counter/")
    history = await client.get_workflow_handle(agent_run.id).fetch_history()
    activities = Counter(
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    )
    assert activities == Counter({"agent__counter__model_request": 4, "agent__counter__toolset__<agent>__call_tool": 3})


# -- LangChain / LangGraph -------------------------------------------------------------------------
async def test_langchain_chat_model_and_chain_are_nodes_and_messages_round_trip(session_id):
    _need("langchain_core", "langchain-core")
    from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    llm = GenericFakeChatModel(messages=iter([AIMessage(content="draft one", id="m-1")]))
    chain = (
        ChatPromptTemplate.from_messages([("human", "Summarise: {text}")])
        | FakeListChatModel(responses=["a summary"])
        | StrOutputParser()
    )

    def check(parts: dict) -> dict:
        message = parts["LLM"]
        reply = parts["Reply"]
        return {
            "type": type(message).__name__,
            "content": message.content,
            "id": message.id,
            "chain": parts["Chain"],
            "reply": [type(reply).__name__, reply.content],
        }

    wf = Workflow(f"LangChain-{uuid.uuid4().hex[:6]}")
    wf.add_node("LLM", llm).add_node("Chain", chain).add_node("Start", lambda x: x).add_node("Check", check)
    wf.add_node("Echo", lambda message: message)  # an AIMessage as input and output of a plain node
    wf.add_node("Reply", FakeListChatModel(responses=["a reply"]))  # a message in, an AIMessage out
    for name in ("LLM", "Chain"):
        wf.add_edge("Start", name).add_edge(name, "Check")
    wf.add_edge("LLM", "Echo").add_edge("Echo", "Reply").add_edge("Reply", "Check")
    wf.set_entry_point("Start")
    handle = await wf.start({"text": "durable agents"}, session_id=session_id, timeout=60)
    result = await handle.result()
    assert result == {
        "type": "AIMessage",
        "content": "draft one",
        "id": "m-1",
        "chain": "a summary",
        "reply": ["AIMessage", "a reply"],
    }
    state = await handle.state()
    assert state["completed"] == ["Start", "LLM", "Chain", "Echo", "Reply", "Check"]


async def test_langchain_bound_methods_and_step_name_them_after_their_model(session_id):
    _need("langchain_core", "langchain-core")
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.messages import AIMessage

    llm = FakeListChatModel(responses=["one", "two"])
    # bound methods are called as they are: a chat model's ainvoke wants a list of messages
    team = Team([llm.ainvoke, llm.ainvoke], strategy=ExecutionStrategy.ALL, input_mapper=lambda m, i: [m])
    assert team.names == ["FakeListChatModel", "FakeListChatModel#2"]
    wf = Workflow(f"LangChainStep-{uuid.uuid4().hex[:6]}")
    wf.add_node(step(name="LLM", retries=1)(llm.ainvoke)).add_node("Team", team).add_edge("LLM", "Team")
    wf.set_entry_point("LLM")
    results = await wf.execute("hello", session_id=session_id, timeout=60)
    assert [type(r.result) for r in results] == [AIMessage, AIMessage]
    assert sorted(r.result.content for r in results) == ["one", "two"]  # the model answered in turn


async def test_compiled_langgraph_graph_is_a_node(session_id):
    _need("langgraph", "langgraph")
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.messages import AIMessage, HumanMessage
    from langgraph.graph import END, START, MessagesState, StateGraph

    llm = FakeListChatModel(responses=["graph answer"])

    async def call_model(state: MessagesState) -> dict:
        return {"messages": [await llm.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", call_model)
    builder.add_edge(START, "model").add_edge("model", END)
    graph = builder.compile()
    wf = Workflow(f"LangGraph-{uuid.uuid4().hex[:6]}")
    wf.add_node("Graph", graph).add_node("Last", lambda out: out["messages"]).add_edge("Graph", "Last")
    wf.set_entry_point("Graph")
    messages = await wf.execute({"messages": [{"role": "user", "content": "hi"}]}, session_id=session_id, timeout=60)
    assert [type(m) for m in messages] == [HumanMessage, AIMessage]
    assert messages[1].content == "graph answer"


# -- OpenAI Agents SDK -------------------------------------------------------------------------------
async def test_openai_agents_sdk_agent_is_a_node_with_a_fake_model(session_id):
    _need("agents", "openai-agents")
    from agents import Agent, Usage, set_tracing_disabled
    from agents.items import ModelResponse
    from agents.models.interface import Model
    from openai.types.responses import ResponseOutputMessage, ResponseOutputText

    set_tracing_disabled(True)  # offline: no trace export

    class FakeModel(Model):
        async def get_response(self, system_instructions, input, *args, **kwargs):
            text = ResponseOutputText(type="output_text", text='{"winner": "sdk", "score": 3}', annotations=[])
            message = ResponseOutputMessage(
                id="m1", type="message", role="assistant", status="completed", content=[text]
            )
            return ModelResponse(output=[message], usage=Usage(), response_id=None)

        def stream_response(self, *args, **kwargs):
            raise NotImplementedError("not streamed here")

    critic = Agent(name="critic", instructions="judge", model=FakeModel(), output_type=Verdict)
    wf = Workflow(f"OpenAIAgents-{uuid.uuid4().hex[:6]}")
    wf.add_node(critic).add_node("Read", lambda v: [type(v).__name__, v.winner, v.score]).add_edge("critic", "Read")
    wf.set_entry_point("critic")
    assert await wf.execute("which?", session_id=session_id, timeout=60) == ["Verdict", "sdk", 3]


# -- a worker SIGKILLed in the middle of a durable agent ------------------------------------------
@pytest.mark.long
@pytest.mark.slow
async def test_sigkilled_worker_mid_durable_agent_repeats_no_finished_model_call(dev_server, tmp_path, monkeypatch):
    """Separate worker processes (worker.py): the first hangs in the agent's third model call and is
    SIGKILLed; a second worker finishes the run. Every call is logged with its process id."""
    _need("pydantic_ai", "pydantic-ai-slim")
    from tests.pipelines import agent_crash
    from tests.pipelines.procs import Procs, fresh_queue, ready_worker, wait_until

    log = tmp_path / "calls.log"
    queue = fresh_queue(monkeypatch, dev_server.address, "agent-crash")  # the test only starts the run
    spec = "tests.pipelines.agent_crash:wf"
    procs = Procs(tmp_path)
    try:
        first = ready_worker(procs, spec, dev_server.address, queue, GECKO_AGENT_LOG=str(log), GECKO_AGENT_HANG_AT="2")
        monkeypatch.setenv("GECKO_AGENT_LOG", str(log))
        handle = await agent_crash.wf.start("count", session_id=f"agent-crash-{uuid.uuid4().hex[:8]}", timeout=180)

        def events() -> Counter:
            return Counter(e for e, _ in agent_crash.read_log(str(log)))

        await asyncio.to_thread(wait_until, lambda: events()["model-2"] == 1, 120, "third model call in flight")
        first.kill()
        killed_at = time.monotonic()
        assert events() == Counter({"model-0": 1, "tool-0": 1, "model-1": 1, "tool-1": 1, "model-2": 1})

        second = procs.worker(
            spec, "--address", dev_server.address, "--task-queue", queue, env={"GECKO_AGENT_LOG": str(log)}
        )
        result = await asyncio.wait_for(handle.result(), 150)  # a failure bound only
        print(f"\ndurable agent: run finished {time.monotonic() - killed_at:.1f} s after the SIGKILL")  # log only
        assert result == {"type": "Tally", "steps": [0, 1, 2], "note": "counted"}
        entries = agent_crash.read_log(str(log))
        # Finished calls ran once, in the first process; only the call in flight ran again.
        assert Counter(e for e, _ in entries) == Counter(
            {"model-0": 1, "tool-0": 1, "model-1": 1, "tool-1": 1, "model-2": 2, "tool-2": 1, "model-3": 1}
        )
        assert [p for e, p in entries if e in ("model-0", "tool-0", "model-1", "tool-1")] == [first.pid] * 4
        assert [p for e, p in entries if e == "model-2"] == [first.pid, second.pid]
        assert {p for e, p in entries if e in ("tool-2", "model-3")} == {second.pid}
        state = await handle.state()
        assert state["completed"] == ["Count", "Report"]
    finally:
        procs.close()


async def test_durable_agent_whose_model_keeps_failing_fails_the_node_once_retries_are_spent(session_id):
    _need("pydantic_ai", "pydantic-ai-slim")
    from pydantic_ai import Agent
    from pydantic_ai.models.function import FunctionModel

    from gecko_temporal import durable_agent

    tag = uuid.uuid4().hex[:6]

    def model(messages, info):
        EVENTS.append(f"broken-{tag}")
        raise RuntimeError("the model is down")

    broken = durable_agent(Agent(FunctionModel(model), name=f"broken_{tag}"), model_retries=2)
    wf = Workflow(f"DurableFails-{tag}")
    wf.add_node("Ask", broken).set_entry_point("Ask")
    with pytest.raises(
        NodeError,
        match=rf'node "Ask" failed: RuntimeError: durable agent "broken_{tag}" failed: '
        "the model is down",
    ):
        await wf.execute("go", session_id=session_id, timeout=60)
    # the model call's own retries (2), and no retry of the whole agent on top of them
    assert EVENTS.count(f"broken-{tag}") == 2


@pytest.mark.long
async def test_cancelling_a_session_cancels_its_durable_agent_run(session_id):
    _need("pydantic_ai", "pydantic-ai-slim")
    from pydantic_ai import Agent
    from pydantic_ai.models.function import FunctionModel
    from temporalio.client import WorkflowExecutionStatus

    from gecko_temporal import durable_agent
    from gecko_temporal.temporal.client import connect

    tag = uuid.uuid4().hex[:6]

    model = _model_that_hangs(f"waiting-{tag}", "never")

    wf = Workflow(f"DurableCancel-{tag}")
    wf.add_node("Ask", durable_agent(Agent(FunctionModel(model), name=f"waiting_{tag}"))).set_entry_point("Ask")
    handle = await wf.start("go", session_id=session_id, timeout=120)
    await _poll(lambda: f"waiting-{tag}-start" in EVENTS, 60, "the agent's model call in flight")
    await handle.cancel()
    await _poll(lambda: f"waiting-{tag}-cancelled" in EVENTS, 60, "the model call cancelled")
    client = await connect()
    (agent_run,) = await _agent_runs(client, f"{session_id}/agent/")
    agent_handle = client.get_workflow_handle(agent_run.id)
    deadline = time.monotonic() + 30  # a failure bound only
    while (await agent_handle.describe()).status != WorkflowExecutionStatus.CANCELED and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert (await agent_handle.describe()).status == WorkflowExecutionStatus.CANCELED
    assert EVENTS.count(f"waiting-{tag}-start") == 1


@pytest.mark.slow
async def test_stopping_a_worker_mid_durable_agent_hands_the_same_agent_run_to_the_next(
    dev_server, tmp_path, monkeypatch
):
    """SIGTERM (graceful stop, as a redeploy does) in the third model call: the node's activity is
    cancelled by the shutdown, which must not cancel the agent run; the next worker re-attaches."""
    _need("pydantic_ai", "pydantic-ai-slim")
    from gecko_temporal.temporal.client import connect
    from tests.pipelines import agent_crash
    from tests.pipelines.procs import Procs, fresh_queue, ready_worker, wait_until

    log = tmp_path / "calls.log"
    queue = fresh_queue(monkeypatch, dev_server.address, "agent-stop")
    spec = "tests.pipelines.agent_crash:wf"
    session = f"agent-stop-{uuid.uuid4().hex[:8]}"
    procs = Procs(tmp_path)
    try:
        env = {"GECKO_AGENT_LOG": str(log), "GECKO_AGENT_HANG_AT": "2"}
        first = ready_worker(procs, spec, dev_server.address, queue, "--graceful-shutdown", "1", **env)
        monkeypatch.setenv("GECKO_AGENT_LOG", str(log))
        handle = await agent_crash.wf.start("count", session_id=session, timeout=180)
        await asyncio.to_thread(
            wait_until,
            lambda: ("model-2", first.pid) in agent_crash.read_log(str(log)),
            120,
            "third model call in flight",
        )
        first.stop()  # SIGTERM, then waits for the process to exit
        second = procs.worker(
            spec, "--address", dev_server.address, "--task-queue", queue, env={"GECKO_AGENT_LOG": str(log)}
        )
        result = await asyncio.wait_for(handle.result(), 150)  # a failure bound only
        assert result == {"type": "Tally", "steps": [0, 1, 2], "note": "counted"}
        counts = Counter(e for e, _ in agent_crash.read_log(str(log)))
        assert counts == Counter(
            {"model-0": 1, "tool-0": 1, "model-1": 1, "tool-1": 1, "model-2": 2, "tool-2": 1, "model-3": 1}
        )
        assert {p for e, p in agent_crash.read_log(str(log)) if e == "model-3"} == {second.pid}
        client = await connect()
        (agent_run,) = await _agent_runs(client, f"{session}/agent/counter/")  # one agent run, not cancelled
        from temporalio.client import WorkflowExecutionStatus

        assert (await client.get_workflow_handle(agent_run.id).describe()).status == WorkflowExecutionStatus.COMPLETED
    finally:
        procs.close()
