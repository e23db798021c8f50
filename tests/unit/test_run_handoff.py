"""The one builder of GeckoWorkflow's input (core/run/handoff.py): exact keys per starter."""

import json

import pytest

from gecko_temporal.core.limits import PAYLOAD_LIMIT
from gecko_temporal.core.run import handoff
from gecko_temporal.core.run.failure import NodeFailed
from gecko_temporal.core.spec import RunParams, RunSnapshot

SPEC = {"name": "W", "nodes": []}


def test_a_start_writes_every_key_and_a_seeded_state():
    assert handoff.workflow_input(SPEC, "1", payload_limit=PAYLOAD_LIMIT, start=True, timeout=5.0) == {
        "spec": SPEC,
        "input": "1",
        "timeout": 5.0,
        "snapshot": None,
        "payload_limit": PAYLOAD_LIMIT,
    }
    plain = handoff.workflow_input(SPEC, "1", payload_limit=7, start=True, state={"k": "2"})
    assert plain == {
        "spec": SPEC,
        "input": "1",
        "timeout": None,
        "snapshot": None,
        "payload_limit": 7,
        "state": {"k": "2"},
    }
    assert "state" not in handoff.workflow_input(SPEC, "1", start=True, state={})


def test_a_continued_run_writes_what_it_carries_only():
    assert handoff.workflow_input(SPEC, "1") == {"spec": SPEC, "input": "1"}
    assert handoff.workflow_input(SPEC, "1", snapshot={"run": 2}, payload_limit=PAYLOAD_LIMIT + 1, stream={}) == {
        "spec": SPEC,
        "input": "1",
        "snapshot": {"run": 2},
        "payload_limit": PAYLOAD_LIMIT + 1,
        "stream": {},
    }


def test_run_params_read_what_the_builder_writes():
    plain = handoff.workflow_input(
        {"name": "W", "key": "W", "entry": "A", "nodes": []},
        "1",
        snapshot={"run": 2},
        state={"k": "1"},
        stream={"log": []},
    )
    params = RunParams.from_plain(plain)
    assert (params.input, params.snapshot, params.state, params.stream) == ("1", {"run": 2}, {"k": "1"}, {"log": []})
    assert params.plain_spec is plain["spec"] and params.payload_limit == PAYLOAD_LIMIT and params.timeout is None
    assert "plain_spec" not in params.to_plain()


def test_next_run_carries_the_snapshot_and_says_when_it_is_too_big():
    snap = RunSnapshot(state={"k": "1"}, run=3)
    plain, problem = handoff.next_run(SPEC, "1", snap, PAYLOAD_LIMIT, None, "W")
    assert plain == {"spec": SPEC, "input": "1", "snapshot": snap.to_plain()} and problem is None
    big = RunSnapshot(state={"k": json.dumps("x" * 20_000)})
    plain, problem = handoff.next_run(SPEC, "1", big, 10_000, {"log": []}, "W")
    assert plain["stream"] == {"log": []} and plain["payload_limit"] == 10_000
    assert problem is not None and problem.startswith("run W cannot continue as new: its snapshot is ")


def test_a_child_session_and_input():
    assert handoff.child_session("parent", "Sub", 12) == "parent.Sub.12"
    assert handoff.child_run("Sub", SPEC, '"x"', PAYLOAD_LIMIT) == {"spec": SPEC, "input": '"x"'}
    assert handoff.child_run("Sub", SPEC, '"x"', PAYLOAD_LIMIT * 2)["payload_limit"] == PAYLOAD_LIMIT * 2


def test_a_child_input_over_the_limit_fails_the_node():
    text = json.dumps("y" * 3000)
    limit = 8 * 1024 + 3000  # FRAME + what the spec and the input leave short of it
    with pytest.raises(NodeFailed) as caught:
        handoff.child_run("Sub", SPEC, text, limit)
    exc = caught.value
    assert (exc.node, exc.error_type) == ("Sub", "PayloadTooLarge")
    assert exc.message.startswith(
        'subgraph node "Sub" would start its child run with 11.0 KB (its input 2.9 KB), over '
    )
    assert exc.message.endswith(
        "GECKO_PAYLOAD_STORE on workers and clients, or keep large data outside the run "
        "(write it to a file or a store and pass its path)"
    )
    size = len(json.dumps(text)) + len(json.dumps(SPEC)) + 8 * 1024
    handoff.child_run("Sub", SPEC, text, size)  # exactly at the limit: fine
    with pytest.raises(NodeFailed):
        handoff.child_run("Sub", SPEC, text, size - 1)


def test_a_switch_without_a_store_says_what_a_store_would_save():
    big = RunSnapshot(state={"messages": json.dumps(["m" * 300_000])}, run=4)
    notes: list[str] = []
    handoff.next_run(SPEC, "1", big, PAYLOAD_LIMIT, None, "Agent", notes)
    (note,) = notes
    assert note.startswith("run Agent continues as new carrying 293.") and "GECKO_PAYLOAD_STORE" in note
    with_store: list[str] = []
    handoff.next_run(SPEC, "1", big, PAYLOAD_LIMIT * 128, None, "Agent", with_store)
    small: list[str] = []
    handoff.next_run(SPEC, "1", RunSnapshot(state={"k": "1"}), PAYLOAD_LIMIT, None, "Agent", small)
    assert with_store == [] and small == []


def test_gecko_state_payloads_says_what_a_store_would_save():
    assert handoff.payloads_note(True, PAYLOAD_LIMIT, 1000) == {
        "references": True,
        "store": False,
        "carried": 1000,
        "store_would_save": 2000,
    }
    assert handoff.payloads_note(False, PAYLOAD_LIMIT * 128, 1000)["store_would_save"] == 0
