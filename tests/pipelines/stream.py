"""Pipelines that talk while they run (context.emit), for the event stream and watch tests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from gecko_temporal import ExecutionStrategy, Next, Team, WaitForInput, Workflow


def _wait_for(path: str, bound: float = 60.0) -> None:
    """Block until the test creates ``path``: the test does so only after it saw our first token."""
    deadline = time.monotonic() + bound
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.02)


def talk(gate: str, context) -> str:
    """A sync node streaming tokens; it finishes only once the reader has seen the first."""
    context.emit("tok0")
    _wait_for(gate)
    context.emit("tok1")
    context.emit({"done": True})
    return "said"


async def shout(text: str, context) -> str:
    context.emit({"heard": text})
    return text.upper()


talker = Workflow("StreamTalker")
talker.add_node("Talk", talk).add_node("Shout", shout).add_edge("Talk", "Shout").set_entry_point("Talk")


async def member_a(x, context):
    context.emit(f"a:{context.member}")
    return "a"


def member_b(x, context):
    context.emit(f"b:{context.member}")
    return "b"


team = Workflow("StreamTeam")
team.add_node("Pair", Team([member_a, member_b], ExecutionStrategy.ALL)).set_entry_point("Pair")


def turn(count, context):
    """A loop of emitting steps that continues as new every 3 steps."""
    n = (count or 0) + 1
    context.emit({"turn": n})
    return Next(node="Turn", input=n) if n < 7 else {"turns": n}


looper = Workflow("StreamLoop", steps_per_run=3)
looper.add_node("Turn", turn).set_entry_point("Turn")


def explode(x):
    raise ValueError(f"cannot handle {x!r}")


failing = Workflow("StreamFailing")
failing.add_node("Boom", explode, retries=1).set_entry_point("Boom")


def gated(gate: str, context) -> str:
    context.emit("waiting for the gate")
    _wait_for(gate)
    return "through"


gate = Workflow("StreamGate")
gate.add_node("Gate", gated).add_node("Review", WaitForInput("Ship it?")).add_edge("Gate", "Review")
gate.set_entry_point("Gate")


async def slow(x):
    await asyncio.sleep(30)


def local_talk(x, context):
    context.emit(f"local {context.node}")
    return x + 1


async def local_atalk(x, context):
    context.emit({"async": context.node})
    return x + 1


local = Workflow("StreamLocal")
local.add_node("L1", local_talk, local=True).add_node("L2", local_atalk, local=True).add_edge("L1", "L2")
local.set_entry_point("L1")
