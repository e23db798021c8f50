"""The README's example pipeline does real work offline and writes its report."""

from pathlib import Path

from gecko_temporal import MemberResult
from gecko_temporal.core.codec import decode
from tests.pipelines import procs

ROOT = Path(__file__).resolve().parents[2]


def load_example():
    return procs.load_example("report_pipeline")


async def test_report_pipeline_writes_a_report_of_a_folder(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "notes.md").write_text("# Durable agents\n\nTemporal keeps agent pipelines alive.\n")
    (folder / "tool.py").write_text("def search(query):\n    return query\n\nclass Planner:\n    pass\n")
    out = tmp_path / "report.md"
    example = load_example()
    handle = await example.build().start({"folder": str(folder), "out": str(out)}, timeout=60)
    result = await handle.result()
    report = out.read_text()
    assert result == {"report": str(out), "lines": report.count("\n"), "drafts": 1}
    assert "- 2 files, 8 lines, 15 words; biggest: tool.py" in report
    assert "tool.py: def search" in report and "notes.md: # Durable agents" in report
    state = await handle.state()
    assert state["state"]["file_count"] == 2
    assert state["completed"][:4] == ["Scan", "Stats", "Outline", "Keywords"]


async def test_report_pipeline_critic_loops_until_the_report_is_short(tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "many.py").write_text("".join(f"def function_{i}():\n    pass\n" for i in range(80)))
    example = load_example()
    handle = await example.build().start({"folder": str(folder), "out": str(tmp_path / "r.md")}, timeout=60)
    result = await handle.result()
    assert result["drafts"] > 1 and result["lines"] <= 41
    state = await handle.state()
    assert state["completed"].count("Critic") == result["drafts"]
    assert state["state"]["max_items"] < 40  # the critic halved the limit on each loop
    # the Team node's output reached Draft as real MemberResult objects with one winner: read the
    # first Draft activity's input from the run's history, as the worker decoded it
    from tests.pipelines.replayed_inputs import activity_inputs

    history = await handle.temporal_handle.fetch_history()  # inputs hold references: replay to read them
    (first_draft, *_) = [plain for kind, plain in await activity_inputs(history) if kind.endswith(".Draft")]
    parts = decode(first_draft["input"])
    assert list(parts) == ["Summarisers", "Outline"]  # a join input, in edge order
    results = parts["Summarisers"]
    assert [type(r) for r in results] == [MemberResult, MemberResult]
    assert [r.winner for r in results].count(True) == 1


async def test_report_pipeline_on_a_missing_folder_names_the_node(tmp_path):
    import pytest

    from gecko_temporal import NodeError

    example = load_example()
    with pytest.raises(NodeError, match='node "Scan" failed: FileNotFoundError: .*missing is not a folder'):
        await example.build().execute({"folder": str(tmp_path / "missing")}, timeout=60)


def test_readme_quick_start_runs_as_a_plain_script(tmp_path):
    """The README's quick-start block, run as a user would: a script, no server started by hand."""
    import json
    import re
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start\n\n```python\n(.*?)```", readme, re.S).group(1)
    script = tmp_path / "quickstart.py"
    script.write_text(block + "\nprint(repr(result))\n")
    for status, expected in (("ok", "{'result': 'pass'}"), ("broken", "Error: Data invalid\nNone")):
        (tmp_path / "data.json").write_text(json.dumps({"status": status}))
        out = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
            env={k: v for k, v in __import__("os").environ.items() if k != "TEMPORAL_ADDRESS"},
        )
        assert out.returncode == 0, f"exit {out.returncode}\nstdout: {out.stdout[-1000:]}\nstderr: {out.stderr[-3000:]}"
        assert out.stdout.strip() == expected
