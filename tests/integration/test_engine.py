"""The core engine on a real Temporal dev server, used exactly as the README shows."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest
from pydantic import BaseModel

from gecko_temporal import (
    GeckoError,
    GraphError,
    Next,
    NodeError,
    SerializationError,
    StepLimitError,
    Workflow,
    WorkflowContext,
    WorkflowTimeoutError,
    step,
)


def seed_pipeline(name="DataPipeline") -> Workflow:
    @step(name="Fetcher")
    def fetch_data(url: str):
        return {"status": "ok" if url.startswith("file:") else "error", "url": url}

    @step(name="Analyzer")
    async def analyze(data: dict):
        if data["status"] != "ok":
            return Next(node="ErrorHandler", input="Data invalid")
        return {"result": "pass"}

    wf = Workflow(name=name)
    wf.add_node("Fetcher", fetch_data)
    wf.add_node("Analyzer", analyze)
    wf.add_node("ErrorHandler", lambda x: f"Error: {x}")
    wf.add_edge("Fetcher", "Analyzer")
    wf.set_entry_point("Fetcher")
    return wf


async def test_seed_quick_start_runs_both_branches(session_id):
    wf = seed_pipeline()
    assert await wf.execute(input_data="file:///data.json", session_id=session_id, timeout=30.0) == {"result": "pass"}
    assert await wf.execute(input_data="http://api.example.com", timeout=30.0) == "Error: Data invalid"


async def test_session_id_is_the_workflow_id_and_nodes_are_named_activities(session_id):
    wf = seed_pipeline()
    handle = await wf.start("file:///x", session_id=session_id)
    assert handle.id == session_id
    assert await handle.result() == {"result": "pass"}
    history = await handle.temporal_handle.fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled == ["DataPipeline.Fetcher", "DataPipeline.Analyzer"]
    assert (await handle.state())["completed"] == ["Fetcher", "Analyzer"]


async def test_a_running_session_id_cannot_be_reused(session_id):
    release = threading.Event()
    wf = Workflow("Slow").add_node("wait", lambda x: release.wait(60) and x).set_entry_point("wait")
    first = await wf.start(1, session_id=session_id)
    try:
        with pytest.raises(GeckoError, match=f'session "{session_id}" is already running'):
            await wf.start(2, session_id=session_id)  # the first run cannot end before this: it waits
    finally:
        release.set()
    assert await first.result() == 1


async def test_sync_nodes_in_one_layer_run_in_parallel_without_blocking_the_loop():
    """Proved by events, not a stopwatch: all six block until all six are running at once (they could
    never pass the barrier one after another), and while they block, an async node of the same layer
    (on the worker's event loop) runs to completion and releases them."""
    together = threading.Barrier(6)
    loop_ran = threading.Event()

    def sleeper(x):
        together.wait(timeout=60)  # BrokenBarrierError if the six did not run at once
        if not loop_ran.wait(timeout=60):
            raise AssertionError("the event loop did not run while sync nodes blocked")
        return x

    async def on_the_loop(x):
        for _ in range(5):
            await asyncio.sleep(0.01)  # several turns of the worker's loop
        loop_ran.set()
        return "loop"

    wf = Workflow("Sleepers").add_node("start", lambda x: x)
    for i in range(6):
        wf.add_node(f"sleep{i}", step(retries=1)(lambda x: sleeper(x)))
        wf.add_edge("start", f"sleep{i}")
    wf.add_node("async", on_the_loop).add_edge("start", "async")
    wf.set_entry_point("start")
    result = await wf.execute("x")
    assert result == {**{f"sleep{i}": "x" for i in range(6)}, "async": "loop"}


async def test_copy_on_read_isolates_parallel_nodes_and_tombstones_merge():
    def init(_, context):
        context.state["items"] = [1]
        context.state["config"] = {"mode": "fast"}
        context.state["scratch"] = "temporary"

    def mutate_without_assigning(_, context):
        context.state["items"].append("leak?")
        context.state["config"]["mode"] = "changed"
        return "mutated"

    def reader(_, context):
        time.sleep(0.2)  # runs while the other node mutates its own copies
        return {"items": context.state["items"], "mode": context.state["config"]["mode"]}

    def deleter(_, context):
        del context.state["scratch"]
        items = context.state["items"]
        items.append(2)
        context.state["items"] = items  # assigned back: this one counts
        return "deleted"

    def report(_, context):
        return {"state": dict(context.state), "reader saw": context.history["reader"]}

    wf = Workflow("Isolation").add_node("init", init).add_node("report", report)
    for name, fn in (("mutate", mutate_without_assigning), ("reader", reader), ("deleter", deleter)):
        wf.add_node(name, fn).add_edge("init", name).add_edge(name, "report")
    wf.set_entry_point("init")
    handle = await wf.start()
    final = await handle.result()
    assert final["state"] == {"items": [1, 2], "config": {"mode": "fast"}}
    assert final["reader saw"] == {"items": [1], "mode": "fast"}  # neither sibling leaked into its view
    state = await handle.state()
    assert state["state"] == final["state"] and "scratch" not in state["state"]
    assert state["completed"][-1] == "report"


async def test_same_key_written_by_two_nodes_of_a_layer_last_in_node_order_wins():
    def writer(value, delay):
        def write(_, context):
            time.sleep(delay)  # finish in the opposite order of node order
            context.state["winner"] = value

        return write

    wf = Workflow("Conflict").add_node("start", lambda x: x)
    wf.add_node("first", writer("first", 0.6)).add_node("second", writer("second", 0.0))
    wf.add_node("end", lambda _, context: context.state["winner"])
    for n in ("first", "second"):
        wf.add_edge("start", n).add_edge(n, "end")
    wf.set_entry_point("start")
    handle = await wf.start()
    assert await handle.result() == "second"
    assert (await handle.state())["conflicts"] == []  # the last layer ran only "end"


async def test_fan_in_gets_outputs_by_predecessor_name():
    wf = Workflow("FanIn").add_node("split", lambda text: text.split())
    wf.add_node("count", lambda words: len(words)).add_node("longest", lambda words: max(words, key=len))
    wf.add_node("join", lambda parts: f"{parts['count']} words, longest {parts['longest']!r}")
    for n in ("count", "longest"):
        wf.add_edge("split", n).add_edge(n, "join")
    wf.set_entry_point("split")
    assert await wf.execute("durable agent pipelines survive") == "4 words, longest 'pipelines'"


async def test_next_loop_reads_the_first_steps_output_from_history():
    def start(topic, context: WorkflowContext):
        context.state["drafts"] = []
        return f"outline of {topic}"

    def draft(_, context: WorkflowContext):
        drafts = context.state["drafts"] + [f"draft {len(context.state['drafts']) + 1}"]
        context.state["drafts"] = drafts
        if len(drafts) < 5:
            return Next("draft")
        return {
            "outline": context.history["start"],
            "drafts": drafts,
            "input": context.input,
            "node": context.node,
            "step": context.step,
            "session": context.session_id,
        }

    wf = Workflow("Loop").add_node("start", start).add_node("draft", draft).add_edge("start", "draft")
    wf.set_entry_point("start")
    handle = await wf.start("temporal", session_id="loop-session-1")
    result = await handle.result()
    assert result == {
        "outline": "outline of temporal",
        "drafts": [f"draft {i}" for i in range(1, 6)],
        "input": "temporal",
        "node": "draft",
        "step": 6,
        "session": "loop-session-1",
    }


async def test_runaway_loop_hits_the_step_bound():
    wf = Workflow("Runaway", max_steps=15).add_node("again", lambda n: Next("again", n + 1)).set_entry_point("again")
    with pytest.raises(StepLimitError, match="step limit of 15"):
        await wf.execute(0)
    with pytest.raises(StepLimitError, match="step limit of 4"):
        await wf.execute(0, max_steps=4)


async def test_global_timeout_raises_workflow_timeout_error():
    finished = []

    def slow(x):
        for _ in range(1200):  # 120 s: the run's 1 s timeout must end the run, not this loop
            time.sleep(0.1)
        finished.append(x)

    wf = Workflow("TooSlow").add_node("slow", slow).set_entry_point("slow")
    with pytest.raises(WorkflowTimeoutError, match="timed out.*while running slow") as err:
        await wf.execute(None, timeout=1.0)
    assert isinstance(err.value, TimeoutError)
    assert finished == []  # the run did not wait for the node


async def test_failing_node_names_node_type_and_message():
    calls = []

    @step(retries=2, retry=None)
    def parse(text):
        calls.append(text)
        raise ValueError(f"cannot parse {text!r}")

    wf = Workflow("Failing").add_node("parse", parse).set_entry_point("parse")
    with pytest.raises(NodeError) as err:
        await wf.execute("garbage")
    assert str(err.value) == "node \"parse\" failed: ValueError: cannot parse 'garbage'"
    assert (err.value.node, err.value.error_type, err.value.error_message) == (
        "parse",
        "ValueError",
        "cannot parse 'garbage'",
    )
    assert len(calls) == 2  # retried as configured, then failed


async def test_node_timeout_names_the_node_and_keeps_an_earlier_attempts_error():
    from temporalio import activity

    @step(retries=1, timeout=1.0)
    async def hang(x):
        await asyncio.sleep(30)

    @step(retries=2, timeout=1.0)
    async def flaky(x):
        if activity.info().attempt == 1:
            raise ValueError("bad row 7")
        await asyncio.sleep(30)  # the retry hangs: its start-to-close timeout ends the node

    with pytest.raises(NodeError, match='^node "hang" failed: TimeoutError: start-to-close timeout'):
        await Workflow("Hangs").add_node("hang", hang).set_entry_point("hang").execute(1)
    # What the user's code raised is the useful part; the retry's timeout must not hide it.
    with pytest.raises(NodeError) as err:
        await Workflow("FlakyThenHangs").add_node("flaky", flaky).set_entry_point("flaky").execute(1)
    assert str(err.value) == (
        'node "flaky" failed: ValueError: bad row 7 (a later attempt then hit a start-to-close timeout)'
    )


async def test_next_to_an_unknown_node_fails_naming_valid_targets():
    wf = Workflow("BadJump").add_node("router", lambda x: Next("Summarise")).add_node("Summarize", lambda x: x)
    wf.set_entry_point("router")
    with pytest.raises(
        GraphError,
        match='node "router" jumped to an unknown node: no node named "Summarise" '
        '\\(did you mean "Summarize"\\? valid: "router", "Summarize"\\)',
    ):
        await wf.execute(1)


async def test_unserializable_output_names_the_node_and_type():
    calls = []

    def opener(x):
        calls.append(x)
        return {"handle": open(__file__)}

    wf = Workflow("BadOutput").add_node("opener", step(retries=3)(opener))
    wf.set_entry_point("opener")
    handle = await wf.start(1)
    with pytest.raises(SerializationError, match='the output of node "opener" contains a TextIOWrapper'):
        await handle.result()
    assert calls == [1]  # not retried although retries=3: a retry cannot fix it
    history = await handle.temporal_handle.fetch_history()
    (failed,) = [e for e in history.events if e.HasField("activity_task_failed_event_attributes")]
    assert failed.activity_task_failed_event_attributes.failure.application_failure_info.non_retryable


async def test_unserializable_input_is_refused_before_anything_runs():
    wf = seed_pipeline()
    with pytest.raises(SerializationError, match="input_data contains a object"):
        await wf.execute(object())


class Summary(BaseModel):
    words: int


async def test_pydantic_outputs_arrive_as_models_downstream():
    wf = Workflow("Models").add_node("make", lambda text: Summary(words=len(text.split())))
    wf.add_node("use", lambda summary: {"is_model": isinstance(summary, Summary), "words": summary.words})
    wf.add_edge("make", "use").set_entry_point("make")
    assert await wf.execute("a b c") == {"is_model": True, "words": 3}
    wf2 = Workflow("ModelResult").add_node("make", lambda text: Summary(words=2)).set_entry_point("make")
    assert await wf2.execute("x") == Summary(words=2)


async def test_reads_ships_only_declared_keys():
    def init(_, context):
        context.state.update(small=1, huge=list(range(1000)))

    @step(reads=["small"])
    def light(_, context):
        return {"small": context.state["small"], "keys": sorted(context.state)}

    @step(reads=["small"], retries=1)
    def greedy(_, context):
        return context.state["huge"]

    wf = Workflow("Reads").add_node("init", init).add_node("light", light).add_edge("init", "light")
    wf.set_entry_point("init")
    assert await wf.execute() == {"small": 1, "keys": ["small"]}
    wf.add_node("greedy", greedy).add_edge("light", "greedy")
    with pytest.raises(NodeError) as err:
        await wf.execute()
    assert str(err.value) == (
        'node "greedy" failed: StateKeyError: node "greedy" read state key \'huge\' that it did not declare in '
        "reads=['small']; add it to reads or drop reads to receive all keys"
    )


async def test_a_running_node_heartbeats_well_inside_its_heartbeat_timeout():
    """The server's view (`temporal workflow describe`): with the SDK's default throttle a node
    heartbeated every 4 s against a 5 s timeout, so a 1 s stall of a busy worker or server got a
    healthy node retried. Now it heartbeats every timeout/3."""
    release = threading.Event()
    wf = Workflow("Heartbeats").add_node("work", lambda x: release.wait(120) and "done").set_entry_point("work")
    handle = await wf.start()
    beats: list[float] = []
    result = asyncio.ensure_future(handle.result())
    try:
        while len(beats) < 4:  # the node runs until three gaps were seen (120 s bounds a failure)
            assert not result.done(), f"the node ended before 4 heartbeats were seen: {beats}"
            description = await handle.temporal_handle.describe()
            for pending in description.raw_description.pending_activities:
                if pending.HasField("last_heartbeat_time"):
                    at = pending.last_heartbeat_time.ToDatetime().timestamp()
                    if not beats or beats[-1] != at:
                        beats.append(at)
            await asyncio.sleep(0.1)
    finally:
        release.set()
    gaps = [round(b - a, 2) for a, b in zip(beats, beats[1:])]
    # A loaded machine only lengthens gaps (or makes the poll miss a beat), never shortens them, so
    # the shortest gap shows the interval the node aims for; the old 4 s throttle never goes under 3 s.
    assert min(gaps) < 2.5, f"heartbeats {gaps} s apart leave little of the 5 s timeout"
    assert await result == "done"


async def test_cancel_stops_a_running_session():
    wf = Workflow("Cancellable").add_node("slow", lambda x: time.sleep(30)).set_entry_point("slow")
    handle = await wf.start()
    await asyncio.sleep(0.5)
    await handle.cancel()
    with pytest.raises(GeckoError, match="was cancelled"):
        await handle.result()


async def test_two_workflows_with_one_name_both_run_in_one_process():
    a = Workflow("Same").add_node("n", lambda x: "a").set_entry_point("n")
    b = Workflow("Same").add_node("n", lambda x: "b").set_entry_point("n")
    assert (await a.execute(), await b.execute()) == ("a", "b")


@pytest.mark.parametrize(
    "build, message",
    [
        (
            lambda wf: (
                wf.add_node("A", lambda x: x)
                .add_node("B", lambda x: x)
                .add_edge("A", "B")
                .add_edge("B", "A")
                .set_entry_point("A")
            ),
            'static cycle "A" -> "B" -> "A"',
        ),
        (lambda wf: wf.add_node("A", lambda x: x).add_edge("A", "Z").set_entry_point("A"), 'no node named "Z"'),
        (lambda wf: wf.add_node("A", lambda x: x), "no entry point"),
        (lambda wf: wf.add_node("A", lambda x: x).set_entry_point("Start"), 'entry point "Start" is not a node'),
    ],
)
async def test_invalid_graphs_fail_before_a_run_starts(build, message, session_id):
    wf = build(Workflow("Invalid"))
    with pytest.raises(GraphError, match=message):
        await wf.execute(1, session_id=session_id)
    from gecko_temporal import get_handle

    handle = await get_handle(session_id)
    with pytest.raises(Exception, match="not found"):
        await handle.temporal_handle.describe()  # nothing was started on the server


async def test_conflicts_of_the_last_layer_reach_gecko_state_and_the_log(caplog):
    """README: when two nodes of one layer write or delete one key, the later added wins and the key
    is reported under conflicts in gecko_state and logged."""
    caplog.set_level(logging.INFO)
    first_done = threading.Event()

    def first(_, context):
        context.state["k"] = "first"
        context.state["only_first"] = 1
        first_done.set()

    def second(_, context):
        first_done.wait(60)  # completes after "first": completion order is node order here ...
        context.state["k"] = "second"

    def third(_, context):
        context.state["k"] = "third"  # ... and "third" (added last) still wins over both
        del context.state["gone"]

    def seed(_, context):
        context.state["gone"] = 1

    wf = Workflow("ConflictLog").add_node("seed", seed)
    for name, fn in (("first", first), ("second", second), ("third", third)):
        wf.add_node(name, fn).add_edge("seed", name)
    wf.set_entry_point("seed")
    handle = await wf.start()
    await handle.result()
    state = await handle.state()
    assert state["state"] == {"k": "third", "only_first": 1}
    assert state["conflicts"] == ["k"]
    logged = [r.getMessage() for r in caplog.records if "several nodes wrote" in r.getMessage()]
    assert len(logged) == 1 and "['k']" in logged[0], logged


def _big_inputs_graph(**options) -> Workflow:
    def start(x, context):  # 2,700 state keys short enough to travel whole: 542 KB together
        for i in range(2700):
            context.state[f"k{i:04d}"] = "x" * 190
        return {"n": 1}

    def again(x, context):  # runs three times, each time sent the whole state (over 512 KiB)
        return Next("big", {"n": x["n"] + 1}) if x["n"] < 3 else Next("other", len(context.state))

    wf = Workflow("BigInputs", **options).add_node("start", start)
    wf.add_node("big", again).add_node("other", lambda x, context: x).add_edge("start", "big")
    return wf.set_entry_point("start")


def _warned_nodes(caplog, run_id=None) -> list[str]:
    return [
        r.getMessage().split('"')[1]
        for r in caplog.records
        if "warning size" in r.getMessage() and run_id in (None, getattr(r, "temporal_workflow", {}).get("run_id"))
    ]


async def test_a_large_input_warns_once_per_node(caplog, monkeypatch):
    """README: over 512 KiB a warning is logged once per node (not once per execution)."""
    monkeypatch.setenv("GECKO_PAYLOAD_STORE", "none")  # Temporal's limits apply only without a payload store
    caplog.set_level(logging.WARNING)
    handle = await _big_inputs_graph().start()
    assert await handle.result() == 2700  # (gecko_state holds the 542 KB state: this client has no store to read it)
    # Temporal may suggest continue-as-new for this much history: count within the first run,
    # which always runs "big" at least twice (start, big, big, ...)
    first_run = handle.temporal_handle.first_execution_run_id
    history = await handle.temporal_handle._client.get_workflow_handle(handle.id, run_id=first_run).fetch_history()
    ran = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert ran[:3] == ["BigInputs.start", "BigInputs.big", "BigInputs.big"]
    assert _warned_nodes(caplog, first_run) == ["big"] + (["other"] if "BigInputs.other" in ran else [])


async def test_a_large_input_warns_once_per_node_across_continue_as_new(caplog, monkeypatch):
    monkeypatch.setenv("GECKO_PAYLOAD_STORE", "none")
    caplog.set_level(logging.WARNING)
    handle = await _big_inputs_graph(steps_per_run=2).start()
    assert await handle.result() == 2700
    assert (await handle.temporal_handle.describe()).run_id != handle.temporal_handle.first_execution_run_id
    assert _warned_nodes(caplog) == ["big", "other"]
