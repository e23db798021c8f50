"""Conformance scenarios, part 2: people in the loop (interrupt, state edits), failures, retries,
step limits and subgraphs. Sources: LangGraph's tests (test_pregel_async.py: interrupts, update_state,
retry policies, recursion limits, subgraphs) and its human-in-the-loop and subgraph how-tos.
"""

from __future__ import annotations

import operator
from collections import Counter
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphRecursionError
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, RetryPolicy, Send, interrupt
from lg_support import Difference, gecko_failure, gecko_run, scenario

import gecko_temporal as gk
from tests.pipelines.procs import waiting_for

CALLS: Counter[str] = Counter()  # node executions by engine and scenario (gecko's run in this process)


class Flaky(Exception):
    """Raised by a node's first attempt (LangGraph retries it under a RetryPolicy, as Temporal does)."""


class Doc(TypedDict, total=False):
    log: Annotated[list, operator.add]
    draft: str
    verdict: Any
    doc: str
    count: int


class Ask(TypedDict, total=False):
    draft: str
    verdict: Any
    doc: str
    count: int


def _config(thread: str) -> dict:
    return {"configurable": {"thread_id": thread}}


@scenario("interrupt_and_resume", "how-to human-in-the-loop: interrupt() in a node, resumed with Command(resume=...)")
class InterruptAndResume:
    @staticmethod
    async def langgraph() -> Any:
        g = StateGraph(Ask)
        g.add_node("review", lambda s: {"verdict": interrupt({"draft": s["draft"], "question": "publish?"})})
        g.add_edge(START, "review")
        app, config = g.compile(checkpointer=InMemorySaver()), _config("interrupt")
        asked = await app.ainvoke({"draft": "v1"}, config)
        final = await app.ainvoke(Command(resume="yes"), config)
        return asked["__interrupt__"][0].value, final

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk.Workflow("C_interrupt_and_resume")
        wf.add_node(
            "review",
            lambda _, context: context.state.__setitem__(
                "verdict", context.interrupt({"draft": context.state["draft"], "question": "publish?"})
            ),
        )
        handle = await wf.set_entry_point("review").start(None, session_id=session, state={"draft": "v1"})
        asked = (await waiting_for(handle, "review"))["waiting"]["review"]["payload"]
        await handle.answer("review", "yes")
        await handle.result()
        return asked, (await handle.state())["state"]


@scenario("two_interrupts_in_one_node", "test_pregel_async: several interrupt() calls answered in order")
class TwoInterrupts:
    @staticmethod
    def _ask(ask: Any) -> dict:
        return {"verdict": [ask("first?"), ask("second?")]}

    @staticmethod
    async def langgraph() -> Any:
        g = StateGraph(Ask)
        g.add_node("ask", lambda s: TwoInterrupts._ask(interrupt))
        g.add_edge(START, "ask")
        app, config = g.compile(checkpointer=InMemorySaver()), _config("two")
        asked = [(await app.ainvoke({"draft": ""}, config))["__interrupt__"][0].value]
        asked.append((await app.ainvoke(Command(resume=1), config))["__interrupt__"][0].value)
        return asked, await app.ainvoke(Command(resume=2), config)

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk.Workflow("C_two_interrupts")
        wf.add_node("ask", lambda _, context: context.state.update(TwoInterrupts._ask(context.interrupt)))
        handle = await wf.set_entry_point("ask").start(None, session_id=session, state={"draft": ""})
        asked = [(await waiting_for(handle, "ask", 0))["waiting"]["ask"]["payload"]]
        await handle.answer("ask", 1)
        asked.append((await waiting_for(handle, "ask", 1))["waiting"]["ask"]["payload"])
        await handle.answer("ask", 2)
        await handle.result()
        return asked, (await handle.state())["state"]


def _lg_review_graph() -> Any:
    g = StateGraph(Doc)
    g.add_node("write", lambda s: {"draft": "v1", "log": ["write"]})
    g.add_node("review", lambda s: {"verdict": f"{interrupt('ok?')} for {s['draft']}", "log": ["review"]})
    g.add_edge(START, "write").add_edge("write", "review")
    return g.compile(checkpointer=InMemorySaver())


