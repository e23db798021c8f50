"""Watching and steering a live run: the gecko_state query, gecko_next jumps (signal, update and the
Temporal CLI), waiting for a person, and per-node retry/timeout policies."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest

from gecko_temporal import (GeckoError, JumpRejectedError, Next, NodeError, RetryPolicy, WaitForInput, Workflow,
                            step)
from gecko_temporal.client import find_temporal_binary

pytestmark = pytest.mark.asyncio


async def _cli(dev_server, *args: str) -> str:
    """Run the Temporal CLI against the test server (as a user would in a terminal)."""
    proc = await asyncio.create_subprocess_exec(
        find_temporal_binary(), *args, "--address", dev_server.address,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "TEMPORAL_CLI_SHOW_STACKS": "0"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, f"temporal {' '.join(args)} failed: {err.decode()}"
    return out.decode()


async def _until(handle, predicate, within: float = 10.0) -> dict:
    """Poll gecko_state until ``predicate(state)`` holds; return that state."""
    deadline = time.monotonic() + within
    while True:
        state = await handle.state()
        if predicate(state) or time.monotonic() > deadline:
            return state
        await asyncio.sleep(0.05)


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

    out = await _cli(dev_server, "workflow", "query", "--workflow-id", session_id, "--type", "gecko_state",
                     "--output", "json")
    state = json.loads(out)["queryResult"][0]
    assert state["status"] == "waiting" and state["completed"] == ["Draft"]
    assert state["state"] == {"topic": "cli"} and state["step"] == 2

    await _cli(dev_server, "workflow", "signal", "--workflow-id", session_id, "--name", "gecko_next",
               "--input", '{"node":"Done","input":"now"}')
    pending = await _until(handle, lambda s: s["pending_jumps"])
    assert pending["pending_jumps"] == [{"node": "Done", "input": "now", "source": "signal"}]
    # The jump runs at the next safe point: once the running layer (the wait) has ended.
    await _cli(dev_server, "workflow", "signal", "--workflow-id", session_id, "--name", "gecko_answer",
               "--input", '{"node":"Review","value":"ok"}')
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
    assert await handle.result() == "answer: {'forced': True}"
    state = await handle.state()
    assert state["completed"][-1] == "Answer"
    assert state["completed"].count("Answer") == 1
    assert state["step"] < 20  # the loop stopped at the jump instead of running on


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
    async def slow_draft(topic):
        await asyncio.sleep(1.0)
        return topic

    wf = Workflow("live_early_answer")
    wf.add_node("Draft", slow_draft)
    wf.add_node("Review", WaitForInput())
    wf.add_edge("Draft", "Review")
    wf.set_entry_point("Draft")
    handle = await wf.start("t")
    reply = await handle.answer("Review", "pre-approved")
    assert reply["waiting"] is False
    assert await handle.result() == "pre-approved"


async def test_wait_timeout_with_default_continues_with_the_default():
    wf = _review_pipeline("live_wait_default", timeout=0.5, default="auto-approved")
    began = time.monotonic()
    out = await wf.execute("t")
    assert out["published"] == "auto-approved"
    assert time.monotonic() - began < 10


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
        calls.append(time.monotonic())
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
    began = time.monotonic()
    with pytest.raises(NodeError, match='node "hangs" failed: TimeoutError') as caught:
        await wf.execute(None)
    assert time.monotonic() - began < 10
    assert len(attempts) == 2 and caught.value.error_type == "TimeoutError"


async def test_local_node_failure_is_a_node_error_naming_the_node():
    def parse(x):
        raise TypeError(f"cannot parse {x!r}")

    wf = Workflow("policy_local_failure")
    wf.add_node("Parse", parse, local=True, retries=1)
    wf.set_entry_point("Parse")
    with pytest.raises(NodeError, match="node \"Parse\" failed: TypeError: cannot parse 'x'") as caught:
        await wf.execute("x")
    assert caught.value.node == "Parse"
