"""Agents users already have, as nodes and Team members: pydantic-ai, LangChain, OpenAI Agents SDK.

Pure: no temporalio import (the durable pydantic-ai path lives in :mod:`gecko_temporal.integrations.durable_agents`).
Every library is optional and never imported here: an object is recognised by the modules already
loaded (``sys.modules``), so a missing library costs nothing.

:func:`adapt` turns a recognised agent into an :class:`AgentNode`, an async callable the engine
calls like any node; its output is what a user of that library means by "the answer":

- a pydantic-ai ``Agent``: ``(await agent.run(prompt)).output`` (a structured ``output_type``
  arrives downstream as that model: the class is allowed for decoding because the graph names it);
- a LangChain runnable (chat model, ``prompt | model | parser`` chain, compiled LangGraph graph):
  ``await runnable.ainvoke(input)``, an ``AIMessage`` staying an ``AIMessage`` (the message classes
  of ``langchain_core.messages`` are allowed explicitly, see :data:`LANGCHAIN_MESSAGE_TYPES`);
- an OpenAI Agents SDK ``Agent``: ``(await Runner.run(agent, input)).final_output``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from gecko_temporal.core import codec, usage
from gecko_temporal.core.build.adapters import register_adapter

__all__ = ["LANGCHAIN_MESSAGE_TYPES", "AgentNode", "adapt"]

#: The LangChain message classes a run may revive (by name in ``langchain_core.messages``).
LANGCHAIN_MESSAGE_TYPES = (
    "AIMessage",
    "AIMessageChunk",
    "HumanMessage",
    "HumanMessageChunk",
    "SystemMessage",
    "SystemMessageChunk",
    "ToolMessage",
    "ToolMessageChunk",
    "ChatMessage",
    "ChatMessageChunk",
    "FunctionMessage",
    "FunctionMessageChunk",
    "RemoveMessage",
)


class AgentNode:
    """An agent object wrapped as a node: ``await node(data)`` runs the agent once on ``data``."""

    def __init__(self, agent: Any, name: str, run: Callable[[Any], Any], library: str, output_type: Any = None) -> None:
        self.agent = agent
        self.name = name
        self.library = library
        self.output_type = output_type
        self._run = run
        self.__name__ = name  # what add_node(agent) and Team members are named after

    async def __call__(self, data: Any) -> Any:
        return await self._run(data)

    def __repr__(self) -> str:
        return f"<{self.library} agent {self.name!r}>"


def _loaded(module: str) -> Any:
    return sys.modules.get(module)


def _of_library(obj: Any, *prefixes: str) -> bool:
    return any(getattr(c, "__module__", "").split(".")[0] in prefixes for c in type(obj).__mro__)


def prompt_text(data: Any) -> Any:
    """An agent's prompt from a node input: a str as it is, anything else as its JSON text (a model
    as its fields, a Team's results as a list of them)."""
    if data is None or isinstance(data, str):
        return data
    if isinstance(data, BaseModel):
        return data.model_dump_json()
    return json.dumps(codec.plain(codec.encode(data, what="an agent's input")), ensure_ascii=False)


# -- pydantic-ai -------------------------------------------------------------------------------
def _is_pydantic_ai_agent(obj: Any) -> bool:
    module = _loaded("pydantic_ai.agent.abstract") if _loaded("pydantic_ai") else None
    return module is not None and isinstance(obj, module.AbstractAgent)


def _readable_output_name(output_type: Any) -> str | None:
    if isinstance(output_type, type) and output_type not in (str, object) and output_type.__module__ != "builtins":
        return output_type.__name__
    return None


def _pydantic_ai_node(agent: Any) -> AgentNode:
    output_type = getattr(agent, "output_type", None)
    name = agent.name or _readable_output_name(output_type) or "agent"

    async def run(data: Any) -> Any:
        result = await agent.run(prompt_text(data))
        report_calls(pydantic_ai_calls(result))
        return result.output

    allow_types(output_type)
    return AgentNode(agent, name, run, "pydantic-ai", output_type)


# -- LangChain / LangGraph ---------------------------------------------------------------------
def _is_langchain_runnable(obj: Any) -> bool:
    module = _loaded("langchain_core.runnables.base") if _loaded("langchain_core") else None
    return module is not None and isinstance(obj, module.Runnable)