async def _gecko_review(name: str, session: str, edit: dict, **how: Any) -> Any:
    def review(_: Any, context: Any) -> None:
        context.state["verdict"] = f"{context.interrupt('ok?')} for {context.state['draft']}"
        context.state["log"] = ["review"]

    wf = gk.Workflow(name, reducers={"log": "extend"})
    wf.add_node("write", lambda _, context: context.state.update(draft="v1", log=["write"]))
    wf.add_node("review", review).add_edge("write", "review").set_entry_point("write")
    handle = await wf.start(None, session_id=session, state={"log": []})
    await waiting_for(handle, "review")
    await handle.update_state(edit, **how)
    await handle.answer("review", "yes")
    await handle.result()
    return (await handle.state())["state"]


@scenario("update_state_while_waiting", "how-to edit graph state: update_state during an interrupt, then resume")
class UpdateStateWhileWaiting:
    @staticmethod
    async def langgraph() -> Any:
        app, config = _lg_review_graph(), _config("edit")
        await app.ainvoke({"log": []}, config)
        await app.aupdate_state(config, {"draft": "v2"})
        return await app.ainvoke(Command(resume="yes"), config)

    @staticmethod
    async def gecko(session: str) -> Any:
        return await _gecko_review("C_update_state_while_waiting", session, {"draft": "v2"})


@scenario("parallel_interrupts_in_send_instances", "test_pregel_async: test_parallel_interrupts")
class ParallelInterrupts:
    @staticmethod
    async def langgraph() -> Any:
        g = StateGraph(Doc)
        g.add_node("ask", lambda item: {"log": [interrupt(f"about {item}")]})
        g.add_conditional_edges(START, lambda s: [Send("ask", i) for i in ("a", "b")], ["ask"])
        app, config = g.compile(checkpointer=InMemorySaver()), _config("parallel")
        asked = (await app.ainvoke({"log": []}, config))["__interrupt__"]
        answers = {i.id: f"answer for {i.value.split()[-1]}" for i in asked}
        final = await app.ainvoke(Command(resume=answers), config)
        return {"log": sorted(final["log"])}

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk.Workflow("C_parallel_interrupts", reducers={"log": "extend"})
        wf.add_node("ask", lambda item, context: context.state.__setitem__("log", [context.interrupt(f"about {item}")]))
        wf.add_conditional_edges(gk.START, lambda _: [gk.Send("ask", i) for i in ("a", "b")], ["ask"])
        handle = await wf.start(None, session_id=session, state={"log": []})
        for key in ("ask[0]", "ask[1]"):  # each instance waits under its own key, as its own interrupt id
            await waiting_for(handle, key)
        live = (await handle.state())["waiting"]
        for key in ("ask[1]", "ask[0]"):  # answered in any order
            await handle.answer(key, f"answer for {live[key]['payload'].split()[-1]}")
        await handle.result()
        return {"log": sorted((await handle.state())["state"]["log"])}


@scenario("node_error_reaches_the_caller", "test_pregel_async: an exception in a node fails the invoke")
class NodeErrorReachesCaller:
    @staticmethod
    def _parse(_: Any) -> Any:
        raise ValueError("cannot parse 'garbage'")

    @staticmethod
    async def langgraph() -> Any:
        g = StateGraph(Doc)
        g.add_node("parse", NodeErrorReachesCaller._parse)
        g.add_edge(START, "parse")
        try:
            await g.compile().ainvoke({"draft": "garbage"})
        except ValueError as exc:
            return type(exc).__name__, str(exc)
        return "no error"

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk.Workflow("C_node_error")
        wf.add_node("parse", NodeErrorReachesCaller._parse, retries=1)  # LangGraph retries nothing by default
        return await gecko_failure(wf.set_entry_point("parse"), session)


def _flaky(engine: str, name: str) -> Any:
    def node(*_: Any) -> dict:
        CALLS[f"{engine}:{name}"] += 1
        if CALLS[f"{engine}:{name}"] == 1:
            raise Flaky("the first attempt fails")
        return {"log": ["ok"]}

    return node


def _gecko_flaky(name: str, **options: Any) -> gk.Workflow:
    flaky = _flaky("gecko", name)

    def node(_: Any, context: Any) -> None:
        context.state["log"] = flaky()["log"]

    wf = gk.Workflow(f"C_{name}", reducers={"log": "extend"})
    return wf.add_node("flaky", node, **options).set_entry_point("flaky")


DEFAULT_RETRY = Difference(langgraph=("Flaky", "the first attempt fails", 1), gecko=({"log": ["ok"]}, 2))


