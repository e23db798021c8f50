"""The ``gecko-temporal`` commands that steer a running session: jump, answer, cancel,
update-state and rewind (each one a validated update or a Temporal request on the run)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from gecko_temporal.core.errors import GeckoError
from gecko_temporal.ops.cli_input import UsageError, json_arg
from gecko_temporal.ops.cli_runs import session_handle


async def _jump(args: argparse.Namespace) -> int:
    data = json_arg(args.input, "--input")
    handle = await session_handle(args.session)
    reply = await handle.jump(args.node, data)  # the validated update: a bad node raises JumpRejectedError
    print(json.dumps(reply, ensure_ascii=False, default=repr))
    return 0


async def _cancel(args: argparse.Namespace) -> int:
    from temporalio.client import WorkflowExecutionStatus

    handle = await session_handle(args.session)
    status = (await handle.temporal_handle.describe()).status
    if status != WorkflowExecutionStatus.RUNNING:
        name = status.name.lower() if status is not None else "unknown"
        raise GeckoError(f'session "{args.session}" is not running (it is {name}); there is nothing to cancel')
    await handle.cancel()  # running nodes get the cancellation with their next heartbeat
    print(json.dumps({"session": args.session, "cancel_requested": True}))
    return 0


async def _answer(args: argparse.Namespace) -> int:
    value = json_arg(args.value, "--value")
    handle = await session_handle(args.session)
    reply = await handle.answer(args.node, value, interrupt=args.interrupt)
    print(json.dumps(reply, ensure_ascii=False, default=repr))
    return 0


def _edit_args(args: argparse.Namespace) -> tuple[dict[str, Any] | None, list[str] | None]:
    values = json_arg(args.values, "--values")
    if values is not None and not isinstance(values, dict):
        raise UsageError(f"--values must be a JSON object of state keys to values, got {args.values!r}")
    return values, list(args.delete) if args.delete else None


async def _update_state(args: argparse.Namespace) -> int:
    values, delete = _edit_args(args)
    if not values and not delete:
        raise UsageError("update-state needs --values JSON (keys to set) and/or --delete KEY (keys to remove)")
    handle = await session_handle(args.session)
    reply = await handle.update_state(values, delete=delete)
    print(json.dumps(reply, ensure_ascii=False, default=repr))
    return 0


async def _rewind(args: argparse.Namespace) -> int:
    values, delete = _edit_args(args)
    handle = await session_handle(args.session)
    reply = await handle.rewind(args.to_step, values=values, delete=delete)
    print(json.dumps(reply, ensure_ascii=False, default=repr))
    return 0


COMMANDS = {
    "jump": _jump,
    "answer": _answer,
    "cancel": _cancel,
    "update-state": _update_state,
    "rewind": _rewind,
}
