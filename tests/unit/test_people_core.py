"""The pure parts of people-in-the-loop, without a server: context.interrupt(), state edits,
interrupted nodes taking answers, the gecko_rewound signal, and snapshots that stay as they were."""

from __future__ import annotations

import json
import math

import pytest

from gecko_temporal import InterruptError, WaitForInput, Workflow
from gecko_temporal.core.context import NodeInterrupted, WorkflowContext
from gecko_temporal.core.control import EDIT_LIMIT, Arg, RunControl, parse_edit
from gecko_temporal.core.scheduler import Scheduler
from gecko_temporal.core.spec import RunSnapshot
from tests.pipelines.core_parts import node_context


def _context(resume=None, member=None) -> WorkflowContext:
    return node_context(member=member, resume=resume)


def test_the_first_interrupt_raises_with_the_payload_and_answers_come_back_in_order():
    with pytest.raises(NodeInterrupted) as stop:
        _context().interrupt({"draft": "v1"}, timeout=30, default="no")
    assert stop.value.fields == {"payload": '{"draft":"v1"}', "index": 0, "timeout": 30, "default": '"no"'}
    assert not isinstance(stop.value, Exception)  # `except Exception` in a node cannot swallow it
    context = _context(resume=['"yes"'])
    assert context.interrupt("first?") == "yes"
    with pytest.raises(NodeInterrupted) as stop:
        context.interrupt("second?")
    assert stop.value.fields["index"] == 1 and stop.value.fields["payload"] == '"second?"'


@pytest.mark.parametrize(
    "payload, timeout, why",
    [
        ({"score": object()}, None, 'payload of context.interrupt() in node "Review" contains a object'),
        ("x" * (1024 * 1024 + 1), None, "over 1,048,576"),
        ("ok", -1, "positive number of seconds"),
        ("ok", True, "positive number of seconds"),
    ],
)
def test_bad_interrupts_say_what_and_where(payload, timeout, why):
    with pytest.raises(InterruptError, match=why.replace("(", r"\(").replace(")", r"\)")):
        _context().interrupt(payload, timeout=timeout)


def test_nan_and_infinity_travel_in_interrupts_and_edits_as_tagged_floats():
    with pytest.raises(NodeInterrupted) as stop:
        _context().interrupt({"score": math.nan, "max": math.inf})
    payload = stop.value.fields["payload"]
    assert "NaN" not in payload and "Infinity" not in payload  # strict JSON: the Go CLI and UI read it
    assert payload == '{"score":{"__gecko__":"float","data":"nan"},"max":{"__gecko__":"float","data":"inf"}}'
    edit, problem = parse_edit({"a": -math.inf}, None, [], "update")
    assert problem is None and edit["values"] == {"a": '{"__gecko__":"float","data":"-inf"}'}


def test_team_members_cannot_interrupt():
    with pytest.raises(InterruptError, match='node "Review" member "m" called context.interrupt'):
        _context(member="m").interrupt("?")


def _control():
    wf = Workflow("Live")
    wf.add_node("Draft", lambda x: x).add_node("Review", WaitForInput("ok?")).add_node("Check", lambda x, context: x)
    wf.add_edge("Draft", "Review").add_edge("Review", "Check").set_entry_point("Draft")
    spec = wf.compile()
    return RunControl(spec, Scheduler(spec), RunSnapshot())


def test_an_interrupted_function_node_takes_answers_only_while_it_waits():
    control = _control()
    assert control.signal("gecko_answer", [Arg({"node": "Check", "value": 1})]) is not None
    control.start_waiting("Check", "", '"in"', "now", None, payload='{"q":1}', index=0)
    assert control.waiting["Check"]["payload"] == {"q": 1} and control.waiting["Check"]["interrupt"] == 0
    assert control.signal("gecko_answer", [Arg({"node": "Check", "value": 1})]) is None
    assert control.answer_for("Check") == "1"


@pytest.mark.parametrize(
    "values, delete, why",
    [
        ([1], None, '"values" must be a JSON object'),
        ({"a": 1}, "a", '"delete" must be a list'),
        ({"a": 1}, [""], '"delete" must be a list'),
        (None, None, "both are empty"),
        ({"a": 1}, ["a"], "both set and deleted"),
        ({"a": {1: object()}}, None, "contains a object"),
        ({"big": "x" * EDIT_LIMIT}, None, "over 1,048,576"),
        ({"": 1}, None, "non-empty"),
    ],
)
def test_bad_edits_say_why(values, delete, why):
    edit, problem = parse_edit(values, delete, [], "update")
    assert edit is None and why in problem


