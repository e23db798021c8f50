"""A real, offline agent-style pipeline: read a folder, analyse it in parallel, let a Team of
summarisers race, tighten the draft in a critic loop, and write a Markdown report.

Run it (no server to start: the embedded default brings a Temporal dev server and a worker):

    python examples/report_pipeline.py [FOLDER] [--out report.md]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import sys
import time
from pathlib import Path

from gecko_temporal import ExecutionStrategy, Next, Progress, Team, Workflow, WorkflowContext, step

STOPWORDS = set(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
        "not",
        "no",
        "if",
        "else",
        "return",
        "self",
        "none",
        "true",
        "false",
        "def",
        "class",
        "import",
        "we",
        "our",
        "you",
        "your",
        "can",
        "do",
        "does",
    ]
)


@step(name="Scan")
def scan(job: dict, context: WorkflowContext) -> list[dict]:
    """Read every text file under the folder (sync I/O: runs on the worker's thread pool)."""
    root = Path(job["folder"])
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    context.state["out"] = job.get("out", "report.md")
    files = []
    for path in sorted(root.rglob("*")):
        if path.suffix in {".py", ".md", ".txt", ".toml"} and path.is_file() and ".venv" not in path.parts:
            text = path.read_text(errors="replace")
            files.append({"path": str(path.relative_to(root)), "text": text})
    context.state["file_count"] = len(files)
    return files


def stats(files: list[dict]) -> dict:
    lines = sum(f["text"].count("\n") for f in files)
    words = sum(len(f["text"].split()) for f in files)
    biggest = max(files, key=lambda f: len(f["text"]))["path"] if files else None
    return {"files": len(files), "lines": lines, "words": words, "biggest": biggest}


def outline(files: list[dict]) -> list[str]:
    pattern = re.compile(r"^(#{1,3} .+|class \w+|def \w+|async def \w+)", re.M)
    return [f"{f['path']}: {m.group(0).strip()}" for f in files for m in pattern.finditer(f["text"])][:200]


async def keywords(files: list[dict]) -> list[list]:
    counts: collections.Counter[str] = collections.Counter()
    for f in files:
        counts.update(w for w in re.findall(r"[a-z_]{3,}", f["text"].lower()) if w not in STOPWORDS)
        await asyncio.sleep(0)  # a cooperative async node: yields to the loop between files
    return [list(pair) for pair in counts.most_common(15)]


class ExtractiveSummariser:
    """Picks the first sentence of each Markdown file: slow-ish but prose-friendly."""

    name = "extractive"

    def run(self, analysis: dict) -> str:
        time.sleep(0.3)
        return f"{analysis['stats']['files']} files, {analysis['stats']['words']} words."


class KeywordSummariser:
    name = "keywords"

    async def run(self, analysis: dict) -> str:
        top = ", ".join(word for word, _ in analysis["keywords"][:5])
        return f"{analysis['stats']['files']} files about {top}."


@step(name="Draft")
def draft(parts: dict, context: WorkflowContext) -> str:
    """Write the report; on a critic's request (Next input = max items) write a tighter one."""
    limit = parts if isinstance(parts, int) else context.state.get("max_items", 40)
    context.state["max_items"] = limit
    context.emit(f"drafting with up to {limit} keywords")  # a custom event on the run's stream
    stats_ = context.history["Stats"]
    summary = next(r.result for r in context.history["Summarisers"] if r.is_success)
    lines = [
        f"# Report on {context.input['folder']}",
        "",
        summary,
        "",
        f"- {stats_['files']} files, {stats_['lines']} lines, {stats_['words']} words; biggest: {stats_['biggest']}",
        "",
        "## Top keywords",
        "",
    ]
    lines += [f"- {word} ({count})" for word, count in context.history["Keywords"][:limit]]
    lines += ["", "## Outline", ""] + [f"- {item}" for item in context.history["Outline"][:limit]]
    context.state["drafts"] = context.state.get("drafts", 0) + 1
    return "\n".join(lines)


@step(name="Critic")
def critic(report: str, context: WorkflowContext):
    """Ask for a shorter draft (a Next loop) until the report fits in 40 lines."""
    if report.count("\n") > 40:
        return Next("Draft", input=max(3, context.state["max_items"] // 2))
    return report


@step(name="Write")
def write(report: str, context: WorkflowContext) -> dict:
    out = Path(context.state.get("out") or "report.md")
    out.write_text(report + "\n")
    return {"report": str(out.resolve()), "lines": report.count("\n") + 1, "drafts": context.state["drafts"]}


def combine(parts: dict) -> dict:
    """A fan-in node receives {predecessor: output}; hand the summarisers what they need."""
    return {"stats": parts["Stats"], "keywords": parts["Keywords"]}


def build() -> Workflow:
    wf = Workflow("FolderReport")
    wf.add_node("Scan", scan)
    wf.add_node("Stats", stats).add_node("Outline", outline).add_node("Keywords", keywords)
    wf.add_node("Combine", combine)
    wf.add_node("Summarisers", Team([ExtractiveSummariser(), KeywordSummariser()], ExecutionStrategy.RACE))
    wf.add_node("Draft", draft).add_node("Critic", critic).add_node("Write", write)
    for branch in ("Stats", "Outline", "Keywords"):
        wf.add_edge("Scan", branch)
    wf.add_edge("Stats", "Combine").add_edge("Keywords", "Combine")
    wf.add_edge("Combine", "Summarisers").add_edge("Summarisers", "Draft")
    wf.add_edge("Outline", "Draft")
    wf.add_edge("Draft", "Critic").add_edge("Critic", "Write")
    wf.set_entry_point("Scan")
    return wf


workflow = build()


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=str(Path(__file__).resolve().parent.parent / "gecko_temporal"))
    parser.add_argument("--out", default="report.md")
    args = parser.parse_args(argv)
    began = time.monotonic()
    progress = Progress(total=len(workflow.compile().nodes))
    handle = await workflow.start({"folder": args.folder, "out": args.out}, timeout=120)
    print(f"session {handle.id} started on Temporal; nodes run as activities")
    async for event in handle.stream():  # live progress; ends when the run does
        for line in progress.feed(event):
            print(line, flush=True)
    result = await handle.result()
    state = await handle.state()
    print(f"done in {time.monotonic() - began:.2f} s after {state['step']} node steps: {result}")
    print("completed:", " -> ".join(state["completed"]))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
