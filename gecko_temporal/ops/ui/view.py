"""The live page's pure logic: a layered layout of a compiled graph, each node's status from
``gecko_state`` and the run's events, and what may be shown of a run. No temporalio, no aiohttp.

The page renders everything with DOM text nodes (never ``innerHTML``), so names and values are
escaped by construction; :func:`escape` is for the little HTML the server writes itself.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

#: The statuses a node is drawn with (``data-status``).
NOT_RUN, RUNNING, COMPLETED, FAILED, WAITING, CACHED = "not_run", "running", "completed", "failed", "waiting", "cached"
STATUSES = (NOT_RUN, RUNNING, COMPLETED, FAILED, WAITING, CACHED)

# Box sizes and gaps of the layout (SVG user units).
NODE_W, NODE_H = 170, 46
GAP_X, GAP_Y = 36, 64
PAD = 14  # inside a group (a Team, a subgraph), around its parts
TITLE_H = 22  # a group's title line
MEMBER_W, MEMBER_H = 120, 32
PREVIEW = 2_000  # characters of a value shown before "... (N characters)"

_INSTANCE = re.compile(r"^(.*)\[(\d+)\]$")


def escape(text: object) -> str:
    """``text`` safe inside HTML text and attribute values (quotes too)."""
    return html.escape(str(text), quote=True)


def base_name(name: str) -> str:
    """``Node`` for a Send instance ``Node[3]``; other names unchanged."""
    m = _INSTANCE.match(name)
    return m.group(1) if m else name


def preview(value: Any, limit: int = PREVIEW) -> str:
    """``value`` as JSON text for a person, cut to ``limit`` characters with its full size said."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1, default=str)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


# -- layout -----------------------------------------------------------------------------------------
def _edges(nodes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Drawn edges of a plain spec's nodes: static (``edge``) and a router's (``conditional``)."""
    names = {n["name"] for n in nodes}
    out: list[dict[str, Any]] = []
    for n in nodes:
        for s in n.get("successors") or ():
            if s in names:
                out.append({"source": n["name"], "target": s, "kind": "edge", "label": ""})
        router = n.get("router")
        if router:
            targets = n.get("route_targets")
            if targets is None:  # any node: one labelled stub edge
                out.append(
                    {"source": n["name"], "target": None, "kind": "conditional", "label": f"{router} (any node)"}
                )
            for t in targets or ():
                if t in names:
                    out.append({"source": n["name"], "target": t, "kind": "conditional", "label": router})
    return out


def layers(entry: str | None, nodes: Sequence[Mapping[str, Any]], edges: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Each node's layer: its longest path from the entry, back edges (loops) left out; nodes the
    entry does not reach (jump targets) start their own chains after it, in node order."""
    order = [n["name"] for n in nodes]
    succ: dict[str, list[str]] = {name: [] for name in order}
    for e in edges:
        if e["target"] is not None and e["source"] in succ and e["target"] in succ:
            succ[e["source"]].append(e["target"])
    # Depth-first from the entry, then from every node not reached yet: edges to a node on the
    # stack close a loop and are not followed; the rest form a DAG in reverse post-order.
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    post: list[str] = []
    forward: dict[str, list[str]] = {name: [] for name in order}
    roots = ([entry] if entry in succ else []) + order
    for root in roots:
        if root in state:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            name, it = stack[-1]
            nxt = next(iter(it), None)
            if nxt is None:
                state[name] = 2
                post.append(name)
                stack.pop()
            elif state.get(nxt) == 1:
                continue  # a back edge: a loop
            else:
                forward[name].append(nxt)
                if nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(succ[nxt])))
    layer = dict.fromkeys(order, 0)
    for name in reversed(post):  # a topological order of the forward edges
        for t in forward[name]:
            layer[t] = max(layer[t], layer[name] + 1)
    return layer


