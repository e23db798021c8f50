"""People in the loop on a real dev server: context.interrupt(), update_state, rewind, seeded state.

Answers come from the handle, the gecko-temporal CLI and the real `temporal` CLI; one test kills a
worker process while a node is interrupted. Counts of node executions come from tests/pipelines/people.py's log.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from functools import partial

import pytest

from gecko_temporal import GeckoError, NodeError, RewindError, StateEditError
from tests.pipelines import people
from tests.pipelines.procs import Procs, read_event_log, signal_by_cli, update_by_cli, waiting_for
from tests.pipelines.procs import gecko as gecko_cli

pytestmark = pytest.mark.asyncio


@pytest.fixture
def log(tmp_path, monkeypatch):
    path = tmp_path / "people.log"
    monkeypatch.setenv("GECKO_PEOPLE_LOG", str(path))
    return path


def _counts(path) -> Counter:
    return Counter(event for event, _ in read_event_log(str(path)))


# The gecko-temporal CLI in its own process (dev_server None: no server, `run` uses its own embedded one).
gecko = partial(gecko_cli, within=120)


async def pending_activities(handle) -> int:
    return len((await handle.temporal_handle.describe()).raw_description.pending_activities)


# -- interrupt ---------------------------------------------------------------------------------------
async def test_sync_node_interrupts_with_a_dynamic_payload_answered_from_the_temporal_cli(dev_server, log, session_id):
    handle = await people.approval.start("ducks", session_id=session_id)
    state = await waiting_for(handle, "review")
    assert state["status"] == "waiting"
    waiting = state["waiting"]["review"]
    assert waiting["payload"] == {
        "question": "publish this draft?",
        "draft": "a post about ducks (5 letters)",
        "step": 2,
    }
    assert waiting["interrupt"] == 0 and waiting["input"] == "ducks"
    assert "reviewed" not in state["state"]  # the interrupted run's writes are void
    assert await pending_activities(handle) == 0  # nothing runs while it waits
    code, out, err = await gecko(dev_server, "status", session_id)
    assert code == 0, err
    assert "waiting: review (interrupt 0: {" in out and '"question": "publish this draft?"' in out

    code, out, err = await signal_by_cli(dev_server, session_id, "gecko_answer", '{"node": "review", "value": "yes"}')
    assert code == 0, err
    result = await handle.result()
    assert result == {"verdict": "yes", "draft": "a post about ducks (5 letters)", "published": True, "note": None}
    assert _counts(log) == Counter({"plan": 1, "review-start": 2, "review-answered": 1, "publish": 1})
    final = await handle.state()
    assert final["state"]["reviewed"] is True and final["waiting"] == {}
    assert final["completed"] == ["plan", "review", "publish"] and final["step"] == 3


async def test_interrupt_answered_by_the_handle_and_by_a_temporal_cli_update(dev_server, log):
    first = await people.approval.start("geese", session_id=f"people-h-{uuid.uuid4().hex[:8]}")
    await waiting_for(first, "review")
    reply = await first.answer("review", "no")
    assert reply == {"node": "review", "waiting": True}
    assert (await first.result())["published"] is False

    second = await people.approval.start("swans", session_id=f"people-u-{uuid.uuid4().hex[:8]}")
    await waiting_for(second, "review")
    code, _out, err = await update_by_cli(dev_server, second.id, "gecko_reply", '{"node": "review", "value": "yes"}')
    assert code == 0, err
    assert (await second.result())["published"] is True


async def test_answers_to_a_node_that_is_not_interrupted_are_refused(dev_server, log, session_id):
    handle = await people.approval.start("owls", session_id=session_id)
    await waiting_for(handle, "review")
    with pytest.raises(GeckoError, match=r'"plan" is not a WaitForInput node .*\(waiting now: review\)'):
        await handle.answer("plan", "yes")
    code, _out, err = await signal_by_cli(dev_server, session_id, "gecko_answer", '{"node": "publish", "value": 1}')
    assert code == 0, err  # a signal is fire and forget: it is listed as rejected instead
    state = await handle.state()
    assert any("publish" in r["request"] and "waiting now: review" in r["reason"] for r in state["rejected"])
    await handle.answer("review", "yes")
    assert (await handle.result())["published"] is True


async def test_two_interrupts_in_one_node_are_answered_in_order(dev_server, log, session_id):
    handle = await people.two.start("Ada", session_id=session_id)
    state = await waiting_for(handle, "ask", 0)
    assert state["waiting"]["ask"]["payload"] == "what is Ada's title?"
    await handle.answer("ask", "Countess")
    state = await waiting_for(handle, "ask", 1)
    assert state["waiting"]["ask"]["payload"] == {"title": "Countess", "ask": "and the team?"}
    code, _out, err = await gecko(dev_server, "answer", session_id, "ask", "--value", '"Analytical Engine"')
    assert code == 0, err
    assert await handle.result() == {"name": "Ada", "title": "Countess", "team": "Analytical Engine"}
    assert _counts(log) == Counter({"ask-start": 3, "ask-done": 1})  # once per answer, plus the first run


async def test_interrupt_timeout_gives_its_default(dev_server, session_id):
    assert await people.timeout_default.execute(None, session_id=session_id) == "nobody answered"


async def test_a_payload_that_is_not_json_fails_the_node_at_once_naming_it(dev_server, session_id):
    handle = await people.bad.start(None, session_id=session_id)
    with pytest.raises(NodeError) as exc:
        await handle.result()
    assert exc.value.node == "judge" and exc.value.error_type == "InterruptError"
    assert 'context.interrupt() in node "judge"' in str(exc.value) and "contains a object" in str(exc.value)
    history = await handle.temporal_handle.fetch_history()
    starts = [e for e in history.events if e.HasField("activity_task_started_event_attributes")]
    assert len(starts) == 1  # not retried: retrying cannot make it JSON


async def test_team_members_cannot_interrupt(dev_server, session_id):
    result = await people.team.execute(None, session_id=session_id)
    assert result == [["member_asks", "failed", "InterruptError"], ["member_fine", "succeeded", None]]


async def test_an_interrupt_is_a_waiting_event_on_the_stream_with_its_payload(dev_server, session_id):
    from gecko_temporal import Workflow

    def draft(topic, context):
        verdict = context.interrupt({"draft": f"a post on {topic}"})
        return f"{topic}: {verdict}"

    wf = Workflow("StreamInterrupt").add_node("Draft", draft).set_entry_point("Draft")
    handle = await wf.start("gecko", session_id=session_id)
    seen = []
    async for event in handle.stream():
        seen.append(event.type)
        if event.type == "waiting":
            assert event.node == "Draft" and event.data == {"prompt": {"draft": "a post on gecko"}, "interrupt": 0}
            await handle.answer("Draft", "approved")
    assert await handle.result() == "gecko: approved"
    # one node step: it waits between its start and its end (its two activities are one step)
    assert seen == ["node_started", "waiting", "node_finished", "run_finished"]


async def test_send_instances_interrupt_in_parallel_each_under_its_own_key(dev_server, session_id):
    from gecko_temporal import Send, Workflow

    def ask(item, context):
        return context.interrupt(f"ok {item}?")

    wf = Workflow("SendInterrupt").add_node("Plan", lambda n: [Send("Ask", i) for i in range(n)])
    wf.add_node("Ask", ask).add_node("After", lambda xs: xs).add_edge("Ask", "After").set_entry_point("Plan")
    handle = await wf.start(2, session_id=session_id)
    assert (await waiting_for(handle, "Ask[1]"))["waiting"]["Ask[1]"]["payload"] == "ok 1?"
    assert (await waiting_for(handle, "Ask[0]"))["waiting"]["Ask[0]"]["payload"] == "ok 0?"
    await handle.answer("Ask[1]", "yes 1")
    await handle.answer("Ask[0]", "yes 0")
    assert await handle.result() == ["yes 0", "yes 1"]  # the fan-out's outputs, in Send order


async def test_worker_sigkill_while_interrupted_then_answer_and_restart(dev_server, tmp_path, monkeypatch):
    procs = Procs(tmp_path)
    queue = f"people-{uuid.uuid4().hex[:6]}"
    log = tmp_path / "worker.log"
    env = {"GECKO_PEOPLE_LOG": str(log)}
    try:
        first = procs.worker(
            "tests.pipelines.people:approval", "--address", dev_server.address, "--task-queue", queue, env=env
        )
        await asyncio.to_thread(first.wait_for, "worker ready", 120)
        monkeypatch.setenv("TEMPORAL_ADDRESS", dev_server.address)  # this process only starts and answers
        monkeypatch.setenv("GECKO_TASK_QUEUE", queue)
        handle = await people.approval.start("crows", session_id=f"people-kill-{uuid.uuid4().hex[:8]}")
        await waiting_for(handle, "review")
        first.kill()
        assert _counts(log) == Counter({"plan": 1, "review-start": 1})
        # A signal is recorded by the server while no worker runs (an update would wait for one).
        await handle.temporal_handle.signal("gecko_answer", {"node": "review", "value": "yes"})
    except Exception:
        procs.close()
        raise
    try:
        second = procs.worker(
            "tests.pipelines.people:approval", "--address", dev_server.address, "--task-queue", queue, env=env
        )
        result = await asyncio.wait_for(handle.result(), 120)  # a failure bound only
        assert result["published"] is True and result["verdict"] == "yes"
        assert _counts(log) == Counter({"plan": 1, "review-start": 2, "review-answered": 1, "publish": 1})
        pids = {line.split()[0]: int(line.split()[1]) for line in log.read_text().splitlines()}
        assert pids["plan"] == first.pid and pids["publish"] == second.pid
    finally:
        procs.close()


# -- update_state ----------------------------------------------------------------------------------
async def test_update_state_while_waiting_is_what_the_resumed_node_sees(dev_server, log, session_id):
    handle = await people.approval.start("bees", session_id=session_id)
    await waiting_for(handle, "review")
    reply = await handle.update_state({"draft": "a better post about bees", "note": {"by": "editor"}})
    assert reply["applied"] is True and reply["set"] == ["draft", "note"]
    state = await handle.state()
    assert state["state"]["draft"] == "a better post about bees"
    (edit,) = state["state_edits"]
    assert edit["set"] == ["draft", "note"] and edit["deleted"] == [] and edit["step"] == 2 and edit["time"]
    # the payload shown stays the one the node asked with; the edit shows after the next answer
    code, out, err = await gecko(dev_server, "update-state", session_id, "--delete", "note")
    assert code == 0, err
    assert json.loads(out)["deleted"] == ["note"]
    await handle.answer("review", "yes")
    result = await handle.result()
    assert result["draft"] == "a better post about bees" and result["note"] is None
    assert [e["deleted"] for e in (await handle.state())["state_edits"]] == [[], ["note"]]


async def test_update_state_bad_paths(dev_server, log, session_id):
    handle = await people.approval.start("ants", session_id=session_id)
    await waiting_for(handle, "review")
    with pytest.raises(StateEditError, match="contains a object"):
        await handle.update_state({"score": object()})  # (NaN is a float now: see test_red_team_decode)
    with pytest.raises(StateEditError, match="both set and deleted"):
        await handle.update_state({"a": 1}, delete=["a"])
    with pytest.raises(StateEditError, match="over 1,048,576"):
        await handle.update_state({"big": "x" * 1_100_000})
    with pytest.raises(StateEditError, match="both are empty"):
        await handle.update_state({})
    # the real temporal CLI: not an object, unknown field, an array of values
    for bad, why in [
        ('"draft"', "needs a JSON object"),
        ('{"value": {"a": 1}}', "unknown field"),
        ('{"values": [1, 2]}', '"values" must be a JSON object'),
        ('{"values": {"a": 1}, "delete": [3]}', '"delete" must be a list'),
    ]:
        code, out, err = await update_by_cli(dev_server, session_id, "gecko_update_state", bad)
        assert code != 0 and why in out + err, (bad, out, err)
    code, out, err = await gecko(dev_server, "update-state", session_id, "--values", "[1]")
    assert code == 2 and "--values must be a JSON object" in err
    state = await handle.state()
    assert state["state_edits"] == [] and state["status"] == "waiting"
    await handle.answer("review", "yes")
    await handle.result()
    with pytest.raises(StateEditError, match="ended|completed"):
        await handle.update_state({"late": 1})
    code, out, err = await gecko(dev_server, "update-state", session_id, "--values", '{"late": 1}')
    assert code == 1 and "StateEditError" in err


# -- rewind ------------------------------------------------------------------------------------------
async def test_rewind_to_an_earlier_step_runs_to_a_different_result(dev_server, log, session_id):
    handle = await people.approval.start("cats", session_id=session_id)
    await waiting_for(handle, "review")
    await handle.answer("review", "no")
    first = await handle.result()
    assert first["published"] is False
    old_run = (await handle.temporal_handle.describe()).run_id

    code, out, err = await gecko(dev_server, "steps", session_id, "--json")
    assert code == 0, err
    points = json.loads(out)
    assert [(p["step"], p["nodes"]) for p in points] == [(0, []), (1, ["plan"]), (2, ["review"]), (3, ["publish"])]
    assert [p["rewindable"] for p in points] == [False, True, True, True]  # the start is no rewind point
    assert all(p["run"] == 1 and p["run_id"] == old_run for p in points)

    # back to the state after step 1 (plan), with an edit: review asks again
    code, out, err = await gecko(
        dev_server, "rewind", session_id, "--to-step", "1", "--values", '{"note": "second try"}'
    )
    assert code == 0, err
    reply = json.loads(out)
    assert reply["from_run"] == old_run and reply["to_step"] == 1 and reply["run_id"] != old_run
    rewound = await people.approval.get_handle(session_id)
    state = await waiting_for(rewound, "review")
    assert state["rewound_from"]["run_id"] == old_run and state["rewound_from"]["step"] == 1
    assert state["completed"] == ["plan"] and state["step"] == 2 and state["state"]["note"] == "second try"
    assert [e["source"] for e in state["state_edits"]] == ["rewind"]
    await rewound.answer("review", "yes")
    second = await rewound.result()
    assert second["published"] is True and second["note"] == "second try"
    assert _counts(log) == Counter({"plan": 1, "review-start": 4, "review-answered": 2, "publish": 2})
    # the old run is kept, as it ended
    old = rewound.temporal_handle._client.get_workflow_handle(session_id, run_id=old_run)
    assert await old.result() == first

    with pytest.raises(RewindError, match="no step 9"):
        await rewound.rewind(9)
    code, out, err = await gecko(dev_server, "rewind", session_id, "--to-step", "9")
    assert code == 1 and "RewindError" in err and "no step 9" in err
    code, out, err = await gecko(dev_server, "steps", session_id)
    assert code == 0 and "review" in out and "(start)" in out
    code, out, err = await gecko(dev_server, "rewind", session_id, "--to-step", "1", "--values", '{"x": nope}')
    assert code == 2 and "--values must be JSON" in err


async def test_rewind_redoes_an_answer_taken_in_the_task_it_resets(dev_server, session_id):
    """A WaitForInput answered by an update: the reset drops the update, the rewind sends it again."""
    from tests.pipelines.review import wf

    handle = await wf.start("moths", session_id=session_id)
    for _ in range(400):
        if (await handle.state())["waiting"]:
            break
        await asyncio.sleep(0.05)
    await handle.answer("Review", "yes")
    assert await handle.result() == {"published": True, "topic": "moths"}
    result = await handle.rewind(2)  # the step of Review itself: the state after the answer
    assert result["redone_updates"] == 1
    again = await wf.get_handle(session_id)
    assert await again.result() == {"published": True, "topic": "moths"}
    assert (await again.state())["rewound_from"]["step"] == 2


async def test_rewind_with_a_state_edit_changes_the_outcome(dev_server, session_id):
    handle = await people.chain.start(7, session_id=session_id)
    assert await handle.result() == {"trail": ["a", "b", "c"], "factor": 1, "x": 7}
    await handle.rewind(1, values={"trail": ["A"], "factor": 3})
    again = await people.chain.get_handle(session_id)
    assert await again.result() == {"trail": ["A", "b", "c"], "factor": 3, "x": 7}


# -- seeded state ------------------------------------------------------------------------------------
async def test_the_run_input_can_seed_state(dev_server, session_id):
    assert await people.seed.execute(2, session_id=session_id, state={"count": 40, "who": ["me"]}) == {
        "count": 42,
        "who": ["me"],
    }
    code, out, err = await gecko(None, "run", "tests.pipelines.people:seed", "--input", "1", "--state", '{"count": 1}')
    assert code == 0, err
    assert json.loads(out) == {"count": 2}
    from gecko_temporal import GraphError, SerializationError

    with pytest.raises(SerializationError, match="state key 'x' of state="):
        await people.seed.start(1, state={"x": object()})  # (inf would do: it is a float, tagged)
    with pytest.raises(GraphError, match="dict of state keys"):
        await people.seed.start(1, state=[("count", 1)])
    code, out, err = await gecko(None, "run", "tests.pipelines.people:seed", "--input", "1", "--state", "[1]")
    assert code == 2 and "--state must be a JSON object" in err


async def test_rewind_to_a_step_of_an_earlier_run_of_the_continue_as_new_chain(dev_server, session_id):
    handle = await people.loop.start(0, session_id=session_id)
    assert await handle.result() == {"seen": [0, 1, 2, 3, 4], "bonus": None}
    points = await handle.steps()
    runs = {p["run"] for p in points}
    assert len(runs) >= 2, points  # it continued as new
    first_run_id = next(p["run_id"] for p in points if p["run"] == 1)
    assert any(p["step"] == 1 and p["run"] == 1 for p in points)
    reply = await handle.rewind(1, values={"bonus": "from run 1"})
    assert reply["from_run"] == first_run_id
    again = await people.loop.get_handle(session_id)
    assert await again.result() == {"seen": [0, 1, 2, 3, 4], "bonus": "from run 1"}
    state = await again.state()
    assert state["rewound_from"]["run_id"] == first_run_id  # carried across its own continue-as-new


async def test_eager_interrupt_beside_a_running_branch_and_an_edit_that_waits_for_a_safe_point(
    dev_server, session_id, tmp_path, monkeypatch
):
    gate = tmp_path / "gate"
    monkeypatch.setenv("GECKO_PEOPLE_GATE", str(gate))
    handle = await people.eager.start("go", session_id=session_id)
    state = await waiting_for(handle, "confirm")
    assert set(state["running"]) == {"hold", "confirm"}
    reply = await handle.update_state({"edited": "yes"})
    assert reply["applied"] is False  # "hold" is still running: not a safe point
    state = await handle.state()
    assert state["pending_edits"] == [{"set": ["edited"], "deleted": [], "source": "update"}]
    assert "edited" not in state["state"]
    gate.write_text("open")  # hold finishes; confirm only waits now: the edit lands
    for _ in range(400):
        state = await handle.state()
        if state["state_edits"]:
            break
        await asyncio.sleep(0.05)
    assert state["state"]["edited"] == "yes" and state["pending_edits"] == []
    await handle.answer("confirm", "ok")
    result = await handle.result()
    assert result == {"hold": "held", "confirm": {"answer": "ok", "edited": "yes"}, "edited_at_end": "yes"}


async def test_a_reset_run_waits_for_the_rewind_signal_before_its_next_layer(dev_server, session_id):
    """The reset and the gecko_rewound signal are two requests: a run reset before the signal
    arrives must not run ahead. A raw Temporal reset (no signal), then the signal by hand."""
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.enums.v1 import ResetReapplyExcludeType
    from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest

    handle = await people.chain.start(5, session_id=session_id)
    assert (await handle.result())["factor"] == 1
    point = next(p for p in await handle.steps() if p["step"] == 1)
    client = handle.temporal_handle._client
    history = await client.get_workflow_handle(session_id, run_id=point["run_id"]).fetch_history()
    done = next(
        e.event_id
        for e in history.events
        if e.event_id > point["event"] and e.HasField("workflow_task_completed_event_attributes")
    )
    assert done == point["event"] + 1  # the checkpoint's history length is the merging task's start
    reset = await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=session_id, run_id=point["run_id"]),
            reason="test: reset without the signal",
            workflow_task_finish_event_id=done,
            request_id=uuid.uuid4().hex,
            reset_reapply_exclude_types=[ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL],
        )
    )
    new = client.get_workflow_handle(session_id, run_id=reset.run_id)
    for _ in range(400):  # the new run has taken its first task: it merged step 1 and stopped there
        events = [e async for e in new.fetch_history_events()]
        if any(e.HasField("timer_started_event_attributes") for e in events):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the reset run never started waiting")
    assert not any(e.HasField("activity_task_scheduled_event_attributes") and e.event_id > done for e in events)
    state = await new.query("gecko_state")
    assert state["step"] == 1 and state["status"] == "running" and state["rewound_from"] is None
    told = {"from_run": point["run_id"], "to_step": 1, "values": {"factor": 4}, "run": reset.run_id}
    await new.signal("gecko_rewound", told)
    assert await new.result() == {"trail": ["a", "b", "c"], "factor": 4, "x": 5}
    assert (await new.query("gecko_state"))["rewound_from"]["run_id"] == point["run_id"]


async def test_the_start_is_no_rewind_point_and_a_run_start_defers_to_the_run_before(dev_server, session_id):
    """A run reset to its first task sees no reseed, so it could not wait for the rewind's edits:
    step 0 is refused (start over instead), and a later run's start defers to the previous run's
    last merge (rewinding there continues as new again)."""
    handle = await people.chain.start(1, session_id=session_id)
    await handle.result()
    with pytest.raises(RewindError, match="step 0 is the start of the session: .* start a new session"):
        await handle.rewind(0, values={"factor": 9})
    loop = await people.loop.start(0, session_id=f"{session_id}-loop")
    await loop.result()
    points = await loop.steps()
    starts = [p for p in points if p["nodes"] == []]
    assert starts and not any(p["rewindable"] for p in starts)
    later = next(p for p in starts if p["run"] == 2)
    reply = await loop.rewind(later["step"], values={"bonus": "late"})
    assert reply["from_run"] != later["run_id"]  # the run that merged that step, not the one it started
    again = await people.loop.get_handle(loop.id)
    assert await again.result() == {"seen": [0, 1, 2, 3, 4], "bonus": "late"}
    assert [e["step"] for e in (await again.state())["state_edits"]] == [later["step"]]
