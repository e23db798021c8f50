"""A node that waits for a person (or any outside system) to answer. Pure: no temporalio import."""

from __future__ import annotations

from typing import Any

from gecko_temporal.core import codec
from gecko_temporal.core.errors import GraphError

_NO_DEFAULT = object()


class WaitForInput:
    """Use as a node: the run pauses here until an answer arrives, which becomes the node's output.

    Answer with ``await handle.answer("Node", value)`` or the ``gecko_answer`` signal
    (``{"node": "Node", "value": ...}``). ``timeout`` (seconds) bounds the wait: after it the node
    outputs ``default`` if one was given, else the run fails naming the node. While waiting, the
    node, its ``prompt`` and its input are listed under ``waiting`` in ``gecko_state``.
    """

    def __init__(self, prompt: str = "", *, timeout: float | None = None, default: Any = _NO_DEFAULT) -> None:
        if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
            raise GraphError(f"WaitForInput timeout must be a positive number of seconds, got {timeout!r}")
        self.prompt = prompt
        self.timeout = timeout
        self.default = default
        self._default_text = None if default is _NO_DEFAULT else codec.encode(default, what="WaitForInput default")

    def spec_fields(self) -> dict[str, Any]:
        return {"wait_timeout": self.timeout, "wait_default": self._default_text, "wait_prompt": self.prompt}
