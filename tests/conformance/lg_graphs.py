"""Conformance scenarios, part 1: the graph language (edges, joins, routers, Send, reducers, START).

Sources are LangGraph's tests (libs/langgraph/tests/test_pregel_async.py) and how-tos (map-reduce,
branching, agent loops); each is written anew in both APIs, never copied.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langgraph.errors import InvalidUpdateError
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send
from lg_support import Difference, gecko_layers, gecko_run, langgraph_layers, scenario

import gecko_temporal as gk


class Log(TypedDict, total=False):
    log: Annotated[list, operator.add]
    value: str
    items: list
    route: str


def lg_log(name: str) -> Any:
    return lambda state: {"log": [name]}


def gk_log(name: str) -> Any:
    def node(_input: Any, context: Any) -> None:
        context.state["log"] = [name]

    return node


def gk_graph(name: str, nodes: str | list[str], **kw: Any) -> gk.Workflow:
    wf = gk.Workflow(f"C_{name}", reducers={"log": "extend"}, **kw)
    for n in nodes:
        wf.add_node(n, gk_log(n))
    return wf


def lg_graph(nodes: str | list[str], schema: Any = Log) -> StateGraph:
    g = StateGraph(schema)
    for n in nodes:
        g.add_node(n, lg_log(n))
    return g


@scenario("linear_chain", "how-to: the quickstart's node after node, each updating the state")
class LinearChain:
    @staticmethod
    async def langgraph() -> Any:
        class Text(TypedDict):
            value: str

        g = StateGraph(Text)
        g.add_node("a", lambda s: {"value": s["value"] + "a"})
        g.add_node("b", lambda s: {"value": s["value"] + "b"})
        g.add_edge(START, "a").add_edge("a", "b").add_edge("b", END)
        return await g.compile().ainvoke({"value": ">"})

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk.Workflow("C_linear_chain")
        wf.add_node("a", lambda _, context: context.state.__setitem__("value", context.state["value"] + "a"))
        wf.add_node("b", lambda _, context: context.state.__setitem__("value", context.state["value"] + "b"))
        wf.add_edge(gk.START, "a").add_edge("a", "b").add_edge("b", gk.END)
        return (await gecko_run(wf, session, state={"value": ">"}))[1]


@scenario("fan_out_fan_in", "test_pregel_async: parallel nodes joined, writes through operator.add")
class FanOutFanIn:
    @staticmethod
    async def langgraph() -> Any:
        g = lg_graph("abcd")
        g.add_edge(START, "a").add_edge("a", "b").add_edge("a", "c").add_edge("b", "d").add_edge("c", "d")
        return await langgraph_layers(g.compile(), {"log": []})

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk_graph("fan_out_fan_in", "abcd")
        wf.add_edge(gk.START, "a").add_edge("a", "b").add_edge("a", "c").add_edge("b", "d").add_edge("c", "d")
        return await gecko_layers(wf, session, {"log": []})


@scenario("conditional_path_map", "test_pregel_async: add_conditional_edges with a dict path map")
class ConditionalPathMap:
    @staticmethod
    async def langgraph() -> Any:
        g = lg_graph(["decide", "left", "right"])
        g.add_edge(START, "decide")
        g.add_conditional_edges("decide", lambda s: s["route"], {"go-left": "left", "go-right": "right"})
        app = g.compile()
        return [await app.ainvoke({"log": [], "route": r}) for r in ("go-left", "go-right")]

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk_graph("conditional_path_map", ["decide", "left", "right"])
        wf.add_edge(gk.START, "decide")
        wf.add_conditional_edges(
            "decide", lambda _, context: context.state["route"], {"go-left": "left", "go-right": "right"}
        )
        return [
            (await gecko_run(wf, f"{session}-{r}", state={"log": [], "route": r}))[1] for r in ("go-left", "go-right")
        ]


@scenario("loop_until_long_enough", "test_pregel_async: a router reads the reduced list its node just extended")
class LoopUntilLongEnough:
    @staticmethod
    async def langgraph() -> Any:
        g = lg_graph("ab")
        g.add_edge(START, "a")
        g.add_conditional_edges("a", lambda s: "b" if len(s["log"]) < 5 else END, ["b", END])
        g.add_edge("b", "a")
        return await g.compile().ainvoke({"log": []})

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk_graph("loop_until_long_enough", "ab", max_steps=25)
        wf.add_conditional_edges(
            "a", lambda _, context: "b" if len(context.state["log"]) < 5 else gk.END, ["b", gk.END]
        )
        wf.add_edge("b", "a").set_entry_point("a")
        return (await gecko_run(wf, session, state={"log": []}))[1]


@scenario("router_without_path_map_keeps_branches_parallel", "issue 23 bug 2: a loop back from a join")
class UnmappedRouterLayers:
    @staticmethod
    async def langgraph() -> Any:
        g = lg_graph(["s", "x", "y", "z", "j", "done"])
        g.add_edge(START, "s")
        g.add_conditional_edges("s", lambda s: ["x", "y"], ["x", "y"])
        g.add_edge("x", "z").add_edge(["z", "y"], "j")  # LangGraph's join is a waiting edge
        g.add_conditional_edges("j", lambda s: "done" if len(s["log"]) > 3 else "s")
        return await langgraph_layers(g.compile(), {"log": []})

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk_graph("router_without_path_map", ["s", "x", "y", "z", "j", "done"])
        wf.add_conditional_edges("s", lambda _: ["x", "y"], ["x", "y"])
        wf.add_edge("x", "z").add_edge(["z", "y"], "j")
        wf.add_conditional_edges("j", lambda _, context: "done" if len(context.state["log"]) > 3 else "s")
        return await gecko_layers(wf.set_entry_point("s"), session, {"log": []})


@scenario("waiting_edge", "test_pregel_async: add_edge([a, b], c) waits for both, however long each path")
class WaitingEdge:
    @staticmethod
    async def langgraph() -> Any:
        g = lg_graph(["a", "a2", "b", "c"])
        g.add_edge(START, "a").add_edge(START, "b").add_edge("a", "a2").add_edge(["a2", "b"], "c")
        return await langgraph_layers(g.compile(), {"log": []})

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk_graph("waiting_edge", ["a", "a2", "b", "c"])
        wf.add_edge(gk.START, "a").add_edge(gk.START, "b").add_edge("a", "a2").add_edge(["a2", "b"], "c")
        return await gecko_layers(wf, session, {"log": []})


BRANCHES = Difference(
    langgraph=([["a"], ["b", "d"], ["c", "e"], ["e"]], {"log": ["a", "b", "d", "c", "e", "e"]}),
    gecko=([["a"], ["b", "d"], ["c"], ["e"]], {"log": ["a", "b", "d", "c", "e"]}),
)


@scenario(
    "plain_edges_from_branches_of_different_lengths", "test_pregel_async: plain edges trigger per arrival", BRANCHES
)
class BranchesOfDifferentLengths:
    @staticmethod
    async def langgraph() -> Any:
        g = lg_graph("abcde")
        g.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", "e")
        g.add_edge("a", "d").add_edge("d", "e")
        return await langgraph_layers(g.compile(), {"log": []})

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk_graph("branches_of_different_lengths", "abcde")
        wf.add_edge(gk.START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", "e")
        wf.add_edge("a", "d").add_edge("d", "e")
        return await gecko_layers(wf, session, {"log": []})


CONFLICT = Difference(langgraph="InvalidUpdateError", gecko=({"value": "from b"}, ["value"]))


@scenario("parallel_writes_without_a_reducer", "test_pregel_async: two writes to a LastValue channel", CONFLICT)
class ParallelWritesWithoutReducer:
    @staticmethod
    async def langgraph() -> Any:
        g = StateGraph(Log)
        g.add_node("a", lambda s: {"value": "from a"})
        g.add_node("b", lambda s: {"value": "from b"})
        g.add_edge(START, "a").add_edge(START, "b")
        try:
            await g.compile().ainvoke({"value": ""})
        except InvalidUpdateError as exc:
            return type(exc).__name__
        return "no error"

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk.Workflow("C_parallel_writes")
        wf.add_node("a", lambda _, context: context.state.__setitem__("value", "from a"))
        wf.add_node("b", lambda _, context: context.state.__setitem__("value", "from b"))
        wf.add_edge(gk.START, "a").add_edge(gk.START, "b")
        handle = await wf.start(None, session_id=session, state={"value": ""})
        await handle.result()
        live = await handle.state()
        return live["state"], live["conflicts"]


ORDER = Difference(langgraph={"log": ["alpha", "zeta"]}, gecko={"log": ["zeta", "alpha"]})


@scenario("merge_order_of_parallel_writes", "LangGraph's apply_writes sorts a step's tasks by name", ORDER)
class MergeOrder:
    @staticmethod
    async def langgraph() -> Any:
        g = lg_graph(["zeta", "alpha"])
        g.add_edge(START, "zeta").add_edge(START, "alpha")
        return await g.compile().ainvoke({"log": []})

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk_graph("merge_order", ["zeta", "alpha"])
        wf.add_edge(gk.START, "zeta").add_edge(gk.START, "alpha")
        return (await gecko_run(wf, session, state={"log": []}))[1]


@scenario("send_map_reduce", "how-to map-reduce: Send one joke per subject, collect them, pick the best")
class SendMapReduce:
    @staticmethod
    async def langgraph() -> Any:
        class Jokes(TypedDict, total=False):
            subjects: list
            jokes: Annotated[list, operator.add]
            best: str

        g = StateGraph(Jokes)
        g.add_node("plan", lambda s: {"subjects": ["cats", "dogs", "owls"]})
        g.add_node("joke", lambda arg: {"jokes": [f"a joke about {arg['subject']}"]})
        g.add_node("best", lambda s: {"best": max(s["jokes"], key=len)})
        g.add_edge(START, "plan")
        g.add_conditional_edges("plan", lambda s: [Send("joke", {"subject": x}) for x in s["subjects"]], ["joke"])
        g.add_edge("joke", "best").add_edge("best", END)
        return await g.compile().ainvoke({"jokes": []})

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk.Workflow("C_send_map_reduce", reducers={"jokes": "extend"})
        wf.add_node("plan", lambda _, context: context.state.__setitem__("subjects", ["cats", "dogs", "owls"]))
        wf.add_node("joke", lambda arg, context: context.state.__setitem__("jokes", [f"a joke about {arg['subject']}"]))
        wf.add_node("best", lambda _, context: context.state.__setitem__("best", max(context.state["jokes"], key=len)))
        wf.add_edge(gk.START, "plan")
        wf.add_conditional_edges(
            "plan", lambda _, context: [gk.Send("joke", {"subject": x}) for x in context.state["subjects"]], ["joke"]
        )
        wf.add_edge("joke", "best").add_edge("best", gk.END)
        return (await gecko_run(wf, session, state={"jokes": []}))[1]


@scenario("send_from_start", "test_pregel_async: a conditional edge from START that returns Sends")
class SendFromStart:
    @staticmethod
    async def langgraph() -> Any:
        g = StateGraph(Log)
        g.add_node("work", lambda item: {"log": [item * 10]})
        g.add_conditional_edges(START, lambda s: [Send("work", i) for i in s["items"]], ["work"])
        return await g.compile().ainvoke({"items": [3, 1, 2], "log": []})

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk.Workflow("C_send_from_start", reducers={"log": "extend"})
        wf.add_node("work", lambda item, context: context.state.__setitem__("log", [item * 10]))
        wf.add_conditional_edges(
            gk.START, lambda _, context: [gk.Send("work", i) for i in context.state["items"]], ["work"]
        )
        return (await gecko_run(wf, session, state={"items": [3, 1, 2], "log": []}))[1]


@scenario("router_returns_several_targets", "test_pregel_async: a router returning a list runs them in parallel")
class RouterReturnsList:
    @staticmethod
    async def langgraph() -> Any:
        g = lg_graph("abcd")
        g.add_edge(START, "a")
        g.add_conditional_edges("a", lambda s: ["b", "c"], ["b", "c", "d"])
        g.add_edge(["b", "c"], "d")
        return await langgraph_layers(g.compile(), {"log": []})

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk_graph("router_returns_several", "abcd")
        wf.add_edge(gk.START, "a")
        wf.add_conditional_edges("a", lambda _: ["b", "c"], ["b", "c", "d"])
        wf.add_edge(["b", "c"], "d")
        return await gecko_layers(wf, session, {"log": []})


@scenario("several_start_edges", "test_pregel_async: START -> a and START -> b, joined")
class SeveralStartEdges:
    @staticmethod
    async def langgraph() -> Any:
        g = lg_graph("abc")
        g.add_edge(START, "a").add_edge(START, "b").add_edge("a", "c").add_edge("b", "c")
        return await langgraph_layers(g.compile(), {"log": []})

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk_graph("several_start_edges", "abc")
        wf.add_edge(gk.START, "a").add_edge(gk.START, "b").add_edge("a", "c").add_edge("b", "c")
        return await gecko_layers(wf, session, {"log": []})


@scenario("conditional_entry_point", "test_pregel_async: set_conditional_entry_point")
class ConditionalEntryPoint:
    @staticmethod
    async def langgraph() -> Any:
        g = lg_graph(["small", "big"])
        g.set_conditional_entry_point(lambda s: "big" if len(s["items"]) > 2 else "small", ["small", "big"])
        app = g.compile()
        return [await app.ainvoke({"items": items, "log": []}) for items in ([1], [1, 2, 3])]

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk_graph("conditional_entry_point", ["small", "big"])
        wf.set_conditional_entry_point(
            lambda _, context: "big" if len(context.state["items"]) > 2 else "small", ["small", "big"]
        )
        return [
            (await gecko_run(wf, f"{session}-{len(i)}", state={"items": i, "log": []}))[1] for i in ([1], [1, 2, 3])
        ]


@scenario("command_goto_with_update", "test_pregel_async: a node returning Command(goto=..., update=...)")
class CommandGoto:
    @staticmethod
    async def langgraph() -> Any:
        g = lg_graph(["b", "c"])
        g.add_node("a", lambda s: Command(goto="c", update={"log": ["a"]}))
        g.add_edge(START, "a")
        return await g.compile().ainvoke({"log": []})

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk_graph("command_goto", ["b", "c"])
        wf.add_node("a", lambda _, context: context.state.__setitem__("log", ["a"]) or gk.Next("c"))
        wf.add_edge(gk.START, "a")
        return (await gecko_run(wf, session, state={"log": []}))[1]


GOTO = Difference(langgraph={"log": ["a", "b", "c"]}, gecko={"log": ["a", "c"]})


@scenario("command_goto_beside_static_edges", "test_pregel_async: Command(goto) and a static edge both run", GOTO)
class CommandGotoBesideStaticEdge:
    @staticmethod
    async def langgraph() -> Any:
        g = lg_graph(["b", "c"])
        g.add_node("a", lambda s: Command(goto="c", update={"log": ["a"]}))
        g.add_edge(START, "a").add_edge("a", "b")
        return await g.compile().ainvoke({"log": []})

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk_graph("command_goto_beside_static", ["b", "c"])
        wf.add_node("a", lambda _, context: context.state.__setitem__("log", ["a"]) or gk.Next("c"))
        wf.add_edge(gk.START, "a").add_edge("a", "b")
        return (await gecko_run(wf, session, state={"log": []}))[1]


@scenario("agent_tools_loop", "how-to: a ReAct agent loop, agent -> tools -> agent until no tool call")
class AgentToolsLoop:
    @staticmethod
    def _agent(messages: list) -> dict:
        calls = sum(1 for m in messages if m["role"] == "tool")
        if calls < 2:
            return {"role": "ai", "tool": f"search {calls}"}
        return {"role": "ai", "content": f"answer after {calls} searches"}

    @staticmethod
    async def langgraph() -> Any:
        class Chat(TypedDict):
            messages: Annotated[list, operator.add]

        g = StateGraph(Chat)
        g.add_node("agent", lambda s: {"messages": [AgentToolsLoop._agent(s["messages"])]})
        g.add_node("tools", lambda s: {"messages": [{"role": "tool", "content": s["messages"][-1]["tool"] + " done"}]})
        g.add_edge(START, "agent")
        g.add_conditional_edges("agent", lambda s: "tools" if "tool" in s["messages"][-1] else END, ["tools", END])
        g.add_edge("tools", "agent")
        return await g.compile().ainvoke({"messages": [{"role": "user", "content": "hi"}]})

    @staticmethod
    async def gecko(session: str) -> Any:
        def agent(_: Any, context: Any) -> None:
            context.state["messages"] = [AgentToolsLoop._agent(context.state["messages"])]

        def tools(_: Any, context: Any) -> None:
            context.state["messages"] = [{"role": "tool", "content": context.state["messages"][-1]["tool"] + " done"}]

        wf = gk.Workflow("C_agent_tools_loop", reducers={"messages": "extend"})
        wf.add_node("agent", agent).add_node("tools", tools)
        wf.add_edge(gk.START, "agent")
        wf.add_conditional_edges(
            "agent",
            lambda _, context: "tools" if "tool" in context.state["messages"][-1] else gk.END,
            ["tools", gk.END],
        )
        wf.add_edge("tools", "agent")
        return (await gecko_run(wf, session, state={"messages": [{"role": "user", "content": "hi"}]}))[1]


@scenario("dict_merge_and_number_reducers", "test_pregel_async: custom reducers (dict union, operator.add on ints)")
class DictMergeAndCounter:
    @staticmethod
    async def langgraph() -> Any:
        class Totals(TypedDict):
            seen: Annotated[dict, lambda old, new: {**old, **new}]
            count: Annotated[int, operator.add]

        g = StateGraph(Totals)
        g.add_node("a", lambda s: {"seen": {"a": 1, "shared": "a"}, "count": 2})
        g.add_node("b", lambda s: {"seen": {"b": 2, "shared": "b"}, "count": 3})
        g.add_edge(START, "a").add_edge(START, "b")
        return await g.compile().ainvoke({"seen": {}, "count": 10})

    @staticmethod
    async def gecko(session: str) -> Any:
        def write(seen: dict, count: int) -> Any:
            def node(_: Any, context: Any) -> None:
                context.state["seen"], context.state["count"] = seen, count

            return node

        wf = gk.Workflow("C_dict_merge_and_number", reducers={"seen": "merge", "count": "add"})
        wf.add_node("a", write({"a": 1, "shared": "a"}, 2)).add_node("b", write({"b": 2, "shared": "b"}, 3))
        wf.add_edge(gk.START, "a").add_edge(gk.START, "b")
        return (await gecko_run(wf, session, state={"seen": {}, "count": 10}))[1]


@scenario("router_reads_its_nodes_plain_write", "test_pregel_async: a router reads what its node just wrote")
class RouterReadsPlainWrite:
    @staticmethod
    async def langgraph() -> Any:
        g = lg_graph(["even", "odd"])
        g.add_node("count", lambda s: {"value": str(len(s["items"]))})
        g.add_edge(START, "count")
        g.add_conditional_edges("count", lambda s: "even" if int(s["value"]) % 2 == 0 else "odd", ["even", "odd"])
        return await g.compile().ainvoke({"items": [1, 2, 3], "log": []})

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk_graph("router_reads_plain_write", ["even", "odd"])
        wf.add_node("count", lambda _, context: context.state.__setitem__("value", str(len(context.state["items"]))))
        wf.add_edge(gk.START, "count")
        wf.add_conditional_edges(
            "count", lambda _, context: "even" if int(context.state["value"]) % 2 == 0 else "odd", ["even", "odd"]
        )
        return (await gecko_run(wf, session, state={"items": [1, 2, 3], "log": []}))[1]


def keep_last_three(old: list | None, new: list) -> list:
    """A reducer of the user's own: module level, pure (gecko-temporal keeps it by qualified name)."""
    return [*(old or []), *new][-3:]


