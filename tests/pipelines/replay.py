"""Representative pipelines whose recorded histories tests/test_replay.py replays.

Each covers a different path through GeckoWorkflow: a linear chain, a parallel fan-in with state
writes and a tombstone, a Next loop, a Team RACE (with cancelled losers), outside control (a
gecko_next signal, a WaitForInput answered through the gecko_reply update), a loop long
enough to continue-as-new, a burst of local steps long enough to be broken up by gecko.yield, and one layer of two nodes
writing and deleting the same keys (the merge order and tombstones). Changing these graphs means re-recording (see docs/operations.md).
"""

from __future__ import annotations

import asyncio

from gecko_temporal import END, ExecutionStrategy, Next, Send, Team, WaitForInput, Workflow

linear = Workflow("ReplayLinear")
linear.add_node("a", lambda x: x + 1).add_node("b", lambda x: x * 2).add_node("c", lambda x: f"result={x}")
linear.add_edge("a", "b").add_edge("b", "c").set_entry_point("a")


def start(x, context):
    context.state["seen"] = ["start"]
    context.state["scratch"] = 1
    return x


def left(x, context):
    context.state["left"] = x + 1
    del context.state["scratch"]
    return "L"


async def right(x, context):
    context.state["right"] = x + 2
    return "R"


def join(parts, context):
    return {"parts": parts, "state": dict(context.state)}


fanin = Workflow("ReplayFanIn")
fanin.add_node("start", start).add_node("left", left).add_node("right", right).add_node("join", join)
fanin.add_edge("start", "left").add_edge("start", "right").add_edge("left", "join").add_edge("right", "join")
fanin.set_entry_point("start")


def think(x, context):
    context.state["turns"] = context.state.get("turns", 0) + 1
    if context.state["turns"] < 4:
        return Next(node="think", input=x + [context.state["turns"]])
    return x


loop = Workflow("ReplayLoop")
loop.add_node("think", think).add_node("answer", lambda x: {"answer": x}).add_edge("think", "answer")
loop.set_entry_point("think")

cont = Workflow("ReplayContinueAsNew", steps_per_run=3)
cont.add_node("think", think).add_node("answer", lambda x: {"answer": x}).add_edge("think", "answer")
cont.set_entry_point("think")


async def fast_model(q: str) -> str:
    return f"fast: {q}"


async def slow_model(q: str) -> str:
    await asyncio.sleep(30)
    return f"slow: {q}"


race = Workflow("ReplayRace")
race.add_node("ask", lambda q: q.upper())
race.add_node("models", Team([slow_model, fast_model], strategy=ExecutionStrategy.RACE))
race.add_node("pick", lambda results: [r.result for r in results if r.winner])
race.add_edge("ask", "models").add_edge("models", "pick").set_entry_point("ask")


async def work(x):
    await asyncio.sleep(1.0)  # long enough for the test to signal a jump while it runs
    return x


steer = Workflow("ReplaySteer")
steer.add_node("work", work).add_node("normal", lambda x: "normal path")
steer.add_node("ask", WaitForInput("go on?")).add_node("done", lambda answer: {"answer": answer})
steer.add_edge("work", "normal").add_edge("ask", "done").set_entry_point("work")


def spin(n, context):
    context.state["n"] = n
    return Next("spin", n + 1) if n < 150 else n


burst = Workflow("ReplayLocalBurst", max_steps=200)
burst.add_node("spin", spin, local=True).set_entry_point("spin")


async def slow_branch(x, context):
    await asyncio.sleep(1.0)  # the chain beside it finishes meanwhile (eager scheduling)
    context.state["slow"] = True
    return "slow"


def chain_step(name):
    def run(x, context):
        context.state["chain"] = context.state.get("chain", []) + [name]
        return f"{x}>{name}"

    run.__name__ = name
    return run


eager = Workflow("ReplayEager", scheduling="eager")
eager.add_node("start", lambda x: x).add_node("slow", slow_branch)
eager.add_node("c1", chain_step("c1")).add_node("c2", chain_step("c2")).add_node("join", join)
eager.add_edge("start", "slow").add_edge("start", "c1").add_edge("c1", "c2")
eager.add_edge("slow", "join").add_edge("c2", "join").set_entry_point("start")


def seed(x, context):
    for key in ("shared", "doomed", "contested", "kept"):
        context.state[key] = "seed"
    return x


async def writer_a(x, context):
    await asyncio.sleep(0.5)  # finishes after writer_b: the merge must still apply a first
    context.state["shared"] = "a"
    del context.state["doomed"]
    context.state["contested"] = "a"
    context.state["a_only"] = 1
    return "a"


def writer_b(x, context):
    context.state["shared"] = "b"
    context.state["doomed"] = "revived by b"
    del context.state["contested"]
    return "b"


# One layer of two nodes writing and deleting the same keys: the merge is in node order (a, then b),
# never completion order (b finishes first), and the last layer's conflicts stay in gecko_state.
conflict = Workflow("ReplayConflict")
conflict.add_node("seed", seed).add_node("writer_a", writer_a).add_node("writer_b", writer_b)
conflict.add_edge("seed", "writer_a").add_edge("seed", "writer_b").set_entry_point("seed")


# A subgraph: the middle node runs ReplaySubChild as a child workflow (its own history, recorded too).
def sub_words(text, context):
    context.state["child_saw"] = text
    return text.split()


sub_child = Workflow("ReplaySubChild")
sub_child.add_node("words", sub_words).add_node("count", lambda words: {"words": len(words)})
sub_child.add_edge("words", "count").set_entry_point("words")

