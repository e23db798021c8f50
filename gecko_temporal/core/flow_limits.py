"""Named limits and tenants: what every run and worker shares of a provider's capacity. Pure.

A :class:`Limit` names a provider's capacity (``Limit("openai", per_second=2, concurrency=8)``);
nodes opt in with ``add_node(..., limit="openai")``. The limit is built on Temporal, never a
counter in a worker's memory that a restart would reset: a limited node's activity goes to the
limit's own task queue (:func:`limit_queue`), whose dispatch rate the *server* caps (its
task-queue rate limit, shared by every run and worker); workers poll that queue with at most
``concurrency`` activities at once each; a crashed worker's slots end with it (the server retries
its nodes elsewhere after their heartbeat timeout).

A tenant (``start(..., tenant="acme")``) is the fairness key of every activity its runs start:
under contention the server dispatches each tenant's tasks in proportion to its weight
(``gecko-temporal limits weight acme=2``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gecko_temporal.core.budget import budget_of
from gecko_temporal.core.errors import GraphError

#: Temporal's fairness keys are at most 64 bytes.
TENANT_BYTES = 64
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: What separates a task queue from the limit it serves: ``gecko.limit.openai``.
LIMIT_QUEUE_INFIX = ".limit."


@dataclass(frozen=True)
class Limit:
    """A named capacity shared by every run and worker.

    ``per_second``: node starts per second on the limit, over all runs (the server's task-queue rate
    limit). ``concurrency``: nodes of the limit one worker process runs at once.
    ``tokens_per_minute``: tokens the limit's nodes may spend in any minute, over all runs (held by
    a Temporal workflow: ``core/flow_tokens.py``); each call reserves ``estimate_tokens`` first
    (default: the mean of the limit's last settled calls) and settles at its reported usage.
    ``per_tenant``: each tenant's starts per second (a number), or ``{"*": default, "acme": cap}``
    (caps other than the default are weights on the default, so they also set fair shares).
    """

    name: str
    per_second: float | None = None
    concurrency: int | None = None
    tokens_per_minute: int | None = None
    estimate_tokens: int | None = None
    per_tenant: float | dict[str, float] | None = None

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            problems.append(
                f"Limit name must be 1-64 letters, digits, '_', '.' or '-' (starting with a letter or digit), "
                f"got {self.name!r}"
            )
        ps = self.per_second
        if ps is not None and (
            not isinstance(ps, (int, float)) or isinstance(ps, bool) or not math.isfinite(ps) or ps <= 0
        ):
            problems.append(f"Limit {self.name!r}: per_second must be a number > 0, got {ps!r}")
        c = self.concurrency
        if c is not None and (not isinstance(c, int) or isinstance(c, bool) or c < 1):
            problems.append(f"Limit {self.name!r}: concurrency must be an int >= 1, got {c!r}")
        for what in ("tokens_per_minute", "estimate_tokens"):
            value = getattr(self, what)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                problems.append(f"Limit {self.name!r}: {what} must be an int >= 1, got {value!r}")
        if self.estimate_tokens is not None and self.tokens_per_minute is None:
            problems.append(f"Limit {self.name!r}: estimate_tokens needs tokens_per_minute; add tokens_per_minute=N")
        problems += _per_tenant_problems(self.name, self.per_tenant)
        if problems:
            raise GraphError("; ".join(problems))

    def __hash__(self) -> int:  # per_tenant may be a dict
        return hash((self.name, self.per_second, self.concurrency, self.tokens_per_minute, self.estimate_tokens))

    def tenant_caps(self) -> tuple[float | None, dict[str, float]]:
        """``per_tenant`` as the server takes it: (each tenant's default rate, weights that scale it)."""
        caps = self.per_tenant
        if caps is None or not isinstance(caps, dict):
            return caps, {}
        default = caps["*"]
        return default, {t: cap / default for t, cap in caps.items() if t != "*"}


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _per_tenant_problems(name: str, caps: Any) -> list[str]:
    if caps is None or _positive(caps):
        return []
    how = 'per_tenant= takes starts per second for each tenant (e.g. 1.5), or {"*": 1.5, "acme": 3}'
    if not isinstance(caps, dict):
        return [f"Limit {name!r}: {how}, got {caps!r}"]
    problems = [
        f"Limit {name!r}: per_tenant[{tenant!r}] must be a number > 0, got {cap!r}"
        for tenant, cap in caps.items()
        if not _positive(cap)
    ]
    problems += [
        f"Limit {name!r}: per_tenant key {tenant!r}: {check_tenant(tenant)}"
        for tenant in caps
        if tenant != "*" and check_tenant(tenant)
    ]
    if "*" not in caps:
        problems.append(f'Limit {name!r}: per_tenant needs a "*" entry, the cap of every other tenant ({how})')
    return problems


def check_limits(limits: Sequence[Limit]) -> dict[str, Limit]:
    """``Workflow(limits=...)`` by name, checked (Limit objects, names unique)."""
    if isinstance(limits, Limit):
        limits = [limits]
    by_name: dict[str, Limit] = {}
    for limit in limits:
        if not isinstance(limit, Limit):
            raise GraphError(f'limits= takes Limit("name", per_second=..., concurrency=...) objects, got {limit!r}')
        if limit.name in by_name:
            raise GraphError(f'limits= names "{limit.name}" twice; declare each limit once')
        by_name[limit.name] = limit
    return by_name


def limit_problem(node: str, limit: Any, declared: dict[str, Limit]) -> str | None:
    """Why ``add_node(node, ..., limit=limit)`` is wrong, given the Workflow's limits; or None."""
    if limit is None:
        return None
    if not isinstance(limit, str) or limit not in declared:
        names = ", ".join(sorted(declared)) or "none"
        return (
            f'node "{node}" has limit={limit!r}, but the workflow declares no such limit (declared: {names}); '
            f'add Limit("{limit}", per_second=...) to Workflow(limits=[...])'
        )
    return None


def node_limit_problem(node: Any, declared: dict[str, Limit]) -> str | None:
    """Why a node's ``limit=`` option is wrong (``node``: the builder's NodeDef); or None."""
    limit = node.options.limit
    problem = limit_problem(node.name, limit, declared)
    if problem or limit is None:
        return problem
    if node.options.local:
        return f'node "{node.name}" is local and has limit="{limit}": a local activity runs in the workflow\'s worker, not on the limit\'s task queue; drop one'
    if node.kind not in ("function", "team"):
        return f'node "{node.name}" is a {node.kind} node: only function and Team nodes take limit='
    return None


def limit_queue(task_queue: str, limit: str) -> str:
    """The task queue a limit's nodes run on, beside the run's own ``task_queue``."""
    return f"{task_queue}{LIMIT_QUEUE_INFIX}{limit}"


def check_tenant(tenant: Any) -> str | None:
    """Why ``tenant`` is no valid tenant, or None."""
    if tenant is None:
        return None
    if not isinstance(tenant, str) or not tenant or len(tenant.encode()) > TENANT_BYTES:
        return (
            f"tenant must be a non-empty str of at most {TENANT_BYTES} bytes (a Temporal fairness key), got {tenant!r}"
        )
    return None


def run_flow(wf: Any, budget: Any, tenant: Any) -> dict[str, Any] | None:
    """A first run's flow settings (``RunParams.flow``): its budget (``budget`` or the Workflow's)
    and tenant; None when it has neither."""
    problem = check_tenant(tenant)
    if problem:
        raise GraphError(problem)
    chosen = budget_of(budget) if budget is not None else getattr(wf, "budget", None)
    flow: dict[str, Any] = {}
    if chosen is not None:
        flow["budget"] = chosen.to_plain()
    if tenant is not None:
        flow["tenant"] = tenant
    return flow or None


def parse_weights(items: Sequence[str]) -> dict[str, float]:
    """``["acme=2", "globex=0.5"]`` (the CLI's ``limits weight``) as {tenant: weight}."""
    weights: dict[str, float] = {}
    for item in items:
        tenant, sep, text = item.partition("=")
        try:
            weight = float(text)
        except ValueError:
            weight = math.nan
        if not sep or check_tenant(tenant) or not math.isfinite(weight) or weight <= 0:
            raise GraphError(f"weights are tenant=weight with a weight > 0 (e.g. acme=2), got {item!r}")
        weights[tenant] = weight
    return weights