@scenario("custom_reducer_function", "test_pregel_async: a channel reduced by a function of the user's own")
class CustomReducer:
    @staticmethod
    async def langgraph() -> Any:
        class Recent(TypedDict):
            recent: Annotated[list, keep_last_three]

        g = StateGraph(Recent)
        for n in "abcd":
            g.add_node(n, lambda s, n=n: {"recent": [n]})
        g.add_edge(START, "a").add_edge("a", "b").add_edge("a", "c").add_edge(["b", "c"], "d")
        return await g.compile().ainvoke({"recent": ["start"]})

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk.Workflow("C_custom_reducer", reducers={"recent": keep_last_three})
        for n in "abcd":
            wf.add_node(n, lambda _, context, n=n: context.state.__setitem__("recent", [n]))
        wf.add_edge(gk.START, "a").add_edge("a", "b").add_edge("a", "c").add_edge(["b", "c"], "d")
        return (await gecko_run(wf, session, state={"recent": ["start"]}))[1]


@scenario("command_goto_several_nodes", "test_pregel_async: Command(goto=[...]) from a node without edges")
class CommandGotoSeveral:
    @staticmethod
    async def langgraph() -> Any:
        g = lg_graph(["b", "c", "d"])
        g.add_node("a", lambda s: Command(goto=["b", "c"], update={"log": ["a"]}))
        g.add_edge(START, "a").add_edge(["b", "c"], "d")
        return await langgraph_layers(g.compile(), {"log": []})

    @staticmethod
    async def gecko(session: str) -> Any:
        wf = gk_graph("command_goto_several", ["b", "c", "d"])
        # Next takes one node; Sends go to several (each its own fan-out of one)
        wf.add_node(
            "a", lambda _, context: context.state.__setitem__("log", ["a"]) or [gk.Send("b", None), gk.Send("c", None)]
        )
        wf.add_edge(gk.START, "a").add_edge(["b", "c"], "d")
        return await gecko_layers(wf, session, {"log": []})
