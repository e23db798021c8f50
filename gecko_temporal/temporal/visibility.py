"""How runs look in the Temporal UI and how people find them: summaries, details, search attributes.

Each run starts with a summary and details (``static_summary``/``static_details``) and the
``GeckoPipeline``/``GeckoStatus`` Keyword search attributes; the workflow keeps ``GeckoStatus`` and
its current details up to date (``run_events.py``). A server that lacks the attributes still runs
everything: the first start there logs one warning saying how to register them, and runs start
without them.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Sequence
from typing import Any

from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from gecko_temporal.core import codec, events
from gecko_temporal.protocol import (
    COST_ATTRIBUTE,
    PIPELINE_ATTRIBUTE,
    STATUS_ATTRIBUTE,
    TENANT_ATTRIBUTE,
    TOKENS_ATTRIBUTE,
)

_log = logging.getLogger("gecko_temporal")

PIPELINE_KEY = SearchAttributeKey.for_keyword(PIPELINE_ATTRIBUTE)
STATUS_KEY = SearchAttributeKey.for_keyword(STATUS_ATTRIBUTE)
VERSION_KEY = SearchAttributeKey.for_keyword("TemporalWorkerDeploymentVersion")  # Temporal's: "DEPLOYMENT:ID"
ATTRIBUTES = {PIPELINE_ATTRIBUTE: "Keyword", STATUS_ATTRIBUTE: "Keyword"}
REGISTER_HINT = (
    f"temporal operator search-attribute create --name {PIPELINE_ATTRIBUTE} --type Keyword "
    f"--name {STATUS_ATTRIBUTE} --type Keyword"
)

# Clients whose server has no attributes -> when it said so: their starts go without them for a
# while, then try again (a worker or an admin may have registered them since; warned once).
_without_attributes: dict[int, float] = {}
RECHECK_AFTER = 60.0  # seconds
_SIZE_LIMIT = re.compile(r"search attribute (\w+) value size (\d+) exceeds size limit (\d+)")


def _input_preview(encoded: str) -> str:
    try:
        return events.preview(codec.plain(encoded), 80)
    except Exception:
        return events.preview(encoded, 80)


def _missing_attribute(exc: RPCError) -> bool:
    text = exc.message.lower()
    return exc.status == RPCStatusCode.INVALID_ARGUMENT and "search attribute" in text


def _fitting(value: str, exc: RPCError) -> str | None:
    """``value`` cut to fit when the server refused it as too big ("search attribute GeckoPipeline
    value size 2102 exceeds size limit 2048": the size counts the JSON quotes), else None."""
    found = _SIZE_LIMIT.search(exc.message) if exc.status == RPCStatusCode.INVALID_ARGUMENT else None
    if found is None or found.group(1) != PIPELINE_ATTRIBUTE:
        return None
    room = max(int(found.group(3)) - 16, 16)  # quotes, escapes, "..."
    return value.encode()[:room].decode("utf-8", "ignore") + "..."


def _attributes(pipeline: str, extra: Sequence[SearchAttributePair[Any]] = ()) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [SearchAttributePair(PIPELINE_KEY, pipeline), SearchAttributePair(STATUS_KEY, "running"), *extra]
    )


