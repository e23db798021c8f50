"""Usage, cost and budgets on a real dev server: reports roll up per node and per run, a budget
pauses the run (status "waiting") until a person raises it, on_exceeded="fail" fails it."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata

from gecko_temporal import (
    Budget,
    BudgetExceeded,
    NodeError,
    RetryAfter,
    RetryPolicy,
    Workflow,
    WorkflowContext,
    set_price,
)
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


async def test_usage_of_failed_attempts_counts_retried_rate_limited_or_failed_for_good(session_id):
    """Each attempt reports 100 tokens, then raises: what it spent counts in the run's roll-up."""
    attempts: list[str] = []

    def spend_then(x: str, context: WorkflowContext) -> str:
        outcome = context.node
        attempts.append(outcome)
        context.report_usage(input_tokens=70, output_tokens=30, cost_usd=0.01)
        if outcome == "retried" and attempts.count(outcome) < 3:
            raise ConnectionError("provider hung up")
        if outcome == "limited" and attempts.count(outcome) < 2:
            raise RetryAfter(0.1, "busy")
        if outcome == "fails":
            raise ValueError("bad answer")
        return outcome

    fast = RetryPolicy(initial_interval=0.1, maximum_attempts=3)
    wf = Workflow("FailedAttemptsSpend")
    wf.add_node("retried", spend_then, retry=fast).add_node("limited", spend_then, retry=fast)
    wf.add_node("fails", spend_then, retry=RetryPolicy(initial_interval=0.1, maximum_attempts=2))
    wf.add_edge("retried", "limited").add_edge("limited", "fails").set_entry_point("retried")
    handle = await wf.start("go", session_id=session_id)
    with pytest.raises(NodeError):
        await handle.result()
    assert attempts == ["retried"] * 3 + ["limited"] * 2 + ["fails"] * 2
    usage = (await handle.state())["usage"]
    assert usage["nodes"]["retried"]["tokens"] == 300 and usage["nodes"]["retried"]["calls"] == 3
    assert usage["nodes"]["limited"]["tokens"] == 200  # the rate-limited attempt's 100 too
    assert usage["nodes"]["fails"]["tokens"] == 200  # failed for good: both attempts were spent
    assert usage["total"] == {
        "input_tokens": 490, "output_tokens": 210, "tokens": 700, "cost_usd": 0.07, "calls": 7,
    }  # fmt: skip


async def test_a_team_member_with_its_own_token_limit_reserves_there_and_settles_its_usage(session_id):
    """Only the member with member_limits= goes through the token limit: the limiter counts its
    tokens (settled at what it reported), not its team mate's."""
    from gecko_temporal import Limit, Team
    from gecko_temporal.core.flow_limits import limit_queue
    from gecko_temporal.temporal import limits_tokens
    from gecko_temporal.temporal.client import connect

    def writer(x: str, context: WorkflowContext) -> str:
        context.report_usage(input_tokens=30, output_tokens=12)
        return "draft"

    def critic(x: str, context: WorkflowContext) -> str:
        context.report_usage(input_tokens=500, output_tokens=500)
        return "ok"

    llm = f"llm-{session_id[-8:]}"  # a limit of this test alone (the limiter outlives the run)
    wf = Workflow("MemberTokens", limits=[Limit(llm, tokens_per_minute=100_000, estimate_tokens=5_000)])
    wf.add_node("Panel", Team([writer, critic], member_limits={"writer": llm})).set_entry_point("Panel")
    handle = await wf.start("x", session_id=session_id)
    assert [m.result for m in await handle.result()] == ["draft", "ok"]
    client = await connect()
    queue = (await client.get_workflow_handle(handle.id).describe()).task_queue  # (the embedded worker's)
    use = await limits_tokens.use_of(client, limit_queue(queue, llm))
    assert use == {
        "tokens_per_minute": 100_000,
        "tokens_used": 42,
        "reservations": 0,
        "waiting": 0,
        "declared": 100_000,
        "override": None,
    }
    assert (await handle.state())["usage"]["total"]["tokens"] == 1042


async def test_per_tenant_caps_declared_in_code_are_set_on_the_limits_queue(session_id):
    """Limit(per_tenant={"*": 1, "acme": 3}): every tenant 1 start/s, acme 3 (its weight 3)."""
    from gecko_temporal import Limit
    from gecko_temporal.core.flow_limits import limit_queue
    from gecko_temporal.temporal import limits_admin
    from gecko_temporal.temporal.client import connect

    def call(x: str) -> str:
        return x

    name = f"capped-{session_id[-8:]}"
    wf = Workflow("TenantCaps", limits=[Limit(name, per_second=10, per_tenant={"*": 1, "acme": 3})])
    wf.add_node("call", call, limit=name).set_entry_point("call")
    handle = await wf.start("x", session_id=session_id, tenant="acme")
    assert await handle.result() == "x"
    client = await connect()
    queue = limit_queue((await client.get_workflow_handle(handle.id).describe()).task_queue, name)
    shown = await limits_admin.describe_queue(client, queue)
    assert shown["per_tenant"] == 1 and shown["weights"] == {"acme": 3.0}, shown


