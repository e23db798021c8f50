"""What each node's activity receives (core/inputs.py), without a server: the exact NodeInput, the
state and outputs a context node is sent, the once-per-node warning and the error for a payload
Temporal would refuse."""

from __future__ import annotations

import pytest

from gecko_temporal.core.inputs import InputTooLarge, NodeInputs
from gecko_temporal.core.limits import PAYLOAD_LIMIT
from gecko_temporal.core.scheduler import Task
from gecko_temporal.core.spec import NodeInput, NodeSpec, ResumedNodeInput

KB = 1024
BIG = '"' + "x" * (600 * KB) + '"'  # over the 512 KB warning size, under the 2 MB limit
HUGE = '"' + "x" * (3 * 1024 * KB) + '"'  # over Temporal's 2 MB limit


def node(name: str = "N", reads=None, history=None) -> NodeSpec:
    return NodeSpec(
        name=name, kind="step", activity_type=f"P.{name}", predecessors=[], successors=[], reads=reads, history=history
    )


def build(inputs: NodeInputs, spec: NodeSpec, task: Task, *, takes_context=True, state=None, outputs=None, member=None):
    return inputs.build(
        spec,
        task,
        member=member,
        takes_context=takes_context,
        session_id="s-1",
        state={} if state is None else state,
        outputs={} if outputs is None else outputs,
    )


def test_a_context_node_gets_every_field_of_its_input():
    inputs = NodeInputs("G@v1", '{"q":1}')
    state = {"a": "1", "b": '"two"'}
    outputs = {"Fetch": '"page"', "Rank": "[1]"}
    got, warning = build(inputs, node(), Task(node="N", input='"in"', step=7), state=state, outputs=outputs, member=2)
    assert warning is None
    assert type(got) is NodeInput
    assert got == NodeInput(
        graph="G@v1",
        node="N",
        input='"in"',
        session_id="s-1",
        step=7,
        member=2,
        state={"a": "1", "b": '"two"'},
        history={"Fetch": '"page"', "Rank": "[1]"},
        run_input='{"q":1}',
        payload_limit=None,  # Temporal's own limit is not sent: workers assume it
    )


def test_a_node_without_context_gets_its_input_only():
    inputs = NodeInputs("G", '"run input"')
    got, _ = build(
        inputs, node(), Task(node="N", input="3", step=1), takes_context=False, state={"a": "1"}, outputs={"X": "2"}
    )
    assert (got.state, got.history, got.run_input, got.member) == (None, None, None, None)
    assert (got.graph, got.node, got.input, got.session_id, got.step) == ("G", "N", "3", "s-1", 1)


def test_reads_and_history_select_what_is_sent_in_declared_order_skipping_missing_ones():
    inputs = NodeInputs("G", "null")
    state = {"a": "1", "b": "2", "c": "3"}
    outputs = {"X": '"x"', "Y": '"y"', "Z": '"z"'}
    spec = node(reads=["c", "a", "missing"], history=["Z", "nope", "X"])
    got, _ = build(inputs, spec, Task(node="N", input="null", step=1), state=state, outputs=outputs)
    assert list(got.state.items()) == [("c", "3"), ("a", "1")]
    assert list(got.history.items()) == [("Z", '"z"'), ("X", '"x"')]


def test_a_resumed_task_carries_its_answers_as_a_copy():
    inputs = NodeInputs("G", "null")
    answers = ['"yes"', "2"]
    got, _ = build(inputs, node(), Task(node="N", input="null", step=4, resume=answers))
    assert type(got) is ResumedNodeInput
    assert got.resume == ['"yes"', "2"] and got.resume is not answers
    assert (got.node, got.step, got.state) == ("N", 4, {})


def test_a_raised_payload_limit_is_sent_and_used():
    limit = 8 * PAYLOAD_LIMIT  # a payload store raised it
    inputs = NodeInputs("G", "null", payload_limit=limit)
    got, warning = build(inputs, node(), Task(node="N", input=HUGE, step=1))
    assert got.payload_limit == limit
    assert warning is None  # above Temporal's limit nothing warns: the store carries it


def test_a_large_input_warns_once_per_node_and_remembers_whom_it_warned():
    inputs = NodeInputs("G", "null", warned=["Old"])
    assert inputs.warned == {"Old": None}
    _, first = build(inputs, node("N"), Task(node="N", input=BIG, step=1), takes_context=False)
    assert first == (
        'node "N" would receive 608.0 KB per call (its input 600.0 KB), over Temporal\'s 512.0 KB warning size; '
        "keep large data outside the run (write it to a file or a store and pass its path)"
    )
    _, again = build(inputs, node("N"), Task(node="N", input=BIG, step=2), takes_context=False)
    assert again is None
    _, old = build(inputs, node("Old"), Task(node="Old", input=BIG, step=3), takes_context=False)
    assert old is None  # warned in an earlier run of the session
    assert list(inputs.warned) == ["Old", "N"]


def test_an_input_over_the_limit_is_refused_with_the_node_and_the_fix():
    inputs = NodeInputs("G", "null")
    with pytest.raises(InputTooLarge) as info:
        build(inputs, node("Big"), Task(node="Big", input=HUGE, step=1), takes_context=False)
    assert str(info.value) == (
        'node "Big" would receive 3.0 MB per call (its input 3.0 MB), over Temporal\'s 2.0 MB payload limit; '
        "keep large data outside the run (write it to a file or a store and pass its path)"
    )
    assert inputs.warned == {}


def test_state_outputs_and_run_input_count_for_a_context_node():
    inputs = NodeInputs("G", BIG)  # the run's input alone is over the warning size
    _, warning = build(inputs, node(), Task(node="N", input="1", step=1), state={"k": "1"}, outputs={"A": "2"})
    assert warning is not None
    # each entry weighs its JSON string (here 3 B), its name and 4 B of framing
    assert '(its input 3 B; state 8 B: "k" 8 B; node outputs 8 B: "A" 8 B; the run\'s input 600.0 KB)' in warning
    _, quiet = build(NodeInputs("G", BIG), node(), Task(node="N", input="1", step=1), takes_context=False)
    assert quiet is None  # a node without context is not sent the run's input


def test_sizes_are_measured_once_per_layer():
    inputs = NodeInputs("G", "null")
    state = {"k": "1"}
    build(inputs, node("A"), Task(node="A", input="1", step=1), state=state)
    state["k"] = BIG  # changed during the layer: the layer's measure stands until new_layer()
    _, same_layer = build(inputs, node("B"), Task(node="B", input="1", step=1), state=state)
    assert same_layer is None
    inputs.new_layer()
    _, next_layer = build(inputs, node("B"), Task(node="B", input="1", step=2), state=state)
    assert next_layer is not None and 'state 600.0 KB: "k" 600.0 KB' in next_layer


def test_declared_reads_and_history_limit_what_is_measured():
    state = {"big": BIG, "small": "1"}
    outputs = {"Huge": BIG, "Tiny": "2"}
    _, warning = build(
        NodeInputs("G", "null"),
        node(reads=["small"], history=["Tiny"]),
        Task(node="N", input="1", step=1),
        state=state,
        outputs=outputs,
    )
    assert warning is None
    _, warning = build(
        NodeInputs("G", "null"), node(history=["Tiny"]), Task(node="N", input="1", step=1), state=state, outputs=outputs
    )
    assert warning is not None and '"big" 600.0 KB' in warning and "Huge" not in warning
