"""Team: a multi-agent group that runs as one node, each member as its own Temporal activity.

Pure: no temporalio import. This module holds the user-facing objects and compiles a Team to a
TeamSpec; :mod:`gecko_temporal.core.team_run` decides a running Team (who starts, who won, what it
outputs) and the workflow runs the member activities it asks for. ``MemberResult`` and
``MemberError`` cross the wire and are defined in :mod:`gecko_temporal.core.spec`; import them from here
or from ``gecko_temporal``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any

from gecko_temporal.core.build import adapters
from gecko_temporal.core.build.nodes import (
    DEFAULT_HEARTBEAT,
    DEFAULT_TIMEOUT,
    Callee,
    StepOptions,
    introspect,
    options_of,
)
from gecko_temporal.core.errors import GraphError
from gecko_temporal.core.flow_limits import limit_problem
from gecko_temporal.core.spec import MemberError, MemberResult, MemberSpec, RetrySpec, TeamSpec

if TYPE_CHECKING:
    from gecko_temporal.core.build.graph import Workflow

__all__ = ["RACE_HEARTBEAT", "ExecutionStrategy", "MemberError", "MemberResult", "Team", "member_name"]

#: Race members heartbeat often so a loser learns of its cancellation within about a second.
RACE_HEARTBEAT = 1.5


class ExecutionStrategy(str, Enum):
    """How a Team runs its members.

    ALL: every member runs; the Team finishes when all have (failures are recorded, not raised).
    RACE: the first member to succeed wins; the others are cancelled.
    QUORUM: the first ``quorum`` members to succeed win; the others are cancelled.
    """

    ALL = "all"
    RACE = "race"
    QUORUM = "quorum"


def member_name(member: Any) -> str:
    """A member's display name: its ``name`` attribute, else its function or class name (an agent
    of a supported library, or a bound method of any object, is named after the object)."""
    name = getattr(member, "name", None)
    if isinstance(name, str) and name:
        return name
    step_options = options_of(member)
    if step_options is not None and step_options.name:
        return step_options.name
    return adapters.agent_name(member) or getattr(member, "__name__", None) or type(member).__name__


def _is_workflow(obj: Any) -> bool:
    from gecko_temporal.core.build.graph import Workflow  # graph.py imports this module

    return isinstance(obj, Workflow)


class Team:
    """A group of members (callables or agents with ``run``) used as one node.

    ``input_mapper(data, index)`` builds each member's input (a failure fails only that member).
    ``timeout``/``retries``/``retry`` are per-member defaults (a member's own ``@step`` options win);
    ``max_concurrency`` caps how many members run at once; ``quorum`` is QUORUM's winner count.
    """

    def __init__(
        self,
        members: Sequence[Any],
        strategy: ExecutionStrategy = ExecutionStrategy.ALL,
        input_mapper: Callable[[Any, int], Any] | None = None,
        *,
        quorum: int | None = None,
        max_concurrency: int | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        retry: RetrySpec | None = None,
        heartbeat_timeout: float | None = None,
        member_limits: dict[str, str] | None = None,
    ) -> None:
        problems = []
        try:
            strategy = ExecutionStrategy(strategy)
        except ValueError:
            problems.append(f"strategy must be one of {[s.value for s in ExecutionStrategy]}, got {strategy!r}")
        members = list(members)
        if not members:
            problems.append("a Team needs at least one member")
        if quorum is not None and (not isinstance(quorum, int) or not 1 <= quorum <= max(len(members), 1)):
            problems.append(f"quorum must be an int between 1 and the member count {len(members)}, got {quorum!r}")
        if quorum is not None and strategy is not ExecutionStrategy.QUORUM:
            problems.append("quorum is only used with ExecutionStrategy.QUORUM")
        if max_concurrency is not None and (not isinstance(max_concurrency, int) or max_concurrency < 1):
            problems.append(f"max_concurrency must be an int >= 1, got {max_concurrency!r}")
        if input_mapper is not None and not callable(input_mapper):
            problems.append(f"input_mapper must be callable as input_mapper(data, index), got {input_mapper!r}")
        self.callees: list[Callee] = []
        self.names: list[str] = []
        for i, member in enumerate(members):
            name = member_name(member)
            if name in self.names:  # the same agent twice (e.g. sampling): keep names unique
                name = f"{name}#{i + 1}"
            if _is_workflow(member):
                problems.append(
                    f'Team member {i} "{name}" is a Workflow; a Team member runs as one activity, so '
                    "add the workflow as its own node instead (wf.add_node(name, workflow) runs it as "
                    "a child workflow)"
                )
                self.names.append(name)
                continue
            try:
                self.callees.append(introspect(member, where=f'Team member {i} "{name}"'))
            except GraphError as exc:
                problems.extend(exc.problems)
            self.names.append(name)
        self.member_limits = dict(member_limits or {})
        unknown = sorted(set(self.member_limits) - set(self.names))
        if unknown:
            problems.append(
                f"member_limits names no member {unknown} (members: {', '.join(self.names)}); "
                'key it by member name, e.g. member_limits={"writer": "openai"}'
            )
        if problems:
            raise GraphError("invalid Team: " + "; ".join(problems), problems)
        self.members = members
        self.strategy = ExecutionStrategy(strategy)
        self.input_mapper = input_mapper
        self.quorum = quorum or 1
        self.max_concurrency = max_concurrency
        self.defaults = StepOptions(timeout=timeout, retries=retries, retry=retry, heartbeat_timeout=heartbeat_timeout)

    def _member_limit(
        self, wf: Workflow, node: str, name: str, own: StepOptions, node_options: StepOptions
    ) -> str | None:
        """A member's own limit (member_limits=, else its @step(limit=)), None when it has the node's."""
        limit = self.member_limits.get(name, own.limit)
        if limit is None or limit == node_options.limit:
            return None
        problem = limit_problem(f'{node}" member "{name}', limit, wf.limits)
        if problem:
            raise GraphError(problem)
        return limit

    def team_spec(self, wf: Workflow, node: str, node_options: StepOptions) -> TeamSpec:
        """Compile this Team (as node ``node`` of ``wf``) to its serializable spec."""
        members = []
        default_heartbeat = RACE_HEARTBEAT if self.strategy is not ExecutionStrategy.ALL else DEFAULT_HEARTBEAT
        for name, member, callee in zip(self.names, self.members, self.callees):
            own: StepOptions = options_of(member) or StepOptions()
            o = (
                StepOptions()
                .merged(**vars(self.defaults))
                .merged(
                    **{k: v for k, v in vars(own).items() if k in ("timeout", "retries", "retry", "heartbeat_timeout")}
                )
            )
            members.append(
                MemberSpec(
                    name=name,
                    activity_type=wf.activity_type(node, name),
                    start_to_close_timeout=o.timeout or node_options.timeout or DEFAULT_TIMEOUT,
                    heartbeat_timeout=o.heartbeat_timeout or default_heartbeat,
                    retry=o.retry_spec(),
                    takes_context=callee.context_param is not None,
                    limit=self._member_limit(wf, node, name, own, node_options),
                )
            )
        return TeamSpec(
            strategy=self.strategy.value, members=members, quorum=self.quorum, max_concurrency=self.max_concurrency
        )
