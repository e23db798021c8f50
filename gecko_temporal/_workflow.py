"""GeckoWorkflow: the one Temporal workflow that interprets every compiled graph.

It is a short loop over the pure scheduler and state merge: take the next layer, run its nodes as
activities concurrently, apply their results and state deltas in node order, repeat. Everything
that must survive a crash is either in Temporal's history or in the slimmed snapshot carried across
continue-as-new.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Optional

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, TimeoutError as TemporalTimeout

with workflow.unsafe.imports_passed_through():
    from . import _codec, control
    from .protocol import (ANSWER_SIGNAL, ANSWER_UPDATE, JUMP_UPDATE, NEXT_SIGNAL, STATE_QUERY, WORKFLOW_TYPE,
                           YIELD_ACTIVITY)
    from .errors import GeckoError, suggest
    from .limits import FRAME, PAYLOAD_LIMIT, SizeTable, human, json_size, limit_name, node_input_problem
    from .scheduler import Scheduler, Task
    from .spec import KIND_FUNCTION, KIND_TEAM, KIND_WAIT, GraphSpec, Jump, MemberSpec, NodeInput, NodeOutput, NodeSpec, RetrySpec, RunParams
    from .state import StateDelta, merge_layer
    from .team import MemberResult

_MEMBER_RESULT_TAG = f"{MemberResult.__module__}:{MemberResult.__qualname__}"
_OUTSIDE = ("signal", "update")  # Jump.source of jumps sent from outside the run
# Local activities run inside one workflow task, during which queries and signals wait; a loop of
# light local nodes would hold the task for seconds. End the task after this many local steps.
_LOCAL_BURST = 100
_LOCAL_BURST_PATCH = "gecko-local-burst-yield"


def _retry_policy(r: RetrySpec) -> RetryPolicy:
    return RetryPolicy(
        maximum_attempts=r.maximum_attempts,
        initial_interval=timedelta(seconds=r.initial_interval),
        backoff_coefficient=r.backoff_coefficient,
        maximum_interval=timedelta(seconds=r.maximum_interval) if r.maximum_interval else None,
        non_retryable_error_types=list(r.non_retryable_error_types) or None,
    )


def _error_of(exc: BaseException) -> tuple[str, str]:
    """(type, message) of what made an activity fail, as the user's code raised it."""
    cause = exc.cause if isinstance(exc, ActivityError) and exc.cause is not None else exc
    if isinstance(cause, ApplicationError):
        return cause.type or "ApplicationError", cause.message
    if isinstance(cause, TemporalTimeout):
        kind = f"{cause.type.name.lower().replace('_', '-') if cause.type else 'activity'} timeout"
        if isinstance(cause.cause, ApplicationError):
            # The server attaches the previous attempt's failure: it is what the user's code raised,
            # and a busy worker's late timeout on a retry must not hide it.
            earlier = cause.cause
            return earlier.type or "ApplicationError", f"{earlier.message} (a later attempt then hit a {kind})"
        return "TimeoutError", f"{kind}: {cause.message}"
    if isinstance(cause, (CancelledError, asyncio.CancelledError)):
        return "CancelledError", "cancelled"
    return type(cause).__name__, str(cause)


def _abandon(fut: "asyncio.Future[Any]") -> None:
    """Cancel an activity we no longer wait for; its late failure is expected, not an error."""
    fut.cancel()
    fut.add_done_callback(lambda f: f.cancelled() or f.exception())


async def _node_output(pending: Any) -> NodeOutput:
    return NodeOutput.from_plain(await pending)


class _NodeFailed(Exception):
    def __init__(self, node: str, error_type: str, message: str, member_errors: Any = None) -> None:
        super().__init__(message)
        self.node, self.error_type, self.message, self.member_errors = node, error_type, message, member_errors