async def start_with_metadata(
    client: Client,
    spec: Any,
    session_id: str,
    encoded_input: str,
    *args: Any,
    extra_attributes: Sequence[SearchAttributePair[Any]] = (),
    **kwargs: Any,
) -> Any:
    """``client.start_workflow(*args, **kwargs)`` with the run's summary, details and attributes
    (``extra_attributes``: flow control's, which ``flow_attributes`` checked the server has)."""
    shown = _input_preview(encoded_input)
    names = [n.name for n in spec.nodes]
    kwargs["static_summary"] = events.run_summary(spec.name, len(names), shown)
    kwargs["static_details"] = events.run_details(
        spec.name, names, spec.entry, getattr(spec, "scheduling", "layered"), shown, session_id
    )
    refused_at = _without_attributes.get(id(client))
    if refused_at is None or time.monotonic() - refused_at >= RECHECK_AFTER:
        try:
            attributes = _attributes(spec.name, extra_attributes)
            started = await client.start_workflow(*args, **kwargs, search_attributes=attributes)
            _without_attributes.pop(id(client), None)  # (registered since the last refusal)
            return started
        except RPCError as exc:
            if not _missing_attribute(exc):
                raise
            cut = _fitting(spec.name, exc)
            if cut is not None:  # the attributes exist; this name is too long for one: cut, say so
                _log.warning(
                    "pipeline name of %d characters is too long for the %s search attribute (%s): "
                    "this run carries it cut to %d characters",
                    len(spec.name),
                    PIPELINE_ATTRIBUTE,
                    exc.message,
                    len(cut),
                )
                cut_attributes = _attributes(cut, extra_attributes)
                return await client.start_workflow(*args, **kwargs, search_attributes=cut_attributes)
            first = refused_at is None
            _without_attributes[id(client)] = time.monotonic()
            if not first:  # still missing after a re-check: said once already
                return await client.start_workflow(*args, **kwargs)
            _log.warning(
                "the Temporal server has no %s/%s search attributes, so runs start without them "
                "(`gecko-temporal list` and `--query 'GeckoPipeline=\"...\"'` cannot find them; checked "
                "again every %d s); register them once with: %s (%s)",
                PIPELINE_ATTRIBUTE,
                STATUS_ATTRIBUTE,
                RECHECK_AFTER,
                REGISTER_HINT,
                exc.message,
            )
    return await client.start_workflow(*args, **kwargs)


async def ensure_search_attributes(client: Client, out: Any = None) -> bool:
    """Register GeckoPipeline and GeckoStatus on the client's namespace if they are missing and the
    server lets us (a dev server does); else say once how to register them. True if they exist."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest

    out = out or sys.stderr
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        known = set(listed.custom_attributes) | set(listed.system_attributes)
        missing = {k: v for k, v in ATTRIBUTES.items() if k not in known}
        if not missing:
            _without_attributes.pop(id(client), None)
            return True
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={k: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for k in missing},
            )
        )
        print(
            f"registered search attributes {', '.join(missing)} on namespace {client.namespace}", file=out, flush=True
        )
        _without_attributes.pop(id(client), None)  # runs from this client may carry them now
        return True
    except RPCError as exc:
        print(
            f"note: could not register the {PIPELINE_ATTRIBUTE}/{STATUS_ATTRIBUTE} search attributes "
            f"({exc.message}); runs work without them, but to find runs by pipeline ask an admin to run: "
            f"{REGISTER_HINT}",
            file=out,
            flush=True,
        )
        return False


def ui_url(session_id: str, namespace: str = "default") -> str | None:
    """The Temporal UI page of a run on the embedded dev server, if it serves a UI."""
    from gecko_temporal.temporal.embedded import running_server

    server = running_server()
    if server is None or not server.ui_port:
        return None
    return f"http://127.0.0.1:{server.ui_port}/namespaces/{namespace}/workflows/{session_id}"


def announce(session_id: str) -> None:
    """With GECKO_UI=1 on the embedded default, print where the run's UI page is."""
    if os.environ.get("GECKO_UI", "") not in ("", "0"):
        url = ui_url(session_id)
        if url:
            print(f"Temporal UI for {session_id}: {url}", file=sys.stderr, flush=True)
        from importlib.metadata import entry_points  # pages installed beside us: the live page (ops/ui)

        for hook in entry_points(group="gecko_temporal.run_pages") if url else ():
            page = hook.load()(session_id)
            if page:
                print(f"Live page for {session_id}: {page}", file=sys.stderr, flush=True)


