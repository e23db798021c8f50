"""What each node's activity receives, checked against Temporal's payload limit first.
Pure: no temporalio import.

A node that takes a context gets the state keys it ``reads`` and the node outputs of its
``history`` (all of them when it declares none); other nodes get their input only. State and
outputs are measured once per layer, and only when a node of the layer takes a context, so a wide
layer of light nodes costs nothing here (see ``limits.py`` for the measures and messages).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from gecko_temporal.core.codec import TAG
from gecko_temporal.core.limits import PAYLOAD_LIMIT, SizeTable, json_size, node_input_problem
from gecko_temporal.core.refs import as_shipped
from gecko_temporal.core.scheduler import Task
from gecko_temporal.core.spec import NodeInput, NodeSpec, ResumedNodeInput


class InputTooLarge(Exception):
    """The node's input would exceed Temporal's payload limit (the message says what and the fix)."""


class NodeInputs:
    """Builds each node's :class:`NodeInput` for one run; warns once per node about a large one."""

    def __init__(
        self, graph_key: str, run_input: str, warned: Sequence[str] = (), payload_limit: int = PAYLOAD_LIMIT
    ) -> None:
        self._graph_key = graph_key
        self._run_input = run_input
        self._limit = payload_limit  # the run's: Temporal's, or more with a payload store
        self._sizes: tuple[SizeTable, SizeTable, int] | None = None
        # nodes already warned about a large input (warn once per session: carried across runs)
        self.warned: dict[str, None] = dict.fromkeys(warned)
        self.refs = False  # long texts travel as references (core/refs.py): measure what travels

    def new_layer(self) -> None:
        """State and outputs changed: measure them again when a node needs it."""
        self._sizes = None

    def build(
        self,
        node: NodeSpec,
        task: Task,
        *,
        member: int | None,
        takes_context: bool,
        session_id: str,
        state: dict[str, str],
        outputs: dict[str, str],
    ) -> tuple[NodeInput, str | None]:
        """(the input of ``task``'s activity, a warning to log about its size or None).

        ``node`` is the task's node (a Team's, for a member). Raise InputTooLarge when it cannot be sent.
        """
        names = _history_names(node, task, outputs)
        warning = self._check(node, task, takes_context, state, outputs, names)
        shipped_state = history = None
        if takes_context:
            shipped_state = state if node.reads is None else {k: state[k] for k in node.reads if k in state}
            history = outputs if names is None else {n: outputs[n] for n in names if n in outputs}
        cls = NodeInput if task.resume is None else functools.partial(ResumedNodeInput, resume=list(task.resume))
        return cls(
            graph=self._graph_key,
            node=task.node,
            input=task.input,
            session_id=session_id,
            step=task.step,
            member=member,
            state=shipped_state,
            history=history,
            run_input=self._run_input if takes_context else None,
            payload_limit=self._limit if self._limit != PAYLOAD_LIMIT else None,
        ), warning

    def _check(
        self,
        node: NodeSpec,
        task: Task,
        takes_context: bool,
        state: dict[str, str],
        outputs: dict[str, str],
        history_names: list[str] | None,
    ) -> str | None:
        state_sizes = history_sizes = None
        run_input_size = 0
        if takes_context:
            if self._sizes is None:
                if self.refs:
                    state, outputs = _shipped(state), _shipped(outputs)
                run_input = as_shipped(self._run_input) if self.refs else self._run_input
                self._sizes = (SizeTable(state), SizeTable(outputs), json_size(run_input))
            state_sizes, history_sizes, run_input_size = self._sizes
        error, warning = node_input_problem(
            task.node,
            input_size=json_size(as_shipped(task.input) if self.refs else task.input),
            state=state_sizes,
            reads=node.reads,
            history=history_sizes,
            history_names=history_names,
            run_input_size=run_input_size,
            limit=self._limit,
        )
        if error:
            raise InputTooLarge(error)
        if warning and task.node not in self.warned:
            self.warned[task.node] = None
            return warning
        return None


def _shipped(texts: dict[str, str]) -> dict[str, str]:
    return {k: as_shipped(v) for k, v in texts.items()}


# How a node that returned Sends shows in outputs: the list of its Sends (their args inside).
_SEND_LIST = '[{"' + TAG + '":"gecko_temporal.spec:Send"'


def _history_names(node: NodeSpec, task: Task, outputs: dict[str, str]) -> list[str] | None:
    """The node outputs a call receives as ``context.history`` (None: all of them).

    A Send instance does not receive the output of the node that sent it when that output is the
    list of Sends itself: each of N instances would carry all N args (quadratic: a 500-way fan-out
    of small items made one workflow task too big for gRPC and Temporal terminated the run). Its
    own item is its input; a node that wants the list names it in ``history=[...]``.
    """
    if node.history is not None:
        return node.history
    source = task.source
    if task.send is None or source is None or not outputs.get(source, "").startswith(_SEND_LIST):
        return None
    return [n for n in outputs if n != source]