@workflow.defn(name=WORKFLOW_TYPE, failure_exception_types=[GeckoError])
class GeckoWorkflow:
    @workflow.init
    def __init__(self, plain: dict[str, Any]) -> None:
        # The input arrives as a plain dict: rebuilding RunParams ourselves is ~20x cheaper than the
        # converter's reflection (50 ms for a 200-node graph at every run start).
        params = self._params = RunParams.from_plain(plain)
        self._plain_spec = plain["spec"]  # carried as is across continue-as-new
        self._spec: GraphSpec = params.spec
        self._nodes = {n.name: n for n in params.spec.nodes}
        snap = params.snapshot or {}
        self._sched = Scheduler(params.spec, snap.get("scheduler"))
        self._state: dict[str, str] = snap.get("state", {})
        self._input = params.input
        self._deadline: Optional[float] = snap.get("deadline")
        self._run = snap.get("run", 1)
        self._completed: list[str] = snap.get("completed", [])
        self._rejected: list[dict[str, Any]] = snap.get("rejected", [])
        self._answers: dict[str, str] = snap.get("answers", {})
        self._conflicts: list[str] = []
        self._running: dict[str, int] = {}
        self._waiting: dict[str, dict[str, Any]] = {}
        self._layer = snap.get("layer", 0)
        self._status = "running"
        # Payload sizes of state and node outputs, measured once per layer when a node needs them.
        self._sizes: Optional[tuple[SizeTable, SizeTable, int]] = None
        self._warned: set[str] = set()  # nodes already warned about a large input (log once)
        self._can_blocked = False  # the snapshot outgrew a payload: stay in this run
        self._local_streak = 0  # local steps since the workflow task last ended

    # -- the interpreter loop ----------------------------------------------------------------
    @workflow.run
    async def run(self, plain: dict[str, Any]) -> Any:
        params = self._params
        if params.snapshot is None:
            self._sched.start(params.input)
            if params.timeout:
                self._deadline = workflow.now().timestamp() + params.timeout
        steps_at_start = self._sched.step
        try:
            while True:
                self._apply_redirects()
                tasks = self._sched.next_layer()
                if not tasks:
                    break
                self._layer += 1
                self._sizes = None
                outputs = await self._run_layer(tasks)
                deltas = []
                for task, out in zip(tasks, outputs):  # node order, never completion order
                    self._sched.finish(task, out.value, out.jump)
                    deltas.append((task.node, StateDelta(out.writes, out.deletes)))
                    self._completed.append(task.node)
                del self._completed[:-control.KEEP_COMPLETED]
                self._conflicts = merge_layer(self._state, deltas)
                if self._conflicts:
                    workflow.logger.info("layer %d: several nodes wrote %s; the last in node order won",
                                         self._layer, self._conflicts)
                more = bool(self._sched.inbox or self._sched.jumps)  # never switch just to finish
                if more:
                    await self._end_long_local_burst(tasks)
                if more and not self._can_blocked and (
                        self._sched.step - steps_at_start >= self._spec.steps_per_run
                        or workflow.info().is_continue_as_new_suggested()):
                    await self._continue_as_new(params)
            result = self._sched.result()
            result_size = json_size(result)
            if result_size + FRAME > params.payload_limit:
                last = self._sched.last_layer
                raise _NodeFailed(last[0] if len(last) == 1 else ", ".join(last), "PayloadTooLarge",
                                  f"the run's result (the output of {', '.join(repr(n) for n in last)}) is "
                                  f"{human(result_size)}, over {limit_name(params.payload_limit)}; "
                                  "make the last node return something smaller (a summary or a file path)")
        except _NodeFailed as exc:
            self._status = "failed"
            raise ApplicationError(
                f'node "{exc.node}" failed: {exc.error_type}: {exc.message}',
                {"node": exc.node, "error_type": exc.error_type, "message": exc.message,
                 "members": exc.member_errors},
                type="SerializationError" if exc.error_type == "SerializationError" else "NodeError",
                non_retryable=True,
            ) from None
        except GeckoError as exc:
            self._status = "failed"
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from None
        self._status = "completed"
        return json.loads(result)

    async def _end_long_local_burst(self, tasks: list[Task]) -> None:
        if any(not self._nodes[t.node].local or self._nodes[t.node].kind != KIND_FUNCTION for t in tasks):
            self._local_streak = 0  # a regular activity ended the workflow task anyway
            return
        self._local_streak += len(tasks)
        if self._local_streak >= _LOCAL_BURST and workflow.patched(_LOCAL_BURST_PATCH):
            self._local_streak = 0
            # A no-op regular activity ends the task (a timer would too, but the server fires timers
            # about 0.5 s late; this costs one dispatch, ~30 ms), and waiting queries and signals get in.
            await workflow.execute_activity(YIELD_ACTIVITY, start_to_close_timeout=timedelta(seconds=30),
                                            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=2)))

    def _apply_redirects(self) -> None:
        """Jumps sent from outside redirect the run: drop where it was going on its own.

        Applied at each layer boundary, so a jump signalled while a layer runs (or while the run
        switches to a new run) replaces the static successors and Next returns of that layer.
        """
        outside = [j for j in self._sched.jumps if j.source in _OUTSIDE]
        if outside:
            self._sched.inbox.clear()
            self._sched.jumps = [j for j in self._sched.jumps if j.source in _OUTSIDE or j.source == "input"]

    async def _continue_as_new(self, params: RunParams) -> None:
        # Handlers still running (an update mid-flight) would be lost by the switch.
        await workflow.wait_condition(workflow.all_handlers_finished)
        snapshot = {
            "scheduler": self._sched.snapshot(), "state": self._state, "deadline": self._deadline,
            "run": self._run + 1, "completed": self._completed, "rejected": self._rejected,
            "answers": self._answers, "layer": self._layer,
        }
        next_run = {"spec": self._plain_spec, "input": params.input, "snapshot": snapshot,
                    "payload_limit": params.payload_limit}
        size = len(json.dumps(next_run)) + FRAME
        if size > params.payload_limit:
            # Switching would fail the workflow task forever; going on in this run only costs history.
            self._can_blocked = True
            workflow.logger.warning(
                "run %s cannot continue as new: its snapshot is %s (state: %s), over %s; it goes on in this run, which Temporal ends at 51,200 events. Keep large data out of "
                "state (write it to a file and keep the path)", self._spec.name, human(size),
                SizeTable(self._state).biggest(), limit_name(params.payload_limit))
            return
        workflow.continue_as_new(next_run)

    async def _run_layer(self, tasks: list[Task]) -> list[NodeOutput]:
        running = [asyncio.ensure_future(self._run_task(t)) for t in tasks]
        timeout = None
        if self._deadline is not None:
            timeout = max(0.0, self._deadline - workflow.now().timestamp())
        done, pending = await workflow.wait(running, timeout=timeout, return_when=asyncio.FIRST_EXCEPTION)
        for fut in pending:
            _abandon(fut)
        for task, fut in zip(tasks, running):  # report the first failure in node order
            if fut in done and fut.exception() is not None:
                raise fut.exception()  # type: ignore[misc]
        if pending:
            names = [t.node for t, f in zip(tasks, running) if f in pending]
            self._status = "failed"
            raise ApplicationError(
                f'run "{self._spec.name}" timed out after its timeout while running '
                f"{', '.join(names)} (step {self._sched.step}); raise timeout= or make the nodes faster",
                {"running": names, "step": self._sched.step}, type="WorkflowTimeoutError", non_retryable=True,
            )
        return [f.result() for f in running]

    async def _run_task(self, task: Task) -> NodeOutput:
        node = self._nodes[task.node]
        self._running[task.node] = task.step
        try:
            if node.kind == KIND_TEAM:
                return await self._run_team(node, task)
            if node.kind == KIND_WAIT:
                return await self._wait_for_answer(node, task)
            try:
                return await self._run_activity(node, task, None, node.activity_type, node.takes_context,
                                                node.start_to_close_timeout, node.heartbeat_timeout, node.retry)
            except (ActivityError, ApplicationError, TemporalTimeout) as exc:
                # A local activity's failure arrives as the bare ApplicationError/TimeoutError.
                raise _NodeFailed(task.node, *_error_of(exc)) from None
        finally:
            self._running.pop(task.node, None)

    def _run_activity(self, node: NodeSpec, task: Task, member: Optional[int], activity_type: str,
                      takes_context: bool, timeout: float, heartbeat: Optional[float], retry: RetrySpec) -> Any:
        self._check_payload(node, task, takes_context)
        state = history = None
        if takes_context:
            state = self._state if node.reads is None else {k: self._state[k] for k in node.reads if k in self._state}
            outputs = self._sched.outputs
            history = outputs if node.history is None else {n: outputs[n] for n in node.history if n in outputs}
        arg = NodeInput(
            graph=self._spec.key, node=task.node, input=task.input, session_id=workflow.info().workflow_id,
            step=task.step, member=member, state=state, history=history,
            run_input=self._input if takes_context else None,
            payload_limit=self._params.payload_limit if self._params.payload_limit != PAYLOAD_LIMIT else None,
        )
        # Input and result travel as plain dicts: the converter's dataclass handling (a deep copy
        # on the way out, reflection over type hints on the way in) cost ~10x more per activity,
        # which a wide layer pays a thousand times in one workflow task. Same JSON either way.
        common: dict[str, Any] = dict(
            start_to_close_timeout=timedelta(seconds=timeout), retry_policy=_retry_policy(retry),
            result_type=dict,
            activity_id=f"{self._run}.{task.step}" + (f".{member}" if member is not None else ""),
        )
        if node.local:
            return _node_output(workflow.execute_local_activity(activity_type, vars(arg), **common))
        return _node_output(workflow.execute_activity(
            activity_type, vars(arg), heartbeat_timeout=timedelta(seconds=heartbeat) if heartbeat else None, **common
        ))

    def _check_payload(self, node: NodeSpec, task: Task, takes_context: bool) -> None:
        """Fail the node clearly if its input would break Temporal's payload limit (see limits.py)."""
        state = history = None
        run_input_size = 0
        if takes_context:
            if self._sizes is None:
                self._sizes = (SizeTable(self._state), SizeTable(self._sched.outputs), json_size(self._input))
            state, history, run_input_size = self._sizes
        error, warning = node_input_problem(
            task.node, input_size=json_size(task.input), state=state, reads=node.reads, history=history,
            history_names=node.history, run_input_size=run_input_size, limit=self._params.payload_limit)
        if error:
            raise _NodeFailed(task.node, "PayloadTooLarge", error)
        if warning and task.node not in self._warned:
            self._warned.add(task.node)
            workflow.logger.warning(warning)

    # -- Team ------------------------------------------------------------------------------
    async def _run_team(self, node: NodeSpec, task: Task) -> NodeOutput:
        team = node.team
        assert team is not None
        members = team.members
        wants = len(members) if team.strategy == "all" else team.quorum
        limit = team.max_concurrency or len(members)
        outcome: list[Optional[dict[str, Any]]] = [None] * len(members)
        outputs: dict[int, NodeOutput] = {}
        winners: list[int] = []
        started: dict[int, float] = {}
        running: dict[int, asyncio.Future] = {}
        next_member = 0

        def record(i: int, status: str, error: Optional[tuple[str, str]] = None) -> None:
            began = started.get(i)
            outcome[i] = {"member": members[i].name, "index": i, "status": status,
                          "error": {"type": error[0], "message": error[1]} if error else None,
                          "duration": round(workflow.now().timestamp() - began, 6) if began else 0.0,
                          "winner": status == "succeeded" and team.strategy != "all"}

        while True:
            while next_member < len(members) and len(running) < limit and len(winners) < wants:
                m: MemberSpec = members[next_member]
                started[next_member] = workflow.now().timestamp()
                running[next_member] = asyncio.ensure_future(self._run_activity(
                    node, task, next_member, m.activity_type, m.takes_context,
                    m.start_to_close_timeout, m.heartbeat_timeout, m.retry))
                next_member += 1
            if not running:
                break
            done, _ = await workflow.wait(list(running.values()), return_when=asyncio.FIRST_COMPLETED)
            for i in sorted(i for i, f in running.items() if f in done):  # member order: one winner
                fut = running.pop(i)
                if fut.exception() is not None:
                    record(i, "failed", _error_of(fut.exception()))
                elif len(winners) < wants:
                    outputs[i] = fut.result()
                    winners.append(i)
                    record(i, "succeeded")
                else:  # finished in the same instant as the winner: the race is already decided
                    record(i, "cancelled", ("CancelledError", f"lost to {members[winners[0]].name}"))
            if team.strategy != "all" and len(winners) >= wants:
                for i, fut in running.items():  # losers: cancel their activities through Temporal
                    _abandon(fut)
                    record(i, "cancelled", ("CancelledError", f"lost to {members[winners[0]].name}"))
                for i in range(next_member, len(members)):
                    record(i, "cancelled", ("CancelledError", "not started: the race was decided"))
                break

        if team.strategy != "all" and len(winners) < wants:
            failures = [o for o in outcome if o and o["status"] == "failed"]
            detail = "; ".join(f'member "{o["member"]}" failed: {o["error"]["type"]}: {o["error"]["message"]}'
                               for o in failures)
            need = "a winner" if wants == 1 else f"{wants} successes, got {len(winners)}"
            raise _NodeFailed(task.node, "TeamFailed", f"Team has no {need}: {detail}", failures)

        items = []
        for i, o in enumerate(outcome):
            assert o is not None
            meta = json.dumps(o, separators=(",", ":"))
            result = outputs[i].value if i in outputs else "null"
            items.append(f'{{"{_codec.TAG}":"{_MEMBER_RESULT_TAG}","data":{meta[:-1]},"result":{result}}}}}')
        jump: Optional[Jump] = None
        writes: dict[str, str] = {}
        deletes: dict[str, None] = {}
        for i in sorted(outputs):  # winners (or all successes) in member order
            out = outputs[i]
            jump = jump or out.jump
            for key in out.deletes:
                writes.pop(key, None)
                deletes[key] = None
            for key, value in out.writes.items():
                writes[key] = value
                deletes.pop(key, None)
        return NodeOutput(value="[" + ",".join(items) + "]", jump=jump, writes=writes, deletes=list(deletes))

    # -- waiting for a person ------------------------------------------------------------------
    async def _wait_for_answer(self, node: NodeSpec, task: Task) -> NodeOutput:
        self._waiting[node.name] = {"prompt": node.wait_prompt, "input": control.shown_value(task.input)[0],
                                    "since": workflow.now().isoformat(), "timeout": node.wait_timeout}
        try:
            await workflow.wait_condition(lambda: node.name in self._answers, timeout=node.wait_timeout)
            value = self._answers.pop(node.name)
        except asyncio.TimeoutError:
            if node.wait_default is None:
                raise _NodeFailed(node.name, "WaitTimeout",
                                  f"no answer within {node.wait_timeout} s (answer with handle.answer"
                                  f'("{node.name}", value) or give WaitForInput a default)') from None
            value = node.wait_default
        finally:
            self._waiting.pop(node.name, None)
        return NodeOutput(value=value)

    # -- queries, signals, updates -------------------------------------------------------------
    # Every handler takes any number of arguments in any encoding and never raises into the
    # workflow task: a handler that did would fail the task on every replay and wedge the run.
    @workflow.query(name=STATE_QUERY)
    def state(self, *_args: Any) -> dict[str, Any]:
        """The live run as JSON: state, progress, what is running and waiting, jumps (arguments ignored)."""
        return control.state_answer(
            workflow=self._spec.name,
            status="waiting" if self._waiting and self._status == "running" else self._status,
            state=self._state, completed=self._completed, running=list(self._running),
            waiting=self._waiting, step=self._sched.step, layer=self._layer, run=self._run,
            nodes=list(self._nodes), pending_jumps=self._sched.jumps, rejected=self._rejected,
            conflicts=self._conflicts)

    @workflow.signal(dynamic=True)
    def on_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """gecko_next (jump) and gecko_answer; anything malformed or unknown is rejected, never fatal."""
        received = _read_args(args)
        try:
            if name == NEXT_SIGNAL:
                request, problem = self._jump_request(received)
                if request is not None:
                    self._queue_jump(request, "signal")
            elif name == ANSWER_SIGNAL:
                request, problem = self._answer_request(received)
                if request is not None:
                    self._answers[request["node"]] = request["value"]
            else:
                problem = (f'unknown signal "{name}"{suggest(name, [NEXT_SIGNAL, ANSWER_SIGNAL])}; '
                           "jump with gecko_next, answer a WaitForInput node with gecko_answer")
        except Exception as exc:  # a bug here must cost one request, not the run
            problem = f"could not be handled: {type(exc).__name__}"
        if problem:
            entry = control.rejection(name, received, problem, self._sched.step)
            self._rejected.append(entry)
            del self._rejected[:-control.KEEP_REJECTED]
            workflow.logger.warning("rejected %s %s: %s", name, entry["request"], entry["reason"])

    def _jump_request(self, received: Sequence[control.Arg]) -> tuple[Optional[dict[str, Any]], Optional[str]]:
        request, problem = control.parse_request("jump", received)
        if request is not None:
            problem = self._sched.check_target(request["node"])
        return (None, problem) if problem else (request, None)

    def _answer_request(self, received: Sequence[control.Arg]) -> tuple[Optional[dict[str, Any]], Optional[str]]:
        request, problem = control.parse_request("answer", received)
        if request is not None:
            node = self._nodes.get(request["node"])
            if node is None or node.kind != KIND_WAIT:
                waits = [n.name for n in self._spec.nodes if n.kind == KIND_WAIT]
                problem = (f'"{request["node"]}" is not a WaitForInput node (those are: '
                           f'{", ".join(waits) or "none"})')
        return (None, problem) if problem else (request, None)

    def _queue_jump(self, request: dict[str, Any], source: str) -> dict[str, Any]:
        self._sched.jumps.append(Jump(node=request["node"], input=request["input"], source=source))
        return {"node": request["node"], "queued_after_step": self._sched.step}

    @workflow.update(name=JUMP_UPDATE)
    def jump_update(self, *args: Any) -> dict[str, Any]:
        """Like the gecko_next signal, but the caller hears at once whether the jump is valid."""
        request, _ = self._jump_request(_given_args(args))
        if request is None:  # cannot happen: the validator accepted these args, and the check
            # depends only on the graph; but a handler must never raise into the workflow task
            return {"node": None, "queued_after_step": self._sched.step}
        return self._queue_jump(request, "update")

    @jump_update.validator
    def _validate_jump(self, *args: Any) -> None:
        _, problem = self._jump_request(_given_args(args))
        if problem:
            raise ValueError(problem)

    @workflow.update(name=ANSWER_UPDATE)
    def answer_update(self, *args: Any) -> dict[str, Any]:
        request, _ = self._answer_request(_given_args(args))
        if request is None:  # as in jump_update
            return {"node": None, "waiting": False}
        self._answers[request["node"]] = request["value"]
        return {"node": request["node"], "waiting": request["node"] in self._waiting}

    @answer_update.validator
    def _validate_answer(self, *args: Any) -> None:
        _, problem = self._answer_request(_given_args(args))
        if problem:
            raise ValueError(problem)


def _read_args(args: Sequence[RawValue]) -> list[control.Arg]:
    """Decode raw signal arguments one by one; one that cannot be read says why instead of raising."""
    converter = workflow.payload_converter()
    received = []
    for raw in args:
        encoding = raw.payload.metadata.get("encoding", b"").decode("utf-8", "replace")
        try:
            received.append(control.Arg(converter.from_payload(raw.payload), encoding))
        except Exception as exc:
            received.append(control.Arg(encoding=encoding, problem=f"encoding {encoding or 'none'!r}: "
                                        f"{type(exc).__name__}; send JSON (encoding json/plain)"))
    return received


def _given_args(args: Sequence[Any]) -> list[control.Arg]:
    """Update arguments, already decoded by the SDK (one it cannot decode rejects the update)."""
    return [control.Arg(a) if not isinstance(a, bytes) else control.Arg(encoding="binary/plain", problem=(
        "raw bytes (encoding binary/plain); send JSON (encoding json/plain)")) for a in args]
