"""How a failed node, child run or run is told: its error type, message and details. Pure.

The shell unpacks Temporal's exceptions (which activity error, which timeout, how a child ended)
into plain facts and hands them here; what the user reads is shaped in this module only, so the
client's ``NodeError``/``WorkflowTimeoutError`` and the stream see the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class NodeFailed(Exception):
    """A node failed the run: its name, the error's type and message, and where exactly."""

    def __init__(
        self,
        node: str,
        error_type: str,
        message: str,
        member_errors: Any = None,
        child: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.node, self.error_type, self.message, self.member_errors = node, error_type, message, member_errors
        self.send: tuple[int, int] | None = None  # a Send instance's (index, instances)
        self.child = child  # a subgraph node's failed child run: session, workflow, node


@dataclass(frozen=True)
class RunFailure:
    """What a failed run raises (the shell makes it a non-retryable ApplicationError)."""

    message: str
    type: str
    details: dict[str, Any] | None = None


def run_failure(exc: BaseException) -> RunFailure:
    """A failed run, typed so the client raises the matching GeckoError."""
    if isinstance(exc, NodeFailed):
        details = {"node": exc.node, "error_type": exc.error_type, "message": exc.message, "members": exc.member_errors}
        if exc.child is not None:
            details["child"] = exc.child
        where = f'node "{exc.node}"'
        if exc.send is not None:  # one instance of a fan-out: say which Send
            details["send"] = exc.send[0]
            where += f" (Send {exc.send[0]} of {exc.send[1]})"
        kind = "SerializationError" if exc.error_type == "SerializationError" else "NodeError"
        return RunFailure(f"{where} failed: {exc.error_type}: {exc.message}", kind, details)
    return RunFailure(str(exc), type(exc).__name__)


def timed_out(workflow_name: str, running: list[str], step: int) -> RunFailure:
    """The run's own timeout ended it while ``running`` (task keys in node order) still ran."""
    return RunFailure(
        f'run "{workflow_name}" timed out after its timeout while running '
        f"{', '.join(running)} (step {step}); raise timeout= or make the nodes faster",
        "WorkflowTimeoutError",
        {"running": running, "step": step},
    )


def activity_timeout(timeout_type: str | None, message: str, earlier: tuple[str, str] | None) -> tuple[str, str]:
    """(type, message) of an activity that timed out; ``timeout_type`` is Temporal's enum name
    (``START_TO_CLOSE``), ``earlier`` what the previous attempt raised, if the server attached it."""
    kind = f"{timeout_type.lower().replace('_', '-') if timeout_type else 'activity'} timeout"
    if earlier is not None:
        # What the user's code raised: a busy worker's late timeout on a retry must not hide it.
        return earlier[0], f"{earlier[1]} (a later attempt then hit a {kind})"
    return "TimeoutError", f"{kind}: {message}"


def failure_text(exc: BaseException, error_of: tuple[str, str]) -> str:
    """How the stream tells a node's failure (``error_of``: the shell's (type, message) of ``exc``)."""
    if isinstance(exc, NodeFailed):
        return f"{exc.error_type}: {exc.message}"
    return f"{error_of[0]}: {error_of[1]}"


def in_send(exc: NodeFailed, send: int | None, sends: int) -> NodeFailed:
    """Say which Send instance failed, unless an inner failure already did."""
    if send is not None and exc.send is None:
        exc.send = (send, sends)
    return exc


def interrupt_in_send(node: str) -> NodeFailed:
    """A Send instance called context.interrupt() in a run recorded before each instance waited under
    its own key (``Node[i]``): such runs failed here, and replay so."""
    return NodeFailed(
        node,
        "InterruptError",
        "context.interrupt() in a Send instance: the instances of a fan-out run "
        "together and share one node name; interrupt in a node before or after "
        "the fan-out",
    )


#: How a child run ended, as the shell reads Temporal's exception.
CHILD_FAILED, CHILD_CANCELLED, CHILD_TERMINATED, CHILD_TIMED_OUT, CHILD_OTHER = (
    "failed",
    "cancelled",
    "terminated",
    "timed out",
    "other",
)


def child_failure(
    node: str,
    session: str,
    workflow: str,
    ended: str,
    error_type: str = "",
    message: str = "",
    details: Any = None,
) -> NodeFailed:
    """A subgraph node's failure: what failed inside the child run (its node and error), and where.

    ``ended`` is one of the CHILD_* values; for CHILD_FAILED ``error_type``/``message`` are the
    child's ApplicationError's and ``details`` its first detail (the child's run_failure details)."""
    where = f'subgraph "{workflow}" (child session {session})'
    info: dict[str, Any] = {"session": session, "workflow": workflow}
    if ended == CHILD_FAILED:
        found = details if isinstance(details, dict) else {}
        if found.get("node"):
            info.update(node=found["node"], error_type=found.get("error_type", ""))
            return NodeFailed(
                node,
                found.get("error_type") or error_type or "NodeError",
                f'{where} failed at its node "{found["node"]}": {found.get("message", "")}',
                child=info,
            )
        return NodeFailed(node, error_type or "ApplicationError", f"{where} failed: {message}", child=info)
    if ended == CHILD_CANCELLED:
        return NodeFailed(node, "CancelledError", f"{where} was cancelled", child=info)
    if ended == CHILD_TERMINATED:
        return NodeFailed(node, "Terminated", f"{where} was terminated", child=info)
    if ended == CHILD_TIMED_OUT:
        return NodeFailed(node, "TimeoutError", f"{where} timed out", child=info)
    return NodeFailed(node, error_type, f"{where} failed: {message}", child=info)


def child_session_taken(node: str, session: str, workflow: str) -> NodeFailed:
    """The child's session id is still used by an open run."""
    return NodeFailed(
        node,
        "ChildSessionTaken",
        f'a run with the child session id "{session}" is still open (a session of the '
        "same id that ended before may still be closing it); retry once it has ended",
        child={"session": session, "workflow": workflow},
    )
