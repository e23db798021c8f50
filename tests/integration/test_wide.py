"""Big graphs (issue 15): layers wider than Temporal's 2,000 pending activities, graphs of 10,000
nodes, and runs that cap how many nodes run at once (``max_parallel``).

Facts come from the run's history (how many activities were pending at once, what ran in which
run) and from events the nodes record, never from a stopwatch.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter

import pytest
from temporalio.api.enums.v1 import EventType

from gecko_temporal import GraphError, Workflow, WorkflowTimeoutError, step
from gecko_temporal.core.window import DEFAULT_MAX_PARALLEL
from gecko_temporal.temporal.embedded import find_temporal_binary

_CLOSED = (
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
)


async def _runs(handle) -> list:
    """The histories of every run of a session, first to last (following continue-as-new)."""
    th = handle.temporal_handle
    run_id, histories = th.first_execution_run_id, []
    while run_id:
        history = await th._client.get_workflow_handle(th.id, run_id=run_id).fetch_history()
        histories.append(history)
        last = history.events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.HasField("workflow_execution_continued_as_new_event_attributes")
            else None
        )
    return histories


def _peak_pending(events) -> int:
    """Most activities pending on the server at once: scheduled and not yet closed."""
    pending = peak = 0
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            pending += 1
            peak = max(peak, pending)
        elif e.event_type in _CLOSED:
            pending -= 1
    return peak


def _scheduled(histories) -> Counter:
    return Counter(
        e.activity_task_scheduled_event_attributes.activity_type.name
        for h in histories
        for e in h.events
        if e.HasField("activity_task_scheduled_event_attributes")
    )


def _fan(name: str, width: int, leaf, **options) -> Workflow:
    """start -> width parallel leaves -> end, the join summing what the leaves returned."""
    wf = Workflow(name, max_steps=width + 10, **options)
    wf.add_node("start", lambda x: x)
    wf.add_node("end", lambda parts: sum(parts.values()))
    for i in range(width):
        wf.add_node(f"n{i}", leaf).add_edge("start", f"n{i}").add_edge(f"n{i}", "end")
    return wf.set_entry_point("start")


async def _cli_state(dev_server, session: str) -> dict:
    proc = await asyncio.create_subprocess_exec(
        find_temporal_binary(),
        "workflow",
        "query",
        "--workflow-id",
        session,
        "--name",
        "gecko_state",
        "--output",
        "json",
        "--address",
        dev_server.address,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, f"gecko_state did not answer from the CLI: {err.decode()}"
    return json.loads(out)["queryResult"][0]


_gate = threading.Event()


async def _gated_leaf(x, context):
    # every leaf writes the same key: the merge is in node order, so the last node wins whoever finished last
    context.state["last"] = context.node
    if context.node == "n0":  # holds the layer open until the test has queried it
        for _ in range(2400):
            if _gate.is_set():
                break
            await asyncio.sleep(0.05)
    return 1


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.alone  # CPU-bound: beside another test on 2 cores its workflow tasks overran the deadlock bound
async def test_a_3000_wide_layer_runs_through_the_window_and_joins(dev_server, session_id):
    """Temporal allows 2,000 pending activities: the layer runs through a window of 1,000, queries
    answer while it runs (from the handle and the real CLI), and the join sees all 3,000 outputs."""
    _gate.clear()
    wf = _fan("Wide3000", 3000, _gated_leaf)
    handle = await wf.start("go", session_id=session_id, timeout=600)
    try:
        for _ in range(1200):  # the wide layer is layer 2; n0 holds it open
            state = await handle.state()
            if state["layer"] == 2:
                break
            await asyncio.sleep(0.1)
        assert state["layer"] == 2 and state["status"] == "running" and "n0" in state["running"]
        assert len(state["running"]) <= DEFAULT_MAX_PARALLEL and len(state["running"]) + state["queued"] <= 3000
        cli = await _cli_state(dev_server, handle.id)
        assert cli["layer"] == 2 and cli["status"] == "running" and "n0" in cli["running"], cli
    finally:
        _gate.set()
    assert await handle.result() == 3000
    final = await handle.state()
    assert final["state"] == {"last": "n2999"}  # node order, not completion order (n0 finished last)
    histories = await _runs(handle)
    assert max(_peak_pending(h.events) for h in histories) == DEFAULT_MAX_PARALLEL  # never more; as many as allowed
    ran = _scheduled(histories)
    assert len(ran) == 3002 and set(ran.values()) == {1}  # every node exactly once


_events: list[tuple[str, str]] = []


async def _recorded_leaf(x, context):
    _events.append(("start", context.node))
    await asyncio.sleep(0.05)
    _events.append(("end", context.node))
    return 1


async def test_max_parallel_caps_the_nodes_running_at_once(session_id):
    _events.clear()
    handle = await _fan("Capped", 12, _recorded_leaf, max_parallel=2).start("x", session_id=session_id)
    assert await handle.result() == 12
    running = peak = 0
    for kind, _ in _events:  # as the nodes saw it, on the worker
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    assert peak <= 2 and Counter(kind for kind, _ in _events) == {"start": 12, "end": 12}
    (history,) = await _runs(handle)
    assert _peak_pending(history.events) == 2  # as the server saw it: two at once, never three


def test_max_parallel_is_checked_when_the_graph_is_built():
    for bad in (0, -1, 2001, 1.5, True, "10"):
        with pytest.raises(GraphError, match="max_parallel must be an int from 1 to 2000"):
            Workflow("Bad", max_parallel=bad)


async def _writer_leaf(x, context):
    context.state["last"] = context.node
    context.state[context.node] = True
    return 1


async def test_a_layer_too_wide_for_one_history_continues_as_new_in_the_middle(session_id, monkeypatch):
    """Temporal ends a run at 51,200 events; a 10,000-wide layer writes about 35,000 and more with
    slow nodes. Near the limit the window stops starting nodes, the running ones finish, and the run
    continues as new with the rest of the layer. The limit is lowered here so that a 30-wide layer
    with a window of 3 pauses after a few nodes (the embedded worker shares this process)."""
    from gecko_temporal.core import window

    monkeypatch.setattr(window, "EVENTS_RESERVE", 0)
    monkeypatch.setattr(window, "HISTORY_EVENTS_LIMIT", 60 + 8 * 3)  # pause once a run has 60 events
    handle = await _fan("Paused", 30, _writer_leaf, max_parallel=3).start("x", session_id=session_id)
    assert await handle.result() == 30
    state = await handle.state()
    assert state["state"]["last"] == "n29" and sum(1 for k in state["state"] if k.startswith("n")) == 30
    histories = await _runs(handle)
    # 30 leaves need at least 90 activity events, more than a run may take (60, then the <= 3 running
    # finish): the first run must stop mid-layer. How many runs follow depends on how completions batch.
    assert len(histories) >= 2  # the layer went on in another run...
    ran = _scheduled(histories)
    assert len(ran) == 32 and set(ran.values()) == {1}  # ...and no node ran twice or was lost
    for h in histories[:-1]:
        assert len(h.events) < 60 + 8 * 3 + 20  # each run stopped near the (lowered) limit
    assert state["layer"] == 3 and state["step"] == 32  # one layer, however many runs it took


def _big_graph(name: str, nodes: int, *, label: str = "", **options) -> Workflow:
    """``nodes`` nodes in a chain; the entry jumps near the end, so a run executes only the tail."""
    wf = Workflow(name, **options)
    wf.add_node("entry", lambda x: __import__("gecko_temporal").Next(node=f"n{nodes - 5}{label}", input=x))
    for i in range(nodes - 1):
        wf.add_node(f"n{i}{label}", lambda x: x + 1)
        if i:
            wf.add_edge(f"n{i - 1}{label}", f"n{i}{label}")
    return wf.set_entry_point("entry")


async def test_a_graph_of_10000_nodes_starts_and_runs_across_continue_as_new(session_id):
    """Its spec (about 350 KB compact, 4.9 MB in the old full form) is the run's input: over the
    embedded store's 256 KiB threshold it travels through the payload store, and every
    continue-as-new (here every 2 steps) carries it on."""
    wf = _big_graph("Big10k", 10_000, steps_per_run=2)
    handle = await wf.start(0, session_id=session_id)
    assert await handle.result() == 4  # n9995 .. n9998: four steps of +1
    histories = await _runs(handle)
    assert len(histories) >= 3
    assert _scheduled(histories) == Counter({"Big10k.entry": 1, **{f"Big10k.n{i}": 1 for i in range(9995, 9999)}})


async def test_a_run_input_over_the_payload_limit_without_a_store_is_refused_at_start(monkeypatch):
    monkeypatch.setenv("GECKO_PAYLOAD_STORE", "none")  # Temporal's 2 MiB payload limit applies
    wf = _big_graph("TooBig", 10_000, label="_" + "x" * 200)
    with pytest.raises(GraphError) as err:
        await wf.start(0)
    message = str(err.value)
    assert 'workflow "TooBig" cannot start' in message and "10000 nodes" in message
    assert "over Temporal's 2.0 MB payload limit" in message and "GECKO_PAYLOAD_STORE" in message
    small = Workflow("BigInput").add_node("a", lambda x: len(x)).set_entry_point("a")
    with pytest.raises(GraphError, match=r"input_data 3\.0 MB\), over Temporal's 2\.0 MB payload limit"):
        await small.execute("y" * (3 * 1024 * 1024))


async def test_a_run_input_over_the_payload_limit_goes_through_the_store(session_id):
    """The embedded default has a payload store (GECKO_PAYLOAD_STORE names one on a cluster)."""
    wf = _big_graph("StoredSpec", 10_000, label="_" + "x" * 200)
    handle = await wf.start(0, session_id=session_id)
    assert await handle.result() == 4
    (first, *_) = await _runs(handle)
    started = first.events[0].workflow_execution_started_event_attributes
    assert started.input.ByteSize() < 10_000  # history holds a reference to the 2.6 MB spec


async def test_team_members_and_eager_runs_share_the_window(session_id):
    """Every activity start goes through the one window: Team members and eager runs too."""
    from gecko_temporal import ExecutionStrategy, Team

    async def member(x):
        await asyncio.sleep(0.02)
        return 1

    members = [step(name=f"m{i}")(member) for i in range(5)]
    wf = Workflow("CappedTeam", max_parallel=2)
    wf.add_node("panel", Team(members, strategy=ExecutionStrategy.ALL))
    wf.add_node("count", lambda results: sum(r.result for r in results if r.is_success))
    wf.add_edge("panel", "count").set_entry_point("panel")
    handle = await wf.start("q", session_id=session_id)
    assert await handle.result() == 5
    (history,) = await _runs(handle)
    assert _peak_pending(history.events) == 2

    eager = _fan("CappedEager", 6, _recorded_leaf, max_parallel=2, scheduling="eager")
    handle = await eager.start("x", session_id=session_id + "-eager")
    assert await handle.result() == 6
    (history,) = await _runs(handle)
    assert _peak_pending(history.events) == 2


async def _slow_leaf(x, context):
    _events.append(("start", context.node))
    await asyncio.sleep(0.3)
    _events.append(("end", context.node))
    return 1


async def test_jumps_and_the_timeout_work_while_a_layer_waits_for_the_window(session_id):
    _events.clear()
    wf = _fan("Steered", 20, _slow_leaf, max_parallel=2)
    wf.add_node("elsewhere", lambda x: f"jumped: {x}")
    handle = await wf.start("x", session_id=session_id)
    for _ in range(600):
        queued = (await handle.state())["queued"]
        if queued:
            break
        await asyncio.sleep(0.05)
    # with `queued` nodes left, the layer needs at least queued / 2 x 0.3 s more: room for the jump
    assert queued >= 10
    await handle.jump("elsewhere", "now")  # taken when the layer ends, as always
    assert await handle.result() == "jumped: now"
    assert sum(1 for kind, _ in _events if kind == "end") == 20  # the layer finished first

    timed = _fan("TimedOut", 200, _slow_leaf, max_parallel=2)
    with pytest.raises(WorkflowTimeoutError, match=r"while running n\d+, n\d+ \(step"):
        await timed.execute("x", session_id=session_id + "-timeout", timeout=2)
