"""Usage, cost and budgets on a real dev server: reports roll up per node and per run, a budget
pauses the run (status "waiting") until a person raises it, on_exceeded="fail" fails it."""

from __future__ import annotations

import asyncio

import pytest

from gecko_temporal import Budget, BudgetExceeded, Workflow, WorkflowContext, set_price
from tests.pipelines.procs import flood

pytestmark = pytest.mark.asyncio


def spender(name: str = "Spender", **options) -> Workflow:
    """Three nodes in a row; each reports 1,000 tokens of a model priced at $1/$2 per million."""
    set_price("test-model", 1.0, 2.0)  # the in-process worker prices it too

    def call(x: int, context: WorkflowContext) -> int:
        context.report_usage(input_tokens=600, output_tokens=400, model="test-model")
        return x + 1

    def unpriced(x: int, context: WorkflowContext) -> int:
        context.report_usage(input_tokens=10, output_tokens=5, model="nobody-knows-this-model")
        return x + 1

    wf = Workflow(name, **options)
    wf.add_node("first", call).add_node("second", call).add_node("third", unpriced)
    wf.add_edge("first", "second").add_edge("second", "third").set_entry_point("first")
    return wf


async def waiting_for_budget(handle, within: float = 60.0) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        state = await handle.state()
        if "budget" in state["waiting"]:
            return state
        assert state["status"] in ("running", "waiting"), state["status"]
        assert loop.time() < deadline, state
        await asyncio.sleep(0.2)


async def test_usage_rolls_up_per_node_and_run(session_id):
    wf = spender("UsageRollup")
    handle = await wf.start(0, session_id=session_id)
    assert await handle.result() == 3
    usage = (await handle.state())["usage"]
    assert usage["nodes"]["first"] == {
        "input_tokens": 600, "output_tokens": 400, "tokens": 1000, "cost_usd": 0.0014, "calls": 1,
    }  # fmt: skip
    # no price for the third node's model: its tokens count, its cost is not invented
    assert usage["nodes"]["third"]["cost_usd"] == 0 and usage["nodes"]["third"]["unpriced"] == 1
    total = usage["total"]
    assert total["tokens"] == 2015 and total["cost_usd"] == pytest.approx(0.0028) and total["unpriced"] == 1
    events = []
    async for e in handle.stream():
        events.append(e)
        if e.type == "run_finished":
            break
    reported = [e for e in events if e.type == "usage"]
    assert [e.node for e in reported] == ["first", "second", "third"]
    assert reported[-1].data["run"]["tokens"] == 2015


async def test_budget_pauses_then_answer_raises_it(session_id):
    wf = spender("BudgetPause", budget=Budget(tokens=1500))
    handle = await wf.start(0, session_id=session_id)
    state = await waiting_for_budget(handle)
    # two nodes ran (2,000 tokens >= 1,500): the third never started
    assert state["status"] == "waiting" and state["completed"] == ["first", "second"]
    figures = state["waiting"]["budget"]["payload"]
    assert figures["tokens"] == 2000 and figures["tokens_limit"] == 1500 and figures["reached"] == ["tokens"]
    assert state["usage"]["budget"]["tokens"] == 1500
    await handle.answer("budget", {"tokens": 10_000})
    assert await handle.result() == 3
    final = await handle.state()
    assert final["usage"]["budget"]["tokens"] == 10_000 and final["usage"]["total"]["tokens"] == 2015


async def test_execute_budget_overrides_and_fail_mode_fails(session_id):
    wf = spender("BudgetFail", budget=Budget(tokens=10**9))
    with pytest.raises(
        BudgetExceeded, match=r'used its budget \(on_exceeded="fail"\): 1000 tokens, \$0.0014 of \$0.001;'
    ):
        await wf.execute(0, session_id=session_id, budget=Budget(cost_usd=0.001, on_exceeded="fail"), timeout=60)


async def test_budget_stop_answer_ends_the_run(session_id):
    wf = spender("BudgetStop", budget={"tokens": 500})
    handle = await wf.start(0, session_id=session_id)
    await waiting_for_budget(handle)
    await handle.answer("budget", "stop")
    with pytest.raises(BudgetExceeded, match="a person answered stop"):
        await handle.result()


async def test_a_flooded_budget_wait_moves_to_a_new_run_and_still_takes_its_answer(session_id, dev_server, tmp_path):
    # Signals land in history before the run can refuse them: a budget wait flooded with 9 MB of them
    # continues as new (usage and the raised budget travel along) instead of growing one history.
    wf = spender("BudgetFlood", budget=Budget(tokens=1500))
    handle = await wf.start(0, session_id=session_id)
    await waiting_for_budget(handle)
    await flood(dev_server, session_id, tmp_path)  # the real CLI: raw payloads in history
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not ((state := await handle.state())["run"] >= 2 and "budget" in state["waiting"]):
        assert loop.time() < deadline, (state["run"], state["status"], state["waiting"], state["rejected"][-1:])
        await asyncio.sleep(0.2)
    assert state["usage"]["total"]["tokens"] == 2000 and state["completed"][-2:] == ["first", "second"]
    await handle.answer("budget", {"tokens": 10_000})
    assert await handle.result() == 3
