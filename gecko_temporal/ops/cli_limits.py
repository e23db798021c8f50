"""``gecko-temporal limits``: show named limits and their live use, change them, weigh tenants.

A token limit's use (TOKENS/MIN: tokens held in the last minute / the limit) is its limiter
workflow's (``temporal/limits_tokens.py``); ``--json`` adds its open reservations and waiters.

    gecko-temporal limits [--workflow MODULE:WF ...] [--limit NAME ...] [--json]
    gecko-temporal limits set NAME [--per-second X] [--per-tenant Y] [--tokens-per-minute N]
    gecko-temporal limits reset NAME
    gecko-temporal limits weight TENANT=W [...] [--unset TENANT ...] [--limit NAME ...]

Every change is the task queue's config on the Temporal server (``temporal/limits_admin.py``): it
holds for every run and worker at once, and until ``reset``. A limit lives on the task queue
``<queue>.limit.<name>`` beside the workers' queue (``--task-queue``, ``GECKO_TASK_QUEUE`` or the
default, as for ``worker``).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from gecko_temporal.core.flow_limits import Limit, limit_queue, parse_weights
from gecko_temporal.ops.cli_input import UsageError, load_workflow

ACTIONS = ("show", "set", "reset", "weight")


def add_parser(sub: Any) -> None:
    """Register ``limits`` on the CLI's subcommands."""
    p = sub.add_parser("limits", help="show named limits and their live use; set rates, reset them, weigh tenants")
    p.add_argument("action", nargs="?", default="show", choices=ACTIONS, help="show (default), set, reset, weight")
    p.add_argument("items", nargs="*", metavar="ARG", help="set/reset: the limit's NAME; weight: TENANT=WEIGHT ...")
    p.add_argument("--workflow", action="append", default=[], metavar="MODULE:WF", help="show the limits it declares")
    p.add_argument("--limit", action="append", default=[], metavar="NAME", help="a limit to show or weigh (repeatable)")
    p.add_argument("--per-second", type=float, default=None, metavar="X", help="set: node starts per second")
    p.add_argument("--per-tenant", type=float, default=None, metavar="Y", help="set: starts per second per tenant")
    p.add_argument(
        "--tokens-per-minute", type=int, default=None, metavar="N", help="set: a token limit's tokens per minute"
    )
    p.add_argument("--unset", action="append", default=[], metavar="TENANT", help="weight: back to weight 1")
    p.add_argument("--task-queue", help="the workers' task queue (default: GECKO_TASK_QUEUE or gecko-temporal)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--address", help="Temporal server HOST:PORT (default: TEMPORAL_ADDRESS)")


def _queue(workflows: list[Any]) -> str:
    from gecko_temporal.temporal.client import DEFAULT_TASK_QUEUE

    named = {wf.task_queue for wf in workflows if wf.task_queue}
    if len(named) > 1:
        raise UsageError(f"the workflows name different task queues ({sorted(named)}); pass --task-queue")
    return os.environ.get("GECKO_TASK_QUEUE") or (named.pop() if named else DEFAULT_TASK_QUEUE)


async def _limits(args: argparse.Namespace) -> int:
    from gecko_temporal.temporal import limits_admin, limits_tokens
    from gecko_temporal.temporal.client import connect

    workflows = [load_workflow(w) for w in args.workflow]
    declared: dict[str, Limit] = {}
    for wf in workflows:
        declared.update(wf.limits)
    queue = _queue(workflows)
    names = list(dict.fromkeys([*args.limit, *declared]))
    client = await connect()
    if args.action in ("set", "reset"):
        if len(args.items) != 1:
            raise UsageError(f"limits {args.action} takes one limit NAME, got {args.items or 'none'}")
        target = limit_queue(queue, args.items[0])
        if args.action == "reset":
            await limits_admin.set_rate(client, target, None)
            await limits_admin.set_tenant_cap(client, target, None)
            if await limits_tokens.use_of(client, target) is not None:  # a token limit: its override goes too
                await limits_tokens.set_tokens_per_minute(client, target, None)
        else:
            if args.per_second is None and args.per_tenant is None and args.tokens_per_minute is None:
                raise UsageError("limits set NAME needs --per-second X, --per-tenant Y and/or --tokens-per-minute N")
            for value, option in ((args.per_second, "--per-second"), (args.per_tenant, "--per-tenant")):
                if value is not None and not value >= 0:
                    raise UsageError(f"{option} must be a number >= 0, got {value}")
            if args.tokens_per_minute is not None and args.tokens_per_minute < 1:
                raise UsageError(f"--tokens-per-minute must be a whole number >= 1, got {args.tokens_per_minute}")
            if args.per_second is not None:
                await limits_admin.set_rate(client, target, args.per_second)
            if args.per_tenant is not None:
                await limits_admin.set_tenant_cap(client, target, args.per_tenant)
            if args.tokens_per_minute is not None:
                await limits_tokens.set_tokens_per_minute(client, target, args.tokens_per_minute)
        names = [args.items[0]]
    elif args.action == "weight":
        weights = parse_weights(args.items)
        if not weights and not args.unset:
            raise UsageError("limits weight takes TENANT=WEIGHT pairs (e.g. acme=2) and/or --unset TENANT")
        # the workers' own queue too: fairness applies wherever tasks wait
        for target in [queue, *(limit_queue(queue, n) for n in names)]:
            await limits_admin.set_weights(client, target, weights, args.unset)
    elif args.items:
        raise UsageError(f"limits (show) takes no arguments, got {args.items}; name limits with --limit")
    rows = []
    for name in names:
        row = await limits_admin.describe_queue(client, limit_queue(queue, name))
        known = declared.get(name)
        row = {"limit": name, **row, "tokens": await limits_tokens.use_of(client, limit_queue(queue, name))}
        if known is not None:
            row["declared"] = {
                "per_second": known.per_second,
                "concurrency": known.concurrency,
                "tokens_per_minute": known.tokens_per_minute,
                "estimate_tokens": known.estimate_tokens,
            }
        rows.append(row)
    if args.json:
        print(json.dumps({"task_queue": queue, "limits": rows}, indent=2))
        return 0
    if not rows:
        print(f"no limits named (task queue {queue}); pass --workflow MODULE:WF or --limit NAME")
        return 0
    print(
        f"{'LIMIT':<16} {'PER SECOND':<11} {'FROM':<10} {'PER TENANT':<11} {'TOKENS/MIN':<17} {'BACKLOG':<8} "
        f"{'POLLERS':<8} WEIGHTS"
    )
    for r in rows:
        source = "override" if r["override"] is not None else ("workers" if r["per_second"] is not None else "-")
        shown = ", ".join(f"{k}={v:g}" for k, v in sorted(r["weights"].items())) or "-"
        tokens = r["tokens"]
        used = f"{tokens['tokens_used']}/{tokens['tokens_per_minute']}" if tokens else "-"  # in the last minute
        if tokens and tokens.get("override"):
            used += " (set)"
        print(
            f"{r['limit']:<16} {_num(r['per_second']):<11} {source:<10} {_num(r['per_tenant']):<11} {used:<17} "
            f"{r['backlog']:<8} {r['pollers']:<8} {shown}"
        )
    return 0


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


COMMANDS = {"limits": _limits}
