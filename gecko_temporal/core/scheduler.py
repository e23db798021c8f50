"""Which nodes run next, given what finished. Pure: no temporalio import.

The run proceeds in layers. A layer is every node that is ready at once; they run concurrently and
their results are applied in node order (the order nodes were added), never completion order, so a
replayed workflow makes the same decisions.

A node is ready when each of its predecessors has either delivered its output since the node last
ran, or can no longer run in this pass (it is not waiting, not queued by a jump, and not reachable
from any node that is). So a join waits for every live branch, a branch that jumped away does not
block it, and a node reachable only through ``Next`` is never waited for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from gecko_temporal.core.errors import GraphError, StepLimitError, suggest
from gecko_temporal.core.spec import ROUTER, SCHEDULING_EAGER, GraphSpec, Jump

#: Instances of a layer's fan-outs, at most. The run's window keeps Temporal's pending activities
#: bounded, but a fan-out's instances fan in within one run (a layer of them never pauses for
#: continue-as-new), and each instance costs about six history events: 2,000 keep a run's history
#: well inside what a worker replays within one workflow task.
FAN_OUT_LIMIT = 2_000


@dataclass
class Task:
    """One node execution the workflow must run: ``input`` is encoded JSON text."""

    node: str
    input: str
    step: int
    jumped: bool = False
    send: int | None = None  # a Send instance: its index in the fan-out (Send order)
    sends: int = 0  # a Send instance: how many instances its fan-out has
    resume: list[str] | None = None  # answers to the node's context.interrupt() calls so far (JSON text)
    source: str | None = None  # a Send instance: the node whose output (or router) sent it
    wait_until: float | None = None  # a wait carried across continue-as-new: when its timeout ends

    @property
    def key(self) -> str:
        """What names this task among the running ones: the node, or ``Node[i]`` for a Send instance."""
        return self.node if self.send is None else f"{self.node}[{self.send}]"


@dataclass
class _FanIn:
    """The instances of one fan-out that have finished, by Send index, and what they asked for."""

    outputs: list[str | None]
    jumps: list[Jump | None] = field(default_factory=list)
    routes: list[list[str]] = field(default_factory=list)
    sends: list[list[Jump]] = field(default_factory=list)
    redirected: bool = False
    left: int = 0  # instances still running

    @classmethod
    def expecting(cls, count: int) -> _FanIn:
        """A fan-out of ``count`` instances, none finished yet."""
        return cls([None] * count, [None] * count, [[] for _ in range(count)], [[] for _ in range(count)], left=count)


class Scheduler:
    """Decides layers; keeps the latest output of each node (``context.history``)."""

    def __init__(
        self,
        spec: GraphSpec,
        snapshot: dict[str, Any] | None = None,
        may_skip_loops: Callable[[], bool] = lambda: True,
    ) -> None:
        """``may_skip_loops``: asked only when it changes a decision, whether a node may stop waiting
        for a router it leads to itself (the workflow answers with ``workflow.patched``: runs recorded
        before waited for it, and replay that way)."""
        self.spec = spec
        self.eager = spec.scheduling == SCHEDULING_EAGER
        self._order = {n.name: i for i, n in enumerate(spec.nodes)}
        self._successors = {n.name: n.successors for n in spec.nodes}
        self._predecessors = {n.name: n.predecessors for n in spec.nodes}
        # Conditional edges (routers): a target counts its router's source among its predecessors
        # (a join waits for a router that may still choose it), and a source reaches its targets.
        self._route_targets: dict[str, frozenset[str] | None] = {}
        # By node: the routers it waits for only through a conditional edge, yet leads to itself (a
        # loop back, or any node for a router without a path map): they cannot choose it before it runs.
        self._loops_back: dict[str, frozenset[str]] = {}
        self._may_skip_loops = may_skip_loops
        self._reach = self._successors
        routed = [n for n in spec.nodes if n.router is not None]
        if routed:
            self._reach = {n.name: list(n.successors) for n in spec.nodes}
            extra: dict[str, list[str]] = {n.name: [] for n in spec.nodes}
            for n in routed:
                targets = list(self._order) if n.route_targets is None else n.route_targets
                self._route_targets[n.name] = None if n.route_targets is None else frozenset(n.route_targets)
                for t in targets:
                    if t not in self._reach[n.name]:
                        self._reach[n.name].append(t)
                    if n.name not in self._predecessors[t] and n.name not in extra[t]:
                        extra[t].append(n.name)
            self._predecessors = {k: [*v, *extra[k]] for k, v in self._predecessors.items()}
            self._loops_back = _loops_back(self._reach, extra)
        self._kinds = {n.name: n.kind for n in spec.nodes}
        self._fanin: dict[str, _FanIn] = {}  # fan-outs running: never across continue-as-new
        snap = snapshot or {}
        self.inbox: dict[str, dict[str, str]] = snap.get("inbox", {})  # node -> {pred: output}
        self.jumps: list[Jump] = [Jump(**j) for j in snap.get("jumps", [])]
        self.outputs: dict[str, str] = snap.get("outputs", {})  # latest output by node
        self.step: int = snap.get("step", 0)
        self.last_layer: list[str] = snap.get("last_layer", [])
        self.sends: list[Jump] = [Jump(**j) for j in snap.get("sends", [])]  # Sends not started yet

    # -- starting and jumping ------------------------------------------------------------------
    def start(self, input_text: str) -> None:
        self.jumps.append(Jump(node=self.spec.entry, input=input_text, source="input"))

    def check_target(self, node: str) -> str | None:
        """Return why ``node`` is no valid jump target, or None if it is one."""
        if node in self._order:
            return None
        return f'no node named "{node}"{suggest(node, self._order)}'

    def request_jump(self, node: str, input_text: str, source: str) -> None:
        """Queue a jump; it runs in the next layer that does not already run ``node``."""
        problem = self.check_target(node)
        if problem:
            raise GraphError(f"{source} jumped to an unknown node: {problem}")
        self.jumps.append(Jump(node=node, input=input_text, source=source))

    # -- layers ----------------------------------------------------------------------------
    def next_layer(self, running: Collection[str] = (), pending: int = 0) -> list[Task]:
        """Return the tasks to start now, in node order ([] when nothing is ready).

        Layered scheduling calls this when a layer has finished (``running`` empty): the result is
        the next layer. Eager scheduling calls it whenever nodes finish, with the nodes still
        running: a running node is live (a join waits for it) and is not started twice, so a jump
        to it waits until it has finished. ``pending``: how many activities are running (eager).
        """
        chosen: dict[str, Task] = {}
        deferred: list[Jump] = []
        for jump in self.jumps:  # FIFO; a second jump to one node waits for the next layer
            if jump.node in chosen or jump.node in running:
                deferred.append(jump)
            else:
                chosen[jump.node] = Task(jump.node, jump.input, 0, jumped=True)
        self.jumps = deferred

        # Pending Sends, by target in the order they were made: one fan-out per target per layer;
        # a target a jump runs in this layer, or that still runs, fans out later.
        fans: dict[str, list[Jump]] = {}
        if self.sends:
            waiting_sends: list[Jump] = []
            for send in self.sends:
                if send.node in chosen or send.node in running:
                    waiting_sends.append(send)
                else:
                    fans.setdefault(send.node, []).append(send)
            self.sends = waiting_sends

        jumped = bool(chosen) or bool(fans)
        blocked_by: set[str] | None = None
        inbox = self.inbox
        for node in sorted(inbox, key=self._order.__getitem__):
            if node in chosen or node in running or node in fans:
                continue  # a node that fans out keeps its edge inputs for a later layer
            delivered = inbox[node]
            predecessors = self._predecessors[node]
            # delivered holds only predecessors, so a full one means nothing is missing
            if len(delivered) < len(predecessors):
                missing = [p for p in predecessors if p not in delivered]
                loops = self._loops_back.get(node)
                if loops and any(p in loops for p in missing) and self._may_skip_loops():
                    missing = [p for p in missing if p not in loops]
                if blocked_by is None:  # computed once a layer, only when a join is partial
                    blocked_by = self._live_closure(chosen, running, fans)
                if any(p in blocked_by for p in missing) and (
                    self._reach is self._successors  # a DAG: no path from a node back to it
                    # Conditional edges may loop: a predecessor reachable only through this node
                    # itself cannot run before it, so it does not hold it.
                    or any(p in self._live_closure(chosen, running, fans, skip=node) for p in missing)
                ):
                    continue
            chosen[node] = Task(node, self._join_input(node, delivered), 0)
        if not chosen and not fans and not running and inbox and self._reach is not self._successors:
            # Looping conditional edges can leave two joins each waiting for what only the other
            # leads to; rather than end the run there, the first of them in node order goes on.
            node = min(inbox, key=self._order.__getitem__)
            chosen[node] = Task(node, self._join_input(node, inbox[node]), 0)

        # without jumps, chosen already is in node order (the inbox was walked sorted)
        tasks = sorted(chosen.values(), key=lambda t: self._order[t.node]) if jumped else list(chosen.values())
        if fans:  # each instance at its node's place in node order, then in Send order
            tasks = sorted(
                [
                    *tasks,
                    *(
                        Task(node, send.input, 0, send=i, sends=len(group), source=send.source)
                        for node, group in fans.items()
                        for i, send in enumerate(group)
                    ),
                ],
                key=lambda t: (self._order[t.node], t.send or 0),
            )
        if fans and pending + len(tasks) > FAN_OUT_LIMIT:
            sizes = ", ".join(f'"{node}" {len(group)}' for node, group in fans.items())
            raise GraphError(
                f"a fan-out would run {pending + len(tasks)} nodes in one layer (Sends: {sizes}); at most "
                f"{FAN_OUT_LIMIT} fan in within one run's history: send fewer, bigger items (a chunk of items per Send)"
            )
        if tasks and self.step + len(tasks) > self.spec.max_steps:
            raise StepLimitError(
                f'run "{self.spec.name}" reached its step limit of {self.spec.max_steps} node '
                f"executions (next layer: {', '.join(t.node for t in tasks)}); a Next loop may not "
                "terminate. Raise max_steps on the Workflow or execute() if the loop is intended."
            )
        step = self.step
        for task in tasks:
            if task.send is None:
                inbox.pop(task.node, None)  # a jump replaces the node's edge inputs
            step += 1
            task.step = step
        self.step = step
        for node, group in fans.items():
            self._fanin[node] = _FanIn.expecting(len(group))
        if tasks and not self.eager:  # eager runs say what finished last themselves (finished_last)
            self.last_layer = list(dict.fromkeys(t.node for t in tasks)) if fans else [t.node for t in tasks]
        return tasks

    def fan_in_again(self, tasks: Collection[Task]) -> None:
        """A layer the previous run paused with a fan-out in it goes on here: collect its Send
        instances again (those that finished there arrive with the rest when the layer ends)."""
        for task in tasks:
            if task.send is not None and task.node not in self._fanin:
                self._fanin[task.node] = _FanIn.expecting(task.sends)

    def fan_ins(self, nodes: Collection[str]) -> dict[str, Any]:
        """The fan-outs of ``nodes`` still collecting, as plain data: an eager run that continues as
        new while some of their instances wait carries what the others finished (see :meth:`take_fan_ins`)."""
        return {
            node: {
                "outputs": group.outputs,
                "jumps": [None if j is None else _plain_jump(j) for j in group.jumps],
                "routes": group.routes,
                "sends": [[_plain_jump(j) for j in js] for js in group.sends],
                "redirected": group.redirected,
                "left": group.left,
            }
            for node, group in self._fanin.items()
            if node in nodes
        }

    def take_fan_ins(self, plain: dict[str, Any]) -> None:
        """Go on collecting the fan-outs :meth:`fan_ins` carried from the previous run."""
        for node, group in plain.items():
            self._fanin[node] = _FanIn(
                list(group["outputs"]),
                [None if j is None else Jump(**j) for j in group["jumps"]],
                [list(r) for r in group["routes"]],
                [[Jump(**j) for j in js] for js in group["sends"]],
                bool(group["redirected"]),
                int(group["left"]),
            )

    def node_order(self, node: str) -> int:
        """The node's position in the graph (the order nodes were added): the order results apply in."""
        return self._order[node]

    def finished_last(self, nodes: list[str]) -> None:
        """Eager scheduling: ``nodes`` (in node order) finished together, after everything else so far."""
        self.last_layer = nodes

    def finish(
        self,
        task: Task,
        output: str,
        jump: Jump | None,
        *,
        redirected: bool = False,
        routes: Collection[str] = (),
        sends: Collection[Jump] = (),
    ) -> bool:
        """Record one finished task. Call in node order for every task of the layer.

        ``redirected``: a jump from outside redirected the run while this task ran, so its output is
        kept but where it would have led (successors, its own Next) is dropped. ``routes``: the
        targets its router chose; ``sends``: the Sends it (or its router) returned. A Send instance
        is collected until its whole fan-out has finished; the fan-out then finishes as one node
        whose output is the list of the instances' outputs in Send order (False until then).
        """
        if task.send is not None:
            group = self._fanin[task.node]
            group.outputs[task.send] = output
            group.jumps[task.send] = jump
            group.routes[task.send] = list(routes)
            group.sends[task.send] = list(sends)
            group.redirected = group.redirected or redirected
            group.left -= 1
            if group.left:
                return False
            del self._fanin[task.node]
            output = "[" + ",".join(o for o in group.outputs if o is not None) + "]"
            jump = next((j for j in group.jumps if j is not None), None)  # the first in Send order
            routes = list(dict.fromkeys(r for rs in group.routes for r in rs))
            sends = [s for ss in group.sends for s in ss]
            redirected = group.redirected
        self.outputs[task.node] = output
        if redirected:
            return True
        if jump is not None:
            self.request_jump(jump.node, jump.input, source=f'node "{task.node}"')
            return True  # the jumping node's static successors (and its router) are skipped
        for successor in self._successors[task.node]:
            self.inbox.setdefault(successor, {})[task.node] = output
        for target in routes:
            self.inbox.setdefault(self._check_route(task.node, target), {})[task.node] = output
        for send in sends:
            self.request_send(send.node, send.input, source=task.node, by_router=send.source == ROUTER)
        return True

    def request_send(self, node: str, input_text: str, source: str, by_router: bool = False) -> None:
        """Queue one Send instance of ``node``; the instances queued together run as one fan-out.

        A router's Sends must go to its path map's nodes; those a node returns itself, like ``Next``,
        may go to any node."""
        problem = self.check_target(node)
        if problem:
            raise GraphError(f'node "{source}" sent to an unknown node: {problem}')
        allowed = self._route_targets.get(source)
        if by_router and allowed is not None and node not in allowed:
            raise GraphError(self._not_a_target(source, node))
        if self._kinds[node] == "wait":
            raise GraphError(
                f'node "{source}" sent to WaitForInput node "{node}": a Send runs a node once '
                "per item, and a person answers a waiting node once; route to it instead"
            )
        self.sends.append(Jump(node=node, input=input_text, source=source))

    def _check_route(self, source: str, target: str) -> str:
        problem = self.check_target(target)
        if problem:
            raise GraphError(f'the router of node "{source}" chose an unknown node: {problem}')
        allowed = self._route_targets.get(source, frozenset())
        if allowed is not None and target not in allowed:
            raise GraphError(self._not_a_target(source, target))
        return target

    def _not_a_target(self, source: str, target: str) -> str:
        allowed = sorted(self._route_targets.get(source) or ())
        return (
            f'the router of node "{source}" chose "{target}", which is not in its path map '
            f"(valid: {', '.join(allowed) or 'none'}); add it to the path map"
        )

    def result(self) -> str:
        """The run's output: the last layer's node output, or a dict by name if it ran several."""
        if len(self.last_layer) == 1:
            return self.outputs.get(self.last_layer[0], "null")
        return _join_text((n, self.outputs.get(n, "null")) for n in self.last_layer)

    def snapshot(self) -> dict[str, Any]:
        """A slimmed, JSON-ready snapshot: enough to continue exactly where the run is."""
        return {
            "inbox": self.inbox,
            "jumps": [_plain_jump(j) for j in self.jumps],
            "outputs": self.outputs,
            "step": self.step,
            "last_layer": self.last_layer,
            **(
                {"sends": [_plain_jump(j) for j in self.sends]} if self.sends else {}
            ),  # only when some wait: snapshots of runs without Sends stay as before
        }

    # -- internals -----------------------------------------------------------------------------
    def _live_closure(
        self,
        chosen: dict[str, Task],
        running: Collection[str] = (),
        fans: Collection[str] = (),
        skip: str | None = None,
    ) -> set[str]:
        """Nodes that may still run in this pass: the live ones and all they can reach (leaving out
        ``skip``, the node that waits, and whatever only it leads to)."""
        frontier = [
            n
            for n in (
                *self.inbox,
                *chosen,
                *running,
                *fans,
                *(j.node for j in self.jumps),
                *(j.node for j in self.sends),
            )
            if n != skip
        ]
        seen = set(frontier)
        reach = self._reach
        while frontier:
            for successor in reach[frontier.pop()]:
                if successor not in seen and successor != skip:
                    seen.add(successor)
                    frontier.append(successor)
        return seen

    def _join_input(self, node: str, delivered: dict[str, str]) -> str:
        if len(delivered) == 1:
            return next(iter(delivered.values()))
        return _join_text((p, delivered[p]) for p in self._predecessors[node] if p in delivered)


