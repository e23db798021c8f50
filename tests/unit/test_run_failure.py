"""How failures are told (core/run/failure.py): exact messages and details, without a server."""

from gecko_temporal.core.run import failure
from gecko_temporal.core.run.failure import NodeFailed, RunFailure, run_failure


def test_a_node_failure_names_the_node_and_is_a_node_error():
    exc = NodeFailed("Fetch", "ValueError", "bad url", member_errors=[{"m": 1}])
    assert (exc.node, exc.error_type, exc.message, exc.member_errors, exc.send, exc.child) == (
        "Fetch",
        "ValueError",
        "bad url",
        [{"m": 1}],
        None,
        None,
    )
    assert str(exc) == "bad url"
    assert run_failure(exc) == RunFailure(
        'node "Fetch" failed: ValueError: bad url',
        "NodeError",
        {"node": "Fetch", "error_type": "ValueError", "message": "bad url", "members": [{"m": 1}]},
    )


def test_a_serialization_error_keeps_its_type_and_a_child_and_send_are_told():
    exc = NodeFailed("Sub", "SerializationError", "no JSON", child={"session": "s.Sub.2"})
    failure.in_send(exc, 3, 7)
    assert exc.send == (3, 7)
    assert run_failure(exc) == RunFailure(
        'node "Sub" (Send 3 of 7) failed: SerializationError: no JSON',
        "SerializationError",
        {
            "node": "Sub",
            "error_type": "SerializationError",
            "message": "no JSON",
            "members": None,
            "child": {"session": "s.Sub.2"},
            "send": 3,
        },
    )


def test_in_send_keeps_an_inner_send_and_ignores_plain_tasks():
    exc = NodeFailed("A", "E", "m")
    assert failure.in_send(exc, None, 0) is exc and exc.send is None
    exc.send = (1, 2)
    failure.in_send(exc, 5, 9)
    assert exc.send == (1, 2)
    failure.in_send(exc := NodeFailed("A", "E", "m"), 0, 2)
    assert exc.send == (0, 2)  # Send 0 is a Send


def test_any_other_exception_fails_the_run_by_its_type():
    assert run_failure(KeyError("x")) == RunFailure("'x'", "KeyError", None)


def test_the_run_timeout_names_what_ran():
    assert failure.timed_out("W", ["A", "B[1]"], 4) == RunFailure(
        'run "W" timed out after its timeout while running A, B[1] (step 4); raise timeout= or make the nodes faster',
        "WorkflowTimeoutError",
        {"running": ["A", "B[1]"], "step": 4},
    )


def test_an_activity_timeout_is_told_by_kind_and_keeps_an_earlier_error():
    assert failure.activity_timeout("START_TO_CLOSE", "took long", None) == (
        "TimeoutError",
        "start-to-close timeout: took long",
    )
    assert failure.activity_timeout(None, "x", None) == ("TimeoutError", "activity timeout: x")
    assert failure.activity_timeout("HEARTBEAT", "x", ("ValueError", "boom")) == (
        "ValueError",
        "boom (a later attempt then hit a heartbeat timeout)",
    )


def test_failure_text_for_the_stream():
    assert failure.failure_text(NodeFailed("A", "E", "m"), ("X", "y")) == "E: m"
    assert failure.failure_text(ValueError("v"), ("ValueError", "v")) == "ValueError: v"


def test_an_interrupt_in_a_send_instance_says_why_and_where_to_interrupt():
    exc = failure.interrupt_in_send("R")
    assert (exc.node, exc.error_type) == ("R", "InterruptError")
    assert exc.message == (
        "context.interrupt() in a Send instance: the instances of a fan-out run together and share one node "
        "name; interrupt in a node before or after the fan-out"
    )


WHERE = 'subgraph "Child" (child session p.N.3)'
INFO = {"session": "p.N.3", "workflow": "Child"}


def _child(*args, **kw):
    exc = failure.child_failure("N", "p.N.3", "Child", *args, **kw)
    return exc.node, exc.error_type, exc.message, exc.child


def test_a_child_that_failed_at_its_node_names_that_node():
    details = {"node": "Inner", "error_type": "ValueError", "message": "bad"}
    assert _child(failure.CHILD_FAILED, "NodeError", "ignored", details) == (
        "N",
        "ValueError",
        f'{WHERE} failed at its node "Inner": bad',
        {**INFO, "node": "Inner", "error_type": "ValueError"},
    )
    assert _child(failure.CHILD_FAILED, "", "", {"node": "Inner"}) == (
        "N",
        "NodeError",
        f'{WHERE} failed at its node "Inner": ',
        {**INFO, "node": "Inner", "error_type": ""},
    )
    assert _child(failure.CHILD_FAILED, "Custom", "", {"node": "Inner"})[1] == "Custom"


def test_a_child_that_failed_otherwise_or_ended_is_told_how():
    assert _child(failure.CHILD_FAILED, "StepLimitError", "too many", {"other": 1}) == (
        "N",
        "StepLimitError",
        f"{WHERE} failed: too many",
        INFO,
    )
    assert _child(failure.CHILD_FAILED, "", "m", "not a dict")[1:3] == ("ApplicationError", f"{WHERE} failed: m")
    assert _child(failure.CHILD_CANCELLED) == ("N", "CancelledError", f"{WHERE} was cancelled", INFO)
    assert _child(failure.CHILD_TERMINATED) == ("N", "Terminated", f"{WHERE} was terminated", INFO)
    assert _child(failure.CHILD_TIMED_OUT) == ("N", "TimeoutError", f"{WHERE} timed out", INFO)
    assert _child(failure.CHILD_OTHER, "RuntimeError", "odd") == ("N", "RuntimeError", f"{WHERE} failed: odd", INFO)


def test_a_taken_child_session_says_to_retry_later():
    exc = failure.child_session_taken("N", "p.N.3", "Child")
    assert (exc.node, exc.error_type, exc.child) == ("N", "ChildSessionTaken", INFO)
    assert exc.message == (
        'a run with the child session id "p.N.3" is still open (a session of the same id that ended before '
        "may still be closing it); retry once it has ended"
    )


def test_a_child_failure_without_a_type_is_a_node_error():
    exc = failure.child_failure("N", "p.N.3", "Child", failure.CHILD_FAILED, details={"node": "Inner"})
    assert exc.error_type == "NodeError"
    exc = failure.child_failure("N", "p.N.3", "Child", failure.CHILD_FAILED)
    assert (exc.error_type, exc.message) == ("ApplicationError", f"{WHERE} failed: ")