@scenario("default_retry", "LangGraph: no retry_policy, no retry; gecko-temporal: 3 attempts", DEFAULT_RETRY)
class DefaultRetry:
    @staticmethod
    async def langgraph() -> Any:
        g = StateGraph(Doc)
        g.add_node("flaky", _flaky("langgraph", "default_retry"))
        g.add_edge(START, "flaky")
        try:
            await g.compile().ainvoke({"log": []})
        except Flaky as exc:
            return type(exc).__name__, str(exc), CALLS["langgraph:default_retry"]
        return "no error"

    @staticmethod
    async def gecko(session: str) -> Any:
        _, state = await gecko_run(_gecko_flaky("default_retry"), session, state={"log": []})
        return state, CALLS["gecko:default_retry"]


@scenario("retry_policy", "test_pregel_async: add_node(..., retry_policy=RetryPolicy(max_attempts=3))")
class RetryPolicyPorted:
    @staticmethod
    async def langgraph() -> Any:
        g = StateGraph(Doc)
        policy = RetryPolicy(max_attempts=3, initial_interval=0.01, jitter=False)
        g.add_node("flaky", _flaky("langgraph", "retry_policy"), retry_policy=policy)
        g.add_edge(START, "flaky")
        return await g.compile().ainvoke({"log": []}), CALLS["langgraph:retry_policy"]

    @staticmethod
    async def gecko(session: str) -> Any:
        policy = gk.RetryPolicy(maximum_attempts=3, initial_interval=0.01)
        _, state = await gecko_run(_gecko_flaky("retry_policy", retry=policy), session, state={"log": []})
        return state, CALLS["gecko:retry_policy"]


@scenario("recursion_limit", "test_pregel_async: GraphRecursionError; here max_steps (one node per super-step)")
class RecursionLimit:
    @staticmethod
    def _count(engine: str) -> Any:
        return lambda *_: CALLS.update([f"{engine}:loop"]) or None

    @staticmethod
    async def langgraph() -> Any:
        g = StateGraph(Doc)
        g.add_node("a", RecursionLimit._count("langgraph")).add_node("b", RecursionLimit._count("langgraph"))
        g.add_edge(START, "a").add_edge("a", "b").add_conditional_edges("b", lambda s: "a", ["a"])
        try:
            await g.compile().ainvoke({"log": []}, {"recursion_limit": 6})
        except GraphRecursionError:
            return "stopped by the limit", CALLS["langgraph:loop"]
        return "no error"

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk.Workflow("C_recursion_limit")
        wf.add_node("a", RecursionLimit._count("gecko")).add_node("b", RecursionLimit._count("gecko"))
        wf.add_edge("a", "b").add_conditional_edges("b", lambda _: "a", ["a"]).set_entry_point("a")
        try:
            await wf.execute(None, session_id=session, max_steps=6)
        except gk.StepLimitError:
            return "stopped by the limit", CALLS["gecko:loop"]
        return "no error"


@scenario("subgraph_with_its_own_state", "how-to subgraphs: a subgraph of another schema, called from a node")
class SubgraphOwnState:
    @staticmethod
    async def langgraph() -> Any:
        class Words(TypedDict, total=False):
            text: str
            words: int

        child = StateGraph(Words)
        child.add_node("count", lambda s: {"words": len(s["text"].split())})
        child.add_edge(START, "count")
        inner = child.compile()

        async def summarize(s: Ask) -> dict:
            return {"count": (await inner.ainvoke({"text": s["doc"]}))["words"]}

        g = StateGraph(Ask)
        g.add_node("summarize", summarize)
        g.add_edge(START, "summarize")
        return await g.compile().ainvoke({"doc": "three small words"})

    @staticmethod
    async def gecko(session: str) -> Any:
        child = (
            gk.Workflow("C_subgraph_child").add_node("count", lambda text: len(text.split())).set_entry_point("count")
        )
        wf = gk.Workflow("C_subgraph_own_state")
        wf.add_node("load", lambda _, context: context.state["doc"])
        wf.add_node("summarize", child)  # a child workflow: the node's input in, its result out
        wf.add_node("store", lambda words, context: context.state.__setitem__("count", words))
        wf.add_edge("load", "summarize").add_edge("summarize", "store").set_entry_point("load")
        return (await gecko_run(wf, session, state={"doc": "three small words"}))[1]


SHARED = Difference(langgraph={"draft": "p+child+after"}, gecko={"draft": "p+after"})


