"""What starts runs of a built graph. Pure: the package facade registers the Temporal client
(loaded on first use), so the builder never imports the shell and graphs build without temporalio."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from gecko_temporal.core.errors import GraphError

if TYPE_CHECKING:
    from gecko_temporal.core.budget import Budget
    from gecko_temporal.core.build.graph import Workflow
    from gecko_temporal.temporal.client import RunHandle


class Runner(Protocol):
    """What starts and finds runs of a built graph: the module gecko_temporal.temporal.client."""

    async def start(
        self,
        wf: Workflow,
        input_data: Any = None,
        *,
        session_id: str | None = None,
        timeout: float | None = None,
        max_steps: int | None = None,
        state: dict[str, Any] | None = None,
        budget: Budget | dict[str, Any] | None = None,
        tenant: str | None = None,
    ) -> RunHandle: ...

    async def get_handle(self, session_id: str, workflow: Workflow | None = None) -> RunHandle: ...


_RUNNER: list[Callable[[], Runner]] = []


def use_runner(load: Callable[[], Runner]) -> None:
    """Start runs with the module ``load()`` returns (it has ``start`` and ``get_handle``)."""
    _RUNNER[:] = [load]


def current_runner() -> Runner:
    """The registered runner (raises GraphError when none is)."""
    if not _RUNNER:
        raise GraphError("no runner is registered to start runs; import gecko_temporal (its facade registers one)")
    return _RUNNER[0]()
