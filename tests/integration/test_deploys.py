"""Redeploying while runs are in flight, with real worker processes (issue 27).

Version 1 and version 2 of one pipeline (tests/pipelines/deploy_v1.py, deploy_v2.py: v2 changes a
body, renames a node, renames and reorders Team members, adds a node) are served by separate
``worker.py`` processes. Every node tags its output with its version, so a result says which code
ran each step.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.pipelines import deploy_v1, deploy_v2
from tests.pipelines.polling import waiting_at
from tests.pipelines.procs import Procs, fresh_queue, promote_when_polled, ready_worker

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

V1, V2 = "tests.pipelines.deploy_v1:wf", "tests.pipelines.deploy_v2:wf"
ALL_V1 = {"trail": ["A-v1", "B-v1"], "team": {"m1": "m1-v1", "m2": "m2-v1"}, "sub": "inner-v1"}
ALL_V2 = {
    "trail": ["A-v2", "A2-changed", "Finish-v2", "Extra-v2"],
    "team": {"m2": "m2-v2", "first": "first-v2"},
    "sub": "inner-v2",
}


async def _cli(procs: Procs, *args: str) -> tuple[int, str]:
    proc = procs.command(*args)
    code = await asyncio.to_thread(proc.popen.wait, 120)
    return code, proc.output()


async def _versions(procs: Procs, address: str, queue: str) -> dict[str, dict]:
    code, out = await _cli(procs, "versions", "--deployment", queue, "--json", "--address", address)
    assert code == 0, out
    return {row["build_id"]: row for row in json.loads(out[out.index("[") :])}


@pytest.mark.long
async def test_rolling_deploy_keeps_every_run_on_the_code_it_started_with(dev_server, procs, monkeypatch):
    address = dev_server.address
    queue = fresh_queue(monkeypatch, address, "deploy")

    v1 = ready_worker(procs, V1, address, queue, "--build-id", "v1")
    assert f"version v1 of deployment {queue}" in v1.output()
    await promote_when_polled(address, "v1", queue)

    # Runs of v1: two from a v1 client, one from a v2 client (it follows the graph of v1, where it is pinned).
    old = [await deploy_v1.wf.start("topic") for _ in range(2)] + [await deploy_v2.wf.start("topic")]
    for handle in old:
        version = (await waiting_at(handle, "Review"))["version"]
        assert version["build_id"] == "v1" and version["behavior"] == "pinned"

    # Deploy v2 beside v1 and promote it while the v1 runs wait.
    ready_worker(procs, V2, address, queue, "--build-id", "v2")
    for _ in range(200):
        code, out = await _cli(procs, "promote", "v2", "--deployment", queue, "--address", address)
        if code == 0:
            break
        await asyncio.sleep(0.2)
    assert code == 0 and "new runs start on version v2 (was: v1)" in out, out

    # New runs land on v2, from a v2 client and from a v1 client (whose graph lacks Finish and Extra).
    new = [await deploy_v2.wf.start("topic"), await deploy_v1.wf.start("topic")]
    for handle in new:
        assert (await waiting_at(handle, "Review"))["version"]["build_id"] == "v2"
    code, out = await _cli(procs, "list", "--version", "v1", "--json", "--address", address)
    assert code == 0 and {r["session"] for r in json.loads(out[out.index("[") :])} >= {h.id for h in old}, out

    for _ in range(100):  # visibility is eventually consistent; a failure bound only
        rows = await _versions(procs, address, queue)
        if (rows["v1"]["open"], rows["v1"]["waiting"], rows["v2"]["open"]) == (3, 3, 2):
            break
        await asyncio.sleep(0.2)
    assert (rows["v1"]["open"], rows["v1"]["waiting"], rows["v2"]["open"]) == (3, 3, 2), rows

    for handle in old + new:
        await handle.answer("Review", "yes")
    assert [await asyncio.wait_for(h.result(), 120) for h in old] == [ALL_V1] * 3
    assert [await asyncio.wait_for(h.result(), 120) for h in new] == [ALL_V2] * 2

    # v1 drained: no open run is pinned to it any more, so its workers may stop.
    for _ in range(100):  # visibility is eventually consistent; a failure bound only
        rows = await _versions(procs, address, queue)
        if rows["v1"]["open"] == 0:
            break
        await asyncio.sleep(0.2)
    assert rows["v1"]["open"] == 0 and rows["v2"]["open"] == 0
    assert rows["v2"]["status"] == "current"


@pytest.mark.long
async def test_unversioned_worker_that_cannot_serve_a_run_leaves_it_waiting(dev_server, procs, monkeypatch):
    """Without build ids: a v2 worker refuses the waiting v1 run (renamed node, changed Team) instead
    of failing it; the run says why, and finishes on v1 code once a v1 worker is back."""
    address = dev_server.address
    queue = fresh_queue(monkeypatch, address, "unpinned")
    v1 = ready_worker(procs, V1, address, queue)
    handle = await deploy_v1.wf.start("topic")
    version = (await waiting_at(handle, "Review"))["version"]
    assert version["behavior"] == "unversioned" and version["build_id"] is None and len(version["graph"]) == 12
    v1.stop()

    v2 = ready_worker(procs, V2, address, queue)
    await handle.temporal_handle.signal("gecko_answer", {"node": "Review", "value": "yes"})
    v2.wait_for("cannot serve this run", 60)
    assert 'B: node renamed (now "Finish"' in v2.output() or "B: node removed" in v2.output()
    code, out = await _cli(procs, "status", handle.id, "--address", address)
    assert code == 1 and "cannot serve this run" in out, out
    assert (await handle.temporal_handle.describe()).status.name == "RUNNING"  # waiting, not failed

    ready_worker(procs, V1, address, queue)
    v2.stop()
    assert await asyncio.wait_for(handle.result(), 120) == ALL_V1


@pytest.mark.long
async def test_migrate_moves_a_waiting_run_to_the_new_version_after_checking_it(dev_server, procs, monkeypatch):
    """A v1 run waiting at Review moves to v2: the steps it ran keep their v1 results (A-v1), the
    rest runs on the v2 graph and code. A move the check calls unsafe is refused and changes nothing."""
    address = dev_server.address
    queue = fresh_queue(monkeypatch, address, "migrate")
    ready_worker(procs, V1, address, queue, "--build-id", "v1")
    await promote_when_polled(address, "v1", queue)
    handle = await deploy_v1.wf.start("topic")
    await waiting_at(handle, "Review")
    ready_worker(procs, V2, address, queue, "--build-id", "v2")
    await promote_when_polled(address, "v2", queue)

    where = ("--deployment", queue, "--address", address)
    code, out = await _cli(procs, "migrate", handle.id, "--to", "v2", "--workflow", "tests.pipelines.review:wf", *where)
    assert code == 1 and "cannot move to version v2 safely" in out and "A: node" in out, out
    assert (await handle.state())["version"]["build_id"] == "v1"  # refused: untouched

    code, out = await _cli(procs, "migrate", handle.id, "--to", "v2", "--workflow", V2, *where)
    assert code == 0 and f"session {handle.id} moves to version v2" in out, out
    await handle.answer("Review", "yes")
    assert await asyncio.wait_for(handle.result(), 120) == {
        "trail": ["A-v1", "Finish-v2", "Extra-v2"],
        "team": {"m2": "m2-v2", "first": "first-v2"},
        "sub": "inner-v2",
    }
