"""Nothing a client sends can wedge a run, part two (issue 28): red-team drills against real
processes. A worker runs in its own process (`python worker.py ...`), requests come from the real
`temporal` CLI and `gecko-temporal` commands, as the reports did.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import uuid

import pytest
from temporalio.client import WorkflowFailureError

from gecko_temporal import GeckoError, GraphError
from gecko_temporal.temporal.client import connect
from tests.integration.test_hostile_input import cli_state, cli_state_when, start_hostile
from tests.pipelines import hostile
from tests.pipelines.procs import Procs, flood, gecko, signal_by_cli, start_run, temporal, worker_serving
from tests.pipelines.task_failures import no_failed_tasks

QUEUE = f"redteam-{uuid.uuid4().hex[:6]}"
POLL = "__temporal_workflow_stream_poll"


@pytest.fixture(autouse=True)
def _no_failed_workflow_tasks(request, dev_server):
    yield from no_failed_tasks(request, dev_server)


@pytest.fixture(scope="module")
def worker(dev_server, tmp_path_factory):
    targets = [f"tests.pipelines.hostile:{name}" for name in ("wf", "fan", "big_fan", "asks")]
    with worker_serving(tmp_path_factory.mktemp("redteam"), dev_server.address, QUEUE, *targets) as proc:
        yield proc


async def _start_waiting(dev_server) -> str:
    return await start_hostile(dev_server, queue=QUEUE, prefix="redteam", topic="red")


async def _abandoned_polls(dev_server, session: str, offset: int, count: int = 10) -> list[int]:
    """`count` stream polls left in flight, as Ctrl-C'd watchers leave them (accepted, never read)."""
    body = json.dumps({"topics": [], "from_offset": offset})
    codes = []
    for _ in range(count):
        code, _, _ = await temporal(
            dev_server,
            "workflow",
            "update",
            "start",
            "--workflow-id",
            session,
            "--name",
            POLL,
            "--input",
            body,
            "--wait-for-stage",
            "accepted",
        )
        codes.append(code)
    return codes


async def test_abandoned_stream_polls_leave_room_for_answers_jumps_and_edits(dev_server, worker):
    session = await _start_waiting(dev_server)
    end = await cli_state(dev_server, session)  # the log's end: polls there wait for new events
    offset = await _offset(dev_server, session)
    assert end["waiting"]
    await _abandoned_polls(dev_server, session, offset, 10)
    code, _out, err = await gecko(dev_server, "update-state", session, "--values", '{"note": 1}')
    assert code == 0, err
    code, _out, err = await gecko(dev_server, "jump", session, "Echo1", "--input", '"j"')
    assert code == 0, err
    code, _out, err = await gecko(dev_server, "answer", session, "Gate1", "--value", '"first"')
    assert code == 0, err
    state = await cli_state(dev_server, session)
    assert state["state"].get("note") == 1


async def _offset(dev_server, session: str) -> int:
    code, out, err = await temporal(
        dev_server,
        "workflow",
        "query",
        "--workflow-id",
        session,
        "--name",
        "__temporal_workflow_stream_offset",
        "--output",
        "json",
    )
    assert code == 0, err
    return json.loads(out)["queryResult"][0]


def _item(topic: str, value: object) -> dict:
    from temporalio.api.common.v1 import Payload

    payload = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())
    return {"topic": topic, "data": base64.b64encode(payload.SerializeToString()).decode()}


async def _publish(dev_server, session: str, batch: dict) -> None:
    code, _, err = await signal_by_cli(dev_server, session, "__temporal_workflow_stream_publish", json.dumps(batch))
    assert code == 0, err


@pytest.mark.long
async def test_ctrl_c_watchers_and_far_offsets_leave_a_live_watcher_and_the_answers_working(
    dev_server, worker, tmp_path
):
    session = await _start_waiting(dev_server)
    procs = Procs(tmp_path)
    try:
        live = procs.command("watch", session, "--address", dev_server.address)
        live.wait_for("Gate1")
        quitters = [procs.command("watch", session, "--address", dev_server.address) for _ in range(10)]
        for q in quitters:
            q.wait_for("watching")
        await asyncio.sleep(2)  # their polls are in flight
        for q in quitters:
            q.popen.send_signal(signal.SIGINT)
        for q in quitters:
            q.popen.wait(30)
        code, _, err = await gecko(dev_server, "watch", session, "--from-offset", "999999999999")
        assert code == 1
        assert "beyond the end of this run's event stream" in err and len(err.strip().splitlines()) == 1, err
        assert (await _abandoned_polls(dev_server, session, 999999999999, 3)) != [0, 0, 0]
        await _abandoned_polls(dev_server, session, await _offset(dev_server, session), 10)
        for node, value in (("Gate1", '"one"'), ("Gate2", '"two"')):
            code, _out, err = await gecko(dev_server, "answer", session, node, "--value", value)
            assert code == 0, err
            await cli_state_when(dev_server, session, lambda s, node=node: node not in s["waiting"], 200, 0.05)
        client = await connect(dev_server.address)
        assert (await client.get_workflow_handle(session).result())["second"] == "two"
        assert live.popen.wait(60) == 0, live.output()  # pushed to reading by query, it saw the end
        assert "completed" in live.output().splitlines()[-1], live.output()
    finally:
        procs.close()


