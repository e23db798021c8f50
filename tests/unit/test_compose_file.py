"""docker-compose.yml describes a real cluster (PostgreSQL, Temporal, UI) and a worker wired to it.

No Docker engine runs here, so the file's structure is checked: it is parsed with a small parser
for the YAML subset the file keeps to (block maps and lists, flow lists, quoted scalars, comments),
which fails loudly on anything outside that subset rather than guessing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _scalar(text: str) -> Any:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        return json.loads(text)  # the file's flow lists are JSON arrays of strings
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _strip_comment(line: str) -> str:
    out, quote = [], None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] == " "):
            break
        out.append(ch)
    return "".join(out).rstrip()


def parse_yaml_subset(text: str) -> Any:
    lines = [(len(l) - len(l.lstrip(" ")), l.strip()) for l in map(_strip_comment, text.splitlines()) if l.strip()]
    for indent, line in lines:
        if "\t" in line or line.startswith(("&", "*", "|", ">")) or re.search(r":\s*[|>&*]", line):
            raise ValueError(f"outside the supported YAML subset: {line!r}")
    pos = 0

    def block(indent: int) -> Any:
        nonlocal pos
        if lines[pos][1].startswith("- "):
            items = []
            while pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("- "):
                items.append(_scalar(lines[pos][1][2:]))
                pos += 1
            return items
        mapping: dict[str, Any] = {}
        while pos < len(lines) and lines[pos][0] == indent:
            key, sep, rest = lines[pos][1].partition(":")
            if not sep:
                raise ValueError(f"expected `key: value`, got {lines[pos][1]!r}")
            if key in mapping:
                raise ValueError(f"duplicate key {key!r}")
            pos += 1
            if rest.strip():
                mapping[key] = _scalar(rest)
            elif pos < len(lines) and lines[pos][0] > indent:
                mapping[key] = block(lines[pos][0])
            else:
                mapping[key] = None
        if pos < len(lines) and lines[pos][0] > indent:
            raise ValueError(f"bad indentation at {lines[pos][1]!r}")
        return mapping

    result = block(0)
    if pos != len(lines):
        raise ValueError(f"unparsed line {lines[pos][1]!r}")
    return result


@pytest.fixture(scope="module")
def compose() -> dict:
    return parse_yaml_subset((ROOT / "docker-compose.yml").read_text())


def test_the_parser_reads_the_subset_and_refuses_the_rest():
    assert parse_yaml_subset("a:\n  b: \"1\"  # note\n  c:\n    - x\n    - 'y'\nd: [\"p\", \"q\"]\n") == \
        {"a": {"b": "1", "c": ["x", "y"]}, "d": ["p", "q"]}
    for bad in ("a: &anchor\n  b: 1\n", "a: |\n  text\n", "a: 1\na: 2\n", "a:\n    b: 1\n  c: 2\n"):
        with pytest.raises(ValueError):
            parse_yaml_subset(bad)


def test_services_form_a_cluster_on_postgresql_with_ui_and_worker(compose):
    services = compose["services"]
    assert set(services) == {"postgresql", "temporal", "temporal-ui", "worker"}
    assert services["postgresql"]["image"].startswith("postgres:")
    temporal = services["temporal"]
    assert temporal["image"].startswith(("temporalio/auto-setup:", "temporalio/server:"))
    assert temporal["environment"]["DB"].startswith("postgres")
    assert temporal["environment"]["POSTGRES_SEEDS"] == "postgresql"  # the postgres service's name
    assert temporal["environment"]["POSTGRES_USER"] == services["postgresql"]["environment"]["POSTGRES_USER"]
    assert temporal["environment"]["POSTGRES_PWD"] == services["postgresql"]["environment"]["POSTGRES_PASSWORD"]
    assert temporal["depends_on"]["postgresql"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgresql"]
    assert "7233:7233" in temporal["ports"]
    ui = services["temporal-ui"]
    assert ui["image"].startswith("temporalio/ui:") and "8080:8080" in ui["ports"]
    assert ui["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_worker_is_built_here_and_wired_to_the_temporal_service(compose):
    worker = compose["services"]["worker"]
    assert worker["build"] == "." and (ROOT / "Dockerfile").is_file()
    assert "temporal" in worker["depends_on"]
    host, _, port = worker["environment"]["TEMPORAL_ADDRESS"].partition(":")
    assert host in compose["services"] and host == "temporal" and port == "7233"
    command = worker["command"]
    assert command[:2] == ["python", "worker.py"]
    assert worker["restart"] in ("unless-stopped", "always", "on-failure")


def test_the_worker_command_names_a_real_workflow_and_valid_options(compose):
    """The compose worker's MODULE:WF loads and its options parse: a typo here would crash-loop."""
    from gecko_temporal.cli import load_workflow
    import argparse
    from gecko_temporal.cli import _add_worker_options

    args = compose["services"]["worker"]["command"][2:]
    parser = argparse.ArgumentParser(prog="worker.py")
    _add_worker_options(parser, dev_command=False)
    parsed = parser.parse_args(args)
    for spec in parsed.workflows:
        assert load_workflow(spec).name
    assert parsed.connect_timeout >= 60  # the server may still be setting up the database


def test_dockerfile_installs_the_project_and_runs_worker_py():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+", text, re.M)
    assert "pip install ." in text
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert cmd and json.loads(cmd.group(1))[:2] == ["python", "worker.py"]  # exec form: signals reach Python
    for copied in re.findall(r"^COPY (\S+)", text, re.M):
        assert (ROOT / copied).exists(), f"Dockerfile copies {copied}, which does not exist"
