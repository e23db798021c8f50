"""The ``gecko-temporal`` commands that start and read runs: run, status, watch, list, steps."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from datetime import timedelta
from typing import Any

from gecko_temporal.core.errors import GeckoError
from gecko_temporal.ops.cli_input import UsageError, json_arg, load_workflow
from gecko_temporal.protocol import STATE_QUERY


async def _run(args: argparse.Namespace) -> int:
    from gecko_temporal.temporal import client

    wf = load_workflow(args.workflow)
    data = json_arg(args.input, "--input")
    state = json_arg(args.state, "--state")
    if state is not None and not isinstance(state, dict):
        raise UsageError(f"--state must be a JSON object of state keys to values, got {args.state!r}")
    handle = await client.start(
        wf, data, session_id=args.session, timeout=args.timeout, state=state, tenant=getattr(args, "tenant", None)
    )
    print(f"session: {handle.id}", file=sys.stderr, flush=True)
    watching = None
    if not args.quiet:  # progress on stderr; stdout stays the result's JSON
        from gecko_temporal.temporal.streams import follow

        watching = asyncio.ensure_future(follow(handle, sys.stderr))
    try:
        result = await handle.result()
    finally:
        if watching is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(watching, 5.0)  # its last line is the run's end, which has come
    print(json.dumps(_readable(result), ensure_ascii=False, default=repr))
    return 0


def _readable(value: Any) -> Any:
    """``value`` as people and ``jq`` read it: strict JSON, models as their data, NaN/inf as "nan"/"inf"."""
    from gecko_temporal.core import codec

    try:
        return codec.plain(codec.encode(value))
    except GeckoError:  # (a result always encodes: it was decoded from JSON)
        return value


async def session_handle(session: str) -> Any:
    from temporalio.service import RPCError, RPCStatusCode

    from gecko_temporal.temporal.client import RunHandle, connect

    client = await connect()
    handle = client.get_workflow_handle(session)
    try:
        await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise GeckoError(
                f'no session "{session}" on {os.environ.get("TEMPORAL_ADDRESS")}; '
                "check the id (it is the Temporal workflow id) and the server address"
            ) from None
        raise GeckoError(f'cannot look up session "{session}": {exc.message}') from None
    return RunHandle(handle, client=client)


async def _query_state(handle: Any) -> dict[str, Any]:
    from temporalio.client import WorkflowQueryFailedError
    from temporalio.service import RPCError

    from gecko_temporal.temporal.deployments import refusal

    why = await refusal(handle.temporal_handle)  # no worker may take it: say why at once, never time out
    if why:
        raise GeckoError(f'session "{handle.id}" is waiting for a worker that can run it: {why}')
    try:
        state: dict[str, Any] = await handle.temporal_handle.query(STATE_QUERY, rpc_timeout=timedelta(seconds=15))
        return state
    except (RPCError, WorkflowQueryFailedError) as exc:
        raise GeckoError(
            f'session "{handle.id}" did not answer the gecko_state query: '
            f"{getattr(exc, 'message', exc)}; is a worker serving its task queue?"
        ) from None


def format_status(session: str, s: dict[str, Any], temporal_status: str = "") -> str:
    """A person's view of a gecko_state answer: progress first, then what runs, waits and jumps."""
    nodes = s.get("nodes") or []
    done = list(dict.fromkeys(s.get("completed") or []))  # distinct, in first-finished order
    lines = [
        f"session {session} ({s.get('workflow', '?')}): {s.get('status', '?')}"
        + (f" [temporal: {temporal_status}]" if temporal_status else ""),
        f"progress: {len(done)}/{len(nodes)} nodes completed (step {s.get('step')}, layer {s.get('layer')}, "
        f"run {s.get('run')})",
    ]
    if done:
        lines.append("completed: " + ", ".join(done))
    lines.append("running: " + (", ".join(s.get("running") or []) or "-"))
    waiting = s.get("waiting") or {}
    if waiting:
        lines.append(
            "waiting: "
            + ", ".join(
                f"{n} ({_asks(w)}; answer with: gecko-temporal answer {session} {n} --value JSON)"
                for n, w in waiting.items()
            )
        )
    if s.get("children"):
        lines.append(
            "subgraphs running: "
            + ", ".join(f"{n} (child session {c}; gecko-temporal status {c})" for n, c in s["children"].items())
        )
    if s.get("pending_jumps"):
        lines.append("pending jumps: " + ", ".join(f"{j['node']} (from {j['source']})" for j in s["pending_jumps"]))
    if s.get("rejected_jumps"):
        lines.append(
            "rejected jumps: "
            + "; ".join(f"{json.dumps(r.get('request'))}: {r.get('reason')}" for r in s["rejected_jumps"])
        )
    lines.append("state: " + json.dumps(s.get("state", {}), ensure_ascii=False, sort_keys=True, default=repr))
    return "\n".join(lines)


