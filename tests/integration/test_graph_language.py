"""Conditional edges, Send fan-out, reducers and Mermaid on a real dev server (issue 12).

Decided by counts, values and Temporal's own history, never by a stopwatch: how often a node or
router ran (module-level lists: the embedded worker runs in this process), which activities the
workflow scheduled, what gecko_state showed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

import pytest

from gecko_temporal import END, GraphError, Next, NodeError, Send, Team, WaitForInput, Workflow
from tests.pipelines import langgraph_style as lg
from tests.pipelines.procs import Procs, run_gecko, wait_until


def _name(base: str) -> str:
    return f"{base}-{uuid.uuid4().hex[:6]}"


async def _scheduled(handle) -> list[tuple[str, str]]:
    """(activity type, activity id) of every activity the run scheduled, in order."""
    history = await handle.temporal_handle.fetch_history()
    return [
        (a.activity_type.name, a.activity_id)
        for a in (
            e.activity_task_scheduled_event_attributes
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
        )
    ]


# -- conditional edges ---------------------------------------------------------------------------


async def test_conditional_edges_follow_the_path_map_beside_static_edges():
    routed = []
    wf = Workflow(_name("Route"))

    def mood(text, context):
        context.state["mood"] = text
        return text.upper()

    def pick(output, context):  # sees the node's output and the state after the node's writes
        routed.append((output, context.state["mood"]))
        return {"both": ["happy", "sad"], "none": "done"}.get(context.state["mood"], context.state["mood"])

    wf.add_node("Mood", mood).add_node("Happy", lambda x: f"happy:{x}").add_node("Sad", lambda x: f"sad:{x}")
    wf.add_node("Log", lambda x: f"log:{x}")
    wf.add_conditional_edges("Mood", pick, {"happy": "Happy", "sad": "Sad", "done": END})
    wf.add_edge("Mood", "Log").set_entry_point("Mood")  # a static edge runs too, as in LangGraph

    assert await wf.execute("happy") == {"Happy": "happy:HAPPY", "Log": "log:HAPPY"}
    assert await wf.execute("none") == "log:NONE"  # END: only the static edge
    assert await wf.execute("both") == {"Happy": "happy:BOTH", "Sad": "sad:BOTH", "Log": "log:BOTH"}
    assert routed == [("HAPPY", "happy"), ("NONE", "none"), ("BOTH", "both")]


@pytest.mark.parametrize("mode", ["layered", "eager"])
async def test_the_agent_tools_loop_of_langgraph(mode):
    wf = Workflow(_name(f"Agent-{mode}"), scheduling=mode, reducers={"calls": "append"})

    def agent(x, context):
        turns = len(context.state.get("calls", []))
        return {"answer": f"done after {turns} tool calls"} if turns == 3 else {"tool": f"search {turns}"}

    def tools(request, context):
        context.state["calls"] = request["tool"]
        return "ok"

    def should_continue(message) -> str:
        return "continue" if "tool" in message else "end"

    wf.add_node("agent", agent).add_node("tools", tools).add_edge("tools", "agent")
    wf.add_conditional_edges("agent", should_continue, {"continue": "tools", "end": END}).set_entry_point("agent")
    handle = await wf.start("question")
    assert await handle.result() == {"answer": "done after 3 tool calls"}
    state = await handle.state()
    assert state["state"]["calls"] == ["search 0", "search 1", "search 2"] and state["step"] == 7


async def test_a_router_result_naming_no_target_fails_the_node_at_once_naming_router_value_and_choices():
    calls = []
    wf = Workflow(_name("BadRoute"))
    wf.add_node("A", lambda x: calls.append(x) or x, retries=3)
    wf.add_node("Up", lambda x: x).add_node("Down", lambda x: x)

    def pick(x):
        return "sideways"

    wf.add_conditional_edges("A", pick, {"up": "Up", "down": "Down"}).set_entry_point("A")
    with pytest.raises(NodeError) as info:
        await wf.execute("go")
    err = info.value
    assert err.node == "A" and err.error_type == "RouterError"
    assert err.error_message == (
        'router "pick" of node "A" returned \'sideways\', which names no target '
        "(valid: 'up' -> Up, 'down' -> Down, or Send objects)"
    )
    assert calls == ["go"]  # no retry: running the node again cannot change the router's mind


async def test_a_router_that_raises_is_the_node_failing_and_retried_with_it_and_bad_send_args_are_not():
    from gecko_temporal import RetryPolicy, SerializationError

    ran, tries = [], []
    wf = Workflow(_name("RouterRaises"))
    wf.add_node("A", lambda x: ran.append(x) or x, retry=RetryPolicy(maximum_attempts=3, initial_interval=0.1))
    wf.add_node("B", lambda x: f"B got {x}")

    def flaky(x):
        tries.append(x)
        if len(tries) == 1:
            raise ConnectionError("router backend down")
        return "b"

    wf.add_conditional_edges("A", flaky, {"b": "B"}).set_entry_point("A")
    assert await wf.execute("x") == "B got x"
    assert ran == ["x", "x"] and tries == ["x", "x"]  # node and router ran again, once

    calls = []
    bad = Workflow(_name("BadSendArg"))
    bad.add_node("A", lambda x: calls.append(x) or [Send("B", 1), Send("B", object())]).add_node("B", lambda x: x)
    with pytest.raises(SerializationError) as info:
        await bad.set_entry_point("A").execute("x")
    assert info.value.node == "A" and 'the Send 1 of node "A"' in str(info.value) and "object" in str(info.value)
    assert calls == ["x"]  # never retried: the same value would fail again


async def test_next_wins_over_static_and_conditional_edges_and_the_router_is_not_called():
    routed, ran = [], []
    wf = Workflow(_name("NextWins"))
    wf.add_node("A", lambda x: Next("J", "jumped"))
    wf.add_node("B", lambda x: ran.append("B")).add_node("C", lambda x: ran.append("C")).add_node("J", lambda x: x)
    wf.add_edge("A", "B").add_conditional_edges("A", lambda x: routed.append(x) or "C", ["C"]).set_entry_point("A")
    assert await wf.execute("x") == "jumped"
    assert routed == [] and ran == []


# -- Send ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["layered", "eager"])
async def test_twelve_way_send_with_reducers_runs_twelve_activities_and_collects_once(mode):
    wf = lg.build(_name(f"LG-{mode}"), scheduling=mode)
    handle = await wf.start("Why is the sky blue?")
    result = await handle.result()
    assert result == {
        "question": "Why is the sky blue?",
        "reports": 12,
        "first": "summary of aspect 0",
        "last": "summary of aspect 11",
        "findings": [f"finding {i}" for i in range(12)],  # Send order
        "cost": sum(1 + i % 3 for i in range(12)),
        "headline": "12 reports on Why is the sky blue?",
    }
    scheduled = await _scheduled(handle)
    kinds = Counter(t.split(".", 1)[1] for t, _ in scheduled)
    assert kinds == Counter({"Classify": 1, "Plan": 1, "Research": 12, "Collect": 1})
    ids = [i for _, i in scheduled]
    assert len(set(ids)) == len(ids) == 15  # each instance its own activity id (its own step)
    state = await handle.state()
    assert state["step"] == 16 and state["conflicts"] == []  # reduced keys never conflict; Summary is one step
    child = handle.temporal_handle._client.get_workflow_handle(f"{handle.id}.Summary.16")
    assert (await child.result())["headline"] == result["headline"]  # the subgraph ran as a child workflow
    assert await wf.execute("hello there") == "Hello! You said: hello there"  # the other branch


async def test_a_failing_instance_is_retried_alone_then_fails_the_run_naming_node_and_send_index():
    attempts = Counter()
    wf = Workflow(_name("FanFail"))

    def work(i):
        attempts[i] += 1
        if i == 3:  # fail once the others have run, so that none is cancelled before it started
            wait_until(lambda: all(attempts[j] for j in (0, 1, 2, 4)), 60, "the other instances")
            raise ValueError(f"bad item {i}")
        return i

    wf.add_node("Plan", lambda n: [Send("Work", i) for i in range(n)])  # a node's own fan-out
    wf.add_node("Work", work, retries=2, retry=None)
    wf.add_node("After", lambda xs: xs).add_edge("Work", "After").set_entry_point("Plan")
    with pytest.raises(NodeError) as info:
        await wf.execute(5)
    err = info.value
    assert str(err) == 'node "Work" (Send 3 of 5) failed: ValueError: bad item 3'
    assert err.node == "Work" and err.details["send"] == 3
    assert attempts[3] == 2  # the node's retry policy, per instance
    assert all(attempts[i] == 1 for i in (0, 1, 2, 4))


async def test_more_than_a_thousand_sends_in_one_output_fail_the_node_at_once():
    calls = []
    wf = Workflow(_name("TooManySends"))
    wf.add_node("Plan", lambda n: calls.append(n) or n)
    wf.add_conditional_edges("Plan", lambda n: [Send("W", i) for i in range(n)], ["W"])
    wf.add_node("W", lambda i: i).set_entry_point("Plan")
    handle = await wf.start(1001)
    with pytest.raises(NodeError) as info:
        await handle.result()
    assert info.value.error_type == "TooManySends" and info.value.node == "Plan"
    assert "returned 1001 Sends; one node output may hold at most 1000" in str(info.value)
    assert calls == [1001] and [t for t, _ in await _scheduled(handle)] == [f"{wf.name}.Plan"]


async def test_a_fan_out_over_temporals_pending_activity_limit_fails_clearly_instead_of_hanging():
    # Temporal fails every workflow task that would start a 2,001st pending activity (measured), so
    # without this check the run would hang; three nodes' Sends to one node make one fan-out.
    wf = Workflow(_name("FanTooWide"))
    wf.add_node("Start", lambda n: n).add_node("W", lambda i: i).add_node("C", lambda xs: len(xs)).add_edge("W", "C")
    for k in range(3):
        wf.add_node(f"P{k}", lambda n: [Send("W", i) for i in range(n)]).add_edge("Start", f"P{k}")
    handle = await wf.set_entry_point("Start").start(700)
    with pytest.raises(GraphError, match=r'a fan-out would run 2100 nodes in one layer \(Sends: "W" 2100\)'):
        await handle.result()
    assert not any(t.endswith(".W") for t, _ in await _scheduled(handle))


async def test_a_value_a_reducer_cannot_combine_fails_naming_node_and_key():
    wf = Workflow(_name("BadReduce"), reducers={"items": "extend"})

    def writer(x, context):
        context.state["items"] = "not a list"

    wf.add_node("Writer", writer).set_entry_point("Writer")
    with pytest.raises(NodeError) as info:
        await wf.execute(None)
    assert info.value.node == "Writer" and info.value.error_type == "ReducerError"
    assert 'wrote state key \'items\' = "not a list", which reducer "extend" cannot combine' in str(info.value)


async def test_pending_sends_cross_continue_as_new():
    wf = Workflow(_name("FanCAN"), steps_per_run=2, reducers={"seen": "append"})

    def work(i, context):
        context.state["seen"] = i
        return i * i

    wf.add_node("Start", lambda n: n).add_node("Plan", lambda n: [Send("Work", i) for i in range(n)])
    wf.add_node("Work", work).add_node("Sum", lambda xs, context: {"sum": sum(xs), "seen": context.state["seen"]})
    wf.add_edge("Start", "Plan").add_edge("Work", "Sum").set_entry_point("Start")
    handle = await wf.start(4)
    assert await handle.result() == {"sum": 0 + 1 + 4 + 9, "seen": [0, 1, 2, 3]}
    state = await handle.state()
    assert state["run"] == 3 and state["step"] == 7  # Start, Plan | 4 Sends | Sum


@pytest.mark.parametrize("mode", ["layered", "eager"])
async def test_gecko_state_shows_each_instance_and_a_jump_from_outside_drops_the_fan_in(session_id, tmp_path, mode):
    release = tmp_path / "release"
    collected = []

    def work(i):
        wait_until(release.exists, 60, "release")  # a failure bound only
        return i

    wf = Workflow(_name("FanJump"), scheduling=mode)
    wf.add_node("Plan", lambda n: [Send("Work", i) for i in range(n)]).add_node("Work", work)
    done = []
    wf.add_node("Collect", lambda xs: collected.append(xs)).add_node("Done", lambda x: done.append(x) or f"done:{x}")
    wf.add_edge("Work", "Collect").set_entry_point("Plan")
    handle = await wf.start(3, session_id=session_id)
    for _ in range(600):
        state = await handle.state()
        if len(state["running"]) == 3:
            break
        await asyncio.sleep(0.05)
    assert state["running"] == ["Work[0]", "Work[1]", "Work[2]"]
    await handle.jump("Done", "now")
    if mode == "eager":  # Done starts at once, beside the instances, and finishes while they still run
        for _ in range(600):
            if done:
                break
            await asyncio.sleep(0.05)
        assert done == ["now"]
    release.write_text("go")
    result = await handle.result()
    # Layered: the jump runs after the layer. Eager: the run returns what finished last (README),
    # the instances' list.
    assert result == ("done:now" if mode == "layered" else [0, 1, 2])
    assert done == ["now"]
    assert collected == []  # the instances finished, but where they led was dropped


async def test_routes_reach_a_waiting_node_and_sends_run_a_team_per_item(session_id):
    wf = Workflow(_name("WaitTeam"), reducers={"seen": "append"})

    def member_a(s, context):
        context.state["seen"] = s + "/a"
        return s + "/a"

    def member_b(s, context):
        context.state["seen"] = s + "/b"
        return s + "/b"

    wf.add_node("Start", lambda x: x).add_node("Ask", WaitForInput("How many?"))
    wf.add_node("Fan", lambda n: [Send("Panel", f"item{i}") for i in range(n)])
    wf.add_node("Panel", Team(members=[member_a, member_b]))
    wf.add_node("Collect", lambda teams, context: ([[m.result for m in t] for t in teams], context.state["seen"]))
    wf.add_conditional_edges("Start", lambda x: "ask", {"ask": "Ask"})
    wf.add_edge("Ask", "Fan").add_edge("Panel", "Collect").set_entry_point("Start")
    handle = await wf.start("x", session_id=session_id)
    for _ in range(600):
        if (await handle.state())["waiting"]:
            break
        await asyncio.sleep(0.05)
    await handle.answer("Ask", 2)
    # every member's write to the reduced key counts: Send order, then member order
    assert await handle.result() == [
        [["item0/a", "item0/b"], ["item1/a", "item1/b"]],
        ["item0/a", "item0/b", "item1/a", "item1/b"],
    ]
    members = Counter(t.split(".", 1)[1] for t, _ in await _scheduled(handle) if ".Panel." in t)
    assert sum(members.values()) == 4  # two Team instances, two member activities each


# -- Mermaid and the CLI ------------------------------------------------------------------------------


def test_graph_command_prints_the_mermaid_flowchart_and_names_a_bad_spec():
    ok = run_gecko("graph", "tests.pipelines.langgraph_style:wf")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == lg.wf.draw_mermaid() + "\n"
    lines = ok.stdout.splitlines()
    assert '    Classify -.->|"research"| Plan' in lines and '    Classify -.->|"stop"| __end__' in lines
    assert '    Plan ==>|"Send: Research"| Research' in lines
    bad = run_gecko("graph", "tests.pipelines.langgraph_style:nope")
    assert bad.returncode == 2 and 'has no attribute "nope" (Workflow objects there: brief, wf)' in bad.stderr


# -- from a separate worker process, across a crash ------------------------------------------------


@pytest.fixture
def procs(tmp_path):
    p = Procs(tmp_path)
    yield p
    p.close()


def _events(log: Path) -> Counter:
    return Counter(e for e, _ in lg.read_log(str(log)))


@pytest.mark.slow
async def test_langgraph_style_pipeline_from_a_worker_process_survives_a_sigkill_mid_fan_out(
    dev_server, procs, tmp_path, monkeypatch
):
    log = tmp_path / "nodes.log"
    queue = f"lg-{uuid.uuid4().hex[:6]}"
    env = {"GECKO_LG_LOG": str(log), "GECKO_LG_SLOW": "60"}  # odd instances run until the crash
    spec = "tests.pipelines.langgraph_style:wf"
    first = procs.worker(spec, "--address", dev_server.address, "--task-queue", queue, env=env)
    first.wait_for("worker ready", 120)
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_server.address)  # the test only starts the run
    monkeypatch.setenv("GECKO_TASK_QUEUE", queue)
    handle = await lg.wf.start("Why is the sky blue?", session_id=f"lg-{uuid.uuid4().hex[:8]}")

    def evens_done_odds_running() -> bool:
        e = _events(log)
        return all(e[f"research-end-{i}"] == 1 for i in range(0, 12, 2)) and all(
            e[f"research-start-{i}"] == 1 for i in range(1, 12, 2)
        )

    await asyncio.to_thread(wait_until, evens_done_odds_running, 120, "even instances done, odd ones in flight")
    odd = [f"Research[{i}]" for i in range(1, 12, 2)]
    for _ in range(600):  # the even instances' completions reach the workflow a moment after their log line
        state = await handle.state()
        if state["running"] == odd:
            break
        await asyncio.sleep(0.05)
    assert state["running"] == odd
    first.kill()
    second = procs.worker(
        spec, "--address", dev_server.address, "--task-queue", queue, env={**env, "GECKO_LG_SLOW": "0"}
    )
    result = await asyncio.wait_for(handle.result(), 120)  # a failure bound only
    assert result["reports"] == 12 and result["findings"] == [f"finding {i}" for i in range(12)]
    entries = lg.read_log(str(log))
    counts = Counter(e for e, _ in entries)
    assert all(counts[f"research-end-{i}"] == 1 for i in range(12))  # finished instances never ran again
    assert all(counts[f"research-start-{i}"] == (2 if i % 2 else 1) for i in range(12))  # cut-off ones did
    assert counts["classify"] == counts["plan"] == counts["collect"] == counts["headline"] == 1
    by_pid = {e: p for e, p in entries}
    assert by_pid["plan"] == first.pid and by_pid["collect"] == by_pid["headline"] == second.pid
    assert result["headline"] == "12 reports on Why is the sky blue?"  # the subgraph ran on the new worker
