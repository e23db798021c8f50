"""Node caching across runs (``cache=CachePolicy(...)``) with workers as separate processes.

The pipeline is written to a temporary module so a test can change a node's code and start a new
worker on it; each node execution appends ``<node> <pid>`` to GECKO_CACHE_LOG, so runs are counted.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import uuid
from collections import Counter

import pytest

from tests.pipelines.procs import ROOT, Procs, run_gecko

pytestmark = [pytest.mark.slow]

SOURCE = """
import os
from gecko_temporal import CachePolicy, Workflow, step


def log(event):
    with open(os.environ["GECKO_CACHE_LOG"], "a") as f:
        f.write(f"{event} {os.getpid()}\\n")


@step(name="Embed", cache=CachePolicy(ttl=3600))
def embed(text: str) -> dict:
    log("Embed")
    return {"vector": [len(text), VERSION], "text": text}


@step(name="Label", cache=CachePolicy(ttl=3600), reads=["lang"])
def label(embedded: dict, context) -> str:
    log("Label")
    context.state["labelled"] = True
    return f"{context.state['lang']}:{embedded['text']}:{embedded['vector']}"


wf = Workflow("CacheEmbed")
wf.add_node(embed).add_node(label).add_edge("Embed", "Label").set_entry_point("Embed")


@step(name="Short", cache=CachePolicy(ttl=1))
def short(text: str) -> str:
    log("Short")
    return text.upper()


ttl_wf = Workflow("CacheTTL")
ttl_wf.add_node(short).set_entry_point("Short")
"""


def _write_module(folder, version: int) -> None:
    (folder / "cache_pipeline.py").write_text(SOURCE.replace("VERSION", str(version)))


def _load(folder):
    spec = importlib.util.spec_from_file_location(
        f"cache_pipeline_{uuid.uuid4().hex[:6]}", folder / "cache_pipeline.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _counts(log) -> Counter:
    try:
        return Counter(line.split()[0] for line in log.read_text().splitlines() if line.strip())
    except FileNotFoundError:
        return Counter()


@pytest.fixture
def setup(dev_server, tmp_path, monkeypatch):
    code = tmp_path / "code"
    code.mkdir()
    _write_module(code, 1)
    queue = f"cache-{uuid.uuid4().hex[:6]}"
    log = tmp_path / "cache.log"
    env = {"GECKO_CACHE_LOG": str(log), "GECKO_PAYLOAD_STORE": f"file://{tmp_path / 'store'}", "PYTHONPATH": str(code)}
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_server.address)
    monkeypatch.setenv("GECKO_TASK_QUEUE", queue)
    procs = Procs(tmp_path)

    def worker():
        proc = procs.worker(
            "cache_pipeline:wf",
            "cache_pipeline:ttl_wf",
            "--address",
            dev_server.address,
            "--task-queue",
            queue,
            env=env,
        )
        proc.wait_for("worker ready", 120)
        return proc

    yield code, log, env, worker
    procs.close()


async def _run(wf, text: str, lang: str = "en"):
    handle = await wf.start(text, session_id=f"cache-{uuid.uuid4().hex[:8]}", state={"lang": lang})
    result = await asyncio.wait_for(handle.result(), 120)  # a failure bound only
    return result, await handle.state(), handle


async def test_a_cached_node_runs_once_per_input_and_code_until_cleared(setup):
    code, log, env, worker = setup
    pipeline = _load(code)
    first = await asyncio.to_thread(worker)

    result, state, _ = await _run(pipeline.wf, "duck")
    assert result == "en:duck:[4, 1]" and _counts(log) == Counter({"Embed": 1, "Label": 1})
    assert "cached" not in state

    # Another session, the same input and state: both outputs come from the cache, functions not run.
    again, state, handle = await _run(pipeline.wf, "duck")
    assert again == result and _counts(log) == Counter({"Embed": 1, "Label": 1})
    assert state["cached"] == ["Embed", "Label"] and state["state"]["labelled"] is True  # its writes too
    events = []
    async for event in handle.stream():
        events.append((event.type, event.node))
    assert ("cached", "Embed") in events and ("cached", "Label") in events

    # A changed input runs both again; a changed declared state key runs only the node that reads it.
    await _run(pipeline.wf, "goose")
    assert _counts(log) == Counter({"Embed": 2, "Label": 2})
    fr, _, _ = await _run(pipeline.wf, "duck", lang="fr")
    assert fr == "fr:duck:[4, 1]" and _counts(log) == Counter({"Embed": 2, "Label": 3})

    # Changed code (a new worker on an edited module): Embed runs again, and so does Label, whose
    # input changed with it.
    first.stop()
    _write_module(code, 2)
    await asyncio.to_thread(worker)
    v2, _, _ = await _run(pipeline.wf, "duck")
    assert v2 == "en:duck:[4, 2]" and _counts(log) == Counter({"Embed": 3, "Label": 4})

    # `gecko-temporal cache clear --node Embed` empties that node's entries only.
    cleared = run_gecko("cache", "clear", "--node", "Embed", env={**env, "PATH": ""})
    assert cleared.returncode == 0, cleared.stderr
    assert '"cleared": 3' in cleared.stdout  # duck v1, goose, duck v2
    await _run(pipeline.wf, "duck")
    assert _counts(log) == Counter({"Embed": 4, "Label": 4})


async def test_an_expired_entry_runs_the_node_again(setup):
    code, log, _, worker = setup
    pipeline = _load(code)
    await asyncio.to_thread(worker)
    await _run(pipeline.ttl_wf, "quack")
    assert _counts(log) == Counter({"Short": 1})
    await asyncio.sleep(1.5)  # past the entry's 1 s TTL (not a timing assert: any longer wait is the same)
    result, state, _ = await _run(pipeline.ttl_wf, "quack")
    assert result == "QUACK" and _counts(log) == Counter({"Short": 2}) and "cached" not in state


@pytest.mark.long  # a benchmark smoke run (its own dev server, 1 s nodes)
def test_effects_benchmark_measures_the_window_and_a_hit(tmp_path):
    """Smoke run of benchmarks/effects_benchmark.py (its own embedded server): every case reported;
    no timing is asserted, speed claims live in the benchmark's output."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "effects_benchmark.py"), "--quick", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert [(r["codec"], r["result"]) for r in result["window"]] == [
        ("plain", "small result"),
        ("plain", "100 KB result"),
        ("AES-GCM", "small result"),
        ("AES-GCM", "100 KB result"),
    ]
    assert [r["case"] for r in result["cache"]] == ["uncached 1 s node", "cache miss", "cache hit", "no-op node"]
    assert all(r["median_ms"] > 0 for r in result["cache"] + result["window"])
