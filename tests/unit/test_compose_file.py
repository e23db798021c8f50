"""docker-compose.yml describes a real cluster (PostgreSQL, Temporal, UI) and N workers wired to it.

No Docker engine runs here, so the file's structure is checked: it is parsed with a small parser
for the YAML subset the file keeps to (block maps and lists, flow lists, quoted scalars, comments),
which fails loudly on anything outside that subset rather than guessing. Where Docker Compose is
installed (``apt-get install docker-compose`` needs no engine for this), ``docker-compose config -q``
validates the file against the Compose schema too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
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
    lines = [(len(t) - len(t.lstrip(" ")), t.strip()) for t in map(_strip_comment, text.splitlines()) if t.strip()]
    for _indent, line in lines:
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
    assert parse_yaml_subset('a:\n  b: "1"  # note\n  c:\n    - x\n    - \'y\'\nd: ["p", "q"]\n') == {
        "a": {"b": "1", "c": ["x", "y"]},
        "d": ["p", "q"],
    }
    for bad in ("a: &anchor\n  b: 1\n", "a: |\n  text\n", "a: 1\na: 2\n", "a:\n    b: 1\n  c: 2\n"):
        with pytest.raises(ValueError):
            parse_yaml_subset(bad)


def test_services_follow_temporals_current_layout(compose):
    """admin-tools sets the schema up, temporalio/server runs, admin-tools adds the namespace (no auto-setup)."""
    services = compose["services"]
    assert set(services) == {
        "postgresql",
        "temporal-admin-tools",
        "temporal",
        "temporal-create-namespace",
        "temporal-ui",
        "worker",
    }
    assert all(not s["image"].startswith("temporalio/auto-setup") for s in services.values() if "image" in s)
    assert services["temporal"]["image"].startswith("temporalio/server:")
    for tool in ("temporal-admin-tools", "temporal-create-namespace"):
        assert services[tool]["image"].startswith("temporalio/admin-tools:")
        # server and admin-tools (schema files, CLI) move together
        assert services[tool]["image"].split(":")[1] == services["temporal"]["image"].split(":")[1]
    assert "update-schema" in services["temporal-admin-tools"]["command"][0]
    assert "namespace create -n default" in services["temporal-create-namespace"]["command"][0]


def test_every_image_tag_is_exact(compose):
    for name, service in compose["services"].items():
        if "image" not in service:
            continue
        image, _, tag = service["image"].partition(":")
        assert tag and tag != "latest", f"{name}: pin an exact tag, not {service['image']!r}"
        parts = tag.split(".")
        assert all(p.isdigit() for p in parts) and len(parts) >= (2 if image == "postgres" else 3), (
            f"{name}: {service['image']!r} is a moving tag; pin a full version"
        )


def test_services_start_in_order_and_wait_for_health(compose):
    services = compose["services"]

    def needs(service: str) -> dict:
        return {dep: cond["condition"] for dep, cond in services[service]["depends_on"].items()}

    assert needs("temporal-admin-tools") == {"postgresql": "service_healthy"}
    assert needs("temporal") == {"temporal-admin-tools": "service_completed_successfully"}
    assert needs("temporal-create-namespace") == {"temporal": "service_healthy"}
    assert needs("temporal-ui") == {"temporal": "service_healthy"}
    # workers start once the server is healthy and the namespace exists, not merely once it was started
    assert needs("worker") == {
        "temporal": "service_healthy",
        "temporal-create-namespace": "service_completed_successfully",
    }
    for name in ("postgresql", "temporal"):
        assert "healthcheck" in services[name]


def test_the_server_runs_on_the_postgres_service(compose):
    services = compose["services"]
    temporal, pg = services["temporal"], services["postgresql"]
    assert pg["image"].startswith("postgres:")
    assert temporal["environment"]["DB"].startswith("postgres")
    assert temporal["environment"]["POSTGRES_SEEDS"] == "postgresql"  # the postgres service's name
    assert temporal["environment"]["POSTGRES_USER"] == pg["environment"]["POSTGRES_USER"]
    assert temporal["environment"]["POSTGRES_PWD"] == pg["environment"]["POSTGRES_PASSWORD"]
    assert temporal["environment"]["BIND_ON_IP"] == "0.0.0.0"  # else other containers cannot reach it
    assert "7233:7233" in temporal["ports"]
    ui = services["temporal-ui"]
    assert ui["image"].startswith("temporalio/ui:") and "8080:8080" in ui["ports"]
    assert ui["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_worker_is_built_here_wired_to_the_server_and_scales(compose):
    worker = compose["services"]["worker"]
    assert worker["build"] == "." and (ROOT / "Dockerfile").is_file()
    host, _, port = worker["environment"]["TEMPORAL_ADDRESS"].partition(":")
    assert host in compose["services"] and host == "temporal" and port == "7233"
    command = worker["command"]
    assert command[:2] == ["python", "worker.py"]
    assert worker["restart"] in ("unless-stopped", "always", "on-failure")
    # `--scale worker=N` needs N containers: no fixed name, no host port to fight over
    assert "container_name" not in worker and "ports" not in worker


@pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose is not installed (apt-get install docker-compose; no engine needed)",
)
def test_docker_compose_accepts_the_file():
    proc = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    scaled = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--services"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert set(scaled.stdout.split()) == set(parse_yaml_subset((ROOT / "docker-compose.yml").read_text())["services"])


def test_the_worker_command_names_a_real_workflow_and_valid_options(compose):
    """The compose worker's MODULE:WF loads and its options parse: a typo here would crash-loop."""
    import argparse

    from gecko_temporal.ops.cli import _add_worker_options, load_workflow

    args = compose["services"]["worker"]["command"][2:]
    parser = argparse.ArgumentParser(prog="worker.py")
    _add_worker_options(parser, dev_command=False)
    parsed = parser.parse_args(args)
    for spec in parsed.workflows:
        assert load_workflow(spec).name
    assert parsed.connect_timeout >= 60  # the server may still be setting up the database


def test_dockerfile_installs_the_project_and_runs_worker_py():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+\.\d+-slim$", text, re.M)  # an exact Python, not a moving 3.12
    assert "pip install ." in text
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert cmd and json.loads(cmd.group(1))[:2] == ["python", "worker.py"]  # exec form: signals reach Python
    for copied in re.findall(r"^COPY (\S+)", text, re.M):
        assert (ROOT / copied).exists(), f"Dockerfile copies {copied}, which does not exist"