async def test_a_subgraph_child_carries_the_tenant_and_what_is_left_of_the_budget_and_reports_its_usage(session_id):
    """Parent budget 2,000 tokens: "pre" spends 1,000, so the child starts with 1,000 left, the
    parent's tenant, and waits on its own budget after its first node; its 2,000 then count as the
    subgraph node's in the parent, which waits on its budget before "post"."""
    from temporalio.common import SearchAttributeKey

    from gecko_temporal.temporal.client import connect, get_handle

    def spend(x: int, context: WorkflowContext) -> int:
        context.report_usage(input_tokens=600, output_tokens=400, cost_usd=0.01)
        return x + 1

    inner = Workflow("BudgetInner").add_node("a", spend).add_node("b", spend)
    inner.add_edge("a", "b").set_entry_point("a")
    outer = Workflow("BudgetOuter", budget=Budget(tokens=2_000))
    outer.add_node("pre", spend).add_node("sub", inner).add_node("post", spend)
    outer.add_edge("pre", "sub").add_edge("sub", "post").set_entry_point("pre")
    handle = await outer.start(0, session_id=session_id, tenant="acme")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not (children := (await handle.state()).get("children") or {}):
        assert loop.time() < deadline
        await asyncio.sleep(0.1)
    child = await get_handle(children["sub"])
    state = await waiting_for_budget(child)
    assert state["completed"] == ["a"] and state["waiting"]["budget"]["payload"]["tokens_limit"] == 1_000
    described = await (await connect()).get_workflow_handle(child.id).describe()
    assert described.typed_search_attributes.get(SearchAttributeKey.for_keyword("GeckoTenant")) == "acme"
    await child.answer("budget", {"tokens": 5_000})
    parent = await waiting_for_budget(handle)  # 1,000 + the child's 2,000 reached the parent's 2,000
    assert parent["completed"] == ["pre", "sub"] and parent["usage"]["nodes"]["sub"]["tokens"] == 2_000
    await handle.answer("budget", {"tokens": 10_000})
    assert await asyncio.wait_for(handle.result(), 60) == 4
    final = (await handle.state())["usage"]
    assert final["total"]["tokens"] == 4_000 and final["total"]["cost_usd"] == 0.04 and final["total"]["calls"] == 4
    # the Temporal UI's current details show the usage and the budget as raised
    metadata = await handle.temporal_handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert metadata.current_details.splitlines()[-1] == (
        "Usage: 4,000 tokens (2,400 in, 1,600 out), $0.0400; budget 10,000 tokens"
    ), metadata.current_details


async def test_a_token_limit_is_raised_at_run_time_from_the_cli_for_every_run(session_id, dev_server, capsys):
    """100 tokens a minute, and the first run spends them: the next would wait for the minute to end.
    `gecko-temporal limits set NAME --tokens-per-minute 1000` raises it in the limiter itself, so the
    second run starts at once; a bad value is refused by name, and `reset` goes back to the code's."""
    import json
    import time

    from gecko_temporal import Limit
    from gecko_temporal.core.flow_limits import limit_queue
    from gecko_temporal.ops.cli import main
    from gecko_temporal.temporal import limits_tokens
    from gecko_temporal.temporal.client import connect

    def call(x: int, context: WorkflowContext) -> int:
        context.report_usage(input_tokens=60, output_tokens=40)
        return x + 1

    name = f"tpm-{session_id[-8:]}"  # a limit of this test alone (its limiter outlives the runs)
    wf = Workflow("RaisedAtRunTime", limits=[Limit(name, tokens_per_minute=100, estimate_tokens=100)])
    wf.add_node("call", call, limit=name).set_entry_point("call")
    first = await wf.start(1, session_id=session_id)
    assert await first.result() == 2
    client = await connect()
    queue = (await client.get_workflow_handle(first.id).describe()).task_queue  # (the embedded worker's)
    cli = ["--address", dev_server.address, "--task-queue", queue]

    async def limits(*args: str) -> int:
        return await asyncio.to_thread(main, ["limits", *args, *cli])

    assert await limits("set", name, "--tokens-per-minute", "0") == 2  # refused before anything changes
    assert "--tokens-per-minute must be a whole number >= 1, got 0" in capsys.readouterr().err
    assert await limits("set", name, "--tokens-per-minute", "1000") == 0
    use = await limits_tokens.use_of(client, limit_queue(queue, name))
    assert use is not None and (use["tokens_per_minute"], use["declared"], use["override"]) == (1000, 100, 1000)
    started = time.monotonic()
    second = await wf.start(2, session_id=f"{session_id}-2")
    assert await second.result() == 3 and time.monotonic() - started < 30  # no wait for the minute
    assert await limits("reset", name) == 0
    use = await limits_tokens.use_of(client, limit_queue(queue, name))
    assert use is not None and (use["tokens_per_minute"], use["override"], use["tokens_used"]) == (100, None, 200)
    capsys.readouterr()
    assert await limits("--limit", name, "--json") == 0
    [row] = json.loads(capsys.readouterr().out)["limits"]
    assert row["limit"] == name and row["tokens"]["tokens_per_minute"] == 100