async def list_sessions(
    client: Client,
    pipeline: str | None = None,
    status: str | None = None,
    limit: int = 50,
    tenant: str | None = None,
    version: str | None = None,
) -> list[dict[str, Any]]:
    """Sessions (runs) on the server, newest first, filtered by pipeline, GeckoStatus, tenant and the
    Worker Deployment version they are pinned to (``ID`` or ``DEPLOYMENT:ID``)."""
    query = "WorkflowType = 'GeckoWorkflow'"
    if pipeline:
        query += f" AND {PIPELINE_ATTRIBUTE} = {_quote(pipeline)}"
    if status:
        query += f" AND {STATUS_ATTRIBUTE} = {_quote(status)}"
    if tenant:
        query += f" AND {TENANT_ATTRIBUTE} = {_quote(tenant)}"
    if version:
        from gecko_temporal.temporal.deployments import resolve_version

        query += " AND " + await resolve_version(client, version)
    rows = []
    async for wf in client.list_workflows(query, limit=limit):
        attrs = wf.typed_search_attributes
        rows.append(
            {
                "session": wf.id,
                "pipeline": attrs.get(PIPELINE_KEY),
                "status": attrs.get(STATUS_KEY),
                "temporal_status": wf.status.name.lower() if wf.status else None,
                "started": wf.start_time.isoformat() if wf.start_time else None,
                "closed": wf.close_time.isoformat() if wf.close_time else None,
                # flow control: absent on runs started without its attributes
                "tenant": attrs.get(TENANT_KEY),
                "cost_usd": attrs.get(COST_KEY),
                "tokens": attrs.get(TOKENS_KEY),
                "version": attrs.get(VERSION_KEY),
            }
        )
    return rows


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# -- flow control (issue 25): tenant, cost and tokens -------------------------------------------
TENANT_KEY = SearchAttributeKey.for_keyword(TENANT_ATTRIBUTE)
COST_KEY = SearchAttributeKey.for_float(COST_ATTRIBUTE)
TOKENS_KEY = SearchAttributeKey.for_int(TOKENS_ATTRIBUTE)
FLOW_ATTRIBUTES = {TENANT_ATTRIBUTE: "Keyword", COST_ATTRIBUTE: "Double", TOKENS_ATTRIBUTE: "Int"}
_flow_known: dict[int, tuple[bool, float]] = {}  # client -> (the server has them, when checked)


async def ensure_flow_attributes(client: Client) -> bool:
    """Register GeckoTenant, GeckoCostUsd and GeckoTokens if missing and the server lets us (a dev
    server does); True if they exist. Checked once a minute per client."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest

    known = _flow_known.get(id(client))
    if known is not None and (known[0] or time.monotonic() - known[1] < RECHECK_AFTER):
        return known[0]
    kinds = {
        "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
        "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    }
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        missing = {k: kinds[v] for k, v in FLOW_ATTRIBUTES.items() if k not in listed.custom_attributes}
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
            )
        ok = True
    except RPCError as exc:
        _log.warning(
            "flow control's search attributes (%s) are missing and could not be registered (%s): runs "
            "start without them, so `gecko-temporal list --tenant` and cost sorting cannot find them",
            ", ".join(f"{k} {v}" for k, v in FLOW_ATTRIBUTES.items()),
            exc.message,
        )
        ok = False
    _flow_known[id(client)] = (ok, time.monotonic())
    return ok


async def flow_attributes(client: Client, tenant: str | None) -> list[SearchAttributePair[Any]]:
    """What a run starts with besides GeckoPipeline/GeckoStatus: its tenant (if any) and zero cost,
    so the workflow keeps the cost current; nothing when the server lacks the attributes."""
    if not await ensure_flow_attributes(client):
        return []
    pairs: list[SearchAttributePair[Any]] = [SearchAttributePair(COST_KEY, 0.0), SearchAttributePair(TOKENS_KEY, 0)]
    if tenant is not None:
        pairs.append(SearchAttributePair(TENANT_KEY, tenant))
    return pairs