def _loops_back(reach: dict[str, list[str]], routed_from: dict[str, list[str]]) -> dict[str, frozenset[str]]:
    """For each node, the routers among ``routed_from[node]`` (the sources whose conditional edges
    may choose it) that the node itself can reach: LangGraph never waits for those, and neither do we
    (waiting made a router without a path map, which reaches every node, serialize parallel branches)."""
    sources = {p for ps in routed_from.values() for p in ps}
    if not sources:
        return {}
    back: dict[str, list[str]] = {n: [] for n in reach}
    for n, targets in reach.items():
        for t in targets:
            back[t].append(n)
    reaches: dict[str, set[str]] = {}  # router -> every node that can reach it
    for p in sources:
        seen, frontier = {p}, [p]
        while frontier:
            for n in back[frontier.pop()]:
                if n not in seen:
                    seen.add(n)
                    frontier.append(n)
        reaches[p] = seen
    found = {n: frozenset(p for p in ps if n in reaches[p]) for n, ps in routed_from.items()}
    return {n: ps for n, ps in found.items() if ps}


def _plain_jump(jump: Jump) -> dict[str, Any]:
    return {"node": jump.node, "input": jump.input, "source": jump.source}


def _join_text(pairs: Any) -> str:
    """Build the JSON text of ``{name: value}`` from already-encoded values, without decoding."""
    return "{" + ",".join(f"{json.dumps(name)}:{text}" for name, text in pairs) + "}"
