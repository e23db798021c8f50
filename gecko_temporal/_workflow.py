"""GeckoWorkflow: the one Temporal workflow that interprets every compiled graph.

It is a short loop of Temporal I/O over pure decisions: take the next layer (``scheduler.py``),
run its nodes as activities concurrently (inputs from ``inputs.py``), apply their results and state
deltas in node order (``state.py``), repeat. A Team node runs the member activities its
``TeamRun`` asks for (``team_run.py``); queries, signals and updates decode their arguments and hand
them to ``RunControl`` (``control.py``). Everything that must survive a crash is either in
Temporal's history or in the ``RunSnapshot`` carried across continue-as-new.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Optional, Union

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, TimeoutError as TemporalTimeout

with workflow.unsafe.imports_passed_through():
    from . import control
    from .protocol import ANSWER_UPDATE, JUMP_UPDATE, LOCAL_BURST_PATCH, STATE_QUERY, WORKFLOW_TYPE, YIELD_ACTIVITY
    from .protocol import WINDOW_PATCH
    from .errors import GeckoError
    from .inputs import InputTooLarge, NodeInputs
    from .limits import PAYLOAD_LIMIT, result_problem, snapshot_problem
    from .scheduler import Scheduler, Task
    from .spec import (KIND_FUNCTION, KIND_TEAM, KIND_WAIT, SCHEDULING_EAGER, GraphSpec, MemberSpec, NodeOutput, NodeSpec,
                       RetrySpec, RunParams, RunSnapshot)
    from .state import StateDelta, merge_layer
    from .team_run import MemberDone, TeamFailed, TeamRun
    from .window import DEFAULT_MAX_PARALLEL, Window, history_full

# Local activities run inside one workflow task, during which queries and signals wait; a loop of
# light local nodes would hold the task for seconds. End the task after this many local steps.
_LOCAL_BURST = 100


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


def _run_failure(exc: Exception) -> ApplicationError:
    """What a failed run raises: non-retryable, typed so the client raises the matching GeckoError."""
    if isinstance(exc, _NodeFailed):
        return ApplicationError(
            f'node "{exc.node}" failed: {exc.error_type}: {exc.message}',
            {"node": exc.node, "error_type": exc.error_type, "message": exc.message, "members": exc.member_errors},
            type="SerializationError" if exc.error_type == "SerializationError" else "NodeError",
            non_retryable=True,
        )
    return ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True)


def _timed_out(workflow_name: str, running: list[str], step: int) -> ApplicationError:
    return ApplicationError(
        f'run "{workflow_name}" timed out after its timeout while running '
        f"{', '.join(running)} (step {step}); raise timeout= or make the nodes faster",
        {"running": running, "step": step}, type="WorkflowTimeoutError", non_retryable=True,
    )


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
        snap = RunSnapshot.from_plain(params.snapshot) if params.snapshot is not None else RunSnapshot()
        self._sched = Scheduler(params.spec, snap.scheduler)
        self._control = control.RunControl(params.spec, self._sched, snap)
        self._state: dict[str, str] = snap.state
        self._input = params.input
        self._deadline: Optional[float] = snap.deadline
        self._run = snap.run
        self._completed: list[str] = snap.completed
        self._conflicts: list[str] = []
        self._running: dict[str, int] = {}
        self._layer = snap.layer
        self._status = "running"
        self._inputs = NodeInputs(params.spec.key, params.input, snap.warned, payload_limit=params.payload_limit)
        self._can_blocked = False  # the snapshot outgrew a payload: stay in this run
        self._local_streak = 0  # local steps since the workflow task last ended
        # Every activity start goes through one window (Temporal allows 2,000 pending activities).
        # It only ever holds a start back in runs that record the patch: older runs started every
        # node of a layer at once and replay that way (their layers never reached the window).
        self._window = Window(params.spec.max_parallel or DEFAULT_MAX_PARALLEL,
                              may_limit=lambda: workflow.patched(WINDOW_PATCH))
        self._partial_layer = snap.partial_layer  # a layer the previous run paused (history full)
        self._queued = 0

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
            if self._spec.scheduling == SCHEDULING_EAGER:
                await self._run_eager(params, steps_at_start)
            else:
                await self._run_layered(params, steps_at_start)
            result = self._sched.result()
            too_big = result_problem(result, self._sched.last_layer, params.payload_limit)
            if too_big:
                raise _NodeFailed(too_big[0], "PayloadTooLarge", too_big[1])
        except (_NodeFailed, GeckoError) as exc:
            self._status = "failed"
            raise _run_failure(exc) from None
        self._status = "completed"
        return json.loads(result)

    async def _run_layered(self, params: RunParams, steps_at_start: int) -> None:
        """Layers (super-steps): a layer's nodes start together; the next layer waits for all of them."""
        while True:
            partial, self._partial_layer = self._partial_layer, None
            if partial is not None:  # go on with the layer the previous run paused, as it was
                tasks = [Task(*t) for t in partial["tasks"]]
                done = {int(i): NodeOutput.from_plain(o) for i, o in partial["done"].items()}
            else:
                self._control.apply_redirects()
                tasks, done = self._sched.next_layer(), {}
                if not tasks:
                    break
                self._layer += 1
            self._inputs.new_layer()
            outputs = await self._run_layer(tasks, done)
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

    async def _run_eager(self, params: RunParams, steps_at_start: int) -> None:
        """Eager: a node starts as soon as its inputs are ready, while unrelated nodes still run.

        A node sees the state as it was when it started; its writes merge when it finishes, with
        the nodes that finished in the same workflow activation in node order (Temporal replays
        completions in the order it recorded them, so replay decides identically). A key that a
        node writes after another node wrote it while the first was running is a conflict (the
        later finisher wins, as in node order for a layer). Jumps, waits, Teams and
        continue-as-new (after the running nodes finish) work as in layered runs.
        """
        running: dict[str, tuple[Task, "asyncio.Future[NodeOutput]"]] = {}
        redirected: set[str] = set()  # running when a jump from outside redirected the run
        seen_redirects: list = []
        started_at: dict[str, int] = {}  # node -> how many merges had happened when it started
        last_write: dict[str, tuple[str, int]] = {}  # key -> (node, merge number)
        merges = 0
        draining = False  # continue-as-new is due: start nothing more, switch once all finished
        while True:
            if self._control.apply_redirects(seen_redirects):
                redirected.update(running)
            if not draining:
                tasks = self._sched.next_layer(running=running.keys())
                if tasks:
                    self._layer += 1
                    self._inputs.new_layer()
                for task in tasks:
                    started_at[task.node] = merges
                    running[task.node] = (task, asyncio.ensure_future(self._run_task(task)))
            if not running:
                if draining:
                    draining = False
                    await self._continue_as_new(params)  # returns only if the snapshot cannot switch
                    continue
                return
            timeout = None
            if self._deadline is not None:
                timeout = max(0.0, self._deadline - workflow.now().timestamp())
            done, _ = await workflow.wait([f for _, f in running.values()], timeout=timeout,
                                          return_when=asyncio.FIRST_COMPLETED)
            order = self._sched.node_order
            if not done:
                names = sorted(running, key=order)
                for _, fut in running.values():
                    _abandon(fut)
                self._status = "failed"
                raise _timed_out(self._spec.name, names, self._sched.step)
            batch = sorted((t for t, f in running.values() if f in done), key=lambda t: order(t.node))
            for task in batch:  # the first failure in node order fails the run
                error = running[task.node][1].exception()
                if error is not None:
                    for _, fut in running.values():
                        if not fut.done():
                            _abandon(fut)
                    raise error
            merges += 1
            deltas, overlapping = [], []
            for task in batch:
                out = running.pop(task.node)[1].result()
                self._sched.finish(task, out.value, out.jump, redirected=task.node in redirected)
                redirected.discard(task.node)
                deltas.append((task.node, StateDelta(out.writes, out.deletes)))
                self._completed.append(task.node)
                for key in [*out.writes, *out.deletes]:
                    earlier = last_write.get(key)
                    if earlier is not None and earlier[0] != task.node and earlier[1] > started_at[task.node]:
                        overlapping.append(key)
                    last_write[key] = (task.node, merges)
            del self._completed[:-control.KEEP_COMPLETED]
            self._sched.finished_last([t.node for t in batch])
            self._conflicts = list(dict.fromkeys(overlapping + merge_layer(self._state, deltas)))
            if self._conflicts:
                workflow.logger.info("nodes that ran at the same time wrote %s; the last to finish won",
                                     self._conflicts)
            more = bool(self._sched.inbox or self._sched.jumps)
            if more and not running:
                await self._end_long_local_burst(batch)
            if more and not draining and not self._can_blocked and (
                    self._sched.step - steps_at_start >= self._spec.steps_per_run
                    or workflow.info().is_continue_as_new_suggested()):
                draining = True

    async def _end_long_local_burst(self, tasks: list[Task]) -> None:
        if any(not self._nodes[t.node].local or self._nodes[t.node].kind != KIND_FUNCTION for t in tasks):
            self._local_streak = 0  # a regular activity ended the workflow task anyway
            return
        self._local_streak += len(tasks)
        if self._local_streak >= _LOCAL_BURST and workflow.patched(LOCAL_BURST_PATCH):
            self._local_streak = 0
            # A no-op regular activity ends the task (a timer would too, but the server fires timers
            # about 0.5 s late; this costs one dispatch, ~30 ms), and waiting queries and signals get in.
            await workflow.execute_activity(YIELD_ACTIVITY, start_to_close_timeout=timedelta(seconds=30),
                                            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=2)))

    async def _continue_as_new(self, params: RunParams, partial_layer: Optional[dict[str, Any]] = None) -> None:
        # Handlers still running (an update mid-flight) would be lost by the switch.
        await workflow.wait_condition(workflow.all_handlers_finished)
        snapshot = RunSnapshot(
            scheduler=self._sched.snapshot(), state=self._state, deadline=self._deadline, run=self._run + 1,
            completed=self._completed, rejected=self._control.rejected, answers=self._control.answers,
            layer=self._layer, warned=list(self._inputs.warned), partial_layer=partial_layer)
        next_run = {"spec": self._plain_spec, "input": params.input, "snapshot": snapshot.to_plain()}
        if params.payload_limit != PAYLOAD_LIMIT:  # a payload store raised it; runs without one stay as before
            next_run["payload_limit"] = params.payload_limit
        too_big = snapshot_problem(json.dumps(next_run), self._spec.name, self._state, params.payload_limit)
        if too_big:
            # Switching would fail the workflow task forever; going on in this run only costs history.
            self._can_blocked = True
            workflow.logger.warning(too_big)
            return
        workflow.continue_as_new(next_run)

    async def _run_layer(self, tasks: list[Task], done: Optional[dict[int, NodeOutput]] = None) -> list[NodeOutput]:
        """Run a layer's tasks (those not ``done`` already) and return their outputs in task order.

        The window starts at most ``max_parallel`` activities at once. A layer wider than that
        starts its node tasks as earlier ones finish, in node order (a task per waiting node cost
        the 10,000-wide layer's first workflow task more than Temporal's 2 s deadlock limit, and
        its eviction more than the SDK allows). A layer of plain nodes wider than the window may
        pause when Temporal suggests continue-as-new: once the running nodes finish, the run
        continues as new with the rest of the layer (and what finished).
        """
        done = dict(done or {})
        queue = deque(i for i in range(len(tasks)) if i not in done)
        cap = len(queue)
        if cap > self._window.size and self._window.limits():  # older runs started every node at once
            cap = self._window.size
        running: dict[int, asyncio.Future[NodeOutput]] = {}
        failures: dict[int, BaseException] = {}
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        drained = None
        if cap < len(queue) and all(self._nodes[t.node].kind == KIND_FUNCTION for t in tasks):
            drained = self._window.allow_pause(self._history_full)

        def launch() -> None:
            while queue and len(running) < cap and not finished.done():
                if drained is not None and self._window.paused_now():
                    break
                i = queue.popleft()
                fut = running[i] = asyncio.ensure_future(self._run_task(tasks[i]))
                fut.add_done_callback(lambda f, i=i: landed(i, f))
            self._queued = len(queue)
            if not queue and not running and not finished.done():
                finished.set_result(None)

        def landed(i: int, fut: "asyncio.Future[NodeOutput]") -> None:
            running.pop(i, None)
            if fut.cancelled():
                return
            if fut.exception() is not None:
                failures[i] = fut.exception()  # type: ignore[assignment]
                if not finished.done():
                    finished.set_result(None)
                return
            done[i] = fut.result()
            launch()

        launch()
        try:
            while True:
                timeout = None
                if self._deadline is not None:
                    timeout = max(0.0, self._deadline - workflow.now().timestamp())
                waited = [finished, *([drained] if drained is not None else [])]
                got, _ = await workflow.wait(waited, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if failures or not got:
                    late = sorted(running)
                    for i in late:
                        _abandon(running[i])
                    if failures:  # report the first failure in node order
                        raise failures[min(failures)]
                    self._status = "failed"
                    raise _timed_out(self._spec.name, [tasks[i].node for i in late], self._sched.step)
                if drained is not None and drained.done() and not finished.done():
                    await self._pause_layer(tasks, done)  # returns only if the run cannot switch
                    self._window.forbid_pause()
                    drained = None
                    launch()
                    continue
                if finished.done():
                    return [done[i] for i in range(len(tasks))]
        finally:  # (continue-as-new raises through here: it must not start the rest of the layer)
            self._queued = 0
            if drained is not None:
                self._window.forbid_pause(resume=False)

    def _history_full(self) -> bool:
        # Temporal's suggestion (4,096 events or 4 MiB on a default server) is the bound that matters:
        # a worker that lost its cache replays the whole history within one workflow task (10 s), and
        # the 34,000 events of a 10,000-wide layer took longer than that here, so the run never got on.
        info = workflow.info()
        return info.is_continue_as_new_suggested() or history_full(
            info.get_current_history_length(), info.get_current_history_size(), self._window.size)

    async def _pause_layer(self, tasks: list[Task], done: dict[int, NodeOutput]) -> None:
        """Continue as new in the middle of a layer: its tasks and the outputs of those that finished."""
        workflow.logger.info("layer %d: continuing as new after %d of its %d nodes (history is long)",
                             self._layer, len(done), len(tasks))
        partial = {"tasks": [[t.node, t.input, t.step, t.jumped] for t in tasks],
                   "done": {str(i): out.to_plain() for i, out in sorted(done.items())}}
        await self._continue_as_new(self._params, partial_layer=partial)

    async def _run_task(self, task: Task) -> NodeOutput:
        node = self._nodes[task.node]
        self._running[task.node] = task.step
        try:
            if node.kind == KIND_TEAM:
                return await self._run_team(node, task)
            if node.kind == KIND_WAIT:
                return await self._wait_for_answer(node, task)
            try:
                return await self._run_activity(node, task, None, node)
            except (ActivityError, ApplicationError, TemporalTimeout) as exc:
                # A local activity's failure arrives as the bare ApplicationError/TimeoutError.
                raise _NodeFailed(task.node, *_error_of(exc)) from None
        finally:
            self._running.pop(task.node, None)

    def _run_activity(self, node: NodeSpec, task: Task, member: Optional[int],
                      how: Union[NodeSpec, MemberSpec]) -> Any:
        """Run the activity of ``task`` (of one Team ``member``), run as ``how`` says (the node or member),
        once the window has a slot for it (its input is built then)."""
        return self._window.run(lambda: self._start_activity(node, task, member, how))

    def _start_activity(self, node: NodeSpec, task: Task, member: Optional[int],
                        how: Union[NodeSpec, MemberSpec]) -> Any:
        """Start the activity of ``task`` (of one Team ``member``), run as ``how`` says (the node or member)."""
        try:
            arg, warning = self._inputs.build(node, task, member=member, takes_context=how.takes_context,
                                              session_id=workflow.info().workflow_id, state=self._state,
                                              outputs=self._sched.outputs)
        except InputTooLarge as exc:
            raise _NodeFailed(task.node, "PayloadTooLarge", str(exc)) from None
        if warning:
            workflow.logger.warning(warning)
        # Input and result travel as plain dicts: the converter's dataclass handling (a deep copy
        # on the way out, reflection over type hints on the way in) cost ~10x more per activity,
        # which a wide layer pays a thousand times in one workflow task. Same JSON either way.
        common: dict[str, Any] = dict(
            start_to_close_timeout=timedelta(seconds=how.start_to_close_timeout), retry_policy=_retry_policy(how.retry),
            result_type=dict,
            activity_id=f"{self._run}.{task.step}" + (f".{member}" if member is not None else ""),
        )
        if node.local:
            return _node_output(workflow.execute_local_activity(how.activity_type, vars(arg), **common))
        heartbeat = timedelta(seconds=how.heartbeat_timeout) if how.heartbeat_timeout else None
        return _node_output(workflow.execute_activity(how.activity_type, vars(arg), heartbeat_timeout=heartbeat,
                                                      **common))

    # -- Team ------------------------------------------------------------------------------
    async def _run_team(self, node: NodeSpec, task: Task) -> NodeOutput:
        """Run the members as activities; TeamRun decides who starts, who won, what it outputs."""
        team = node.team
        assert team is not None
        run = TeamRun(team)
        running: dict[int, asyncio.Future] = {}
        while True:
            for i in run.start(workflow.now().timestamp()):
                running[i] = asyncio.ensure_future(self._run_activity(node, task, i, team.members[i]))
            if not running:
                break
            done, _ = await workflow.wait(list(running.values()), return_when=asyncio.FIRST_COMPLETED)
            finished = {}
            for i in [i for i, f in running.items() if f in done]:
                fut = running.pop(i)
                error = fut.exception()
                finished[i] = MemberDone(error=_error_of(error)) if error is not None else MemberDone(fut.result())
            for i in run.finished(finished, workflow.now().timestamp()):
                _abandon(running.pop(i))  # a loser: cancel its activity through Temporal
        try:
            return run.output()
        except TeamFailed as exc:
            raise _NodeFailed(task.node, "TeamFailed", exc.message, exc.failures) from None

    # -- waiting for a person ------------------------------------------------------------------
    async def _wait_for_answer(self, node: NodeSpec, task: Task) -> NodeOutput:
        live = self._control
        live.start_waiting(node.name, node.wait_prompt, task.input, workflow.now().isoformat(), node.wait_timeout)
        try:
            await workflow.wait_condition(lambda: node.name in live.answers, timeout=node.wait_timeout)
            value = live.answer_for(node.name)
        except asyncio.TimeoutError:
            if node.wait_default is None:
                raise _NodeFailed(node.name, "WaitTimeout",
                                  f"no answer within {node.wait_timeout} s (answer with handle.answer"
                                  f'("{node.name}", value) or give WaitForInput a default)') from None
            value = node.wait_default
        finally:
            live.stop_waiting(node.name)
        return NodeOutput(value=value)

    # -- queries, signals, updates -------------------------------------------------------------
    # Every handler takes any number of arguments in any encoding and never raises into the
    # workflow task: a handler that did would fail the task on every replay and wedge the run.
    @workflow.query(name=STATE_QUERY)
    def state(self, *_args: Any) -> dict[str, Any]:
        """The live run as JSON: state, progress, what is running and waiting, jumps (arguments ignored)."""
        answer = self._control.state_answer(
            status=self._status, state=self._state, completed=self._completed, running=list(self._running),
            step=self._sched.step, layer=self._layer, run=self._run, conflicts=self._conflicts)
        answer["queued"] = self._queued  # nodes of the layer waiting for a slot of the window
        return answer

    @workflow.signal(dynamic=True)
    def on_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """gecko_next (jump) and gecko_answer; anything malformed or unknown is rejected, never fatal."""
        entry = self._control.signal(name, _read_args(args))
        if entry is not None:
            workflow.logger.warning("rejected %s %s: %s", name, entry["request"], entry["reason"])

    @workflow.update(name=JUMP_UPDATE)
    def jump_update(self, *args: Any) -> dict[str, Any]:
        """Like the gecko_next signal, but the caller hears at once whether the jump is valid."""
        request, _ = self._control.check_jump(_given_args(args))
        if request is None:  # cannot happen: the validator accepted these args, and the check
            # depends only on the graph; but a handler must never raise into the workflow task
            return {"node": None, "queued_after_step": self._sched.step}
        return self._control.queue_jump(request, "update")

    @jump_update.validator
    def _validate_jump(self, *args: Any) -> None:
        _, problem = self._control.check_jump(_given_args(args))
        if problem:
            raise ValueError(problem)

    @workflow.update(name=ANSWER_UPDATE)
    def answer_update(self, *args: Any) -> dict[str, Any]:
        request, _ = self._control.check_answer(_given_args(args))
        if request is None:  # as in jump_update
            return {"node": None, "waiting": False}
        return self._control.give_answer(request)

    @answer_update.validator
    def _validate_answer(self, *args: Any) -> None:
        _, problem = self._control.check_answer(_given_args(args))
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
