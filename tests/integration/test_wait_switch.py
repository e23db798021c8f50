"""A wait for a person keeps its history bounded wherever it waits (issue 28): in a Send fan-out and
in an eager run too, a flood of signals moves the wait to a new run (continue-as-new) and no answer
is lost. A worker runs in its own process; the flood comes from the real `temporal` CLI."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from gecko_temporal.protocol import ANSWER_UPDATE, STATE_QUERY
from gecko_temporal.temporal.client import connect
from tests.pipelines import waits
from tests.pipelines.polling import until
from tests.pipelines.procs import flood, start_run, temporal, worker_serving
from tests.pipelines.task_failures import no_failed_tasks

QUEUE = f"waitswitch-{uuid.uuid4().hex[:6]}"


@pytest.fixture(autouse=True)
def _no_failed_workflow_tasks(request, dev_server):
    yield from no_failed_tasks(request, dev_server)


@pytest.fixture(scope="module")
def worker(dev_server, tmp_path_factory):
    targets = [f"tests.pipelines.waits:{name}" for name in ("fan_asks", "eager_asks", "eager_fan_asks")]
    with worker_serving(tmp_path_factory.mktemp("waitswitch"), dev_server.address, QUEUE, *targets) as proc:
        yield proc


async def _start(dev_server, wf, value) -> tuple[str, object]:
    return await start_run(dev_server, wf, value, QUEUE, "waitswitch")


async def _state_when(handle, ready, within: float = 60.0) -> dict:
    def shown(state: dict | None) -> str:
        seen = state and {"run": state["run"], "waiting": _waiting(state), "running": state["running"]}
        return f"not reached within {within} s: {seen}"

    # A query that fails is asked again: the run is switching, the next one answers.
    return await until(lambda: handle.query(STATE_QUERY), ready, shown, every=0.1, within=within, skip=(Exception,))


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
