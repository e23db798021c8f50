"""Issue 23's repros, as a LangGraph user wrote them, on the real dev server."""

from __future__ import annotations

import pytest

from gecko_temporal import END, START, NodeError, Workflow


def refuses_big_totals(old, new):
    """A reducer of the user's own (module level, pure) that raises on some values."""
    total = (old or 0) + new
    if total > 10:
        raise ValueError(f"total {total} is over 10")
    return total


@pytest.mark.parametrize("mode", ["layered", "eager"])
async def test_the_loop_until_the_list_is_long_enough_ends_as_in_langgraph(mode):
    wf = Workflow(f"R_{mode}", reducers={"agg": "extend"}, scheduling=mode)
    wf.add_node("a", lambda context: context.state.__setitem__("agg", ["A"]))
    wf.add_node("b", lambda context: context.state.__setitem__("agg", ["B"]))
    wf.add_conditional_edges("a", lambda _, context: "b" if len(context.state["agg"]) < 3 else END, ["b", END])
    wf.add_edge("b", "a").set_entry_point("a")
    handle = await wf.start(None, state={"agg": []}, max_steps=25)
    await handle.result()
    assert (await handle.state())["state"]["agg"] == ["A", "B", "A"]


async def test_a_router_without_a_path_map_leaves_the_parallel_branches_parallel():
    wf = Workflow("Unmapped")
    for n in ["s", "x", "y", "z", "j", "done"]:
        wf.add_node(n, lambda v: v)
    wf.add_conditional_edges("s", lambda _: ["x", "y"], ["x", "y"])
    wf.add_edge("x", "z").add_edge("z", "j").add_edge("y", "j")
    wf.add_conditional_edges("j", lambda _: "done")
    handle = await wf.set_entry_point("s").start(None)
    await handle.result()
    layers = [s["nodes"] for s in await handle.steps() if s["nodes"]]  # step 0 is the start
    assert layers == [["s"], ["x", "y"], ["z"], ["j"], ["done"]]


async def test_a_waiting_edge_from_start_edges_joins_once():
    wf = Workflow("Waiting", reducers={"seen": "extend"})
    for n in "ab":
        wf.add_node(n, lambda x, context, n=n: context.state.__setitem__("seen", [n]) or n)
    wf.add_node("c", lambda x, context: context.state.__setitem__("seen", ["c"]) or x)
    wf.add_edge(START, "a").add_edge(START, "b").add_edge(["a", "b"], "c").add_edge("c", END)
    handle = await wf.start("in")
    assert await handle.result() == {"a": "a", "b": "b"}  # c ran once, with both predecessors' outputs
    assert (await handle.state())["state"]["seen"] == ["a", "b", "c"]


async def test_a_reducer_of_the_users_own_that_raises_fails_the_run_naming_it():
    wf = Workflow("OwnReducer", reducers={"total": refuses_big_totals})
    wf.add_node("a", lambda context: context.state.__setitem__("total", 4))
    wf.add_node("b", lambda context: context.state.__setitem__("total", 9))
    wf.add_edge("a", "b").set_entry_point("a")
    with pytest.raises(NodeError) as info:
        await wf.execute(None)
    assert info.value.node == "b" and info.value.error_type == "ReducerError"
    assert f"reducer \"{__name__}:refuses_big_totals\" of state key 'total' raised ValueError: total 13 is over 10" in (
        info.value.error_message
    )


async def test_a_static_breakpoint_waits_before_the_node_and_its_own_interrupts_follow():
    from tests.pipelines.procs import waiting_for

    ran: list[str] = []

    def review(draft, context):
        ran.append("review")
        return f"{draft}: {context.interrupt('publish?')}"

    wf = Workflow("Breakpoint", interrupt_before=["review"])
    wf.add_node("draft", lambda text: text.upper()).add_node("review", review)
    handle = await wf.add_edge("draft", "review").set_entry_point("draft").start("ducks")
    paused = await waiting_for(handle, "review", 0)
    assert paused["waiting"]["review"]["payload"] == {"breakpoint": "before", "node": "review"} and ran == []
    await handle.answer("review", None)
    assert (await waiting_for(handle, "review", 1))["waiting"]["review"]["payload"] == "publish?"
    await handle.answer("review", "yes")
    assert await handle.result() == "DUCKS: yes"


async def test_send_instances_interrupt_in_parallel_each_under_its_own_key_in_an_eager_run():
    from gecko_temporal import GeckoError, Send
    from tests.pipelines.procs import waiting_for

    wf = Workflow("ParallelAsk", reducers={"answers": "extend"}, scheduling="eager")
    wf.add_node("plan", lambda _: [Send("ask", t) for t in ("tea", "cake", "jam")])
    wf.add_node("ask", lambda topic, context: context.state.__setitem__("answers", [context.interrupt(topic)]))
    wf.add_node("done", lambda outputs, context: sorted(context.state["answers"]))
    handle = await wf.add_edge("ask", "done").set_entry_point("plan").start(None)
    for i in range(3):
        await waiting_for(handle, f"ask[{i}]")
    waiting = (await handle.state())["waiting"]
    assert {k: w["payload"] for k, w in waiting.items()} == {"ask[0]": "tea", "ask[1]": "cake", "ask[2]": "jam"}
    with pytest.raises(GeckoError, match=r"ask\[3\]"):
        await handle.answer("ask[3]", "no such instance")
    for key in ("ask[2]", "ask[0]", "ask[1]"):
        await handle.answer(key, f"yes to {waiting[key]['payload']}")
    assert await handle.result() == ["yes to cake", "yes to jam", "yes to tea"]
    assert (await handle.state())["state"]["answers"] == ["yes to tea", "yes to cake", "yes to jam"]  # Send order
