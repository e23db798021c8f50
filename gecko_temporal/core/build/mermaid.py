"""Draw a graph as a Mermaid flowchart. Pure: no temporalio import.

Node kinds are drawn generically: a node whose object has parts of its own (a Team's members, or
later a sub-workflow's nodes, see :func:`_parts`) is a block (a Mermaid ``subgraph``) that edges
connect to; other kinds get a shape from :data:`_SHAPES`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from gecko_temporal.core.spec import END, KIND_TEAM, KIND_WAIT

# (open, close) of a node's shape by kind; unknown kinds are drawn as plain boxes
_SHAPES = {KIND_WAIT: ("{{", "}}")}
_START, _END = "__start__", "__end__"
# words Mermaid's flowchart grammar reads as keywords wherever an id stands
_RESERVED = {
    "end",
    "subgraph",
    "graph",
    "flowchart",
    "style",
    "classdef",
    "class",
    "click",
    "linkstyle",
    "direction",
    "default",
    "call",
    "href",
    "interpolate",
    "accTitle",
    "acctitle",
    "accdescr",
}


def _label(text: str) -> str:
    # Mermaid reads a quoted label; quotes inside it are written as an HTML entity
    return '"' + str(text).replace('"', "#quot;") + '"'


def _parts(d: Any) -> tuple[str, list[str]] | None:
    """(block title, part labels) for a node drawn as a block, or None."""
    if d.kind == KIND_TEAM:
        team = d.obj
        strategy = getattr(team.strategy, "value", team.strategy)
        return f"{d.name} (Team {strategy})", list(team.names)
    inner = getattr(d.obj, "nodes", None)  # a Workflow used as a node (a sub-workflow)
    if isinstance(inner, dict) and hasattr(d.obj, "draw_mermaid"):
        return f"{d.name} ({d.kind} {getattr(d.obj, 'name', '')})", list(inner)
    return None


def draw(
    name: str, entry: str | None, nodes: Sequence[Any], edges: Sequence[tuple[str, str]], routers: Sequence[Any]
) -> str:
    ids: dict[str, str] = {}
    if nodes and nodes[0].name == _START:  # the pass-through START node is the start circle itself
        ids[_START], nodes = _START, nodes[1:]
    for i, d in enumerate(nodes):
        base = re.sub(r"[^A-Za-z0-9_]", "_", d.name) or "node"
        if base.lower() in _RESERVED or base[0].isdigit() or base[0] in "ox":
            base = "n_" + base  # a keyword, or a name Mermaid could read as part of an edge
        ids[d.name] = base if base not in ids.values() and base not in (_START, _END) else f"{base}_{i}"
    lines = ["---", f"title: {name}", "---", "flowchart TD", f"    {_START}([start])"]
    send_targets = {t for r in routers if r.sends for t in r.targets()}
    for d in nodes:
        nid = ids[d.name]
        block = _parts(d)
        if block is not None:
            title, parts = block
            lines.append(f"    subgraph {nid}[{_label(title)}]")
            lines.append("        direction LR")
            for j, part in enumerate(parts):
                lines.append(f"        {nid}__{j}[{_label(part)}]")
            lines.append("    end")
            continue
        text = d.name
        if d.kind == KIND_WAIT:
            text += " (waits for input)"
        if d.name in send_targets:
            text += " (Send)"
        open_, close = _SHAPES.get(d.kind, ("[", "]"))
        lines.append(f"    {nid}{open_}{_label(text)}{close}")
    uses_end = False
    if entry in ids and entry != _START:
        lines.append(f"    {_START} --> {ids[entry]}")
    for source, target in edges:
        if source in ids and target in ids:
            lines.append(f"    {ids[source]} --> {ids[target]}")
    for r in routers:
        if r.source not in ids:
            continue
        src = ids[r.source]
        if r.path_map is None:  # any node: drawn as one labelled edge to nowhere in particular
            lines.append(f"    {src} -.->|{_label(r.name + ' (any node)')}| {_END}")
            uses_end = True
            continue
        by_target: dict[str, list[str]] = {}
        for key, target in r.path_map.items():
            by_target.setdefault(target, []).append(str(key))
        for target, keys in by_target.items():
            if target == END:
                uses_end = True
            dst = _END if target == END else ids.get(target)
            if dst is None:
                continue
            label = ", ".join(k for k in keys if k != target) or target
            if r.sends and target != END:
                lines.append(f"    {src} ==>|{_label('Send: ' + label)}| {dst}")
            else:
                lines.append(f"    {src} -.->|{_label(label)}| {dst}")
    if uses_end:
        lines.insert(5, f"    {_END}([end])")
    return "\n".join(lines) + "\n"