def test_edits_apply_in_order_with_tombstones_and_are_recorded():
    control = _control()
    control.clock = lambda: "T"
    edit, _ = control.check_edit([Arg({"values": {"a": 1, "b": None}, "delete": ["gone"]})])
    control.queue_edit(edit)
    control.queue_edit(parse_edit(None, ["a"], [], "update")[0])
    state = {"gone": "1", "kept": "2"}
    assert control.apply_edits(state, step=3, layer=2) and control.pending_edits == []
    assert state == {"kept": "2", "b": "null"}
    assert control.edits == [
        {"step": 3, "layer": 2, "time": "T", "source": "update", "set": ["a", "b"], "deleted": ["gone"]},
        {"step": 3, "layer": 2, "time": "T", "source": "update", "set": [], "deleted": ["a"]},
    ]
    assert control.check_edit([Arg({"values": {"a": 1}})], status="completed")[1].startswith("the run has ended")
    assert control.check_edit([Arg({"values": {"a": 1}, "extra": 1})])[1].startswith("unknown field(s) 'extra'")


def test_the_rewound_signal_records_the_origin_redoes_dropped_updates_and_queues_its_edit():
    control = _control()
    control.start_waiting("Review", "ok?", '"x"', "now", None)
    control.reseeded()  # gecko-temporal rewind reset the run, then signals
    assert (
        control.signal(
            "gecko_rewound",
            [
                Arg(
                    {
                        "from_run": "r1",
                        "to_step": 1,
                        "values": {"k": [1]},
                        "redo": [
                            {"update": "gecko_reply", "args": [{"node": "Review", "value": "y"}]},
                            {"update": "gecko_update_state", "args": [{"delete": ["z"]}]},
                        ],
                    }
                )
            ],
        )
        is None
    )
    assert control.rewound_from["run_id"] == "r1" and control.rewound_from["step"] == 1 and control.rewinds == 1
    assert control.answers == {"Review": '"y"'}
    assert [(e["values"], e["delete"], e["source"]) for e in control.pending_edits] == [
        ({}, ["z"], "update"),
        ({"k": "[1]"}, [], "rewind"),
    ]
    assert control.signal("gecko_rewound", [Arg("nope")]) is not None  # malformed: rejected, not raised


def test_snapshots_without_edits_keep_their_exact_keys():
    plain = RunSnapshot().to_plain()
    assert "edits" not in plain and "rewound_from" not in plain
    snap = RunSnapshot(edits=[{"step": 1}], rewound_from={"run_id": "r", "step": 1})
    assert RunSnapshot.from_plain(snap.to_plain()) == snap


def test_a_gecko_rewound_is_taken_only_after_a_reset_the_run_was_not_told_about():
    control = _control()
    control.task_marker = lambda: 5
    entry = control.signal("gecko_rewound", [Arg({})])  # never reset: forged
    assert entry is not None and "no reset it was not told about" in entry["reason"]
    assert control.rewound_from is None and control.rewinds == 0
    control.task_marker = lambda: 8
    control.reseeded()  # a reset in a later workflow task does not take the forged one back
    assert control.rewinds == 0 and len(control.rejected) == 1
    assert "run id" in control.signal("gecko_rewound", [Arg({"from_run": "r" * 2_000_000})])["reason"]
    assert len(json.dumps(control.rejected)) < 3000
    assert control.signal("gecko_rewound", [Arg({"from_run": "r1", "to_step": 2})]) is None
    assert control.rewound_from["run_id"] == "r1" and control.rewinds == 1
    entry = control.signal("gecko_rewound", [Arg({"from_run": "r2", "to_step": 1})])  # told already
    assert entry is not None and "no reset it was not told about" in entry["reason"]
    assert control.rewound_from["run_id"] == "r1"


