"""Subgraphs on a real dev server: another Workflow as a node runs as a Temporal child workflow.

Checked from outside where a user would look: the real `temporal` CLI (describe, list by
ParentWorkflowId, the child's gecko_state), the `gecko-temporal` CLI answering a wait inside the
child, and worker processes (`worker.py`) serving parent and child, one of them SIGKILLed mid-child.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter

import pytest
from temporalio.service import RPCError

from gecko_temporal import GeckoError, Next, NodeError, WaitForInput, Workflow, WorkflowTimeoutError
from gecko_temporal.temporal.client import connect
from tests.integration.test_hostile_input import temporal
from tests.pipelines import crash, polling, subgraph
from tests.pipelines.procs import ROOT, Procs, gecko, wait_until

pytestmark = pytest.mark.asyncio


async def until(probe, what: str, within: float = 60.0):
    """Poll ``probe`` (async) until it returns something truthy; a failure bound only."""
    return await polling.until(
        probe,
        bool,
        lambda last: f"{what} not reached within {within} s (last seen: {last!r})",
        every=0.05,
        within=within,
    )


async def children_of(handle) -> dict:
    return (await handle.state()).get("children") or {}


async def child_ids(handle) -> list[str]:
    """The child sessions the parent started, in order, read from the Temporal history of each of
    its runs (first to last, following continue-as-new)."""
    th = handle.temporal_handle
    run_id, found = th.first_execution_run_id or th.result_run_id, []
    while run_id:
        history = await th._client.get_workflow_handle(th.id, run_id=run_id).fetch_history()
        run_id = None
        for e in history.events:
            if e.HasField("child_workflow_execution_started_event_attributes"):
                found.append(e.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id)
            if e.HasField("workflow_execution_continued_as_new_event_attributes"):
                run_id = e.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return found


async def describe(dev_server, session: str) -> dict:
    """`temporal workflow describe`; waits for the run to exist (the server starts a child moments
    after the parent's workflow task that asked for it)."""

    async def described():
        code, out, err = await temporal(
            dev_server, "workflow", "describe", "--workflow-id", session, "--output", "json"
        )
        assert code == 0 or "not found" in err.lower(), err
        return json.loads(out) if code == 0 else None

    return await until(described, f"run {session} exists")


# -- the graphs ------------------------------------------------------------------------------------
def _upper(text: str) -> str:
    return text.upper()


inner = Workflow("SubInner")
inner.add_node("shout", _upper).set_entry_point("shout")


def _draft(topic: str, context) -> str:
    context.state["topic"] = topic  # the parent's state: the child never sees it
    return f"draft on {topic}"


def _review_prepare(text: str, context) -> str:
    context.state["seen_parent_state"] = dict(context.state)  # empty: a child starts with its own state
    return text


def _review_final(answer, context) -> dict:
    return {
        "verdict": answer,
        "shouted": context.history["Shout"],
        "child_state": dict(context.state),
        "child_session": context.session_id,
        "child_input": context.input,
    }


review = Workflow("SubReview")
review.add_node("prepare", _review_prepare).add_node("Shout", inner).add_node("ask", WaitForInput("publish?"))
review.add_node("final", _review_final)
review.add_edge("prepare", "Shout").add_edge("Shout", "ask").add_edge("ask", "final").set_entry_point("prepare")

publishing = Workflow("SubPublishing")
publishing.add_node("draft", _draft).add_node("Review", review)
publishing.add_node("publish", lambda verdict, context: {"published": verdict, "parent_state": dict(context.state)})
publishing.add_edge("draft", "Review").add_edge("Review", "publish").set_entry_point("draft")


async def test_a_child_workflow_waits_for_its_answer_and_its_result_is_the_node_output(dev_server, session_id):
    handle = await publishing.start("otters", session_id=session_id)
    children = await until(lambda: children_of(handle), "the parent names its running child")
    assert list(children) == ["Review"]
    child = children["Review"]
    assert child == f"{session_id}.Review.2"  # parent id, node, step: stable on replay

    # The Temporal CLI sees a child of the parent, running the same GeckoWorkflow type.
    described = await describe(dev_server, child)
    assert described["workflowExecutionInfo"]["parentExecution"]["workflowId"] == session_id
    assert described["workflowExecutionInfo"]["type"]["name"] == "GeckoWorkflow"

    async def listed_children():  # visibility may trail the start by a moment
        code, out, err = await temporal(
            dev_server, "workflow", "list", "--query", f"ParentWorkflowId='{session_id}'", "--output", "json"
        )
        assert code == 0, err
        return [w["execution"]["workflowId"] for w in json.loads(out) or []]

    assert await until(listed_children, "the child listed under its parent") == [child]

    # The child's own gecko_state, from the CLI: it waits for a person.
    async def child_waiting():
        code, out, _ = await temporal(
            dev_server, "workflow", "query", "--workflow-id", child, "--name", "gecko_state", "--output", "json"
        )
        state = json.loads(out)["queryResult"][0] if code == 0 else {}
        return state if state.get("status") == "waiting" else None

    state = await until(child_waiting, "the child waits")
    assert state["workflow"] == "SubReview" and list(state["waiting"]) == ["ask"]
    assert state["completed"] == ["prepare", "Shout"]
    assert (await handle.state())["status"] == "running"  # the parent runs its Review node

    # Answer the child's session with the gecko-temporal CLI, as a person would.
    code, _out, err = await gecko(dev_server, "answer", child, "ask", "--value", '"yes"')
    assert code == 0, err

    result = await handle.result()
    assert result == {
        "published": {
            "verdict": "yes",
            "shouted": "DRAFT ON OTTERS",
            "child_state": {"seen_parent_state": {}},
            "child_session": child,
            "child_input": "draft on otters",
        },
        "parent_state": {"topic": "otters"},  # the child's writes stay in the child
    }
    final = await handle.state()
    assert final["children"] == {} and final["completed"] == ["draft", "Review", "publish"]
    # the nested subgraph ran as the child's child
    assert await child_ids(handle) == [child]
    assert (await describe(dev_server, f"{child}.Shout.2"))["workflowExecutionInfo"]["parentExecution"][
        "workflowId"
    ] == child


# -- failures, cancel, timeout ---------------------------------------------------------------------
def _parse(text: str) -> int:
    raise ValueError(f"cannot parse {text!r}")


parser = Workflow("SubParser")
parser.add_node("clean", lambda t: t.strip()).add_node("parse", _parse, retries=1)
parser.add_edge("clean", "parse").set_entry_point("clean")

parsing = Workflow("SubParsing")
parsing.add_node("load", lambda x: x).add_node("Parse", parser).add_node("never", lambda x: x)
parsing.add_edge("load", "Parse").add_edge("Parse", "never").set_entry_point("load")


async def test_a_failing_child_node_fails_the_subgraph_node_naming_both(dev_server, session_id):
    with pytest.raises(NodeError) as info:
        await parsing.execute(" garbage ", session_id=session_id)
    error = info.value
    child = f"{session_id}.Parse.2"
    assert error.node == "Parse" and error.error_type == "ValueError"
    assert str(error) == (
        f'node "Parse" failed: ValueError: subgraph "SubParser" (child session {child}) failed '
        f"at its node \"parse\": cannot parse 'garbage'"
    )
    assert error.details["child"] == {
        "session": child,
        "workflow": "SubParser",
        "node": "parse",
        "error_type": "ValueError",
    }
    assert (await describe(dev_server, child))["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_FAILED"


cancelled: list[str] = []


async def _stall(x):
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        cancelled.append(x)
        raise
    return x


staller = Workflow("SubStaller")
staller.add_node("stall", _stall).set_entry_point("stall")

stalling = Workflow("SubStalling")
stalling.add_node("start", lambda x: x).add_node("Stall", staller).add_edge("start", "Stall").set_entry_point("start")


async def _child_status(dev_server, child: str) -> str:
    return (await describe(dev_server, child))["workflowExecutionInfo"]["status"]


async def test_cancelling_the_parent_cancels_the_child_and_its_running_node(dev_server, session_id):
    handle = await stalling.start(f"cancel-{session_id}", session_id=session_id)
    child = (await until(lambda: children_of(handle), "the child runs"))["Stall"]
    await until(lambda: _running(child), "the child's node runs")
    await handle.cancel()
    with pytest.raises(GeckoError, match="was cancelled"):
        await handle.result()

    async def child_cancelled():
        return await _child_status(dev_server, child) == "WORKFLOW_EXECUTION_STATUS_CANCELED"

    await until(child_cancelled, "the child cancelled")
    await until(lambda: _true(f"cancel-{session_id}" in cancelled), "the child's node cancelled")


async def _running(child: str) -> bool:
    client = await connect()
    try:
        return (await client.get_workflow_handle(child).query("gecko_state"))["running"] == ["stall"]
    except RPCError:  # not started yet (the server starts a child just after the parent asks)
        return False


async def _true(value: bool) -> bool:
    return value


async def test_the_parents_timeout_bounds_the_child(dev_server, session_id):
    handle = await stalling.start(f"timeout-{session_id}", session_id=session_id, timeout=3)
    with pytest.raises(WorkflowTimeoutError, match=r"while running Stall \(step 2\)"):
        await handle.result()
    (child,) = await child_ids(handle)

    async def child_cancelled():
        return await _child_status(dev_server, child) == "WORKFLOW_EXECUTION_STATUS_CANCELED"

    await until(child_cancelled, "the child cancelled at the parent's deadline")
    await until(lambda: _true(f"timeout-{session_id}" in cancelled), "the child's node cancelled")


# -- jumps, loops, continue-as-new, both scheduling modes -----------------------------------------
def _count_up(x, context):
    context.state["n"] = context.state.get("n", 0) + 1
    if context.state["n"] < 4:  # the child loops 4 steps: with steps_per_run=2 it continues as new
        return Next("count_up", x + 1)
    return {"value": x * 2, "child_steps": context.state["n"]}


def _check(out, context):
    context.state["rounds"] = context.state.get("rounds", 0) + 1
    if out["value"] < 40:
        return Next("Double", out["value"])  # a jump into the subgraph node: its input is the child's
    return {"final": out["value"], "rounds": context.state["rounds"]}


def _looping(scheduling: str) -> Workflow:
    doubler = Workflow(f"SubDoubler-{scheduling}", steps_per_run=2, scheduling=scheduling)
    doubler.add_node("count_up", _count_up).set_entry_point("count_up")
    wf = Workflow(f"SubLooping-{scheduling}", steps_per_run=2, scheduling=scheduling)
    wf.add_node("start", lambda x: x).add_node("Double", doubler).add_node("check", _check)
    wf.add_node("side", lambda x: "side")  # beside the child in eager mode
    wf.add_edge("start", "Double").add_edge("start", "side").add_edge("Double", "check")
    return wf.set_entry_point("start")


@pytest.mark.parametrize("scheduling", ["layered", "eager"])
async def test_jumps_into_a_subgraph_and_continue_as_new_of_parent_and_child(dev_server, session_id, scheduling):
    handle = await _looping(scheduling).start(1, session_id=session_id)
    # child run: x -> x+3 after its loop, doubled: 1 -> 8 -> 22 -> 50
    assert await handle.result() == {"final": 50, "rounds": 3}
    state = await handle.state()
    assert state["run"] > 1 and state["step"] == 8  # start, side, 3 x (Double, check)
    children = await child_ids(handle)
    assert len(children) == 3 and len(set(children)) == 3
    assert all(c.startswith(f"{session_id}.Double.") for c in children)
    client = await connect()
    for child in children:  # each child continued as new on its own (4 steps, 2 per run)
        child_state = await client.get_workflow_handle(child).query("gecko_state")
        assert (child_state["run"], child_state["step"], child_state["status"]) == (2, 4, "completed")


async def test_a_jump_from_outside_into_a_subgraph_node(dev_server, session_id):
    wf = Workflow("SubJumpedInto")
    wf.add_node("start", lambda x: x).add_node("wait", WaitForInput("go?")).add_node("Shout", inner)
    wf.add_edge("start", "wait").set_entry_point("start")
    handle = await wf.start("x", session_id=session_id)
    await until(lambda: _true_state(handle, "waiting"), "the run waits")
    await handle.jump("Shout", "jumped in")
    await handle.answer("wait", "ok")
    result = await handle.result()
    assert result == "JUMPED IN"
    assert await child_ids(handle) == [f"{session_id}.Shout.3"]


async def _true_state(handle, status: str) -> bool:
    return (await handle.state())["status"] == status


# -- worker processes: one serves parent and child; SIGKILL mid-child -------------------------------
@pytest.mark.long
@pytest.mark.slow
async def test_a_worker_process_serves_the_child_and_a_sigkill_mid_child_recovers(dev_server, tmp_path, monkeypatch):
    procs = Procs(tmp_path)
    try:
        log = tmp_path / "nodes.log"
        queue = f"subcrash-{uuid.uuid4().hex[:6]}"
        env = {"GECKO_CRASH_LOG": str(log)}
        first = procs.worker(
            "tests.pipelines.subgraph:wf", "--address", dev_server.address, "--task-queue", queue, env=env
        )
        first.wait_for("worker ready", 120)
        monkeypatch.setenv("TEMPORAL_ADDRESS", dev_server.address)  # the test only starts the run
        monkeypatch.setenv("GECKO_TASK_QUEUE", queue)
        session = f"subcrash-{uuid.uuid4().hex[:8]}"
        handle = await subgraph.wf.start(1, session_id=session)

        def events() -> Counter:
            return Counter(e for e, _, _ in crash.read_log(str(log)))

        await asyncio.to_thread(wait_until, lambda: events()["slow-start"] == 1, 120, "the child's slow node in flight")
        assert (await handle.state())["children"] == {"Work": f"{session}.Work.2"}
        first.kill()
        assert events() == Counter({"prepare": 1, "slow-start": 1})

        second = procs.worker(
            "tests.pipelines.subgraph:wf", "--address", dev_server.address, "--task-queue", queue, env=env
        )
        result = await asyncio.wait_for(handle.result(), 120)  # a failure bound only
        assert result == {
            "child": 20,
            "child_state": {"slow": 2},
            "child_session": f"{session}.Work.2",
            "parent_state": {"prepared": True},
        }
        entries = crash.read_log(str(log))
        assert Counter(e for e, _, _ in entries) == Counter(
            {"prepare": 1, "slow-start": 2, "slow-end": 1, "done": 1, "finish": 1}
        )
        by_pid = {e: p for e, p, _ in entries}
        assert by_pid["prepare"] == first.pid and by_pid["done"] == by_pid["finish"] == second.pid
        # one child, started once: the parent's start command was not repeated after the crash
        assert await child_ids(handle) == [f"{session}.Work.2"]
    finally:
        procs.close()


# -- bad paths: a child cancelled on its own, an input over the payload limit ----------------------
async def test_cancelling_only_the_child_fails_the_subgraph_node(dev_server, session_id):
    handle = await stalling.start(f"child-cancel-{session_id}", session_id=session_id)
    child = (await until(lambda: children_of(handle), "the child runs"))["Stall"]
    await describe(dev_server, child)  # it exists
    code, _out, err = await gecko(dev_server, "cancel", child)
    assert code == 0, err
    with pytest.raises(NodeError) as info:
        await handle.result()
    assert (info.value.node, info.value.error_type) == ("Stall", "CancelledError")
    assert f'subgraph "SubStaller" (child session {child}) was cancelled' in str(info.value)


async def test_a_child_input_over_the_payload_limit_fails_the_node_at_once(session_id, monkeypatch):
    monkeypatch.setenv("GECKO_PAYLOAD_STORE", "none")  # Temporal's own 2 MiB limit applies
    wf = Workflow("SubTooBig")
    wf.add_node("start", lambda x: x)
    wf.add_node("a", lambda x: "a" * 1_200_000).add_node("b", lambda x: "b" * 1_200_000)
    wf.add_node("Shout", inner)
    wf.add_edge("start", "a").add_edge("start", "b").add_edge("a", "Shout").add_edge("b", "Shout")
    handle = await wf.set_entry_point("start").start(None, session_id=session_id, timeout=60)
    with pytest.raises(NodeError) as info:  # a stall would end in WorkflowTimeoutError instead
        await handle.result()
    assert (info.value.node, info.value.error_type) == ("Shout", "PayloadTooLarge")
    assert 'subgraph node "Shout" would start its child run with 2.3 MB' in str(info.value)
    assert "GECKO_PAYLOAD_STORE" in str(info.value)
    history = await handle.temporal_handle.fetch_history()
    assert not [e for e in history.events if e.HasField("workflow_task_failed_event_attributes")]
    assert await child_ids(handle) == []


async def test_the_readme_example_runs_and_prints_what_it_says(session_id):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Subgraphs: a Workflow as a node", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    body, run_line, expected = code.rstrip("\n").rsplit("\n", 2)
    assert run_line.startswith("print(asyncio.run(report.execute(") and expected.startswith("# ")
    namespace: dict = {}
    exec(compile(body, "README.md", "exec"), namespace)
    assert await namespace["report"].execute("notes.txt", session_id=session_id) == expected[2:]


async def test_a_child_session_id_already_running_fails_the_node_with_the_reason(session_id):
    squatter = await staller.start(f"squat-{session_id}", session_id=f"{session_id}.Stall.2")
    try:
        with pytest.raises(NodeError) as info:
            await stalling.execute("x", session_id=session_id)
        assert (info.value.node, info.value.error_type) == ("Stall", "ChildSessionTaken")
        assert f'a run with the child session id "{session_id}.Stall.2" is still open' in str(info.value)
        assert (await squatter.state())["status"] == "running"  # the other run is left alone
    finally:
        await squatter.cancel()
