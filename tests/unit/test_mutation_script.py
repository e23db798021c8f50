"""scripts/mutation.py's verdict: a mutant that did not run counts against the score, a broken run can
never look like a good one, and --changed selects the right modules and mutants."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "scripts" / "mutation.py"


@pytest.fixture
def mutation(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("gecko_mutation_script", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "MUTANTS", tmp_path)
    return module


def _meta(root: Path, module: str, codes: dict) -> None:
    path = root / f"{module}.meta"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"exit_code_by_key": codes}))


def test_mutants_that_did_not_run_count_against_the_score(mutation, tmp_path, capsys):
    _meta(tmp_path, "gecko_temporal/core/never.py", {"m.x_a__mutmut_1": None, "m.x_a__mutmut_2": None})
    _meta(tmp_path, "gecko_temporal/core/mixed.py", {"a": 1, "b": 36, "c": 0, "d": 33, "e": None, "f": 34})
    _meta(tmp_path, "gecko_temporal/core/empty.py", {})
    assert mutation.score() == 1
    out = capsys.readouterr().out
    assert "| gecko_temporal/core/never.py | 2 | 0 | 0 | 2 | 0.0% |" in out
    assert "| gecko_temporal/core/mixed.py | 6 | 2 | 2 | 2 | 33.3% |" in out
    assert "| gecko_temporal/core/empty.py | 0 | 0 | 0 | 0 | no mutants |" in out
    assert "| all | 8 | 2 | 2 | 4 | 25.0% |" in out
    assert "4 mutants were not run (they count against the score):" in out and "m.x_a__mutmut_1" in out
    assert "below the 90% goal: gecko_temporal/core/mixed.py, gecko_temporal/core/never.py" in out


def test_a_run_with_no_results_or_no_mutants_is_no_pass(mutation, tmp_path, capsys):
    assert mutation.score() == 2
    _meta(tmp_path, "gecko_temporal/core/empty.py", {})
    assert mutation.score() == 0  # nothing to mutate is no failure, and no division by zero
    assert "| all | 0 | 0 | 0 | 0 | no mutants |" in capsys.readouterr().out


def test_a_module_at_the_goal_passes_and_only_the_asked_modules_are_scored(mutation, tmp_path, capsys):
    _meta(tmp_path, "gecko_temporal/core/good.py", {str(i): 1 for i in range(9)} | {"s": 0})
    _meta(tmp_path, "gecko_temporal/core/other.py", {"x": None})
    assert mutation.score(["gecko_temporal/core/good.py"]) == 0
    assert "other.py" not in capsys.readouterr().out


def test_changed_modules_are_matched_like_mutmut_matches_them(mutation):
    patterns = ["gecko_temporal/core/state.py", "gecko_temporal/core/run/*.py"]
    assert mutation.is_pure_module("gecko_temporal/core/run/loop.py", patterns)
    assert not mutation.is_pure_module("gecko_temporal/core/spec.py", patterns)
    assert not mutation.is_pure_module("gecko_temporal/core/run/notes.md", patterns)
    assert "gecko_temporal/core/run/*.py" in mutation.pure_module_patterns()
    state = mutation.mutant_filter("gecko_temporal/core/state.py")
    assert fnmatch.fnmatch("gecko_temporal.core.state.x_merge_layer__mutmut_3", state)
    assert fnmatch.fnmatch("gecko_temporal.core.state.xǁStateViewǁget__mutmut_1", state)
    assert not fnmatch.fnmatch("gecko_temporal.core.statex.x_f__mutmut_1", state)
    assert mutation.mutant_filter("gecko_temporal/core/run/__init__.py") == "gecko_temporal.core.run.x[_ǁ]*"
