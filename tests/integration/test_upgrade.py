"""A long run moves to new code at its continue-as-new when that is safe, and stays when not (issue 27).

A looping run of tests/pipelines/upgrade_v1.py (``Workflow(upgrade="at-continue-as-new")``,
continuing as new every 2 steps) is pinned to version v1 and waits at ``Hold``; version 2 is
deployed (a separate ``worker.py`` process) and promoted meanwhile. Every step tags its output with
its version, so the result says which code ran each step.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from temporalio.service import RPCError

from gecko_temporal.core.versions import workflow_fingerprint
from gecko_temporal.temporal.client import connect
from tests.pipelines import upgrade_v1
from tests.pipelines.polling import waiting_at
from tests.pipelines.procs import Procs, fresh_queue, promote_when_polled, ready_worker

pytestmark = pytest.mark.asyncio

V1 = "tests.pipelines.upgrade_v1:wf"


async def _replay_every_run(address: str, session: str) -> int:
    """Replay each run of ``session`` (newest back to the first) with Replayer: the upgrade check
    and the continue-as-new it chose must be deterministic. Return how many runs replayed."""
    from temporalio.worker import Replayer

    from gecko_temporal.core.errors import GeckoError
    from gecko_temporal.temporal.workflow import GeckoWorkflow

    client = await connect(address)
    replayer = Replayer(workflows=[GeckoWorkflow], workflow_failure_exception_types=[GeckoError])
    run_id: str | None = (await client.get_workflow_handle(session).describe()).run_id
    count = 0
    while run_id:
        handle = client.get_workflow_handle(session, run_id=run_id)
        history = await handle.fetch_history()
        await replayer.replay_workflow(history)
        count += 1
        first = history.events[0].workflow_execution_started_event_attributes
        run_id = first.continued_execution_run_id or None
    return count


async def _published(address: str, deployment: str, build_id: str) -> dict:
    """The graph version ``build_id`` published for Upgrader (its workers publish it after their first poll)."""
    from temporalio.api.deployment.v1 import WorkerDeploymentVersion
    from temporalio.api.workflowservice.v1 import DescribeWorkerDeploymentVersionRequest

    client = await connect(address)
    for _ in range(300):  # a failure bound only
        try:  # the server knows the version only after its worker's first poll
            info = await client.workflow_service.describe_worker_deployment_version(
                DescribeWorkerDeploymentVersionRequest(
                    namespace=client.namespace,
                    deployment_version=WorkerDeploymentVersion(deployment_name=deployment, build_id=build_id),
                )
            )
        except RPCError:
            await asyncio.sleep(0.1)
            continue
        entry = info.worker_deployment_version_info.metadata.entries.get("gecko.graph.Upgrader")
        if entry is not None:
            return json.loads(entry.data)
        await asyncio.sleep(0.1)
    raise AssertionError(f"version {build_id} never published its graph")


async def _v1_run_waiting_while_v2_is_current(procs: Procs, address: str, queue: str, v2_module: str):
    ready_worker(procs, V1, address, queue, "--build-id", "v1")
    await promote_when_polled(address, "v1", queue)
    handle = await upgrade_v1.wf.start("go")
    state = await waiting_at(handle, "Hold")
    assert state["version"]["build_id"] == "v1" and state["version"]["behavior"] == "pinned"
    assert state["run"] >= 2  # it has continued as new on v1 already: nothing to move to then
    v2 = ready_worker(procs, f"tests.pipelines.{v2_module}:wf", address, queue, "--build-id", "v2")
    published = await _published(address, queue, "v2")
    await promote_when_polled(address, "v2", queue)
    return handle, v2, published


@pytest.mark.long
@pytest.mark.slow
async def test_a_looping_run_moves_to_the_promoted_version_at_its_next_continue_as_new(dev_server, procs, monkeypatch):
    address = dev_server.address
    queue = fresh_queue(monkeypatch, address, "upgrade")
    handle, _, published = await _v1_run_waiting_while_v2_is_current(procs, address, queue, "upgrade_v2")
    assert published["spec"]["name"] == "Upgrader" and len(published["graph"]) == 12 and published["code"]

    await handle.answer("Hold", "go on")
    result = await asyncio.wait_for(handle.result(), 120)
    trail = result["trail"]
    moved_at = trail.index("Work-v2")
    assert len(trail) == 12 and moved_at >= 3, trail  # the three steps before Hold ran v1 code
    assert trail == ["Work-v1"] * moved_at + ["Work-v2"] * (12 - moved_at), trail  # never mixed back
    assert result["done"] == "Done-v2" and result["extra"] == "Extra-v2"  # v2's graph, its new node too

    version = (await handle.state())["version"]
    assert version["build_id"] == "v2" and version["behavior"] == "pinned"
    assert version["upgraded_from"]["build_id"] == "v1"
    assert version["graph"] == published["graph"]
    assert await _replay_every_run(address, handle.id) >= 5  # the check and the move replay


@pytest.mark.long
@pytest.mark.slow
async def test_a_run_stays_on_its_version_when_the_new_one_renamed_a_node_it_still_needs(
    dev_server, procs, monkeypatch
):
    address = dev_server.address
    queue = fresh_queue(monkeypatch, address, "stay")
    handle, v2, _ = await _v1_run_waiting_while_v2_is_current(procs, address, queue, "upgrade_v2_renamed")
    # The v2 worker's start scan found the run it could not take, had it moved there.
    v2.wait_for("cannot serve open run", 60)
    assert handle.id in v2.output() and "Work: node renamed" in v2.output()

    await handle.answer("Hold", "go on")
    result = await asyncio.wait_for(handle.result(), 120)
    assert result == {"trail": ["Work-v1"] * 12, "done": "Done-v1"}

    version = (await handle.state())["version"]
    assert version["build_id"] == "v1"
    upgrade = version["upgrade"]
    assert upgrade["move"] is False and upgrade["target"] == "v2"
    assert any("Work: node renamed" in r and "still needs it" in r for r in upgrade["reasons"]), upgrade
    assert await _replay_every_run(address, handle.id) >= 5


async def test_an_unversioned_run_still_knows_its_graph_after_continuing_as_new(session_id):
    """No build id (the embedded worker): a run that continued as new still names the graph and
    code it started with, and its upgrade option does nothing (there is no version to move to)."""
    handle = await upgrade_v1.wf.start("go", session_id=session_id)
    state = await waiting_at(handle, "Hold")
    graph = workflow_fingerprint(upgrade_v1.wf)[1].id
    assert state["run"] >= 2  # it continued as new (steps_per_run=2) before it waited
    version = state["version"]
    assert (version["behavior"], version["build_id"], version["graph"]) == ("unversioned", None, graph)
    assert version["client_graph"] == graph and "upgrade" not in version
    await handle.answer("Hold", "go on")
    for _ in range(300):  # a failure bound only
        later = await handle.state()
        if later["run"] >= state["run"] + 2:
            break
        await asyncio.sleep(0.05)
    assert later["run"] >= state["run"] + 2 and later["version"]["graph"] == graph  # two switches later
    await handle.cancel()
