"""Objects that are not plain functions but still make nodes: agents of other libraries.

The builder knows no library. An integration registers an adapter here when it is imported
(``gecko_temporal.integrations.agents`` does for pydantic-ai, LangChain and the OpenAI Agents SDK;
the package facade imports it), and the builder asks the adapters, in registration order, whether an
object is theirs. An adapter returns a callable node (an async callable with a ``__name__``, the
node's name) or None.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

Adapter = Callable[[Any], Any]

_ADAPTERS: list[Adapter] = []


def register_adapter(adapter: Adapter) -> None:
    """Ask ``adapter`` about every object that becomes a node from now on (once per adapter)."""
    if adapter not in _ADAPTERS:
        _ADAPTERS.append(adapter)


def adapt(obj: Any) -> Any:
    """``obj`` as the callable node a registered adapter makes of it, else None."""
    for adapter in _ADAPTERS:
        node = adapter(obj)
        if node is not None:
            return node
    return None


def agent_name(obj: Any) -> str | None:
    """A readable name for an adapted object or a bound method of any object (``llm.ainvoke`` is
    named after ``llm``, not "ainvoke"); None when ``obj`` is neither."""
    if inspect.ismethod(obj) and not isinstance(obj.__self__, type):
        owner = obj.__self__
        adapted = adapt(owner)
        if adapted is not None:
            return str(adapted.__name__)
        name = getattr(owner, "name", None)
        return name if isinstance(name, str) and name else type(owner).__name__
    adapted = adapt(obj)
    return str(adapted.__name__) if adapted is not None else None


def unusable_hint(obj: Any) -> str:
    """What would work instead of ``obj``, for the error that refuses it."""
    methods = [
        m
        for m in (
            "ainvoke",
            "invoke",
            "arun",
            "run_async",
            "run_sync",
            "kickoff",
            "__call__",
            "call",
            "execute",
            "generate",
        )
        if callable(getattr(obj, m, None))
    ]
    hint = " (agents of pydantic-ai, LangChain runnables and OpenAI Agents SDK agents work as they are)"
    if methods:
        hint += (
            f"; this object has {', '.join(m + '()' for m in methods)}: pass the bound method, e.g. "
            f"add_node(name, obj.{methods[0]})"
        )
    return hint + "."
