"""Temporal's 2 MiB payload limit: a run that would break it fails at once, naming what is big.

Without these checks, a node input over the limit makes its workflow task fail and retry forever:
the run stalls until its timeout and says nothing useful.
"""

from __future__ import annotations

import pytest

from gecko_temporal import Next, NodeError, Workflow, step

MB = 1024 * 1024


@pytest.fixture(autouse=True)
def no_payload_store(monkeypatch):
    """Runs started without a payload store (the embedded default has one: tests/integration/
    test_big_payloads.py), so Temporal's 2 MiB limit applies."""
    monkeypatch.setenv("GECKO_PAYLOAD_STORE", "none")


def _grow(key):
    def write(x, context):
        context.state[key] = "x" * (MB + MB // 5)  # 1.2 MB: fine alone, too much together
        return key

    return write


def _two_big_keys(name, reader):
    return (
        Workflow(name)
        .add_node("a", _grow("a"))
        .add_node("b", _grow("b"))
        .add_node("c", reader)
        .add_edge("a", "b")
        .add_edge("b", "c")
        .set_entry_point("a")
    )


async def test_state_over_the_limit_reaches_a_node_as_references(session_id):
    """Issue 22: long texts travel as references, so 2.4 MB of state no longer has to fit one input."""

    def reads_everything(x, context):
        return sorted((k, len(v)) for k, v in context.state.items())

    handle = await _two_big_keys("BigState", reads_everything).start(None, session_id=session_id, timeout=60)
    assert await handle.result() == [["a", MB + MB // 5], ["b", MB + MB // 5]]
    history = await handle.temporal_handle.fetch_history()
    (sent,) = [
        e.activity_task_scheduled_event_attributes.input.payloads[0].ByteSize()
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "BigState.c"
    ]
    assert sent < 1000


def _many_keys(key):
    def write(x, context):
        for i in range(6000):  # 1.2 MB of values short enough to travel whole (no references)
            context.state[f"{key}{i:04d}"] = "x" * 190
        return key

    return write


async def test_many_state_keys_too_big_for_a_node_fail_at_once_naming_the_keys_and_the_fix(session_id):
    def reads_everything(x, context):
        return len(context.state)

    wf = Workflow("ManyKeys").add_node("a", _many_keys("a")).add_node("b", _many_keys("b"))
    wf.add_node("c", reads_everything).add_edge("a", "b").add_edge("b", "c").set_entry_point("a")
    handle = await wf.start(None, session_id=session_id, timeout=60)
    with pytest.raises(NodeError) as err:  # a stall would end in WorkflowTimeoutError instead
        await handle.result()
    # Failed at once: no workflow task failed (Temporal's own refusal, retried until the timeout)
    # and node "c" was never scheduled.
    history = await handle.temporal_handle.fetch_history()
    assert not [e for e in history.events if e.HasField("workflow_task_failed_event_attributes")]
    assert [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ] == ["ManyKeys.a", "ManyKeys.b"]
    assert (err.value.node, err.value.error_type) == ("c", "PayloadTooLarge")
    assert str(err.value).startswith(
        'node "c" failed: PayloadTooLarge: node "c" would receive 2.4 MB per call (its input 7 B; state 2.3 MB: '
        '"a0000" 205 B, "a0001" 205 B, "a0002" 205 B, ...;'
    )
    assert "declare reads=[...] with the state keys it uses" in str(err.value)


async def test_declaring_reads_is_the_fix():
    @step(reads=["small"])
    def reads_one_key(x, context):
        return context.state.get("small", "absent")

    assert await _two_big_keys("BigStateReads", reads_one_key).execute(None, timeout=60) == "absent"


def _chain(name, last):
    wf = Workflow(name)
    for n in ("s1", "s2"):
        wf.add_node(n, lambda x: "y" * (MB - MB // 10))  # 0.9 MB outputs
    return wf.add_node("s3", last).add_edge("s1", "s2").add_edge("s2", "s3").set_entry_point("s1")


async def test_history_limits_which_outputs_a_node_is_sent():
    def all_history(x, context):
        return len(x)

    @step(history=[])
    def no_history(x, context):
        return len(x)

    # Issue 22: earlier outputs travel as references, so all of them (2.7 MB) reach s3 as well
    assert await _chain("LongOutputs", all_history).execute(None, timeout=60) == MB - MB // 10
    assert await _chain("LongOutputsHistory", no_history).execute(None, timeout=60) == MB - MB // 10


async def test_an_output_over_the_limit_is_not_retried():
    calls = []

    @step(retries=3)
    def huge(x):
        calls.append(x)
        return "z" * (2 * MB + 10)

    with pytest.raises(
        NodeError,
        match=r'node "huge" failed: PayloadTooLarge: the output of node "huge" is 2\.0 MB '
        r"\(its return value 2\.0 MB\), over Temporal's 2\.0 MB payload limit",
    ):
        await Workflow("HugeOutput").add_node("huge", huge).set_entry_point("huge").execute(1, timeout=60)
    assert len(calls) == 1  # retrying cannot make it smaller


async def test_a_result_over_the_limit_names_the_last_nodes():
    wf = (
        Workflow("HugeResult")
        .add_node("start", lambda x: x)
        .add_node("left", lambda x: "l" * (MB + MB // 10))
        .add_node("right", lambda x: "r" * (MB + MB // 10))
        .add_edge("start", "left")
        .add_edge("start", "right")
        .set_entry_point("start")
    )
    with pytest.raises(NodeError, match=r"the run's result \(the output of 'left', 'right'\) is 2\.2 MB"):
        await wf.execute(1, timeout=60)


async def test_a_snapshot_over_the_limit_keeps_the_run_going_in_one_run(session_id):
    @step(reads=[])  # its input stays small; only the snapshot carries the whole state
    def loop(n, context):
        if n < 2:
            context.state[f"blob{n}"] = "b" * (MB + MB // 5)
        if n == 5:  # tombstones: the state is small again at the end
            del context.state["blob0"], context.state["blob1"]
            return "done"
        return Next("loop", n + 1)

    wf = Workflow("BigSnapshot", steps_per_run=2).add_node("loop", loop).set_entry_point("loop")
    handle = await wf.start(0, session_id=session_id, timeout=60)
    assert await handle.result() == "done"
    state = await handle.state()
    assert (state["run"], state["step"], state["state"]) == (1, 6, {})  # never switched: the switch would fail
