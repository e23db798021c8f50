"""What a worker runs for each node: the node table a Workflow compiles, not the builder."""

from __future__ import annotations

import pytest

from gecko_temporal import ExecutionStrategy, GraphError, Team, WaitForInput, Workflow, step
from gecko_temporal.core.build.nodes import NodeCode
from gecko_temporal.temporal.activities import NodeRunner


@step(reads=["k"], history=["A"])
def limited(x, context):
    return x


def _wf() -> Workflow:
    wf = Workflow("Tables")
    wf.add_node("A", lambda x: x).add_node("B", limited)
    wf.add_node("T", Team([lambda x: 1, lambda x: 2], ExecutionStrategy.RACE, input_mapper=lambda d, i: d))
    wf.add_node("W", WaitForInput("ok?"))
    return wf.add_edge("A", "B").add_edge("B", "T").add_edge("T", "W").set_entry_point("A")


def test_each_node_kind_compiles_to_what_a_worker_calls():
    wf = _wf()
    table = wf.node_table()
    assert all(isinstance(code, NodeCode) for code in table.values())
    assert table["B"].callee.context_param == "context"
    assert table["B"].reads == ("k",) and table["B"].history == ("A",)
    assert [m.name for m in table["T"].members] == ["<lambda>", "<lambda>#2"]
    assert table["T"].input_mapper is not None and table["T"].callee is None
    assert table["W"].callee is None and table["W"].members == ()


def test_the_table_is_built_once_and_again_after_a_change():
    wf = _wf()
    assert wf.node_table() is wf.node_table()
    before = wf.node_table()
    wf.add_node("Late", lambda x: x)
    assert "Late" in wf.node_table() and "Late" not in before


def test_a_runner_serves_the_table_and_takes_nodes_added_since_on_registering_again():
    runner = NodeRunner(max_threads=1)
    try:
        wf = _wf()
        assert runner.register(wf) == "Tables"
        wf.add_node("Late", lambda x: x)
        runner.register(wf)
        assert "Late" in runner._tables["Tables"]
        with pytest.raises(GraphError, match='two different workflows are named "Tables"'):
            runner.register(_wf())
    finally:
        runner.shutdown()
