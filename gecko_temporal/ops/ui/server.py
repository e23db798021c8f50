"""``gecko-temporal ui``: serve the live page (aiohttp, offline: every file ships in the package).

Routes: ``/`` (runs), ``/runs/SESSION`` (a run), ``/static/...``; the JSON API under ``/api/``
(``GET /api/runs``, ``GET /api/runs/S``, ``GET /api/runs/S/node?name=NODE``, ``GET /api/runs/S/events``
as server-sent events, ``POST /api/runs/S/{answer,jump,state,rewind,cancel}``). Every write goes
through :class:`~gecko_temporal.temporal.client.RunHandle`, the same validated updates the CLI uses.

Access (the codec server's rules): bound to loopback by default; bound elsewhere it needs a bearer
token (``--token`` / ``GECKO_UI_TOKEN``) on every API request and refuses to start without one. A
run whose payloads are encrypted shows values only when this process has the key *and* the request
carries the token (so never without a token configured); otherwise the page shows names and
statuses only. With a token configured, writes need it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import time
from importlib import resources
from typing import Any

from aiohttp import web

from gecko_temporal.ops.ui import view
from gecko_temporal.ops.ui.access import bearer_ok, guard, is_loopback, json_error, security_headers
from gecko_temporal.ops.ui.command import TOKEN_ENV
from gecko_temporal.ops.ui.watches import SessionWatch, jsonable

__all__ = ["Refused", "UiServer", "form_value", "is_loopback", "start_beside"]

_MAX_WATCHES = 100
_QUERY_TIMEOUT = 10.0


class Refused(Exception):
    """The UI cannot start as asked (e.g. bound beyond loopback without a token)."""


class UiServer:
    """The live page's server on ``host:port`` (0: a free port), in the running event loop."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        temporal_ui: str | None = None,
        address: str | None = None,
    ) -> None:
        if not is_loopback(host) and not token:
            raise Refused(
                f"the ui binds to {host}, beyond this machine: set a bearer token with --token or {TOKEN_ENV} "
                "(or bind to 127.0.0.1)"
            )
        self.host, self.port, self.token = host, port, token or None
        self.temporal_ui = temporal_ui.rstrip("/") if temporal_ui else None
        self.address = address
        self._client: Any = None
        self._watches: dict[str, SessionWatch] = {}
        self._specs: dict[tuple[str, str], Any] = {}
        self._closed_rows: dict[tuple[str, str], dict[str, Any]] = {}
        self._steps: dict[str, tuple[Any, list[dict[str, Any]]]] = {}
        self._runner: web.AppRunner | None = None

    # -- plumbing -----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application(middlewares=[guard(self)], client_max_size=4 * 1024 * 1024)
        app.on_response_prepare.append(security_headers)
        r = app.router
        r.add_get("/", self._page)
        r.add_get("/runs/{session}", self._page)
        r.add_get("/static/{name}", self._static)
        r.add_get("/api/runs", self._runs)
        r.add_get("/api/runs/{session}", self._run)
        r.add_get("/api/runs/{session}/node", self._node)
        r.add_get("/api/runs/{session}/events", self._events)
        for action in ("answer", "jump", "state", "rewind", "cancel"):
            r.add_post(f"/api/runs/{{session}}/{action}", self._write)
        return app

    async def start(self) -> UiServer:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for watch in self._watches.values():
            watch.task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    async def client(self) -> Any:
        if self._client is None:
            from gecko_temporal.temporal.client import connect

            self._client = await connect(self.address)
        return self._client

    async def handle(self, session: str) -> Any:
        from gecko_temporal.temporal.client import RunHandle

        client = await self.client()
        return RunHandle(client.get_workflow_handle(session), client=client)

    # -- access ---------------------------------------------------------------------------------------
    def token_ok(self, request: web.Request) -> bool:
        return bearer_ok(self.token, request)

    def _keys_here(self) -> bool:
        from gecko_temporal.temporal.payloads import keys_from_env

        try:
            return bool(keys_from_env())
        except Exception:
            return False

    async def _first_payloads(self, session: str) -> tuple[list[Any], str]:
        """The current run's input payloads, raw (as history holds them), and its run id."""
        from temporalio.api.common.v1 import WorkflowExecution
        from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest

        client = await self.client()
        desc = await client.get_workflow_handle(session).describe()
        resp = await client.workflow_service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(
                namespace=client.namespace,
                execution=WorkflowExecution(workflow_id=session, run_id=desc.run_id),
                maximum_page_size=1,
            )
        )
        started = resp.history.events[0].workflow_execution_started_event_attributes
        return list(started.input.payloads), desc.run_id

    def encrypted(self, payloads: list[Any]) -> bool:
        """A run is treated as encrypted when its input is, or when this process holds keys at all
        (a payload in a claim-check store does not show its encoding in history)."""
        from gecko_temporal.temporal.payloads import ENCRYPTED

        return self._keys_here() or any(p.metadata.get("encoding") == ENCRYPTED for p in payloads)

    # -- pages --------------------------------------------------------------------------------------
    async def _page(self, request: web.Request) -> web.Response:
        text = resources.files("gecko_temporal.ops.ui").joinpath("static/index.html").read_text("utf-8")
        return web.Response(text=text, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        types = {"app.js": "application/javascript", "app.css": "text/css"}
        if name not in types:
            raise web.HTTPNotFound()
        text = resources.files("gecko_temporal.ops.ui").joinpath(f"static/{name}").read_text("utf-8")
        return web.Response(text=text, content_type=types[name], headers={"Cache-Control": "no-store"})

    # -- the runs list --------------------------------------------------------------------------------
    async def _runs(self, request: web.Request) -> web.Response:
        from gecko_temporal.temporal.visibility import list_sessions

        client = await self.client()
        pipeline = request.query.get("pipeline") or None
        status = request.query.get("status") or None
        try:
            limit = max(1, min(int(request.query.get("limit") or 50), 200))
            rows = await list_sessions(client, pipeline, status, limit)
        except ValueError:
            return json_error(400, "limit must be a number")
        except Exception as exc:
            return json_error(502, f"listing runs failed: {getattr(exc, 'message', None) or exc}")

        async def more(row: dict[str, Any]) -> None:
            key = (row["session"], row.get("closed") or "")
            if row.get("closed") and key in self._closed_rows:
                row.update(self._closed_rows[key])
                return
            extra: dict[str, Any] = {}
            try:
                handle = await self.handle(row["session"])
                s = await asyncio.wait_for(handle.state(), 3.0)
                extra = {"step": s.get("step"), "gecko_status": s.get("status")}
                for k in ("version", "usage"):
                    if k in s:
                        extra[k] = s[k]
            except Exception:
                pass
            if row.get("closed") and extra:
                self._closed_rows[key] = extra
            row.update(extra)

        await asyncio.gather(*(more(r) for r in rows))
        return web.json_response({"runs": jsonable(rows), "auth": self._auth(request), "temporal_ui": self.temporal_ui})

    def _auth(self, request: web.Request) -> dict[str, Any]:
        return {"token_configured": bool(self.token), "token_ok": self.token_ok(request)}

    # -- one run --------------------------------------------------------------------------------------
    async def _spec(self, session: str, payloads: list[Any], run_id: str) -> dict[str, Any] | None:
        key = (session, run_id)
        if key not in self._specs:
            client = await self.client()
            [run_input] = await client.data_converter.decode(payloads)
            self._specs[key] = _full_spec(run_input["spec"])
            while len(self._specs) > 200:
                self._specs.pop(next(iter(self._specs)))
        spec: dict[str, Any] | None = self._specs[key]
        return spec

    def watch(self, session: str, running: bool = False) -> SessionWatch:
        w = self._watches.get(session)
        # Read again after an error, or when a run whose stream ended runs again (a rewind).
        if w is None or (w.finished and (w.error or running)):
            if len(self._watches) >= _MAX_WATCHES:
                oldest = min(self._watches.values(), key=lambda x: x.used)
                oldest.task.cancel()
                del self._watches[oldest.session]
            w = self._watches[session] = SessionWatch(self, session)
        w.used = time.monotonic()
        return w

    async def _run(self, request: web.Request) -> web.Response:
        session = request.match_info["session"]
        client = await self.client()
        problems: list[str] = []
        try:
            desc = await client.get_workflow_handle(session).describe()
        except Exception as exc:
            return json_error(404, f'no run "{session}": {getattr(exc, "message", None) or exc}')
        from gecko_temporal.temporal.visibility import PIPELINE_KEY, STATUS_KEY

        attrs = desc.typed_search_attributes
        out: dict[str, Any] = {
            "session": session,
            "run_id": desc.run_id,
            "pipeline": attrs.get(PIPELINE_KEY),
            "status": attrs.get(STATUS_KEY),
            "temporal_status": desc.status.name.lower() if desc.status else None,
            "started": desc.start_time.isoformat() if desc.start_time else None,
            "closed": desc.close_time.isoformat() if desc.close_time else None,
            "auth": self._auth(request),
            "temporal_url": f"{self.temporal_ui}/namespaces/{client.namespace}/workflows/{session}"
            if self.temporal_ui
            else None,
        }
        payloads, run_id = await self._first_payloads(session)
        encrypted = self.encrypted(payloads)
        allowed = not encrypted or self.token_ok(request)
        out["encrypted"], out["values_allowed"] = encrypted, allowed
        spec = None
        try:
            spec = await self._spec(session, payloads, run_id)
        except Exception as exc:
            problems.append(
                f"cannot read the run's graph: {getattr(exc, 'message', None) or exc}"
                + (" (its payloads are encrypted and this ui has no key for them)" if encrypted else "")
            )
        state: dict[str, Any] = {}
        handle = await self.handle(session)
        try:
            state = await asyncio.wait_for(handle.state(), _QUERY_TIMEOUT)
        except Exception as exc:
            problems.append(f"gecko_state did not answer: {getattr(exc, 'message', None) or exc or type(exc).__name__}")
        fresh = session not in self._watches
        watch = self.watch(session, running=out["temporal_status"] == "running")
        if fresh:  # a first look: give the stream a moment to replay what the run kept
            async with watch.changed:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(watch.changed.wait_for(lambda: watch.finished or bool(watch.events)), 2.0)
            await asyncio.sleep(0.2)
        events = list(watch.events)
        run_status = state.get("status") or out["status"]
        if out["temporal_status"] not in (None, "running") and out["temporal_status"] != "completed":
            run_status = out["temporal_status"]
        out["status"] = run_status
        out["children"] = await self._children(session, state)
        if spec is not None:
            graph = view.layout(spec)
            names = [n["name"] for n in spec["nodes"]]
            statuses = view.node_statuses(names, state, events, run_status, watch.finished and not watch.error)
            view.colour(graph, statuses, await self._child_statuses(session, spec, out["children"]))
            view.send_targets(graph, statuses)
            out["graph"] = graph
            out["pipeline"] = out["pipeline"] or spec.get("name")
        out["state"] = view.redact_state(state, allowed) if state else {}
        out["events"] = [view.redact_event(e, allowed) for e in events[-300:]]
        if request.query.get("steps") != "0":
            # Steps cost a history read per run of the session: read them again only when it moved.
            key = (session, desc.run_id, state.get("step"), state.get("status"), out["temporal_status"])
            cached = self._steps.get(session)
            if cached is not None and cached[0] == key:
                out["steps"] = cached[1]
            else:
                try:
                    out["steps"] = await asyncio.wait_for(handle.steps(), _QUERY_TIMEOUT)
                    self._steps[session] = (key, out["steps"])
                    while len(self._steps) > 200:
                        self._steps.pop(next(iter(self._steps)))
                except Exception as exc:
                    out["steps"] = []
                    problems.append(f"steps unavailable: {getattr(exc, 'message', None) or exc or type(exc).__name__}")
        if watch.error:
            problems.append(f"event stream: {watch.error}")
        out["problems"] = problems
        return web.json_response(jsonable(out))

    async def _children(self, session: str, state: dict[str, Any]) -> list[dict[str, Any]]:
        """Child runs (subgraph nodes): those ``gecko_state`` names as running, and every one
        visibility knows by its parent (finished ones too)."""
        children = {child: node for node, child in (state.get("children") or {}).items()}
        client = await self.client()

        async def listed() -> None:
            query = f"ParentWorkflowId = {_quote(session)}"
            async for wf in client.list_workflows(query, limit=50):
                children.setdefault(wf.id, None)

        with contextlib.suppress(Exception):  # a server without the attribute: the running ones only
            await asyncio.wait_for(listed(), 5.0)
        return [{"session": child, "node": node} for child, node in sorted(children.items())]

    async def _child_statuses(
        self, session: str, spec: dict[str, Any], children: list[dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        """The statuses of each subgraph node's inner nodes, from its newest child run's gecko_state
        (child sessions are named ``PARENT.NODE.STEP``), keyed by the drawn names ``NODE/inner``."""
        out: dict[str, dict[str, Any]] = {}
        for n in spec.get("nodes") or ():
            if not n.get("subgraph"):
                continue
            prefix = f"{session}.{n['name']}."
            ids = [c["session"] for c in children if c["session"].startswith(prefix)]
            steps = [(int(i[len(prefix) :]), i) for i in ids if i[len(prefix) :].isdigit()]
            if not steps:
                continue
            child = max(steps)[1]
            try:
                handle = await self.handle(child)
                state = await asyncio.wait_for(handle.state(), 3.0)
            except Exception:
                continue
            names = [m["name"] for m in n["subgraph"].get("nodes") or ()]
            own = view.node_statuses(names, state, (), state.get("status"))
            out[n["name"]] = {f"{n['name']}/{k}": v for k, v in own.items()}
        return out

    async def _node(self, request: web.Request) -> web.Response:
        """What history and gecko_state give about one node: its latest input, output, state writes."""
        from gecko_temporal.core import codec

        session, node = request.match_info["session"], request.query.get("name") or ""
        payloads, run_id = await self._first_payloads(session)
        if not (not self.encrypted(payloads) or self.token_ok(request)):
            return web.json_response({"node": node, "hidden": view.HIDDEN})
        client = await self.client()
        try:
            spec = await self._spec(session, payloads, run_id)
        except Exception as exc:
            return json_error(400, f"cannot read the run's graph: {exc}")
        types: set[str] = set()
        for n in (spec or {}).get("nodes") or ():
            if n["name"] == node:
                types.add(n.get("activity_type") or "")
                for m in (n.get("team") or {}).get("members") or ():
                    types.add(m.get("activity_type") or "")
        scheduled: dict[int, Any] = {}
        last_input: Any = None
        last_output: Any = None
        handle = client.get_workflow_handle(session, run_id=run_id)
        async for e in handle.fetch_history_events():
            if e.HasField("activity_task_scheduled_event_attributes"):
                a = e.activity_task_scheduled_event_attributes
                if a.activity_type.name in types:
                    scheduled[e.event_id] = a
                    last_input = a.input.payloads
            elif e.HasField("activity_task_completed_event_attributes"):
                c = e.activity_task_completed_event_attributes
                if c.scheduled_event_id in scheduled:
                    last_output = c.result.payloads
        out: dict[str, Any] = {"node": node}

        def shown(text: Any) -> str:
            if isinstance(text, str):
                with contextlib.suppress(Exception):
                    return view.preview(codec.plain(text))
            return view.preview(text)

        try:
            if last_input:
                [value] = await client.data_converter.decode(list(last_input))
                if isinstance(value, dict):
                    out["input"] = shown(value.get("input"))
                    out["step"] = value.get("step")
            if last_output:
                [value] = await client.data_converter.decode(list(last_output))
                if isinstance(value, dict):
                    out["output"] = shown(value.get("value"))
                    out["writes"] = {k: shown(v) for k, v in (value.get("writes") or {}).items()}
                    out["deletes"] = value.get("deletes") or []
                    if value.get("interrupt"):
                        out["interrupt"] = shown((value["interrupt"] or {}).get("payload"))
        except Exception as exc:
            out["problem"] = f"cannot decode its history: {exc}"
        if not last_input:
            out["note"] = (
                "no activity of this node in the current run's history (not run yet, a local activity, or an earlier run)"
            )
        return web.json_response(jsonable(out))

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: the run's stream from ``?after=N`` on, then ``event: end``."""
        session = request.match_info["session"]
        payloads, _ = await self._first_payloads(session)
        allowed = not self.encrypted(payloads) or self.token_ok(request)
        try:
            after = int(request.query.get("after") or -1)
        except ValueError:
            return json_error(400, "after must be an event offset")
        watch = self.watch(session)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await response.prepare(request)
        try:
            while True:
                fresh = [e for e in watch.events if e.get("offset", -1) > after]
                for e in fresh:
                    after = e.get("offset", after)
                    await response.write(f"data: {json.dumps(view.redact_event(e, allowed))}\n\n".encode())
                if watch.finished and not fresh:
                    await response.write(b"event: end\ndata: {}\n\n")
                    break
                async with watch.changed:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(watch.changed.wait(), 15.0)
                await response.write(b": ping\n\n")
                watch.used = time.monotonic()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    async def _write(self, request: web.Request) -> web.Response:
        from gecko_temporal.core.errors import GeckoError

        session = request.match_info["session"]
        action = request.path.rsplit("/", 1)[-1]
        try:
            body = await request.json()
        except ValueError:
            return json_error(400, "the request body must be a JSON object")
        if not isinstance(body, dict):
            return json_error(400, "the request body must be a JSON object")
        handle = await self.handle(session)
        try:
            if action == "answer":
                result = await handle.answer(_text(body, "node"), form_value(body.get("value")))
            elif action == "jump":
                result = await handle.jump(_text(body, "node"), form_value(body.get("input")))
            elif action == "state":
                values = form_value(body.get("values"))
                delete = [k.strip() for k in str(body.get("delete") or "").split(",") if k.strip()] or None
                result = await handle.update_state(values, delete=delete)
            elif action == "rewind":
                step: Any = body.get("step")
                with contextlib.suppress(TypeError, ValueError):
                    step = int(step)
                result = await handle.rewind(step)  # a step that is no number: RewindError says so
            else:
                await handle.cancel()
                result = {"cancelled": session}
        except GeckoError as exc:
            return json_error(400, str(exc))
        except Exception as exc:
            return json_error(502, f"{action} failed: {getattr(exc, 'message', None) or exc}")
        return web.json_response({"ok": True, "result": jsonable(result)})


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _text(body: dict[str, Any], key: str) -> str:
    return str(body.get(key) or "").strip()


def form_value(text: Any) -> Any:
    """A form field as the value it means: JSON when it parses, the text itself otherwise, ``None``
    when empty (the handlers then say what they expected)."""
    if text is None:
        return None
    if not isinstance(text, str):
        return text
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _full_spec(plain: dict[str, Any]) -> dict[str, Any]:
    """The full plain form of a (compact) spec, its subgraphs' too: what :func:`view.layout` reads."""
    from gecko_temporal.core.spec import COMPACT_FORMAT, expand_spec

    full = expand_spec(plain) if plain.get("format") == COMPACT_FORMAT else dict(plain)
    full["nodes"] = [dict(n, subgraph=_full_spec(n["subgraph"])) if n.get("subgraph") else n for n in full["nodes"]]
    return full


async def start_beside(address: str | None, temporal_ui: str | None, port: int, out: Any) -> UiServer:
    """``gecko-temporal dev --ui``: serve the live page in the worker's loop and say where: on
    ``port`` (the dev server's + 1001), or on a free one when something holds that port (it is in
    Linux's range of ephemeral ports, so any process's outgoing connection may)."""
    server = UiServer(port=port, address=address, temporal_ui=temporal_ui)
    try:
        await server.start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        await server.stop()
        server = await UiServer(port=0, address=address, temporal_ui=temporal_ui).start()
    print(f"live page: {server.url}", file=out, flush=True)
    return server
