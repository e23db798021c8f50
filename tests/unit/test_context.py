"""What a node sees as ``context``: the history of node outputs and the context object."""

import pytest

from gecko_temporal.core.context import History, WorkflowContext
from gecko_temporal.core.errors import StateKeyError
from gecko_temporal.core.state import StateView


def test_history_decodes_on_first_read_and_lists_what_ran():
    history = History({"Fetch": '{"rows":[1]}', "Parse": '"ok"'}, node="Report")
    assert list(history) == ["Fetch", "Parse"] and len(history) == 2
    first = history["Fetch"]
    first["rows"].append(2)
    assert history["Fetch"] is first  # decoded once per node
    assert dict(history) == {"Fetch": {"rows": [1, 2]}, "Parse": "ok"}


def test_history_of_a_node_that_has_not_run_names_what_ran():
    with pytest.raises(KeyError, match=r'node "Later" has not run yet in this session \(ran: Fetch, Parse\)'):
        History({"Fetch": "1", "Parse": "2"}, node="N")["Later"]
    with pytest.raises(KeyError, match=r"\(ran: none\)"):
        History({}, node="N")["Later"]


def test_history_limited_to_declared_nodes_names_the_fix():
    history = History({"Fetch": "1"}, node="Report", limited_to=["Fetch", "Other"])
    assert history["Fetch"] == 1
    with pytest.raises(
        StateKeyError,
        match=r'node "Report" read context.history\["Parse"\] but declared history='
        r"\['Fetch', 'Other'\]; add it there or drop history=",
    ):
        history["Parse"]
    with pytest.raises(KeyError, match="has not run yet"):  # declared but not run: an ordinary KeyError
        history["Other"]


def test_workflow_context_carries_what_the_node_is_given():
    state, history = StateView({}, node="N"), History({}, node="N")
    ctx = WorkflowContext(state=state, history=history, input={"q": 1}, session_id="s-1", node="N", step=7, member="m")
    assert (ctx.state, ctx.history, ctx.input, ctx.session_id, ctx.node, ctx.step, ctx.member) == (
        state,
        history,
        {"q": 1},
        "s-1",
        "N",
        7,
        "m",
    )
    assert repr(ctx) == "WorkflowContext(session_id='s-1', node='N', step=7)"
    assert WorkflowContext(state=state, history=history, input=None, session_id="s", node="N", step=1).member is None