async def test_only_the_run_writes_its_own_events_a_forged_run_finished_is_rejected(dev_server, worker):
    session = await _start_waiting(dev_server)
    before = await _offset(dev_server, session)
    forged = _item("gecko", {"type": "run_finished", "status": "completed", "time": ""})
    await _publish(dev_server, session, {"items": [forged], "publisher_id": "", "sequence": 0})
    await _publish(dev_server, session, {"items": [_item("gecko", "hi")], "publisher_id": "", "sequence": 0})
    ok = _item("gecko", {"type": "custom", "node": "outside", "data": 1, "time": ""})
    await _publish(dev_server, session, {"items": [ok], "publisher_id": "p", "sequence": 1})
    for _ in range(100):
        state = await cli_state(dev_server, session)
        if len(state["rejected"]) >= 2 and await _offset(dev_server, session) == before + 1:
            break
        await asyncio.sleep(0.1)
    reasons = [r["reason"] for r in state["rejected"]]
    assert any("'run_finished' event" in r and "context.emit" in r for r in reasons), reasons
    assert await _offset(dev_server, session) == before + 1  # only the custom event went in
    code, _, err = await gecko(dev_server, "status", session)
    assert code == 0 and state["waiting"], err


async def test_a_session_id_of_998_characters_runs_its_subgraph_under_a_child_id_that_fits(dev_server):
    from gecko_temporal import Workflow

    child = Workflow("Kid").add_node("twice", lambda n: n * 2).set_entry_point("twice")
    wf = Workflow("Parent").add_node("Kid", child).set_entry_point("Kid")
    session = "s" * 988 + uuid.uuid4().hex[:10]  # 998: its child "<session>.Kid.1" would be 1,004
    handle = await wf.start(21, session_id=session, timeout=60)
    assert await asyncio.wait_for(handle.result(), 60) == 42
    with pytest.raises(GeckoError, match="session_id is 1,001 bytes"):
        await wf.start(1, session_id="s" * 1001)


def test_names_temporal_would_refuse_fail_when_the_graph_is_built():
    from gecko_temporal import Team, Workflow

    with pytest.raises(GraphError, match="over Temporal's 1,000-byte limit"):
        Workflow("P" * 5000)
    with pytest.raises(GraphError, match='activity type of node "nnn'):
        Workflow("P").add_node("n" * 999, lambda x: x)
    member = lambda x: x  # noqa: E731
    member.__name__ = "m" * 1000
    team = Team([member])
    wf = Workflow("P").add_node("T", team).set_entry_point("T")
    with pytest.raises(GraphError, match='activity type of node "T"'):
        wf.compile()


async def test_forged_signals_add_nothing_big_to_what_the_run_carries(dev_server, worker, tmp_path):
    session = await _start_waiting(dev_server)
    big = tmp_path / "publisher.json"
    big.write_text(json.dumps({"items": [], "publisher_id": "p" * 1_000_000, "sequence": 1}))
    rewound = tmp_path / "rewound.json"
    rewound.write_text(json.dumps({"from_run": "r" * 2_000_000}))
    for name, path in (("__temporal_workflow_stream_publish", big), ("gecko_rewound", rewound)):
        code, _, err = await temporal(
            dev_server, "workflow", "signal", "--workflow-id", session, "--name", name, "--input-file", str(path)
        )
        assert code == 0, err
    code, _, err = await signal_by_cli(dev_server, session, "gecko_rewound", "{}")
    assert code == 0, err
    for _ in range(100):
        state = await cli_state(dev_server, session)
        if len(state["rejected"]) >= 3:
            break
        await asyncio.sleep(0.1)
    reasons = [r["reason"] for r in state["rejected"]]
    assert any("publisher_id is 1,000,000 characters" in r for r in reasons), reasons
    assert any('"from_run" must be a run id' in r for r in reasons), reasons
    # A well-formed gecko_rewound {} on a run that was never reset is refused: no fake rewound_from.
    assert sum("has seen no reset it was not told about" in r for r in reasons) == 1, reasons
    assert state["rewound_from"] is None
    assert len(json.dumps(state)) < 20_000  # previews only


def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def test_a_500_way_send_whose_instances_take_context_completes(dev_server, worker):
    _, handle = await start_run(dev_server, hostile.fan, 500, QUEUE, "redfan")
    result = await asyncio.wait_for(handle.result(), 300)
    assert len(result) == 500 and set(result) == {0}  # no instance got the 500 Sends in its history


