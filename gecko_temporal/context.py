"""What a node sees of the run when it asks for ``context``. Pure: no temporalio import."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Callable, Optional

from . import _codec
from .errors import StateKeyError
from .state import StateView


class History(Mapping[str, Any]):
    """Read-only latest output of every node that already ran, decoded on first read."""

    def __init__(self, encoded: Mapping[str, str], *, node: str = "", limited_to: Optional[Any] = None) -> None:
        self._encoded = encoded
        self._decoded: dict[str, Any] = {}
        self._node = node
        self._limited_to = None if limited_to is None else frozenset(limited_to)

    def __getitem__(self, node: str) -> Any:
        if node not in self._decoded:
            if self._limited_to is not None and node not in self._limited_to:
                raise StateKeyError(
                    f'node "{self._node}" read context.history["{node}"] but declared history='
                    f"{sorted(self._limited_to)}; add it there or drop history= to receive every output"
                )
            if node not in self._encoded:
                raise KeyError(
                    f'node "{node}" has not run yet in this session (ran: {", ".join(self._encoded) or "none"})'
                )
            self._decoded[node] = _codec.decode(self._encoded[node])
        return self._decoded[node]

    def __iter__(self) -> Iterator[str]:
        return iter(self._encoded)

    def __len__(self) -> int:
        return len(self._encoded)


class WorkflowContext:
    """The run as one node sees it.

    ``state`` is the shared state (copy-on-read; assign a value back to change it), ``history``
    the latest output of each node that ran, ``input`` the run's input, ``session_id`` the run's
    id (the Temporal workflow id), ``node`` this node's name and ``step`` its execution number.
    """

    def __init__(
        self,
        *,
        state: StateView,
        history: History,
        input: Any,
        session_id: str,
        node: str,
        step: int,
        member: Optional[str] = None,
        emitter: Optional[Callable[[Any], None]] = None,
    ) -> None:
        self.state = state
        self.history = history
        self.input = input
        self.session_id = session_id
        self.node = node
        self.step = step
        self.member = member
        self._emitter = emitter

    def emit(self, data: Any) -> None:
        """Publish ``data`` on the run's event stream now, as a ``custom`` event (e.g. a token).

        Works in sync nodes (from their thread) and async ones, Team members too; readers of
        ``handle.stream()`` see it while the node still runs. Events are sent in small batches, and
        all are sent before the node's result. Raises SerializationError for data that is not JSON-like.
        """
        if self._emitter is None:
            return  # outside a worker (a node called directly): nobody to tell
        self._emitter(data)

    def __repr__(self) -> str:
        return f"WorkflowContext(session_id={self.session_id!r}, node={self.node!r}, step={self.step})"
