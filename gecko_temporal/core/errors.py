"""The one exception hierarchy of gecko_temporal.

GeckoError
├── GraphError             the graph is wrong (build/compile time, or a bad Next target)
├── NodeError              a node (or Team) failed while running
├── SerializationError     a value cannot cross the Temporal boundary
├── StepLimitError         a run executed more nodes than ``max_steps`` allows
├── WorkflowTimeoutError   the run exceeded its global ``timeout`` (also a TimeoutError)
├── JumpRejectedError      a signalled/updated jump named no node of the graph
├── ServerError            no Temporal server could be reached or started
└── PayloadConfigError     encryption keys or the payload store are misconfigured, or a payload
                           was encrypted with a key this process lacks
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any


class GeckoError(Exception):
    """Base class of every error gecko_temporal raises."""


class GraphError(GeckoError):
    """The graph is invalid; ``problems`` lists every problem found."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems) or [message]


class NodeError(GeckoError):
    """A node failed. ``node``, ``error_type`` and ``error_message`` say which and why."""

    def __init__(
        self, message: str, *, node: str = "", error_type: str = "", error_message: str = "", details: Any = None
    ) -> None:
        super().__init__(message)
        self.node = node
        self.error_type = error_type
        self.error_message = error_message
        self.details = details


class SerializationError(GeckoError, TypeError):
    """A node's output, state value or input cannot be serialized."""


class StepLimitError(GeckoError):
    """The run executed more node steps than its ``max_steps`` bound."""


class WorkflowTimeoutError(GeckoError, TimeoutError):
    """The run did not finish within its global ``timeout``."""


class JumpRejectedError(GeckoError, ValueError):
    """A requested jump names a node that does not exist in the graph."""


class ServerError(GeckoError):
    """No Temporal server could be reached or started."""


class PayloadConfigError(GeckoError):
    """Encryption keys or the payload store are misconfigured, or a payload cannot be decrypted
    (the message names the key id)."""


def suggest(name: str, valid: Iterable[str]) -> str:
    """Return ' (did you mean "X"? valid: ...)' to append to a failed lookup of ``name``."""
    valid = list(valid)
    lowered = {v.lower(): v for v in valid}
    close = [lowered[name.lower()]] if name.lower() in lowered else difflib.get_close_matches(name, valid, n=1)
    shown = ", ".join(f'"{v}"' for v in valid[:20]) + (f", ... ({len(valid)} in all)" if len(valid) > 20 else "")
    hint = f'did you mean "{close[0]}"? ' if close else ""
    return f" ({hint}valid: {shown or 'none'})"


class StateKeyError(GeckoError, KeyError):
    """A node read a state key it may not read (see ``reads=``); a KeyError, readably printed."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InterruptError(GeckoError):
    """``context.interrupt()`` was misused: a payload that is not JSON, or a call from a Team member."""


class RewindError(GeckoError):
    """A rewind (or a step listing) could not be done: no such step, or the history does not allow it."""


class StateEditError(GeckoError, ValueError):
    """``update_state`` was refused: values that are not JSON, too big, or the run has ended."""


class EffectError(GeckoError):
    """``context.once`` or a node cache could not keep its promise: a bad key, a result that is not
    JSON, or no record store on this worker (the message says which and how to fix it)."""