@pytest.mark.long
async def test_sends_too_big_for_one_output_fail_the_node_without_eating_the_workers_memory(dev_server, worker):
    before = _rss_mb(worker.pid)
    _, handle = await start_run(dev_server, hostile.big_fan, 1000, QUEUE, "redbigfan")
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), 120)
    message = str(failed.value.cause)
    assert 'node "big_fan_out"' in message and "1,000 Sends" in message and "PayloadTooLarge" in message, message
    assert "GECKO_PAYLOAD_STORE" in message
    assert _rss_mb(worker.pid) < before + 300  # it stopped at the second Send, not after encoding 1.9 GB


async def test_an_edit_sent_while_a_node_runs_wins_over_what_that_node_writes(session_id, tmp_path):
    """docs/live-control.md: an edit lands after the running layer's own writes merged, so a person's
    edit is the last word on a key, and the next layer sees it."""
    from gecko_temporal import Workflow

    gate = tmp_path / "go"

    def writer(_, context):
        for _ in range(1200):  # until the test has sent its edit (the node is running by then)
            if gate.exists():
                break
            import time

            time.sleep(0.05)
        context.state["k"] = "node"
        return "wrote"

    def reader(_, context):
        return context.state["k"]

    wf = Workflow("EditWins").add_node("writer", writer).add_node("reader", reader)
    wf.add_edge("writer", "reader").set_entry_point("writer")
    handle = await wf.start(session_id=session_id, state={"k": "seed"})
    for _ in range(400):
        if (await handle.state())["running"]:
            break
        await asyncio.sleep(0.05)
    reply = await handle.update_state({"k": "person"})
    assert reply["applied"] is False  # the node runs: the edit waits for the layer's end
    gate.write_text("go")
    assert await handle.result() == "person"  # the next layer saw the edit, not the node's write
    final = await handle.state()
    assert final["state"]["k"] == "person" and final["state_edits"][-1]["set"] == ["k"]


async def _state_when(dev_server, session: str, ready) -> dict:
    return await cli_state_when(dev_server, session, ready, 300, 0.1)


async def test_a_signal_flood_on_a_waiting_run_moves_the_wait_to_new_runs_and_loses_no_answer(
    dev_server, worker, tmp_path
):
    # Every signal lands in history before the workflow can refuse it: 6 of 1.5 MB (9 MB) would keep
    # growing one history toward Temporal's 50 MB termination. The wait continues as new instead.
    session = await _start_waiting(dev_server)
    await flood(dev_server, session, tmp_path)
    state = await _state_when(dev_server, session, lambda s: s["run"] >= 2 and "Gate1" in s["waiting"])
    assert state["run"] >= 2, "the flooded wait stayed in one run"
    assert list(state["waiting"]) == ["Gate1"], state["waiting"]
    code, out, err = await temporal(dev_server, "workflow", "describe", "--workflow-id", session, "--output", "json")
    assert code == 0, err
    size = int(json.loads(out)["workflowExecutionInfo"]["historySizeBytes"])
    assert size < 5 * 1024 * 1024, f"the current run's history is {size} bytes"
    for node, value in (("Gate1", '"first"'), ("Gate2", '"second"')):
        for _ in range(100):
            code, _out, err = await gecko(dev_server, "answer", session, node, "--value", value)
            if code == 0:
                break
            await asyncio.sleep(0.1)
        assert code == 0, err
    client = await connect(dev_server.address)
    result = await asyncio.wait_for(client.get_workflow_handle(session).result(), 60)
    assert result == {"first": {"got": "first", "type": "str"}, "second": "second", "topic": "red"}


async def test_an_interrupted_node_whose_wait_moves_to_a_new_run_keeps_the_answers_it_had(dev_server, worker, tmp_path):
    session, handle = await start_run(dev_server, hostile.asks, None, QUEUE, "redasks")
    await _state_when(dev_server, session, lambda s: "Ask" in s["waiting"])
    code, _, err = await gecko(dev_server, "answer", session, "Ask", "--value", '"a"', "--interrupt", "0")
    assert code == 0, err
    await _state_when(dev_server, session, lambda s: s["waiting"].get("Ask", {}).get("interrupt") == 1)
    await flood(dev_server, session, tmp_path)
    state = await _state_when(
        dev_server, session, lambda s: s["run"] >= 2 and s["waiting"].get("Ask", {}).get("interrupt") == 1
    )
    assert state["run"] >= 2 and state["waiting"]["Ask"]["interrupt"] == 1, state
    code, _, err = await gecko(dev_server, "answer", session, "Ask", "--value", '"b"', "--interrupt", "1")
    assert code == 0, err
    assert await asyncio.wait_for(handle.result(), 60) == ["a", "b"]
