"""The pure parts of big graphs: the compact spec and the activity window (no server)."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from gecko_temporal import Workflow
from gecko_temporal.core.spec import COMPACT_FORMAT, GraphSpec, NodeSpec, RetrySpec
from gecko_temporal.core.window import (
    DEFAULT_MAX_PARALLEL,
    HISTORY_EVENTS_LIMIT,
    Paused,
    Window,
    check_max_parallel,
    history_full,
)
from tests.unit.test_spec_plain import _rich_graph


def _json(value):
    return json.loads(json.dumps(value))


def _fan(width: int) -> Workflow:
    wf = Workflow("Fan", max_parallel=7)
    wf.add_node("start", lambda x: x).add_node("end", lambda parts: parts)
    for i in range(width):
        wf.add_node(f"n{i}", lambda x: x).add_edge("start", f"n{i}").add_edge(f"n{i}", "end")
    return wf.set_entry_point("start")


@pytest.mark.parametrize("graph", [_rich_graph, lambda: _fan(50)])
def test_the_compact_spec_reads_back_exactly(graph):
    spec = graph().compile()
    compact = _json(spec.to_plain())
    assert compact["format"] == COMPACT_FORMAT
    assert GraphSpec.from_plain(compact) == spec


def test_the_full_form_of_older_runs_still_reads():
    spec = _rich_graph().compile()
    assert GraphSpec.from_plain(_json(dataclasses.asdict(spec))) == spec


def test_defaults_are_stated_once_and_nodes_carry_only_what_differs():
    compact = _fan(1000).compile().to_plain()
    assert compact["defaults"]["start_to_close_timeout"] == 300.0  # stated, even though it is the default
    assert compact["nodes"][2] == {"name": "n0", "s": [1]}
    full = len(json.dumps(dataclasses.asdict(_fan(1000).compile())))
    assert len(json.dumps(compact)) * 8 < full
    assert compact["max_parallel"] == 7


def test_edge_order_that_successors_do_not_imply_is_kept():
    # "join" gets its predecessors in edge order (b before a), which node order would not give
    wf = Workflow("Order").add_node("s", lambda x: x).add_node("a", lambda x: x).add_node("b", lambda x: x)
    wf.add_node("join", lambda p: p).add_edge("s", "a").add_edge("s", "b").add_edge("b", "join").add_edge("a", "join")
    spec = wf.set_entry_point("s").compile()
    assert spec.node("join").predecessors == ["b", "a"]
    compact = _json(spec.to_plain())
    assert compact["nodes"][3]["p"] == [2, 1]
    assert GraphSpec.from_plain(compact) == spec


def test_a_node_field_added_later_round_trips_without_changes_here():
    @dataclasses.dataclass(frozen=True)
    class Newer(NodeSpec):
        fan_out: int = 1

    import gecko_temporal.core.spec as spec_module

    nodes = [
        Newer(name="a", kind="function", activity_type="G.a", predecessors=[], successors=["b"]),
        Newer(
            name="b",
            kind="function",
            activity_type="G.b",
            predecessors=["a"],
            successors=[],
            fan_out=3,
            retry=RetrySpec(maximum_attempts=9),
        ),
    ]
    spec = GraphSpec(name="G", key="G", entry="a", nodes=nodes)
    original = spec_module.NodeSpec
    spec_module.NodeSpec = Newer  # as if NodeSpec had the new field
    try:
        compact = _json(spec.to_plain())
        assert compact["defaults"]["fan_out"] == 1 and compact["nodes"][1]["fan_out"] == 3
        assert "fan_out" not in compact["nodes"][0]
        assert GraphSpec.from_plain(compact).nodes == nodes
    finally:
        spec_module.NodeSpec = original


def test_max_parallel_values():
    assert check_max_parallel(None) is None and check_max_parallel(1) is None and check_max_parallel(2000) is None
    for bad in (0, 2001, 2.0, True, "5"):
        assert "max_parallel must be an int from 1 to 2000" in check_max_parallel(bad)


def test_history_is_full_when_the_running_window_could_overrun_the_limits():
    assert not history_full(1_000, 1_000_000, DEFAULT_MAX_PARALLEL)
    assert history_full(HISTORY_EVENTS_LIMIT - 2_000 - 8 * 1_000, 0, 1_000)
    assert not history_full(HISTORY_EVENTS_LIMIT - 2_000 - 8 * 1_000 - 1, 0, 1_000)
    assert not history_full(HISTORY_EVENTS_LIMIT - 2_000 - 8 * 10 - 1, 0, 10)  # a small window drains sooner
    assert history_full(10, 40 * 1024 * 1024, 10)


# -- the window, on a plain event loop ------------------------------------------------------------
async def _started_in_order(window: Window, count: int, release_order=None):
    """Start ``count`` jobs through ``window``; each waits for its own gate. Returns (log, gates, jobs)."""
    log: list[str] = []
    gates = [asyncio.get_running_loop().create_future() for _ in range(count)]

    async def job(i):
        log.append(f"start {i}")
        await gates[i]
        log.append(f"end {i}")
        return i

    jobs = [asyncio.ensure_future(window.run(lambda i=i: job(i))) for i in range(count)]
    await asyncio.sleep(0)
    return log, gates, jobs


async def test_the_window_starts_at_most_size_and_the_next_in_order_as_one_finishes():
    window = Window(2)
    log, gates, jobs = await _started_in_order(window, 5)
    assert log == ["start 0", "start 1"] and window.active == 2 and window.queued == 3
    gates[1].set_result(None)  # the second finishes first: the third (not the last) starts
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert log[-2:] == ["end 1", "start 2"]
    for g in (gates[0], gates[2], gates[3], gates[4]):
        g.set_result(None)
    assert await asyncio.gather(*jobs) == [0, 1, 2, 3, 4]
    assert window.active == 0 and window.queued == 0


async def test_a_window_that_may_not_limit_starts_everything():
    asked = []
    window = Window(2, may_limit=lambda: asked.append(1) or False)
    log, gates, jobs = await _started_in_order(window, 4)
    assert log == [f"start {i}" for i in range(4)] and asked == [1]  # asked once, when it mattered
    for g in gates:
        g.set_result(None)
    await asyncio.gather(*jobs)


async def test_a_window_that_never_fills_never_asks():
    asked = []
    window = Window(10, may_limit=lambda: asked.append(1) or True)
    _log, gates, jobs = await _started_in_order(window, 3)
    for g in gates:
        g.set_result(None)
    await asyncio.gather(*jobs)
    assert asked == []  # no patch marker for runs whose layers fit


async def test_a_cancelled_start_gives_up_its_place_and_a_failed_one_its_slot():
    window = Window(1)
    log, gates, jobs = await _started_in_order(window, 3)
    jobs[1].cancel()  # waiting: leaves the queue
    gates[0].set_exception(ValueError("boom"))  # running: fails, frees its slot for job 2
    with pytest.raises(ValueError):
        await jobs[0]
    await asyncio.sleep(0)
    assert "start 2" in log and "start 1" not in log
    gates[2].set_result(None)
    assert await jobs[2] == 2 and window.active == 0


async def test_a_paused_window_drains_then_reports():
    window = Window(2)
    full = [False]
    drained = window.allow_pause(lambda: full[0])
    log, gates, jobs = await _started_in_order(window, 5)
    full[0] = True  # history is full: no queued start may go
    gates[0].set_result(None)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert "start 2" not in log and not drained.done()  # job 1 still runs
    gates[1].set_result(None)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert drained.done() and isinstance(drained.exception(), Paused)
    assert window.queued == 3 and window.active == 0
    window.forbid_pause()  # the run could not switch: go on
    await asyncio.sleep(0)
    assert "start 2" in log and "start 3" in log
    for g in gates[2:]:
        g.set_result(None)
    assert await asyncio.gather(*jobs[2:]) == [2, 3, 4]


async def test_ending_the_pause_without_resuming_starts_nothing():
    window = Window(1)
    window.allow_pause(lambda: True)
    log, gates, jobs = await _started_in_order(window, 3)
    gates[0].set_result(None)
    await asyncio.sleep(0)
    window.forbid_pause(resume=False)  # continue-as-new is on its way out
    await asyncio.sleep(0)
    assert log == ["start 0", "end 0"]
    for j in jobs[1:]:
        j.cancel()
