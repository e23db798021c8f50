"""``gecko-temporal promote``, ``versions`` and ``check-upgrade``: deploying new code while runs go on.

    gecko-temporal check-upgrade OLD NEW [--json]         OLD/NEW: MODULE:WF or path/to/file.py:WF
    gecko-temporal promote BUILD_ID [--deployment NAME] [--ramp PCT]
    gecko-temporal versions [--deployment NAME] [--json]
    gecko-temporal migrate SESSION --to BUILD_ID --workflow MODULE:WF [--from-step N] [--force]

``check-upgrade`` needs no server: it compares two versions of one graph and exits 1 when a change
is unsafe for runs in flight. The deploy workflow they serve is in docs/operations.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from gecko_temporal.core.build.graph import Workflow
from gecko_temporal.core.versions import check_upgrade, workflow_fingerprint
from gecko_temporal.ops.cli_input import UsageError, load_workflow


def add_commands(sub: Any) -> None:
    """The parsers of this module's commands (registered by ops/cli.py)."""
    p = sub.add_parser("check-upgrade", help="classify every difference between two versions of a graph")
    p.add_argument("old", metavar="OLD", help="the deployed version: MODULE:WF or path/to/file.py:WF")
    p.add_argument("new", metavar="NEW", help="the version to deploy: MODULE:WF or path/to/file.py:WF")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = sub.add_parser("promote", help="make a Worker Deployment version the one new runs start on")
    p.add_argument("build_id", metavar="BUILD_ID")
    p.add_argument("--deployment", help="the Worker Deployment (default: the task queue, GECKO_TASK_QUEUE)")
    p.add_argument("--ramp", type=float, default=None, metavar="PCT", help="send only PCT%% of new runs to it")
    p.add_argument("--address", help="Temporal server HOST:PORT (default: TEMPORAL_ADDRESS)")

    p = sub.add_parser("migrate", help="move one running session to another version's code (checked first)")
    p.add_argument("session", metavar="SESSION")
    p.add_argument("--to", required=True, metavar="BUILD_ID", help="the version to move it to")
    p.add_argument(
        "--workflow", metavar="MODULE:WF", help="that version's Workflow (MODULE:WF or file.py:WF), for the check"
    )
    p.add_argument("--from-step", type=int, default=None, metavar="N", help="rewind to step N first (see steps)")
    p.add_argument("--deployment", help="the Worker Deployment (default: the task queue, GECKO_TASK_QUEUE)")
    p.add_argument("--force", action="store_true", help="move it even when the check says it is unsafe")
    p.add_argument("--address", help="Temporal server HOST:PORT (default: TEMPORAL_ADDRESS)")

    p = sub.add_parser("versions", help="each Worker Deployment version with its open, running and waiting runs")
    p.add_argument("--deployment", help="only this Worker Deployment")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--address", help="Temporal server HOST:PORT (default: TEMPORAL_ADDRESS)")


def load_any(spec: str) -> Workflow:
    """A Workflow named ``MODULE:WF``, or ``path/to/file.py:WF`` (so two versions of one module,
    e.g. a checkout of the deployed release beside the working tree, can be compared)."""
    path, sep, attr = spec.rpartition(":")
    if not (sep and path.endswith(".py")):
        return load_workflow(spec)
    file = Path(path)
    if not file.is_file():
        raise UsageError(f'"{spec}": no file {path}')
    name = f"gecko_check_{abs(hash(str(file.resolve())))}"
    loader = importlib.util.spec_from_file_location(name, file)
    if loader is None or loader.loader is None:
        raise UsageError(f'"{spec}": cannot import {path}')
    module = importlib.util.module_from_spec(loader)
    sys.modules[name] = module
    try:
        loader.loader.exec_module(module)
    except Exception as exc:
        raise UsageError(f'"{spec}": importing {path} failed: {type(exc).__name__}: {exc}') from None
    wf = getattr(module, attr, None)
    if not isinstance(wf, Workflow):
        raise UsageError(f'"{spec}": {path} has no Workflow named "{attr}"')
    return wf


async def _check_upgrade(args: argparse.Namespace) -> int:
    old, new = load_any(args.old), load_any(args.new)
    if old.name != new.name:
        print(f'note: comparing workflow "{old.name}" with "{new.name}" (runs carry the name)', file=sys.stderr)
    old_spec, old_fp = workflow_fingerprint(old)
    new_spec, new_fp = workflow_fingerprint(new)
    report = check_upgrade(old_fp, new_fp, old_spec, new_spec)
    print(json.dumps(report.to_plain(), indent=2) if args.json else report.text())
    return 0 if report.safe else 1


async def _promote(args: argparse.Namespace) -> int:
    from gecko_temporal.temporal.client import connect
    from gecko_temporal.temporal.deployments import promote

    print(await promote(await connect(), args.build_id, args.deployment, args.ramp))
    return 0


async def _versions(args: argparse.Namespace) -> int:
    from gecko_temporal.temporal.client import connect
    from gecko_temporal.temporal.deployments import version_rows

    rows = await version_rows(await connect(), args.deployment)
    if args.json:
        print(json.dumps([r.to_plain() for r in rows], indent=2))
        return 0
    if not rows:
        print("no Worker Deployment versions (start a worker with --build-id ID)")
        return 0
    width = max(len(r.deployment) for r in rows)
    bid = max(len(r.build_id) for r in rows)
    print(f"{'DEPLOYMENT':<{width}}  {'VERSION':<{bid}}  {'STATUS':<9} {'OPEN':>5} {'RUNNING':>7} {'WAITING':>7}")
    for r in rows:
        print(f"{r.deployment:<{width}}  {r.build_id:<{bid}}  {r.status:<9} {r.open:>5} {r.running:>7} {r.waiting:>7}")
    return 0


async def _migrate(args: argparse.Namespace) -> int:
    from gecko_temporal.temporal.client import connect
    from gecko_temporal.temporal.deployments import migrate, run_graph

    client = await connect()
    if args.workflow:
        new_spec = load_any(args.workflow).compile()
    elif args.force:  # no code to check against: the run's own graph, so nothing differs
        new_spec = (await run_graph(client, args.session))[0]
    else:
        raise UsageError(
            "migrate needs the new version's Workflow to check the move: add --workflow MODULE:WF "
            "(the code version --to serves), or --force to move without a check"
        )
    moved = await migrate(
        client,
        args.session,
        args.to,
        new_spec,
        deployment=args.deployment,
        from_step=args.from_step,
        force=args.force,
    )
    where = (
        f" from step {args.from_step} (run {moved['run_id']}; the old run is kept)"
        if args.from_step is not None
        else ""
    )
    print(f"session {args.session} moves to version {args.to} of {moved['deployment']}{where}")
    for line in moved["changes"]:
        print("  " + line)
    return 0


COMMANDS = {"check-upgrade": _check_upgrade, "promote": _promote, "versions": _versions, "migrate": _migrate}
