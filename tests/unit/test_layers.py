"""The package's layers and the direction of its imports (see gecko_temporal/__init__.py).

core/ is pure (no temporalio), the Temporal shell never reaches up into integrations or ops, and
no module reaches into another's private names. Every module is read, so a new one is covered.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import gecko_temporal

PACKAGE = Path(gecko_temporal.__file__).parent
# What each layer may import from the package (besides itself). The facade (__init__) and
# __main__ sit above everything.
ALLOWED = {
    "core": {"core", "protocol"},
    "protocol": set(),
    "temporal": {"core", "protocol", "temporal"},
    "integrations": {"core", "protocol", "temporal", "integrations"},
    "ops": {"core", "protocol", "temporal", "integrations", "ops"},
}


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found.append((".".join(parts), path))
    return found


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import in the file, lazy ones inside functions included."""
    out = []
    tree = ast.parse(path.read_text())
    typing_only = {  # imports under `if TYPE_CHECKING:` are for annotations, not a runtime dependency
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.level:
                raise AssertionError(f"{path}: relative import; write gecko_temporal.… in full")
            out.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((node.lineno, a.name, []) for a in node.names)
    return out


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "gecko_temporal" else None


def test_every_layer_imports_only_the_layers_below_it():
    wrong = []
    for module, path in _modules():
        mine = _layer(module)
        if mine not in ALLOWED:  # the facade and __main__
            continue
        for line, target, _ in _imports(path):
            theirs = _layer(target)
            if theirs is not None and theirs != mine and theirs not in ALLOWED[mine]:
                wrong.append(f"{module}:{line} imports {target}")
    assert wrong == [], "imports against the layering:\n" + "\n".join(wrong)


def test_no_module_imports_a_private_name_of_another():
    found = [
        f"{module}:{line} imports {target}.{name}"
        for module, path in _modules()
        for line, target, names in _imports(path)
        if target.startswith("gecko_temporal")
        for name in names
        if name.startswith("_")
    ]
    assert found == []


def test_the_pure_core_never_imports_temporalio():
    core = [module for module, _ in _modules() if _layer(module) in ("core", "protocol")]
    assert len(core) > 15, core  # the walk found the core
    code = (
        f"import sys, importlib\nfor m in {core!r}: importlib.import_module(m)\n"
        "import gecko_temporal\n"
        "wf = gecko_temporal.Workflow('w').add_node('A', lambda x: x).set_entry_point('A'); wf.compile()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'temporalio'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_builder_starts_runs_through_the_runner_the_facade_registers():
    from gecko_temporal.core.build import runner
    from gecko_temporal.temporal import client

    assert runner.current_runner() is client
