"""A wait for a person keeps its history bounded wherever it waits (issue 28): in a Send fan-out and
in an eager run too, a flood of signals moves the wait to a new run (continue-as-new) and no answer
is lost. A worker runs in its own process; the flood comes from the real `temporal` CLI."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from gecko_temporal.core.spec import RunParams
from gecko_temporal.protocol import ANSWER_UPDATE, STATE_QUERY
from gecko_temporal.temporal.client import connect
from tests.pipelines import waits
from tests.pipelines.procs import Procs, flood, temporal
from tests.pipelines.task_failures import no_failed_tasks

QUEUE = f"waitswitch-{uuid.uuid4().hex[:6]}"


@pytest.fixture(autouse=True)
def _no_failed_workflow_tasks(request, dev_server):
    yield from no_failed_tasks(request, dev_server)


@pytest.fixture(scope="module")
def worker(dev_server, tmp_path_factory):
    procs = Procs(tmp_path_factory.mktemp("waitswitch"))
    proc = procs.worker(
        "tests.pipelines.waits:fan_asks",
        "tests.pipelines.waits:eager_asks",
        "tests.pipelines.waits:eager_fan_asks",
        "--address",
        dev_server.address,
        "--task-queue",
        QUEUE,
        "--threads",
        "4",
    )
    try:
        proc.wait_for("worker ready")
        yield proc
    finally:
        procs.close()


async def _start(dev_server, wf, value) -> tuple[str, object]:
    session = f"waitswitch-{uuid.uuid4().hex[:8]}"
    client = await connect(dev_server.address)
    spec = wf.compile()
    handle = await client.start_workflow(
        "GeckoWorkflow", RunParams(spec=spec, input=json.dumps(value)), id=session, task_queue=QUEUE
    )
    return session, handle


async def _state_when(handle, ready, within: float = 60.0) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            state = await handle.query(STATE_QUERY)
        except Exception:  # the run is switching: ask the next one
            state = None
        if state is not None and ready(state):
            return state
        shown = state and {"run": state["run"], "waiting": _waiting(state), "running": state["running"]}
        assert loop.time() < deadline, f"not reached within {within} s: {shown}"
        await asyncio.sleep(0.1)


async def _answer(handle, node: str, value, interrupt: int | None) -> None:
    for _ in range(100):  # a run continuing as new refuses updates for a moment
        try:
            request = {"node": node, "value": value, **({"interrupt": interrupt} if interrupt is not None else {})}
            reply = await handle.execute_update(ANSWER_UPDATE, request)
            assert reply.get("node") == node, reply
            return
        except Exception as exc:  # retried, then raised
            error = exc
            await asyncio.sleep(0.2)
    raise error


async def _history_bytes(dev_server, session: str) -> int:
    code, out, err = await temporal(dev_server, "workflow", "describe", "--workflow-id", session, "--output", "json")
    assert code == 0, err
    return int(json.loads(out)["workflowExecutionInfo"]["historySizeBytes"])


def _waiting(state: dict) -> dict[str, int | None]:
    return {k: w.get("interrupt") for k, w in state["waiting"].items()}


@pytest.mark.parametrize("wf", [waits.fan_asks, waits.eager_fan_asks], ids=["layered", "eager"])
async def test_a_flood_on_a_fan_out_whose_instances_wait_moves_the_wait_to_new_runs_and_keeps_every_output(
    dev_server, worker, tmp_path, wf
):
    session, handle = await _start(dev_server, wf, 3)
    await _state_when(handle, lambda s: len(s["waiting"]) == 3)
    await _answer(handle, "ask[0]", "yes 0", 0)  # one instance finishes in the first run
    await _state_when(handle, lambda s: len(s["waiting"]) == 2 and "ask[0]" not in s["running"])
    await flood(dev_server, session, tmp_path)
    state = await _state_when(handle, lambda s: s["run"] >= 2 and len(s["waiting"]) == 2)
    assert _waiting(state) == {"ask[1]": 0, "ask[2]": 0}, state["waiting"]
    assert await _history_bytes(dev_server, session) < 5 * 1024 * 1024
    await _answer(handle, "ask[2]", "yes 2", 0)
    await _answer(handle, "ask[1]", "yes 1", 0)
    client = await connect(dev_server.address)
    result = await asyncio.wait_for(client.get_workflow_handle(session).result(), 60)
    assert result == ["yes 0", "yes 1", "yes 2"]  # the fan-out's outputs in Send order, across runs


async def test_a_flood_on_an_eager_run_moves_its_waits_to_new_runs_and_loses_no_answer(dev_server, worker, tmp_path):
    session, handle = await _start(dev_server, waits.eager_asks, "tea")
    await _state_when(handle, lambda s: _waiting(s) == {"Gate": None, "Ask": 0})
    await _answer(handle, "Ask", "a", 0)
    await _state_when(handle, lambda s: _waiting(s) == {"Gate": None, "Ask": 1})
    await flood(dev_server, session, tmp_path)
    await _state_when(handle, lambda s: s["run"] >= 2 and _waiting(s) == {"Gate": None, "Ask": 1})
    assert await _history_bytes(dev_server, session) < 5 * 1024 * 1024
    await _answer(handle, "Ask", "b", 1)
    await _answer(handle, "Gate", "go", None)
    client = await connect(dev_server.address)
    result = await asyncio.wait_for(client.get_workflow_handle(session).result(), 60)
    assert result == {"gate": "go", "ask": ["a", "b"], "asked": "tea"}
