"""``gecko-temporal``: serve, start, watch and steer pipelines from a terminal.

    gecko-temporal worker MODULE:WF [MODULE:WF ...] [--task-queue Q] [--threads N] [--address HOST:PORT]
                          [--dev [--port P] [--db-filename F]] [--graceful-shutdown S] [--sticky-timeout S]
    gecko-temporal dev MODULE:WF [MODULE:WF ...] [--port P] [--db-filename F] [--ui] [--threads N]
    gecko-temporal run MODULE:WF --input JSON [--session ID] [--timeout S] [--address HOST:PORT]
    gecko-temporal status SESSION [--json] [--address HOST:PORT]
    gecko-temporal jump SESSION NODE [--input JSON] [--address HOST:PORT]
    gecko-temporal answer SESSION NODE --value JSON [--address HOST:PORT]
    gecko-temporal cancel SESSION [--address HOST:PORT]
    gecko-temporal update-state SESSION [--values JSON] [--delete KEY ...] [--address HOST:PORT]
    gecko-temporal steps SESSION [--json] [--address HOST:PORT]
    gecko-temporal rewind SESSION --to-step N [--values JSON] [--delete KEY ...] [--address HOST:PORT]
    gecko-temporal watch SESSION [--from-offset N] [--json] [--address HOST:PORT]
    gecko-temporal list [--pipeline P] [--status S] [--tenant T] [--sort cost] [--limit N] [--json] [--address HOST:PORT]
    gecko-temporal limits [set NAME --per-second X | reset NAME | weight TENANT=W ...] [--workflow MODULE:WF]

Every command but ``dev`` talks to ``--address`` or else ``TEMPORAL_ADDRESS`` (and the other
``TEMPORAL_*`` settings temporalio.envconfig reads). The root ``worker.py`` is this module's
``worker`` command, so the two never diverge. Exit codes: 0 done, 1 the run or request failed,
2 bad usage (a bad MODULE:WF spec, bad JSON, no server configured).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from gecko_temporal.core.build.graph import Workflow
from gecko_temporal.core.errors import GeckoError
from gecko_temporal.ops import cli_control, cli_limits, cli_runs, cli_store, cli_versions
from gecko_temporal.ops.cli_input import UsageError, environ, load_workflow, require_server
from gecko_temporal.ops.cli_runs import format_status

# The command groups live in cli_input (reading the command line), cli_runs (run, status, watch,
# list, steps) and cli_control (jump, answer, cancel, update-state, rewind); these names stay
# importable from here, where they have always been.
__all__ = [
    "DEFAULT_DB_FILENAME",
    "DEFAULT_DEV_PORT",
    "UsageError",
    "build_parser",
    "format_status",
    "load_workflow",
    "main",
    "serve",
    "temporal_error_text",
    "worker_main",
]

DEFAULT_DEV_PORT = 7233  # Temporal's usual port: the temporal CLI and SDKs find it without flags
DEFAULT_DB_FILENAME = "gecko-temporal.db"
_SHUTDOWN_SLACK = 3.0  # seconds past --graceful-shutdown a stopping worker may take, whatever the server does


# -- worker / dev -------------------------------------------------------------------------------
async def serve(
    specs: Sequence[str],
    *,
    address: str | None = None,
    task_queue: str | None = None,
    threads: int = 64,
    dev: bool = False,
    port: int | None = None,
    db_filename: str | None = None,
    ui: bool = False,
    graceful_shutdown: float = 10.0,
    connect_timeout: float = 60.0,
    sticky_timeout: float = 2.0,
    out: Any = None,
    build_id: str | None = None,
    deployment: str | None = None,
) -> None:
    """Serve the given workflows until SIGINT/SIGTERM, then stop gracefully (the ``worker`` command).

    Workflows go to ``task_queue``, else each one's own queue (``Workflow(task_queue=)`` /
    ``GECKO_TASK_QUEUE`` / ``gecko-temporal``); one GeckoWorker runs per queue. With ``dev`` an
    embedded dev server (SQLite file ``db_filename``) runs alongside and stops with the worker.
    """
    from gecko_temporal.temporal.client import connect, task_queue_for
    from gecko_temporal.temporal.embedded import DevServer
    from gecko_temporal.temporal.worker import GeckoWorker

    out = out or sys.stdout
    if not specs:
        raise UsageError("name at least one workflow to serve, like: worker myapp.pipelines:wf")
    if threads < 1:
        raise UsageError(f"--threads must be >= 1, got {threads}")
    if not sticky_timeout > 0:
        raise UsageError(f"--sticky-timeout must be > 0 seconds, got {sticky_timeout:g}")
    workflows = [load_workflow(s) for s in specs]
    queues: dict[str, list[Workflow]] = {}
    for wf in workflows:
        queues.setdefault(task_queue or task_queue_for(wf), []).append(wf)
    server: DevServer | None = None
    if dev:
        if address:
            raise UsageError("--dev starts its own server; drop --address (or drop --dev to use that server)")
        db = os.path.abspath(db_filename or DEFAULT_DB_FILENAME)
        server = DevServer(port=port or DEFAULT_DEV_PORT, db_filename=db, ui=ui)
        address = server.address
        print(
            f"dev server: {address} (history in {db}{'; UI on port ' + str(server.port + 1000) if ui else ''})",
            file=out,
            flush=True,
        )
        print(f"  export TEMPORAL_ADDRESS={address}", file=out, flush=True)
    else:
        require_server(address)
    workers: list[GeckoWorker] = []
    page = None
    try:
        client = await _connect_patiently(connect, address, connect_timeout, out)
        from gecko_temporal.temporal.visibility import ensure_search_attributes

        await ensure_search_attributes(client, out)  # a plain `temporal server start-dev` lets us register them
        for queue, wfs in queues.items():
            worker = GeckoWorker(
                client,
                task_queue=queue,
                max_threads=threads,
                graceful_shutdown=graceful_shutdown,
                sticky_timeout=sticky_timeout,
                build_id=build_id or os.environ.get("GECKO_BUILD_ID") or None,
                deployment=deployment,
            )
            for wf in wfs:
                worker.serve(wf)
            workers.append(worker)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        for worker in workers:
            await worker.start()
        if server is not None and ui:  # the live page beside the Temporal UI (port+1001)
            from gecko_temporal.ops.ui.server import start_beside

            page = await start_beside(address, f"http://127.0.0.1:{server.port + 1000}", server.port + 1001, out)
        target = client.service_client.config.target_host
        for queue, wfs in queues.items():
            print(
                f"worker ready: {', '.join(w.name for w in wfs)} on task queue {queue} at "
                f"{target} namespace {client.namespace} ({threads} threads)"
                + (
                    f", version {worker.version.build_id} of deployment {worker.version.deployment_name}"
                    if worker.version
                    else ""
                ),
                file=out,
                flush=True,
            )
        crashed = [asyncio.ensure_future(w.stopped()) for w in workers]
        asked = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait([asked, *crashed], return_when=asyncio.FIRST_COMPLETED)
        for task in (asked, *crashed):
            task.cancel()  # the waits only: the workers keep running until shut down below
        for task in done:
            if task in crashed and task.exception() is not None:
                raise GeckoError(f"the worker stopped: {task.exception()}")
        print(f"stopping: letting running nodes finish (up to {graceful_shutdown:g} s)", file=out, flush=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    finally:
        # Bounded: with the server unreachable the SDK's shutdown waits on pollers that retry for
        # minutes; after the grace period there is nothing left worth waiting for.
        stopped = await asyncio.gather(
            *(asyncio.wait_for(w.shutdown(), graceful_shutdown + _SHUTDOWN_SLACK) for w in workers),
            return_exceptions=True,
        )
        if page is not None:
            await page.stop()
        if server is not None:
            server.stop()
    late = [r for r in stopped if isinstance(r, BaseException)]
    print(
        "worker stopped" + (f" (not cleanly: {type(late[0]).__name__}; the server may be unreachable)" if late else ""),
        file=out,
        flush=True,
    )


async def _connect_patiently(connect: Any, address: str | None, within: float, out: Any) -> Any:
    """Connect, retrying while the server comes up (docker compose starts the worker alongside it)."""
    from gecko_temporal.core.errors import ServerError
    from gecko_temporal.temporal.client import NamespaceNotFound

    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    told = False
    while True:
        try:
            return await connect(address)
        except NamespaceNotFound:
            raise  # the server answered: waiting will not create the namespace
        except ServerError:
            if loop.time() >= deadline:
                raise
            if not told:
                print(
                    f"waiting for Temporal at {address or os.environ.get('TEMPORAL_ADDRESS')} (up to {within:g} s)",
                    file=out,
                    flush=True,
                )
                told = True
            await asyncio.sleep(1.0)


# -- argument parsing -----------------------------------------------------------------------------
def _add_worker_options(p: argparse.ArgumentParser, dev_command: bool) -> None:
    p.add_argument("workflows", nargs="+", metavar="MODULE:WF", help="Workflow objects to serve, e.g. myapp.flows:wf")
    p.add_argument(
        "--task-queue", help="task queue to poll (default: Workflow(task_queue=), GECKO_TASK_QUEUE or gecko-temporal)"
    )
    p.add_argument("--threads", type=int, default=64, help="threads for sync nodes; also the most nodes run at once")
    p.add_argument(
        "--graceful-shutdown",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds running nodes may finish after SIGINT/SIGTERM (default 10)",
    )
    p.add_argument(
        "--connect-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="keep retrying to reach the server this long at start-up (default 60)",
    )
    p.add_argument(
        "--sticky-timeout",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds a run's next task waits for the worker that has it cached before any "
        "worker takes it; bounds the stall after a worker crash (default 2)",
    )
    if not dev_command:
        p.add_argument("--address", help="Temporal server HOST:PORT (default: TEMPORAL_ADDRESS)")
        p.add_argument("--dev", action="store_true", help="start an embedded dev server with a SQLite file")
    p.add_argument("--port", type=int, default=None, help=f"dev server port (default {DEFAULT_DEV_PORT})")
    p.add_argument(
        "--db-filename",
        default=None,
        help=f"dev server SQLite file; runs survive restarts (default ./{DEFAULT_DB_FILENAME})",
    )
    p.add_argument(
        "--build-id", help="serve version ID of a Worker Deployment; runs stay on it (default: GECKO_BUILD_ID)"
    )
    p.add_argument("--deployment", help="the Worker Deployment of --build-id (default: the task queue's name)")
    if dev_command:
        p.add_argument(
            "--ui",
            action="store_true",
            help="also serve the Temporal web UI on port+1000 and the live page on port+1001",
        )


def build_parser(prog: str = "gecko-temporal") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Serve, run, watch and steer gecko_temporal pipelines.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_worker_options(sub.add_parser("worker", help="serve workflows on a Temporal server"), dev_command=False)
    _add_worker_options(sub.add_parser("dev", help="embedded dev server (SQLite) plus a worker"), dev_command=True)

    p = sub.add_parser("run", help="start a run, wait, print its JSON result")
    p.add_argument("workflow", metavar="MODULE:WF")
    p.add_argument("--input", default=None, metavar="JSON", help="the entry node's input, as JSON")
    p.add_argument("--session", default=None, metavar="ID", help="session id (Temporal workflow id)")
    p.add_argument("--timeout", type=float, default=None, metavar="S", help="bound the whole run, in seconds")
    p.add_argument(
        "--address",
        help="Temporal server HOST:PORT (default: TEMPORAL_ADDRESS; with neither, "
        "an embedded dev server and worker run it in this process)",
    )
    p.add_argument("--task-queue", help="task queue the workers poll (default as for worker)")
    p.add_argument("--state", default=None, metavar="JSON", help="seed context.state with this JSON object")
    p.add_argument("--quiet", action="store_true", help="print no progress lines (stderr) while waiting")
    p.add_argument("--tenant", default=None, help="the run's tenant (fairness key, GeckoTenant search attribute)")

    def session_command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("session", metavar="SESSION")
        p.add_argument("--address", help="Temporal server HOST:PORT (default: TEMPORAL_ADDRESS)")
        return p

    p = session_command("status", "a session's state and progress (the gecko_state query)")
    p.add_argument("--json", action="store_true", help="print the raw gecko_state JSON")

    p = session_command("jump", "jump a running session to NODE after its running layer")
    p.add_argument("node", metavar="NODE")
    p.add_argument("--input", default=None, metavar="JSON", help="input for NODE, as JSON")

    session_command("cancel", "cancel a running session (its running nodes are cancelled)")

    p = session_command("watch", "follow a session live: progress, running nodes, emitted events; ends with it")
    p.add_argument("--from-offset", type=int, default=0, metavar="N", help="start at event N (default: all)")
    p.add_argument("--json", action="store_true", help="print each event as one JSON line")

    p = sub.add_parser("list", help="list sessions, newest first (by GeckoPipeline / GeckoStatus)")
    p.add_argument("--pipeline", metavar="P", help="only runs of this Workflow name")
    p.add_argument("--status", metavar="S", help="only runs in this status: running, waiting, completed, failed")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N sessions (default 50)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--address", help="Temporal server HOST:PORT (default: TEMPORAL_ADDRESS)")
    p.add_argument("--version", metavar="ID", help="only runs pinned to this version (ID or DEPLOYMENT:ID)")
    p.add_argument("--tenant", metavar="T", help="only runs of this tenant")
    p.add_argument(
        "--sort", choices=("started", "cost", "tokens"), default="started", help="order (cost: dearest first)"
    )
    cli_limits.add_parser(sub)

    p = session_command("answer", "answer a WaitForInput node or a node waiting in context.interrupt()")
    p.add_argument("node", metavar="NODE")
    p.add_argument("--value", required=True, metavar="JSON", help="the answer, as JSON")
    p.add_argument(
        "--interrupt", type=int, default=None, metavar="I", help="refuse unless interrupt I waits (see status)"
    )

    cli_versions.add_commands(sub)

    p = sub.add_parser("graph", help="print a workflow's graph as a Mermaid flowchart (no server needed)")
    p.add_argument("workflow", metavar="MODULE:WF")

    p = session_command("update-state", "set (--values) or delete (--delete) state keys at the next safe point")
    p.add_argument("--values", default=None, metavar="JSON", help='state keys to set, e.g. \'{"draft": "v2"}\'')
    p.add_argument("--delete", action="append", default=None, metavar="KEY", help="a state key to delete (repeatable)")

    p = session_command("steps", "list the steps a session can be rewound to")
    p.add_argument("--json", action="store_true", help="print them as JSON")

    p = session_command("rewind", "restart a session from the state after step N (Temporal reset)")
    p.add_argument("--to-step", type=int, required=True, metavar="N", help="the step to go back to (see steps)")
    p.add_argument("--values", default=None, metavar="JSON", help="state keys to set at that point")
    p.add_argument("--delete", action="append", default=None, metavar="KEY", help="a state key to delete there")

    from gecko_temporal.ops import cli_cache, codec_server
    from gecko_temporal.ops.ui import command as ui_server

    cli_cache.add_arguments(sub.add_parser("cache", help="manage the node cache: cache clear [--node N]"))
    cli_store.add_arguments(sub.add_parser("store", help="payload store upkeep: gc removes unreferenced entries"))

    ui_server.add_arguments(sub.add_parser("ui", help="serve the live page: runs, their graphs, answers and steering"))
    codec_server.add_arguments(
        sub.add_parser(
            "codec-server",
            help="serve Temporal's remote codec protocol so the UI and `temporal` CLI read encrypted runs",
        )
    )
    return parser


def _serve_args(args: argparse.Namespace) -> int:
    asyncio.run(
        serve(
            args.workflows,
            address=getattr(args, "address", None),
            task_queue=args.task_queue,
            threads=args.threads,
            dev=args.command == "dev" or getattr(args, "dev", False),
            port=args.port,
            db_filename=args.db_filename,
            ui=getattr(args, "ui", False),
            graceful_shutdown=args.graceful_shutdown,
            connect_timeout=args.connect_timeout,
            sticky_timeout=args.sticky_timeout,
            build_id=args.build_id,
            deployment=args.deployment,
        )
    )
    return 0


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        with environ(
            TEMPORAL_ADDRESS=getattr(args, "address", None), GECKO_TASK_QUEUE=getattr(args, "task_queue", None)
        ):
            if args.command in ("worker", "dev"):
                return _serve_args(args)
            if args.command == "graph":  # pure: imports and draws the graph, never connects
                print(load_workflow(args.workflow).draw_mermaid())
                return 0
            if args.command == "cache":
                from gecko_temporal.ops import cli_cache

                return cli_cache.run(args)
            if args.command == "codec-server":
                from gecko_temporal.ops import codec_server

                return codec_server.run(args)
            if args.command == "ui":
                from gecko_temporal.ops.ui import command as ui_server

                return ui_server.run(args)
            if args.command not in ("run", "check-upgrade"):
                require_server(None)
            commands = (
                cli_runs.COMMANDS,
                cli_control.COMMANDS,
                cli_limits.COMMANDS,
                cli_store.COMMANDS,
                cli_versions.COMMANDS,
            )
            command = {k: v for table in commands for k, v in table.items()}[args.command]
            return asyncio.run(command(args))
    except UsageError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except GeckoError as exc:
        print(f"{parser.prog} {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if not type(exc).__module__.startswith("temporalio"):
            raise  # a bug of ours: the traceback is what a report needs
        print(f"{parser.prog} {args.command}: {temporal_error_text(exc)}", file=sys.stderr)
        return 1


def temporal_error_text(exc: BaseException) -> str:
    """One line for an error the Temporal client raised (an update or query a run could not answer,
    a server that refused): its message and its causes', never a traceback."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 5:
        message = getattr(seen, "message", None) or str(seen) or type(seen).__name__
        if message not in parts:
            parts.append(message)
        seen = seen.__cause__
    text = ": ".join(parts)
    text = " ".join(text.split())
    hint = " (is a worker serving its task queue, and can it read the run's payloads?)"
    return f"{type(exc).__name__}: {text[:1000]}{hint}"


def _exit_process(code: int) -> int:
    """End a command-line process without interpreter teardown.

    The Temporal SDK's Rust threads can touch the GIL while CPython finalizes and abort the process
    ("Fatal Python error: PyGILState_Release", temporalio/sdk-python#300). Everything is already
    shut down and flushed here, so skipping finalization loses nothing and keeps exit codes true.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gecko-temporal`` console script; returns the exit code.

    Called with ``argv`` (tests, other Python code) it returns; called as the process's own
    command line (``argv`` None) it ends the process with that code.
    """
    parser = build_parser()
    code = _dispatch(parser, parser.parse_args(argv))
    return code if argv is not None else _exit_process(code)


def worker_main(argv: Sequence[str] | None = None) -> int:
    """``python worker.py MODULE:WF ...``: exactly the ``worker`` command, under its own name."""
    parser = argparse.ArgumentParser(
        prog="worker.py",
        description="Serve gecko_temporal workflows on Temporal (the same as `gecko-temporal worker`).",
    )
    _add_worker_options(parser, dev_command=False)
    args = parser.parse_args(argv)
    args.command = "worker"
    code = _dispatch(parser, args)
    return code if argv is not None else _exit_process(code)


if __name__ == "__main__":
    sys.exit(main())