def _asks(waiting: dict[str, Any]) -> str:
    """What a waiting node asks: a WaitForInput's prompt, or an interrupt's payload (short)."""
    if waiting.get("interrupted"):
        text = json.dumps(waiting.get("payload"), ensure_ascii=False, default=repr)
        return f"interrupt {waiting.get('interrupt', 0)}: " + (text if len(text) <= 200 else text[:200] + "...")
    return waiting.get("prompt") or "no prompt"


async def _status(args: argparse.Namespace) -> int:
    handle = await session_handle(args.session)
    state = await _query_state(handle)
    if args.json:
        print(json.dumps(state, ensure_ascii=False, indent=2, default=repr))
    else:
        description = await handle.temporal_handle.describe()
        print(format_status(args.session, state, description.status.name if description.status else ""))
    return 0


async def _steps(args: argparse.Namespace) -> int:
    handle = await session_handle(args.session)
    points = await handle.steps()
    if args.json:
        print(json.dumps(points, ensure_ascii=False, indent=2))
        return 0
    print(f"{'step':>6}  {'run':>3}  {'time':<32}  nodes")
    for p in points:
        mark = (
            ""
            if p["rewindable"]
            else (
                "  (the run's start: not a rewind point)"
                if not p["nodes"]
                else "  (same workflow task as the step before: not a rewind point)"
            )
        )
        print(f"{p['step']:>6}  {p['run']:>3}  {p['time']:<32}  {', '.join(p['nodes']) or '(start)'}{mark}")
    return 0


async def _watch(args: argparse.Namespace) -> int:
    from gecko_temporal.temporal.streams import follow

    if args.from_offset < 0:
        raise UsageError(f"--from-offset must be 0 or more (an event number), got {args.from_offset}")
    handle = await session_handle(args.session)
    try:  # where the run stands now, for completed/total (a finished run may have no worker to ask)
        state = await handle.temporal_handle.query(STATE_QUERY, rpc_timeout=timedelta(seconds=5))
    except Exception:
        state = {}
    if args.json:
        status = None
        async for event in handle.stream(from_offset=args.from_offset):
            fields = {k: v for k, v in vars(event).items() if v is not None and k != "extra"}
            print(json.dumps({**fields, **event.extra}, ensure_ascii=False, default=repr), flush=True)
            status = event.status if event.type == "run_finished" else status
        return 0 if status == "completed" else 1
    print(
        f"watching {args.session}"
        + (f" ({state.get('workflow')})" if state.get("workflow") else "")
        + "; Ctrl-C stops watching, not the run",
        flush=True,
    )
    progress = await follow(handle, sys.stdout, from_offset=args.from_offset, state=state)
    return 0 if progress.status == "completed" else 1


async def _list(args: argparse.Namespace) -> int:
    from temporalio.service import RPCError

    from gecko_temporal.temporal.client import connect
    from gecko_temporal.temporal.visibility import REGISTER_HINT, list_sessions

    client = await connect()
    try:
        rows = await list_sessions(
            client,
            pipeline=args.pipeline,
            status=args.status,
            limit=args.limit,
            tenant=getattr(args, "tenant", None),
            version=getattr(args, "version", None),
        )
    except RPCError as exc:
        if "search attribute" in exc.message.lower() or "not defined" in exc.message.lower():
            raise GeckoError(
                f"the server cannot filter by pipeline or status: {exc.message}; register the "
                f"search attributes with: {REGISTER_HINT}"
            ) from None
        raise GeckoError(f"cannot list sessions: {exc.message}") from None
    sort = getattr(args, "sort", "started")
    if sort in ("cost", "tokens"):  # dearest first; runs without the figure last
        key = "cost_usd" if sort == "cost" else "tokens"
        rows.sort(key=lambda r: -1 if r.get(key) is None else r[key], reverse=True)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("no sessions found")
        return 0
    width = max(len(r["session"]) for r in rows)
    print(f"{'SESSION':<{width}}  {'PIPELINE':<20} {'STATUS':<10} {'TEMPORAL':<16} {'STARTED':<32} COST")
    for r in rows:
        cost = "-" if r.get("cost_usd") is None else f"${r['cost_usd']:.4f} ({r['tokens']} tokens)"
        print(
            f"{r['session']:<{width}}  {r['pipeline'] or '-'!s:<20} {r['status'] or '-'!s:<10} "
            f"{r['temporal_status'] or '-'!s:<16} {r['started'] or '-'!s:<32} {cost}"
        )
    return 0


COMMANDS = {"run": _run, "status": _status, "steps": _steps, "watch": _watch, "list": _list}