def layout(spec: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Boxes and edges of a plain (expanded) spec: ``{"width", "height", "nodes", "edges"}``.

    Each node: ``name`` (its full name: ``Parent/child`` inside a subgraph), ``label``, ``kind``,
    ``x``, ``y``, ``w``, ``h``, ``layer`` and, for groups, ``members`` (a Team's: boxes with
    ``name`` ``Team/member``) or ``inner`` (a subgraph's own layout, nested)."""
    nodes = list(spec.get("nodes") or ())
    edges = _edges(nodes)
    layer = layers(spec.get("entry"), nodes, edges)
    sized: dict[str, dict[str, Any]] = {}
    for n in nodes:
        box: dict[str, Any] = {"name": prefix + n["name"], "label": n["name"], "kind": n.get("kind") or "function"}
        team = n.get("team")
        child = n.get("subgraph")
        if team:
            members = [m["name"] for m in team.get("members") or ()]
            box["strategy"] = team.get("strategy")
            box["w"] = max(NODE_W, len(members) * (MEMBER_W + PAD) + PAD)
            box["h"] = TITLE_H + MEMBER_H + 2 * PAD
            box["members"] = [
                {
                    "name": f"{box['name']}/{m}",
                    "label": m,
                    "x": PAD + i * (MEMBER_W + PAD),
                    "y": TITLE_H + PAD,
                    "w": MEMBER_W,
                    "h": MEMBER_H,
                }
                for i, m in enumerate(members)
            ]
        elif child:
            inner = layout(child, prefix=box["name"] + "/")
            box["inner"] = inner
            box["graph"] = child.get("name")
            box["w"] = max(NODE_W, inner["width"] + 2 * PAD)
            box["h"] = inner["height"] + TITLE_H + 2 * PAD
        else:
            box["w"], box["h"] = NODE_W, NODE_H
            if box["kind"] == "wait":
                box["prompt"] = n.get("wait_prompt") or ""
        box["layer"] = layer[n["name"]]
        sized[n["name"]] = box
    rows: dict[int, list[str]] = {}
    for n in nodes:
        rows.setdefault(layer[n["name"]], []).append(n["name"])
    widths = {r: sum(sized[m]["w"] for m in row) + GAP_X * (len(row) - 1) for r, row in rows.items()}
    width = max(widths.values(), default=NODE_W)
    y = 0
    for r in sorted(rows):
        row = rows[r]
        x = (width - widths[r]) / 2
        for name in row:
            sized[name]["x"], sized[name]["y"] = x, y
            x += sized[name]["w"] + GAP_X
        y += max(sized[m]["h"] for m in row) + GAP_Y
    drawn = [
        dict(e, source=prefix + e["source"], target=None if e["target"] is None else prefix + e["target"])
        for e in edges
    ]
    entry = spec.get("entry")
    return {
        "width": width,
        "height": max(y - GAP_Y, NODE_H),
        "entry": prefix + entry if entry else None,
        "nodes": [sized[n["name"]] for n in nodes],
        "edges": drawn,
    }


# -- statuses ---------------------------------------------------------------------------------------
def node_statuses(
    names: Sequence[str],
    gecko_state: Mapping[str, Any] | None,
    events: Sequence[Mapping[str, Any]] = (),
    run_status: str | None = None,
    events_complete: bool = False,
) -> dict[str, dict[str, Any]]:
    """``{node: {"status", "runs", "instances"}}`` for every name in ``names``.

    Events (oldest first: node_started, node_finished, waiting) give the history; ``gecko_state``
    (``completed``, ``running``, ``waiting``) is the truth now and wins. ``runs`` counts finished
    executions, ``instances`` the Send instances (the most that ran at once, or ``Node[i]`` names).
    With ``events_complete`` (the whole stream was read), a node that ``gecko_state`` lists as
    completed but that no event shows running is ``cached``: its result was kept from before (an
    earlier run of a rewound session, or events the stream no longer holds)."""
    out: dict[str, dict[str, Any]] = {n: {"status": NOT_RUN, "runs": 0, "instances": 0} for n in names}
    seen_instances: dict[str, set[str]] = {n: set() for n in names}
    ran: set[str] = set()
    in_flight: dict[str, int] = dict.fromkeys(names, 0)
    widest: dict[str, int] = dict.fromkeys(names, 0)

    def note(raw: str | None) -> str | None:
        if not raw:
            return None
        name = base_name(raw)
        if name not in out:
            return None
        if raw != name:
            seen_instances[name].add(raw)
        return name

    for e in events:
        name = note(e.get("node"))
        if name is None:
            continue
        kind = e.get("type")
        if kind == "node_started":
            out[name]["status"] = RUNNING
            ran.add(name)
            in_flight[name] += 1
            widest[name] = max(widest[name], in_flight[name])
        elif kind == "node_finished":
            status = e.get("status") or COMPLETED
            in_flight[name] = max(0, in_flight[name] - 1)
            if in_flight[name] == 0:  # the last of a fan-out's instances decides
                out[name]["status"] = FAILED if status in ("failed", "cancelled") else COMPLETED
            elif status in ("failed", "cancelled"):
                out[name]["status"] = FAILED
            ran.add(name)
        elif kind == "waiting":
            out[name]["status"] = WAITING
            ran.add(name)
    gs = gecko_state or {}
    completed_counts: dict[str, int] = {}
    for raw in gs.get("completed") or ():
        name = note(raw)
        if name is not None:
            completed_counts[name] = completed_counts.get(name, 0) + 1
    for name, count in completed_counts.items():
        out[name]["runs"] = count
        if out[name]["status"] in (NOT_RUN, RUNNING, WAITING):
            out[name]["status"] = CACHED if (events_complete and name not in ran) else COMPLETED
    for raw in gs.get("running") or ():
        name = note(raw)
        if name is not None:
            out[name]["status"] = RUNNING
    for raw in gs.get("queued") or ():
        name = note(raw)
        if name is not None and out[name]["status"] == NOT_RUN:
            out[name]["status"] = RUNNING
    for raw in gs.get("waiting") or {}:
        name = note(raw)
        if name is not None:
            out[name]["status"] = WAITING
    if run_status in ("completed", "failed", "cancelled", "terminated", "timed_out"):
        for info in out.values():  # a finished run has nothing running or waiting
            if info["status"] in (RUNNING, WAITING):
                info["status"] = FAILED if run_status != "completed" else COMPLETED
    for name, raws in seen_instances.items():
        wide = max(len(raws), widest[name])
        out[name]["instances"] = wide if wide > 1 else 0
    return out


def all_names(graph: Mapping[str, Any]) -> list[str]:
    """Every drawn node's name in a :func:`layout` (groups' members and inner nodes too)."""
    names: list[str] = []
    for n in graph.get("nodes") or ():
        names.append(n["name"])
        names.extend(m["name"] for m in n.get("members") or ())
        if n.get("inner"):
            names.extend(all_names(n["inner"]))
    return names


def colour(graph: dict[str, Any], statuses: Mapping[str, Mapping[str, Any]], child_statuses: Any = None) -> None:
    """Write each node's status into ``graph`` (in place): top-level nodes from ``statuses``; a
    Team's members and a subgraph's inner nodes take their group's status unless
    ``child_statuses[group]`` (the child run's own statuses) says more."""
    for n in graph.get("nodes") or ():
        info = statuses.get(n["name"]) or {"status": NOT_RUN, "runs": 0, "instances": 0}
        n.update(status=info["status"], runs=info["runs"], instances=info["instances"])
        for m in n.get("members") or ():
            m["status"] = info["status"]
        if n.get("inner"):
            own = (child_statuses or {}).get(n["name"]) or {}
            same = {"status": info["status"], "runs": 0, "instances": 0}
            colour(n["inner"], {name: own.get(name) or same for name in all_names(n["inner"])})


def send_targets(graph: dict[str, Any], statuses: Mapping[str, Mapping[str, Any]]) -> None:
    """Label a conditional edge ``Send`` when its target ran as Send instances (the compiled spec
    does not say which routers Send; the run does)."""
    for e in graph.get("edges") or ():
        target = e.get("target")
        if e["kind"] == "conditional" and target and (statuses.get(target) or {}).get("instances"):
            e["kind"] = "send"
            e["label"] = f"Send: {e['label']}"


# -- what may be shown ------------------------------------------------------------------------------
# gecko_state keys that hold no user value: names, counts, statuses.
_SAFE_KEYS = ("status", "step", "layer", "run", "completed", "running", "queued", "nodes", "workflow", "children")
HIDDEN = "(hidden: this run's payloads are encrypted; open the page with the ui's token to read values)"


def redact_state(gecko_state: Mapping[str, Any], allowed: bool) -> dict[str, Any]:
    """``gecko_state`` as the page may show it: all of it when ``allowed``, else names, counts and
    statuses only (waiting nodes keep their prompt, a static string of the graph, and lose input and
    payload; every state value, edit and rejection preview goes)."""
    if allowed:
        return dict(gecko_state)
    out = {k: gecko_state[k] for k in _SAFE_KEYS if k in gecko_state}
    out["waiting"] = {
        node: {"prompt": (w or {}).get("prompt", ""), "interrupted": bool((w or {}).get("interrupted")), "hidden": True}
        for node, w in (gecko_state.get("waiting") or {}).items()
    }
    out["hidden"] = HIDDEN
    return out


def redact_event(event: Mapping[str, Any], allowed: bool) -> dict[str, Any]:
    """An event as the page may show it: without ``data`` and ``error`` unless ``allowed``."""
    if allowed:
        return dict(event)
    return {k: v for k, v in event.items() if k not in ("data", "error")}
