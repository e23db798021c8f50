"""The compile-time checks of a :class:`~gecko_temporal.core.build.graph.Workflow`: its entry
point, edges, ``history=`` references, conditional edges and path maps, static cycles and reducers.
Each check adds a person's sentence to ``problems``, so one GraphError can list them all. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gecko_temporal.core.errors import GraphError, suggest
from gecko_temporal.core.spec import END, KIND_FUNCTION
from gecko_temporal.core.state import REDUCERS, custom_reducer

if TYPE_CHECKING:
    from gecko_temporal.core.build.nodedef import NodeDef, Router


def structure_problems(
    name: str, nodes: Mapping[str, NodeDef], entry: str | None, edges: Sequence[tuple[str, str]]
) -> tuple[list[str], dict[str, list[str]], dict[str, list[str]]]:
    """The problems of the entry point, edges and ``history=`` references, with each node's
    successors and predecessors along the edges that join two nodes."""
    problems: list[str] = []
    names = list(nodes)
    if not names:
        problems.append(f'workflow "{name}" has no nodes: add one with add_node()')
    if entry is None:
        if names:
            problems.append(f'workflow "{name}" has no entry point: call set_entry_point("{names[0]}")')
    elif entry not in nodes:
        problems.append(f'entry point "{entry}" is not a node{suggest(entry, names)}')
    successors: dict[str, list[str]] = {n: [] for n in names}
    predecessors: dict[str, list[str]] = {n: [] for n in names}
    for source, target in edges:
        bad = [n for n in (source, target) if n not in nodes]
        for n in bad:
            problems.append(f'edge "{source}" -> "{target}": no node named "{n}"{suggest(n, names)}')
        if source == target:
            problems.append(f'edge "{source}" -> "{target}" loops on itself; use Next to repeat a node')
        elif not bad:
            successors[source].append(target)
            predecessors[target].append(source)
    for d in nodes.values():
        for ref in d.options.history or ():
            if ref not in nodes:
                problems.append(f'node "{d.name}": history=[...] names no node "{ref}"{suggest(ref, names)}')
    return problems, successors, predecessors


def check_routers(nodes: Mapping[str, NodeDef], routers_in: Sequence[Router], problems: list[str]) -> dict[str, Router]:
    """Each conditional edge's router by source node; what is wrong with them goes to ``problems``."""
    names = list(nodes)
    routers: dict[str, Router] = {}
    if routers_in and END in nodes:
        problems.append(f'a node is named "{END}", which routers return to go nowhere (END); rename the node')
    for r in routers_in:
        source_def = nodes.get(r.source)
        if source_def is None:
            problems.append(
                f'conditional edges from "{r.source}": no node named "{r.source}"{suggest(r.source, names)}'
            )
            continue
        if r.source in routers:
            problems.append(
                f'node "{r.source}" has conditional edges twice (routers {routers[r.source].name} '
                f"and {r.name}); give it one router that returns a list of targets"
            )
        routers[r.source] = r
        if source_def.kind != KIND_FUNCTION:
            problems.append(
                f'conditional edges from {source_def.kind} node "{r.source}": a router runs in its '
                "source's activity; add a function node after it and route from that"
            )
        if r.path_map is not None:
            if not r.path_map:
                problems.append(f'the path map of node "{r.source}" is empty; omit it to route to node names')
            for choice, target in r.path_map.items():
                if not isinstance(target, str) or (target != END and target not in nodes):
                    hint = suggest(target, names) if isinstance(target, str) else ""
                    problems.append(
                        f'the path map of node "{r.source}" maps {choice!r} to {target!r}, which is no node{hint}'
                    )
    return routers


def check_reducers(reducers: Mapping[str, Any] | None) -> dict[str, str]:
    """The reducers by state key, checked; raise GraphError listing every bad one. A reducer of
    the user's own (a module-level pure function, or its ``"module:qualname"``) is kept by name."""
    if reducers is None:
        return {}
    if not isinstance(reducers, Mapping):
        raise GraphError(f"reducers must be a dict of state key -> reducer name, got {type(reducers).__name__}")
    problems = []
    named: dict[str, str] = {}
    for key, how in reducers.items():
        if not isinstance(key, str):
            problems.append(f"reducers: state keys are str, got {key!r}")
        elif callable(how) or (isinstance(how, str) and ":" in how):
            name, why = custom_reducer(how)
            if name is None:
                problems.append(f"reducers[{key!r}]: {why}")
            else:
                named[key] = name
        elif how not in REDUCERS:
            problems.append(
                f"reducers[{key!r}] = {how!r} is no reducer{suggest(str(how), REDUCERS)} (valid: "
                f"{', '.join(REDUCERS)}, or a module-level function of yours)"
            )
        else:
            named[key] = how
    if problems:
        raise GraphError(
            f"invalid reducers ({len(problems)} problem{'s' * (len(problems) > 1)}): " + "; ".join(problems), problems
        )
    return {k: v for k, v in named.items() if v != "replace"}


def edge_sources(source: Any, target: Any) -> list[str]:
    """The sources of ``add_edge(source, target)`` when it is no plain edge of two names: a waiting
    edge's list of node names; raise GraphError naming the call for anything else."""
    if not isinstance(target, str):
        raise GraphError(f"add_edge({source!r}, {target!r}): the target is a node name (str)")
    if isinstance(source, (list, tuple)) and source and all(isinstance(s, str) for s in source):
        return list(source)
    raise GraphError(
        f"add_edge({source!r}, {target!r}): the source is a node name (str), or a waiting edge's "
        "non-empty list of node names"
    )


def port_problems(nodes: Mapping[str, NodeDef], to_end: Sequence[str], interrupt_before: Sequence[str]) -> list[str]:
    """The problems of LangGraph's constructs: ``add_edge(node, END)`` and ``interrupt_before``."""
    names = list(nodes)
    problems = [f'edge "{n}" -> END: no node named "{n}"' for n in dict.fromkeys(to_end) if n not in nodes]
    for n in interrupt_before:
        if n not in nodes:
            problems.append(f'interrupt_before names no node "{n}"{suggest(n, names)}')
        elif nodes[n].kind != KIND_FUNCTION:
            problems.append(
                f'interrupt_before names {nodes[n].kind} node "{n}": only function nodes wait before '
                "running (a WaitForInput node before it does the same)"
            )
    return problems


def find_cycle(names: list[str], successors: dict[str, list[str]]) -> list[str]:
    """Return one static cycle as a node path (first node repeated at the end), or []."""
    color = {n: 0 for n in names}  # 0 new, 1 on the stack, 2 done
    for root in names:
        if color[root]:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path = [root]
        color[root] = 1
        while stack:
            node, i = stack[-1]
            succ = successors[node]
            if i < len(succ):
                stack[-1] = (node, i + 1)
                nxt = succ[i]
                if color[nxt] == 1:
                    return path[path.index(nxt) :] + [nxt]
                if color[nxt] == 0:
                    color[nxt] = 1
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                color[node] = 2
                stack.pop()
                path.pop()
    return []
