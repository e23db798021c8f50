"""``gecko-temporal store gc``: remove payload-store entries no session needs any more.

An entry is kept while any open session's history refers to it, or any session that ended within
``--retention`` (so ``temporal workflow show`` and replays of recent runs still read), and while it
was written or refreshed within ``--grace`` (a run that is starting has stored its input before its
history shows the reference). Everything else is removed. Safe to run beside workers (see
``store.collect``); S3 stores are collected by a lifecycle rule instead.
"""

from __future__ import annotations

import argparse
import os
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from gecko_temporal.ops.cli_input import UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str, option: str) -> float:
    """Seconds of ``30d``, ``12h``, ``90m`` or ``45s``."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if not match:
        raise UsageError(f"{option} must be a number and a unit (s, m, h or d), like 30d or 12h; got {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="store_command", required=True, metavar="STORE_COMMAND")
    gc = sub.add_parser("gc", help="remove entries that no open or recently ended session refers to")
    gc.add_argument("--store", default=None, metavar="URL", help="file:///dir (default: GECKO_PAYLOAD_STORE)")
    gc.add_argument("--retention", default="30d", help="keep entries of sessions ended this recently (default 30d)")
    gc.add_argument("--grace", default="1h", help="keep entries written or refreshed this recently (default 1h)")
    gc.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    gc.add_argument("--address", default=None, metavar="HOST:PORT", help="Temporal server (default: your settings)")


async def referenced(client: Any, retention: float) -> tuple[set[str], int]:
    """(store keys referenced by every open session and every session ended within ``retention``
    seconds, the number of runs read). Every run of a session counts (continue-as-new)."""
    from gecko_temporal.protocol import WORKFLOW_TYPE
    from gecko_temporal.temporal.store import claims_in

    since = (datetime.now(timezone.utc) - timedelta(seconds=retention)).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = f'WorkflowType = "{WORKFLOW_TYPE}" AND (ExecutionStatus = "Running" OR CloseTime > "{since}")'
    keys: set[str] = set()
    runs = 0
    async for run in client.list_workflows(query):
        history = await client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
        for event in history.events:
            keys |= claims_in(event.SerializeToString())
        runs += 1
    return keys, runs


async def gc(args: argparse.Namespace) -> int:
    from gecko_temporal.temporal.client import connect
    from gecko_temporal.temporal.store import collect

    url = args.store or os.environ.get("GECKO_PAYLOAD_STORE") or ""
    if not url.startswith("file:///"):
        raise UsageError(
            f"store gc collects file stores (file:///dir), got {url or 'none'!r}: name one with --store or "
            "GECKO_PAYLOAD_STORE; for s3:// use a lifecycle rule on the bucket"
        )
    root = url[len("file://") :]
    retention, grace = duration(args.retention, "--retention"), duration(args.grace, "--grace")
    client = await connect(args.address)
    keys, runs = await referenced(client, retention)
    done = collect(root, keys, grace=grace, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(
        f"{root}: {verb} {done.removed} entries ({done.removed_bytes:,} bytes); kept {done.kept} "
        f"({done.kept_bytes:,} bytes) referenced by {runs} runs, {done.recent} unreferenced but newer "
        f"than --grace; {verb} {done.leftovers} temporary files of interrupted writes"
    )
    return 0


COMMANDS = {"store": gc}
