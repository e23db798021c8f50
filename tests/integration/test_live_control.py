"""Watching and steering a live run: the gecko_state query, gecko_next jumps (signal, update and the
Temporal CLI), waiting for a person, and per-node retry/timeout policies."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from gecko_temporal import (
    GeckoError,
    JumpRejectedError,
    Next,
    NodeError,
    RetryPolicy,
    StepLimitError,
    WaitForInput,
    Workflow,
    step,
)
from tests.pipelines.polling import until
from tests.pipelines.procs import temporal

pytestmark = pytest.mark.asyncio


async def _cli(dev_server, *args: str) -> str:
    """Run the Temporal CLI against the test server (as a user would in a terminal)."""
    code, out, err = await temporal(dev_server, *args, within=30)
    assert code == 0, f"temporal {' '.join(args)} failed: {err}"
    return out


async def _signal(dev_server, session: str, name: str, body: str) -> None:
    """Send a signal with the Temporal CLI, as a user would in a terminal."""
    await _cli(dev_server, "workflow", "signal", "--workflow-id", session, "--name", name, "--input", body)


async def _until(handle, predicate, within: float = 60.0) -> dict:
    """Poll gecko_state until ``predicate(state)`` holds and return that state; raise with the last
    state seen if it never does (``within`` bounds a failure only)."""
    return await until(
        handle.state,
        predicate,
        lambda state: f"gecko_state never satisfied the condition within {within} s; last: {state}",
        every=0.05,
        within=within,
    )


def _review_pipeline(name: str, **wait_options) -> Workflow:
    def draft(topic, context):
        context.state["topic"] = topic
        return f"draft about {topic}"

    def publish(answer, context):
        return {"published": answer, "draft": context.history["Draft"]}

    wf = Workflow(name)
    wf.add_node("Draft", draft)
    wf.add_node("Review", WaitForInput("Approve the draft?", **wait_options))
    wf.add_node("Publish", publish)
    wf.add_node("Done", lambda x: f"stopped: {x}")
    wf.add_edge("Draft", "Review")
    wf.add_edge("Review", "Publish")
    wf.set_entry_point("Draft")
    return wf


async def test_state_query_from_handle_shows_a_waiting_run(session_id):
    wf = _review_pipeline("live_state")
    handle = await wf.start("otters", session_id=session_id)
    state = await _until(handle, lambda s: s["waiting"])
    assert state["status"] == "waiting"
    assert state["state"] == {"topic": "otters"}
    assert state["completed"] == ["Draft"]
    assert state["running"] == ["Review"]
    assert state["step"] == 2 and state["run"] == 1
    assert state["waiting"]["Review"]["prompt"] == "Approve the draft?"
    assert state["waiting"]["Review"]["input"] == "draft about otters"
    assert state["pending_jumps"] == [] and state["rejected_jumps"] == []

    reply = await handle.answer("Review", "looks good")
    assert reply == {"node": "Review", "waiting": True}
    assert await handle.result() == {"published": "looks good", "draft": "draft about otters"}
    final = await handle.state()  # queries keep working on a finished run
    assert final["status"] == "completed"
    assert final["completed"] == ["Draft", "Review", "Publish"]
    assert final["running"] == [] and final["waiting"] == {}


async def test_state_query_and_jump_signal_from_the_temporal_cli(dev_server, session_id):
    wf = _review_pipeline("live_cli")
    handle = await wf.start("cli", session_id=session_id)
    await _until(handle, lambda s: s["waiting"])

    out = await _cli(
        dev_server, "workflow", "query", "--workflow-id", session_id, "--type", "gecko_state", "--output", "json"
    )
    state = json.loads(out)["queryResult"][0]
    assert state["status"] == "waiting" and state["completed"] == ["Draft"]
    assert state["state"] == {"topic": "cli"} and state["step"] == 2

    await _signal(dev_server, session_id, "gecko_next", '{"node":"Done","input":"now"}')
    pending = await _until(handle, lambda s: s["pending_jumps"])
    assert pending["pending_jumps"] == [{"node": "Done", "input": "now", "source": "signal"}]
    # The jump runs at the next safe point: once the running layer (the wait) has ended.
    await _signal(dev_server, session_id, "gecko_answer", '{"node":"Review","value":"ok"}')
    assert await handle.result() == "stopped: now"
    assert (await handle.state())["completed"] == ["Draft", "Review", "Done"]  # Publish was skipped


async def test_jump_redirects_an_agent_loop():
    async def think(n):
        await asyncio.sleep(0.1)
        return Next("Think", n + 1)  # would loop until max_steps

    wf = Workflow("live_loop_jump", max_steps=200)
    wf.add_node("Think", think)
    wf.add_node("Answer", lambda x: f"answer: {x}")
    wf.set_entry_point("Think")
    handle = await wf.start(0)
    await _until(handle, lambda s: s["step"] >= 3)
    queued = await handle.jump("Answer", {"forced": True})
    assert queued["node"] == "Answer"
    at_jump = (await handle.state())["step"]  # queried after the jump was accepted: Answer may run already
    assert await handle.result() == "answer: {'forced': True}"
    state = await handle.state()
    assert state["completed"][-1] == "Answer"
    assert state["completed"].count("Answer") == 1
    # the jump happens when the running layer ends: Answer is the very next step, the loop ran on no
    # further (the query above saw the layer that was running, or Answer itself)
    assert state["step"] in (at_jump, at_jump + 1)


async def test_jump_result_is_the_target_output():
    async def think(n):
        await asyncio.sleep(0.1)
        return Next("Think", n + 1)

    wf = Workflow("live_loop_result", max_steps=200)
    wf.add_node("Think", think)
    wf.add_node("Answer", lambda x: {"answer": x})
    wf.set_entry_point("Think")
    handle = await wf.start(0)
    await _until(handle, lambda s: s["step"] >= 2)
    await handle.signal_jump("Answer", 42)
    assert await handle.result() == {"answer": 42}


async def test_unknown_jump_is_rejected_without_failing_or_stalling_the_run(session_id):
    wf = _review_pipeline("live_bad_jump")
    handle = await wf.start("x", session_id=session_id)
    await _until(handle, lambda s: s["waiting"])

    with pytest.raises(JumpRejectedError, match='no node named "Publsh".*did you mean "Publish"'):
        await handle.jump("Publsh", 1)
    await handle.signal_jump("Nowhere", 1)  # fire and forget: reported, never fatal
    await handle.temporal_handle.signal("gecko_next", "not an object")

    state = await _until(handle, lambda s: len(s["rejected_jumps"]) == 2)
    reasons = [r["reason"] for r in state["rejected_jumps"]]
    assert 'no node named "Nowhere"' in reasons[0]
    assert "needs a JSON object" in reasons[1]
    assert json.loads(state["rejected_jumps"][0]["request"]) == {"node": "Nowhere", "input": 1}  # a bounded preview
    assert state["pending_jumps"] == []  # the update's rejection left no trace either

    await handle.answer("Review", "fine")
    assert (await handle.result())["published"] == "fine"


async def test_answering_a_node_that_does_not_wait_is_rejected():
    wf = _review_pipeline("live_bad_answer")
    handle = await wf.start("x")
    await _until(handle, lambda s: s["waiting"])
    with pytest.raises(GeckoError, match='"Draft" is not a WaitForInput node \\(those are: Review\\)'):
        await handle.answer("Draft", "no")
    await handle.temporal_handle.signal("gecko_answer", {"node": "Ghost", "value": 1})
    state = await _until(handle, lambda s: s["rejected"])
    assert '"Ghost" is not a WaitForInput node' in state["rejected"][0]["reason"]
    assert state["rejected"][0]["signal"] == "gecko_answer" and state["rejected_jumps"] == []
    assert state["status"] == "waiting"
    await handle.answer("Review", "yes")
    assert (await handle.result())["published"] == "yes"


async def test_an_answer_sent_before_the_wait_is_kept():
    answered = threading.Event()

    async def slow_draft(topic):
        await asyncio.to_thread(answered.wait, 60)  # runs until the answer was sent
        return topic

    wf = Workflow("live_early_answer")
    wf.add_node("Draft", slow_draft)
    wf.add_node("Review", WaitForInput())
    wf.add_edge("Draft", "Review")
    wf.set_entry_point("Draft")
    handle = await wf.start("t")
    try:
        reply = await handle.answer("Review", "pre-approved")
    finally:
        answered.set()
    assert reply["waiting"] is False
    assert await handle.result() == "pre-approved"


async def test_wait_timeout_with_default_continues_with_the_default():
    wf = _review_pipeline("live_wait_default", timeout=0.5, default="auto-approved")
    handle = await wf.start("t", timeout=120)  # the run's timeout bounds a failure only
    out = await handle.result()
    assert out["published"] == "auto-approved"
    timers = [
        e for e in (await handle.temporal_handle.fetch_history()).events if e.HasField("timer_started_event_attributes")
    ]
    assert 0.5 in [t.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds() for t in timers]


async def test_wait_timeout_without_default_fails_naming_the_node():
    wf = _review_pipeline("live_wait_timeout", timeout=0.5)
    with pytest.raises(NodeError, match='node "Review" failed: WaitTimeout: no answer within 0.5 s') as caught:
        await wf.execute("t")
    assert caught.value.node == "Review"


async def test_wait_for_input_rejects_bad_options():
    with pytest.raises(GeckoError, match="timeout must be a positive number"):
        WaitForInput(timeout=0)
    with pytest.raises(GeckoError, match="WaitForInput default"):
        WaitForInput(timeout=1, default=object())


# -- per-node policies -------------------------------------------------------------------------


async def test_step_retries_until_success_with_a_retry_policy():
    calls = []

    @step(retry=RetryPolicy(maximum_attempts=4, initial_interval=0.1, backoff_coefficient=1.0))
    def flaky(x):
        calls.append(x)
        if len(calls) < 3:
            raise ConnectionError("upstream hiccup")
        return "ok"

    wf = Workflow("policy_retry")
    wf.add_node(flaky)
    wf.set_entry_point("flaky")
    assert await wf.execute(None) == "ok"
    assert len(calls) == 3


async def test_retries_counts_attempts_and_then_fails_the_run():
    calls = []

    def always_fails(x):
        calls.append(1)
        raise ConnectionError("still down")

    wf = Workflow("policy_retries")
    wf.add_node("Call", always_fails, retry=RetryPolicy(maximum_attempts=2, initial_interval=0.1))
    wf.set_entry_point("Call")
    with pytest.raises(NodeError, match='node "Call" failed: ConnectionError: still down') as caught:
        await wf.execute(None)
    assert len(calls) == 2 and caught.value.error_type == "ConnectionError"


async def test_non_retryable_error_types_are_not_retried():
    calls = []

    @step(retry=RetryPolicy(maximum_attempts=5, initial_interval=0.1, non_retryable_error_types=["ValueError"]))
    def strict(x):
        calls.append(1)
        raise ValueError(f"bad input {x!r}")

    wf = Workflow("policy_non_retryable")
    wf.add_node(strict)
    wf.set_entry_point("strict")
    with pytest.raises(NodeError, match="ValueError: bad input 7"):
        await wf.execute(7)
    assert len(calls) == 1


async def test_timeout_bounds_each_attempt():
    attempts = []

    @step(timeout=0.5, retries=2)
    async def hangs(x):
        attempts.append(1)
        await asyncio.sleep(30)

    wf = Workflow("policy_timeout")
    wf.add_node(hangs)
    wf.set_entry_point("hangs")
    handle = await wf.start(None)
    with pytest.raises(NodeError, match='node "hangs" failed: TimeoutError') as caught:
        await handle.result()
    assert len(attempts) == 2 and caught.value.error_type == "TimeoutError"
    history = await handle.temporal_handle.fetch_history()
    (scheduled,) = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled.start_to_close_timeout.ToTimedelta().total_seconds() == 0.5
    assert scheduled.retry_policy.maximum_attempts == 2


async def test_local_node_failure_is_a_node_error_naming_the_node():
    def parse(x):
        raise TypeError(f"cannot parse {x!r}")

    wf = Workflow("policy_local_failure")
    wf.add_node("Parse", parse, local=True, retries=1)
    wf.set_entry_point("Parse")
    with pytest.raises(NodeError, match="node \"Parse\" failed: TypeError: cannot parse 'x'") as caught:
        await wf.execute("x")
    assert caught.value.node == "Parse"


async def test_default_node_policies_reach_temporal():
    """README: 3 attempts (1 s initial backoff, x2), 300 s start-to-close, 5 s heartbeat timeout."""
    wf = Workflow("policy_defaults").add_node("n", lambda x: x).set_entry_point("n")
    handle = await wf.start(1)
    assert await handle.result() == 1
    history = await handle.temporal_handle.fetch_history()
    (scheduled,) = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    retry = scheduled.retry_policy
    assert (
        retry.maximum_attempts,
        retry.initial_interval.ToTimedelta().total_seconds(),
        retry.backoff_coefficient,
    ) == (3, 1.0, 2.0)
    assert scheduled.start_to_close_timeout.ToTimedelta().total_seconds() == 300
    assert scheduled.heartbeat_timeout.ToTimedelta().total_seconds() == 5


async def test_a_default_node_is_retried_after_failures():
    from temporalio import activity

    attempts = []

    def flaky(x):
        attempts.append(activity.info().attempt)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return "third attempt"

    wf = Workflow("policy_default_retry").add_node("flaky", flaky).set_entry_point("flaky")
    assert await wf.execute(None) == "third attempt"
    assert attempts == [1, 2, 3]


async def test_reattach_to_a_session_with_get_handle(session_id):
    import gecko_temporal

    wf = _review_pipeline("live_reattach")
    await wf.start("otters", session_id=session_id)
    again = await wf.get_handle(session_id)
    other = await gecko_temporal.get_handle(session_id)
    assert again.id == other.id == session_id
    state = await _until(again, lambda s: s["waiting"])
    assert state["completed"] == ["Draft"] and (await other.state())["waiting"].keys() == {"Review"}
    await other.answer("Review", "from another handle")
    assert await again.result() == {"published": "from another handle", "draft": "draft about otters"}


async def test_rejected_jumps_keep_the_last_50():
    wf = _review_pipeline("live_reject_cap")
    handle = await wf.start("x")
    await _until(handle, lambda s: s["waiting"])
    for i in range(55):
        await handle.signal_jump(f"Nowhere{i}", i)

    def sent(r):  # a rejected request is kept as a short preview of what was sent
        return json.loads(r["request"])["input"]

    state = await _until(handle, lambda s: s["rejected_jumps"] and sent(s["rejected_jumps"][-1]) == 54)
    assert [sent(r) for r in state["rejected_jumps"]] == list(range(5, 55))
    await handle.answer("Review", "ok")
    assert (await handle.result())["published"] == "ok"


@pytest.mark.long
@pytest.mark.slow
async def test_completed_keeps_the_last_1000_node_names():
    def count(n):
        return Next("count", n + 1) if n < 1005 else n

    wf = Workflow("live_completed_cap", max_steps=1100)
    wf.add_node("start", lambda x: 0).add_node("count", count, local=True).add_node("end", lambda n: n)
    wf.add_edge("start", "count").add_edge("count", "end").set_entry_point("start")
    handle = await wf.start(None)
    assert await handle.result() == 1005
    state = await handle.state()
    assert state["step"] == 1 + 1006 + 1
    assert len(state["completed"]) == 1000 and state["completed"][-1] == "end"
    assert state["completed"][:-1] == ["count"] * 999  # "start" and the first counts fell off


async def test_max_steps_counts_across_continue_as_new():
    wf = Workflow("live_steps_across_runs", max_steps=7, steps_per_run=2)
    wf.add_node("again", lambda n: Next("again", n + 1), local=True).set_entry_point("again")
    handle = await wf.start(0)
    with pytest.raises(StepLimitError, match="step limit of 7"):
        await handle.result()
    state = await handle.state()
    assert state["step"] == 7 and state["run"] >= 3  # the count survived every switch to a new run