subgraph = Workflow("ReplaySubgraph")
subgraph.add_node("load", lambda x: f"{x} world").add_node("Sub", sub_child)
subgraph.add_node("done", lambda out, context: {**out, "state": dict(context.state)})
subgraph.add_edge("load", "Sub").add_edge("Sub", "done").set_entry_point("load")


# Conditional edges, a Send fan-out and reducers (issue 12), in both scheduling modes: a router
# with a path map, a router returning Sends, instances writing reduced keys, a fan-in in Send order.
def _classify(q, context):
    context.state["log"] = ["classify"]
    return {"q": q, "kind": "deep" if "?" in q else "quick"}


def _route(d) -> str:
    return d["kind"]


def _plan(d) -> list:
    return [f"{d['q']}#{i}" for i in range(4)]


def _fan(topics) -> list[Send]:
    return [Send("research", t) for t in topics]


def _research(topic, context):
    context.state["log"] = [f"research {topic[-1]}"]
    context.state["cost"] = 2
    return topic.upper()


def _collect(found, context):
    return {"found": found, "log": context.state["log"], "cost": context.state["cost"]}


def _language(name: str, scheduling: str) -> Workflow:
    wf = Workflow(name, scheduling=scheduling, reducers={"log": "extend", "cost": "add"})
    wf.add_node("classify", _classify).add_node("plan", _plan).add_node("quick", lambda d: d["q"])
    wf.add_node("research", _research).add_node("collect", _collect)
    wf.add_conditional_edges("classify", _route, {"deep": "plan", "quick": "quick", "end": END})
    wf.add_conditional_edges("plan", _fan, ["research"])
    wf.add_edge("research", "collect")
    return wf.set_entry_point("classify")


language = _language("ReplayLanguage", "layered")
language_eager = _language("ReplayLanguageEager", "eager")
language_cont = Workflow("ReplayLanguageContinueAsNew", steps_per_run=2, reducers={"log": "extend", "cost": "add"})
language_cont.add_node("classify", _classify).add_node("plan", _plan).add_node("quick", lambda d: d["q"])
language_cont.add_node("research", _research).add_node("collect", _collect)
language_cont.add_conditional_edges("classify", _route, {"deep": "plan", "quick": "quick", "end": END})
language_cont.add_conditional_edges("plan", _fan, ["research"]).add_edge("research", "collect")
language_cont.set_entry_point("classify")  # continues as new after plan, with four Sends pending


# People in the loop (context.interrupt, update_state, rewind): the paths only new features reach.
def ask_twice(x, context):
    context.state["asked"] = context.state.get("asked", 0) + 1  # void on each interrupt
    first = context.interrupt({"q": "first?", "x": x})
    second = context.interrupt("second?")
    return {"first": first, "second": second}


def summary(answers, context):
    return {**answers, "state": dict(context.state)}


interrupt = Workflow("ReplayInterrupt")
interrupt.add_node("ask", ask_twice).add_node("end", summary).add_edge("ask", "end").set_entry_point("ask")


def r_a(x, context):
    context.state["trail"] = ["a"]
    return x


def r_b(x, context):
    context.state["trail"] = context.state["trail"] + ["b"]
    return x * context.state.get("factor", 1)


def r_end(x, context):
    return {"x": x, "state": dict(context.state)}


rewind = Workflow("ReplayRewind")
rewind.add_node("a", r_a).add_node("b", r_b).add_node("end", r_end).add_edge("a", "b").add_edge("b", "end")
rewind.set_entry_point("a")


def observed_talk(x, context):
    for i in range(3):
        context.emit({"token": i})
    return x + 1


def observed_turn(n, context):
    context.emit(f"turn {n}")
    return Next(node="Turn", input=n + 1) if n < 4 else {"turns": n}


# The event stream's paths (OBSERVE_PATCH): emitted events (signals), a reader's polls (updates),
# search attribute upserts, activity summaries, a wait, a jump and continue-as-new with the stream.
observed = Workflow("ReplayObserved", steps_per_run=3)
observed.add_node("Talk", observed_talk).add_node("Ask", WaitForInput("go on?")).add_node("Turn", observed_turn)
observed.add_edge("Talk", "Ask").add_edge("Ask", "Turn").set_entry_point("Talk")


async def windowed_leaf(x, context):
    context.state["last"] = context.node
    return context.node


# A layer of six nodes through a window of two (issue 15): the patch marker, then starts as slots free.
window = Workflow("ReplayWindow", max_parallel=2)
window.add_node("start", lambda x: x).add_node("join", lambda parts: sorted(parts.values()))
for _i in range(6):
    window.add_node(f"w{_i}", windowed_leaf).add_edge("start", f"w{_i}").add_edge(f"w{_i}", "join")
window.set_entry_point("start")


# Long texts as references and outputs as compositions (issue 22): a loop that appends to a state
# list and passes a growing list on with Next.
def grow(x, context):
    notes = context.state.get("notes", [])
    notes.append("n" * 300 + str(len(notes)))
    context.state["notes"] = notes
    if len(notes) < 3:
        return Next(node="grow", input=x + ["y" * 300])
    return {"x": len(x), "notes": len(notes)}


refs = Workflow("ReplayRefs")
refs.add_node("grow", grow).set_entry_point("grow")


async def held(x):
    await asyncio.sleep(1.5)  # a jump from outside arrives while it runs
    return f"held:{x}"


# An eager run redirected from outside while a node runs (the jump's target starts at once, patch
# gecko-eager-redirect-at-once; recorded before, it started once the running node finished).
eager_jump = Workflow("ReplayEagerJump", scheduling="eager")
eager_jump.add_node("held", held).add_node("after", lambda x: f"after:{x}").add_node("side", lambda x: f"side:{x}")
eager_jump.add_edge("held", "after").set_entry_point("held")
