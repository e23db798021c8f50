"""``gecko-temporal cache clear [--node N]``: empty the node cache kept beside the payload store."""

from __future__ import annotations

import argparse
import json

from gecko_temporal.core.cache import CACHE, node_group
from gecko_temporal.core.errors import GeckoError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="cache_action", required=True, metavar="ACTION")
    clear = actions.add_parser("clear", help="delete cached node outputs (every node's, or one node's)")
    clear.add_argument("--node", default=None, metavar="N", help="only this node's entries (in every pipeline)")


def run(args: argparse.Namespace) -> int:
    from gecko_temporal.temporal.effects import records_of
    from gecko_temporal.temporal.store import payload_store

    records = records_of(payload_store())
    if records is None:
        raise GeckoError(
            "no payload store is configured, so there is no node cache to clear: set GECKO_PAYLOAD_STORE "
            "(file:///dir or s3://bucket/prefix) as the workers have it (the embedded default's cache is "
            "a temporary directory of its process, gone when it exits)"
        )
    cleared = records.clear(CACHE, node_group(args.node) if args.node else None)
    print(json.dumps({"cleared": cleared, "node": args.node, "store": records.root}))
    return 0