@scenario("subgraph_sharing_parent_keys", "how-to subgraphs: a compiled subgraph added as a node", SHARED)
class SubgraphSharedKeys:
    @staticmethod
    async def langgraph() -> Any:
        child = StateGraph(Ask)
        child.add_node("inner", lambda s: {"draft": s["draft"] + "+child"})
        child.add_edge(START, "inner")
        g = StateGraph(Ask)
        g.add_node("parent", lambda s: {"draft": "p"})
        g.add_node("sub", child.compile())
        g.add_node("after", lambda s: {"draft": s["draft"] + "+after"})
        g.add_edge(START, "parent").add_edge("parent", "sub").add_edge("sub", "after").add_edge("after", END)
        return await g.compile().ainvoke({"draft": ""})

    @staticmethod
    async def gecko(session: str) -> Any:
        def append(text: str) -> Any:
            return lambda _, context: context.state.__setitem__("draft", context.state.get("draft", "") + text)

        child = gk.Workflow("C_shared_child").add_node("inner", append("+child")).set_entry_point("inner")
        wf = gk.Workflow("C_subgraph_shared_keys")
        wf.add_node("parent", lambda _, context: context.state.__setitem__("draft", "p"))
        wf.add_node("sub", child)  # its own state: the parent's keys are not shared
        wf.add_node("after", append("+after"))
        wf.add_edge("parent", "sub").add_edge("sub", "after").set_entry_point("parent")
        return (await gecko_run(wf, session, state={"draft": ""}))[1]


EDIT_REDUCED = Difference(
    langgraph={"log": ["write", "edit", "review"], "draft": "v1", "verdict": "yes for v1"},
    gecko={"log": ["edit", "review"], "draft": "v1", "verdict": "yes for v1"},
)


@scenario("update_state_on_a_reducer_key", "test_pregel_async: update_state goes through the reducer", EDIT_REDUCED)
class UpdateStateReducerKey:
    @staticmethod
    async def langgraph() -> Any:
        app, config = _lg_review_graph(), _config("edit-reduced")
        await app.ainvoke({"log": []}, config)
        await app.aupdate_state(config, {"log": ["edit"]})
        return await app.ainvoke(Command(resume="yes"), config)

    @staticmethod
    async def gecko(session: str) -> Any:
        return await _gecko_review("C_update_state_reducer_key", session, {"log": ["edit"]})


@scenario("update_state_as_node", "test_pregel_async: update_state(config, values, as_node=...) through the reducer")
class UpdateStateAsNode:
    @staticmethod
    async def langgraph() -> Any:
        app, config = _lg_review_graph(), _config("edit-as-node")
        await app.ainvoke({"log": []}, config)
        await app.aupdate_state(config, {"log": ["edit"]}, as_node="write")
        return await app.ainvoke(Command(resume="yes"), config)

    @staticmethod
    async def gecko(session: str) -> Any:
        return await _gecko_review("C_update_state_as_node", session, {"log": ["edit"]}, as_node="write")


@scenario(
    "interrupt_before_breakpoint", "test_pregel_async: compile(interrupt_before=[...]), resumed with invoke(None)"
)
class InterruptBefore:
    @staticmethod
    async def langgraph() -> Any:
        g = StateGraph(Doc)
        g.add_node("write", lambda s: {"draft": "v1", "log": ["write"]})
        g.add_node("publish", lambda s: {"log": [f"published {s['draft']}"]})
        g.add_edge(START, "write").add_edge("write", "publish")
        app, config = g.compile(checkpointer=InMemorySaver(), interrupt_before=["publish"]), _config("before")
        paused = await app.ainvoke({"log": []}, config)
        pending = list((await app.aget_state(config)).next)
        return paused["log"], pending, await app.ainvoke(None, config)

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk.Workflow("C_interrupt_before", reducers={"log": "extend"}, interrupt_before=["publish"])
        wf.add_node("write", lambda _, context: context.state.update(draft="v1", log=["write"]))
        wf.add_node(
            "publish", lambda _, context: context.state.__setitem__("log", [f"published {context.state['draft']}"])
        )
        handle = (
            await wf.add_edge("write", "publish")
            .set_entry_point("write")
            .start(None, session_id=session, state={"log": []})
        )
        paused = await waiting_for(handle, "publish")
        await handle.answer("publish", None)
        await handle.result()
        return paused["state"]["log"], list(paused["waiting"]), (await handle.state())["state"]