def test_a_gecko_rewound_must_name_the_run_its_reset_made_where_the_run_asks_for_it():
    control = _control()
    control.rewound_run = lambda: "new-run"  # runs that record the patch
    # A forged gecko_rewound sent before a hand reset, which reapplies it in the reset's own task:
    assert control.signal("gecko_rewound", [Arg({"from_run": "old-run", "to_step": 1})]) is not None
    control.reseeded()  # in the same workflow task: held for the reseed, which refuses it
    (entry,) = control.rejected
    assert '"run" must name the run the reset made (new-run)' in entry["reason"] and "old-run" in entry["request"]
    assert control.rewound_from is None and control.rewinds == 0 and control.reset_untold()
    # sent later in the new run, naming the old one: refused at once
    assert "new-run" in control.signal("gecko_rewound", [Arg({"from_run": "old-run", "run": "old-run"})])["reason"]
    # gecko-temporal rewind's own signal names the run the reset made
    assert control.signal("gecko_rewound", [Arg({"from_run": "old-run", "to_step": 1, "run": "new-run"})]) is None
    assert control.rewound_from["run_id"] == "old-run" and control.rewinds == 1


def test_edits_of_many_keys_are_bounded_and_their_records_list_a_few_names():
    control = _control()
    _, problem = control.check_edit([Arg({"delete": [f"k{i}" for i in range(100_000)]})])
    assert problem and "100,000 keys" in problem
    edit, _ = control.check_edit([Arg({"delete": [f"k{i}" for i in range(5000)]})])
    control.queue_edit(edit)
    assert (
        control.state_answer(
            status="running", state={}, completed=[], running=[], step=0, layer=0, run=1, conflicts=[]
        )["pending_edits"][0]["deleted"][-1]
        == "... and 4,980 more"
    )
    control.apply_edits({}, 1, 1)
    assert len(control.edits[-1]["deleted"]) == 21


def test_a_gecko_rewound_that_came_with_its_reset_in_one_workflow_task_is_taken_at_the_reseed():
    control = _control()
    control.task_marker = lambda: 7
    # The SDK runs the signal's handler before it applies the reseed of the same workflow task.
    assert control.signal("gecko_rewound", [Arg({"from_run": "r1", "to_step": 1, "values": {"k": 1}})]) is not None
    assert control.rewinds == 0 and control.pending_edits == []
    control.reseeded()
    assert control.rewound_from["run_id"] == "r1" and control.rewinds == 1 and control.rejected == []
    assert [e["values"] for e in control.pending_edits] == [{"k": "1"}]
    assert control.signal("gecko_rewound", [Arg({})]) is not None  # forged, before a later reset
    control.task_marker = lambda: 9  # the reset comes in another workflow task: it stays refused
    control.reseeded()
    assert control.rewinds == 1 and len(control.rejected) == 1 and control.resets == 2
    control.reseeded()  # nothing held: only counted
    assert control.rewinds == 1 and control.resets == 3


def test_a_second_answer_before_the_first_is_taken_is_rejected_not_dropped():
    control = _control()
    control.start_waiting("Review", "ok?", '"x"', "now", None)
    assert control.signal("gecko_answer", [Arg({"node": "Review", "value": "first"})]) is None
    entry = control.signal("gecko_answer", [Arg({"node": "Review", "value": "second"})])
    assert entry is not None and "already has an answer" in entry["reason"] and '"second"' in entry["request"]
    assert control.answer_for("Review") == '"first"'


def test_an_answer_naming_its_interrupt_is_refused_for_another_and_a_late_one_is_never_reused():
    control = _control()
    control.start_waiting("Check", "", '"x"', "now", 5, payload='"q1"', index=1)
    entry = control.signal("gecko_answer", [Arg({"node": "Check", "value": 1, "interrupt": 0})])
    assert entry is not None and "interrupt 0" in entry["reason"] and "waits in interrupt 1" in entry["reason"]
    assert control.signal("gecko_answer", [Arg({"node": "Check", "value": 1, "interrupt": 1})]) is None
    control.stop_waiting("Check")  # its timeout won in the same workflow task
    assert "Check" not in control.answers
    assert "ended (timeout)" in control.rejected[-1]["reason"]
    control.start_waiting("Check", "", '"x"', "now", 5, payload='"q2"', index=2)
    assert "Check" not in control.answers  # the next interrupt waits for its own answer


def test_outside_jumps_and_answers_are_bounded_in_count_and_size():
    control = _control()
    for _ in range(100):
        assert control.signal("gecko_next", [Arg({"node": "Draft"})]) is None
    entry = control.signal("gecko_next", [Arg({"node": "Draft"})])
    assert entry is not None and "at most 100" in entry["reason"]
    big = control.signal("gecko_answer", [Arg({"node": "Review", "value": "x" * 2_000_000})])
    assert big is not None and "over 1,048,576" in big["reason"]
