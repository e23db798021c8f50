"""The scenario registry of the LangGraph conformance suite, and how each engine is run and observed.

A scenario is one behaviour from LangGraph's own tests or how-tos, written twice: as a LangGraph
graph and as its gecko-temporal port (the port a user makes from docs/porting-langgraph.md). Both
return what a user would look at (final state, result, layers, the error), and the suite compares
them. A scenario marked ``differs`` is a deliberate difference: the suite asserts what each engine
does, and that the porting guide names it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gecko_temporal import NodeError, Workflow


@dataclass(frozen=True)
class Difference:
    """What each engine does where gecko-temporal deliberately differs."""

    langgraph: Any
    gecko: Any


@dataclass(frozen=True)
class Scenario:
    name: str
    source: str  # where in LangGraph's tests or docs the behaviour comes from
    langgraph: Callable[[], Awaitable[Any]]
    gecko: Callable[[str], Awaitable[Any]]  # given a session id
    differs: Difference | None = None


SCENARIOS: list[Scenario] = []


def scenario(name: str, source: str, differs: Difference | None = None) -> Callable[[type], type]:
    """Register a class with ``async langgraph()`` and ``async gecko(session)`` static methods."""

    def register(cls: type) -> type:
        SCENARIOS.append(Scenario(name, source, cls.langgraph, cls.gecko, differs))  # type: ignore[attr-defined]
        return cls

    return register


# -- gecko-temporal ----------------------------------------------------------------------------
async def gecko_run(wf: Workflow, session: str, state: dict | None = None, input: Any = None, **kw: Any) -> tuple:
    """(result, final state) of one run."""
    handle = await wf.start(input, session_id=session, state=state, **kw)
    result = await handle.result()
    return result, (await handle.state())["state"]


async def gecko_layers(wf: Workflow, session: str, state: dict | None = None) -> tuple[list, dict]:
    """(the layers that ran, each sorted, without the pass-through START node; final state)."""
    handle = await wf.start(None, session_id=session, state=state)
    await handle.result()
    layers = [sorted(n for n in s["nodes"] if n != "__start__") for s in await handle.steps()]
    return [layer for layer in layers if layer], (await handle.state())["state"]


async def gecko_failure(wf: Workflow, session: str, state: dict | None = None, **kw: Any) -> tuple[str, str]:
    """(error type, message) of a run that fails; the error must be a NodeError."""
    try:
        await wf.execute(None, session_id=session, state=state, **kw)
    except NodeError as exc:
        return exc.error_type, exc.error_message
    raise AssertionError("the run did not fail")


# -- LangGraph ---------------------------------------------------------------------------------
async def langgraph_layers(app: Any, state: dict) -> tuple[list, dict]:
    """(the super-steps that ran, each sorted; final state) of a compiled LangGraph graph."""
    steps: dict[int, list[str]] = {}
    final: dict = {}
    async for kind, event in app.astream(state, stream_mode=["debug", "values"]):
        if kind == "debug" and event["type"] == "task":
            steps.setdefault(event["step"], []).append(event["payload"]["name"])
        elif kind == "values":
            final = event
    return [sorted(steps[s]) for s in sorted(steps)], dict(final)
