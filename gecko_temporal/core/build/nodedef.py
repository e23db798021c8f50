"""What the builder holds for each node (:class:`NodeDef`) and each conditional edge
(:class:`Router`), and the :class:`NodeCode` a worker runs for it. Pure: no temporalio import."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gecko_temporal.core.build.nodes import Callee, MemberCode, NodeCode, StepOptions
from gecko_temporal.core.spec import END, KIND_SUBGRAPH, KIND_TEAM

if TYPE_CHECKING:
    from gecko_temporal.core.build.team import Team


@dataclass
class Router:
    """Conditional edges from ``source``: the router's code and its path map (None: node names)."""

    source: str
    name: str
    callee: Callee
    path_map: dict[Any, str] | None
    sends: bool  # its return annotation names Send: its edges are drawn as fan-outs

    def targets(self) -> list[str]:
        return list(dict.fromkeys(v for v in (self.path_map or {}).values() if v != END))


@dataclass
class NodeDef:
    """A node as the builder holds it: its user code and options."""

    name: str
    kind: str
    obj: Any
    options: StepOptions
    callee: Callee | None = None

    def code(
        self,
        router: Router | None = None,
        node_names: Sequence[str] = (),
        reducers: Mapping[str, str] | None = None,
        breakpoint: bool = False,
    ) -> NodeCode:
        """What a worker runs for this node (with its router, if conditional edges leave it)."""
        if self.kind == KIND_TEAM:
            team: Team = self.obj
            return NodeCode(
                self.name,
                self.kind,
                input_mapper=team.input_mapper,
                members=tuple(MemberCode(n, c) for n, c in zip(team.names, team.callees)),
            )
        if self.kind == KIND_SUBGRAPH:  # runs as a child workflow; its nodes are served under its own key
            return NodeCode(self.name, self.kind)
        if router is None:
            return NodeCode(
                self.name,
                self.kind,
                callee=self.callee,
                reads=self.options.reads,
                history=self.options.history,
                cache=self.options.cache,
                breakpoint=breakpoint,
            )
        path_map = router.path_map if router.path_map is not None else {n: n for n in [*node_names, END]}
        return NodeCode(
            self.name,
            self.kind,
            callee=self.callee,
            reads=self.options.reads,
            history=self.options.history,
            router=router.callee,
            router_name=router.name,
            path_map=path_map,
            send_targets=frozenset(router.targets() if router.path_map is not None else node_names),
            cache=self.options.cache,
            reducers=dict(reducers) if reducers else None,
            breakpoint=breakpoint,
        )