def allow_langchain_messages() -> None:
    """Allow the LangChain message classes for decoding (an explicit list, never a module's contents)."""
    messages = _loaded("langchain_core.messages")
    if messages is None:
        return
    for name in LANGCHAIN_MESSAGE_TYPES:
        cls = getattr(messages, name, None)
        if cls is not None:
            codec.register_type(cls)


def _langchain_node(runnable: Any) -> AgentNode:
    try:
        name = runnable.get_name()
    except Exception:  # a runnable whose name cannot be worked out: its class names it
        name = type(runnable).__name__

    base = _loaded("langchain_core.language_models.base")
    is_model = base is not None and isinstance(runnable, base.BaseLanguageModel)
    message_type = getattr(_loaded("langchain_core.messages"), "BaseMessage", ())

    async def run(data: Any) -> Any:
        # A chat model takes text or a list of messages: one message becomes a list of one, a dict
        # or model from an upstream node its JSON text (a chain or graph takes the dict itself).
        if is_model and isinstance(data, message_type):
            data = [data]  # one message (e.g. the previous model's answer) as a conversation
        elif is_model and isinstance(data, (dict, BaseModel)):
            data = prompt_text(data)
        counting = getattr(_loaded("langchain_core.callbacks"), "get_usage_metadata_callback", None)
        if counting is None:  # an older langchain-core: no usage callback to count with
            return await runnable.ainvoke(data)
        with counting() as counted:  # every model call in a chain or graph, by model
            out = await runnable.ainvoke(data)
        report_calls(
            (u.get("input_tokens", 0), u.get("output_tokens", 0), model)
            for model, u in (counted.usage_metadata or {}).items()
        )
        return out

    allow_langchain_messages()
    output_type = None
    try:
        output_type = runnable.OutputType
    except Exception:  # many runnables cannot say before they run
        pass
    allow_types(output_type)
    return AgentNode(runnable, name or type(runnable).__name__, run, "langchain", output_type)


# -- OpenAI Agents SDK -------------------------------------------------------------------------
def _is_openai_agent(obj: Any) -> bool:
    module = _loaded("agents.agent") if _loaded("agents") else None
    return module is not None and isinstance(obj, getattr(module, "Agent", ()))


def _openai_agents_node(agent: Any) -> AgentNode:
    from agents import Runner  # loaded already: the agent is one of its objects

    async def run(data: Any) -> Any:
        result = await Runner.run(agent, prompt_text(data) or "")
        used: Any = getattr(getattr(result, "context_wrapper", None), "usage", None)
        model = agent.model if isinstance(agent.model, str) else getattr(agent.model, "model", None)
        if getattr(used, "requests", None):  # the run's model calls, summed by the SDK
            report_calls([(used.input_tokens, used.output_tokens, model)])
        return result.final_output

    output_type = getattr(agent, "output_type", None)
    allow_types(output_type)
    return AgentNode(
        agent, agent.name or _readable_output_name(output_type) or "agent", run, "openai-agents", output_type
    )


# -- usage ---------------------------------------------------------------------------------------
def pydantic_ai_calls(result: Any) -> list[tuple[int, int, str | None]]:
    """(input tokens, output tokens, model) of each model response of a pydantic-ai run."""
    calls = []
    try:
        for message in result.new_messages():
            used = getattr(message, "usage", None)
            if type(message).__name__ == "ModelResponse" and used is not None:
                calls.append((used.input_tokens or 0, used.output_tokens or 0, getattr(message, "model_name", None)))
    except Exception:  # another pydantic-ai shape: no usage rather than a failed node
        return []
    return calls


def report_calls(calls: Any) -> None:
    """Report each model call's usage to the running node (``context.report_usage``'s meter)."""
    for ins, outs, model in calls:
        if isinstance(ins, int) and isinstance(outs, int) and (ins or outs):
            usage.report(ins, outs, model=model)


def allow_types(output_type: Any) -> None:
    """Allow decoding to revive the classes an agent's output type names (a model, list[Model], ...)."""
    for cls in codec._classes_in_hint(output_type):
        codec.register_type(cls)


# -- what the engine asks ------------------------------------------------------------------------
def adapt(obj: Any) -> AgentNode | None:
    """``obj`` as an :class:`AgentNode` when it is an agent of a supported library, else None."""
    if isinstance(obj, AgentNode):
        return obj
    if _is_pydantic_ai_agent(obj):
        return _pydantic_ai_node(obj)
    if _is_openai_agent(obj):
        return _openai_agents_node(obj)
    if _is_langchain_runnable(obj):
        return _langchain_node(obj)
    return None


register_adapter(adapt)
