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
import sys
from collections import deque
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    TerminatedError,
    WorkflowAlreadyStartedError,
)
from temporalio.exceptions import TimeoutError as TemporalTimeout

with workflow.unsafe.imports_passed_through():
    from gecko_temporal.core import control
    from gecko_temporal.core.errors import GeckoError
    from gecko_temporal.core.inputs import InputTooLarge, NodeInputs
    from gecko_temporal.core.limits import (
        FRAME,
        PAYLOAD_LIMIT,
        child_session_id,
        human,
        json_size,
        limit_name,
        result_problem,
        snapshot_problem,
    )
    from gecko_temporal.core.scheduler import Scheduler, Task
    from gecko_temporal.core.spec import (
        KIND_FUNCTION,
        KIND_SUBGRAPH,
        KIND_TEAM,
        KIND_WAIT,
        SCHEDULING_EAGER,
        GraphSpec,
        MemberSpec,
        NodeOutput,
        NodeSpec,
        RetrySpec,
        RunParams,
        RunSnapshot,
    )
    from gecko_temporal.core.state import ReducerError, StateDelta, merge_layer
    from gecko_temporal.core.team_run import MemberDone, TeamFailed, TeamRun
    from gecko_temporal.core.window import DEFAULT_MAX_PARALLEL, Window, history_full
    from gecko_temporal.protocol import (
        ANSWER_UPDATE,
        JUMP_UPDATE,
        LOCAL_BURST_PATCH,
        REWIND_WAIT_PATCH,
        STATE_QUERY,
        STATE_UPDATE,
        STEPS_QUERY,
        WINDOW_PATCH,
        WORKFLOW_TYPE,
        YIELD_ACTIVITY,
    )
    from gecko_temporal.temporal.run_events import RunEvents

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


def _abandon(fut: asyncio.Future[Any]) -> None:
    """Cancel an activity we no longer wait for; its late failure is expected, not an error."""
    fut.cancel()
    fut.add_done_callback(lambda f: f.cancelled() or f.exception())


async def _node_output(pending: Any, events: Any = None) -> NodeOutput:
    plain = await pending
    if events is not None and isinstance(plain, dict) and plain.get("emitted"):
        events.publish_emitted(plain["emitted"])  # a local node's context.emit events (see _stream)
    return NodeOutput.from_plain(plain)


class _NodeFailed(Exception):
    def __init__(
        self, node: str, error_type: str, message: str, member_errors: Any = None, child: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.node, self.error_type, self.message, self.member_errors = node, error_type, message, member_errors
        self.send: tuple[int, int] | None = None  # a Send instance's (index, instances)
        self.child = child  # a subgraph node's failed child run: session, workflow, node


def _child_failure(exc: BaseException, node: str, child_id: str, child_name: str) -> _NodeFailed:
    """A subgraph node's failure: what failed inside the child run (its node and error), and where."""
    cause = exc.cause if isinstance(exc, ChildWorkflowError) and exc.cause is not None else exc
    where = f'subgraph "{child_name}" (child session {child_id})'
    info: dict[str, Any] = {"session": child_id, "workflow": child_name}
    if isinstance(cause, ApplicationError):
        details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
        if details.get("node"):
            info.update(node=details["node"], error_type=details.get("error_type", ""))
            return _NodeFailed(
                node,
                details.get("error_type") or cause.type or "NodeError",
                f'{where} failed at its node "{details["node"]}": {details.get("message", "")}',
                child=info,
            )
        return _NodeFailed(node, cause.type or "ApplicationError", f"{where} failed: {cause.message}", child=info)
    if isinstance(cause, CancelledError):
        return _NodeFailed(node, "CancelledError", f"{where} was cancelled", child=info)
    if isinstance(cause, TerminatedError):
        return _NodeFailed(node, "Terminated", f"{where} was terminated", child=info)
    if isinstance(cause, TemporalTimeout):
        return _NodeFailed(node, "TimeoutError", f"{where} timed out", child=info)
    return _NodeFailed(node, type(cause).__name__, f"{where} failed: {cause}", child=info)


def _run_failure(exc: Exception) -> ApplicationError:
    """What a failed run raises: non-retryable, typed so the client raises the matching GeckoError."""
    if isinstance(exc, _NodeFailed):
        details = {"node": exc.node, "error_type": exc.error_type, "message": exc.message, "members": exc.member_errors}
        if exc.child is not None:
            details["child"] = exc.child
        where = f'node "{exc.node}"'
        if exc.send is not None:  # one instance of a fan-out: say which Send
            details["send"] = exc.send[0]
            where += f" (Send {exc.send[0]} of {exc.send[1]})"
        return ApplicationError(
            f"{where} failed: {exc.error_type}: {exc.message}",
            details,
            type="SerializationError" if exc.error_type == "SerializationError" else "NodeError",
            non_retryable=True,
        )
    return ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True)


def _timed_out(workflow_name: str, running: list[str], step: int) -> ApplicationError:
    return ApplicationError(
        f'run "{workflow_name}" timed out after its timeout while running '
        f"{', '.join(running)} (step {step}); raise timeout= or make the nodes faster",
        {"running": running, "step": step},
        type="WorkflowTimeoutError",
        non_retryable=True,
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
        self._deadline: float | None = snap.deadline
        self._run = snap.run
        self._completed: list[str] = snap.completed
        self._conflicts: list[str] = []
        self._running: dict[str, int] = {}
        self._layer = snap.layer
        self._status = "running"
        self._inputs = NodeInputs(params.spec.key, params.input, snap.warned, payload_limit=params.payload_limit)
        self._can_blocked = False  # the snapshot outgrew a payload: stay in this run
        self._local_streak = 0  # local steps since the workflow task last ended
        self._children: dict[str, str] = {}  # subgraph node -> its running child session
        self._team_deltas: dict[str, list[StateDelta]] = {}  # by Task.key: a Team's members' deltas
        self._control.clock = lambda: workflow.now().isoformat()
        if params.snapshot is None and plain.get("state"):  # start(..., state=...): seeded, checked by the client
            self._state = dict(plain["state"])
        # Where this run can be rewound to: one entry per merge (layer), with the history length of
        # the workflow task that merged it (a rewind resets to that task's completion).
        self._checkpoints: list[dict[str, Any]] = []
        # Temporal reseeds workflow.random() at the point a run was reset to (an UpdateRandomSeed
        # job, replayed identically), so a new workflow.random_seed() between two merges means
        # "this run was reset just now": no other API says so (see _after_reset).
        self._seed_state = workflow.random_seed()
        self._resets = 0  # resets seen in this run
        self._events = RunEvents(
            params.spec,
            plain.get("stream"),
            snap.run,  # stream, UI details, search attributes
            on_reject=self._reject,
        )
        # Every activity start goes through one window (Temporal allows 2,000 pending activities).
        # It only ever holds a start back in runs that record the patch: older runs started every
        # node of a layer at once and replay that way (their layers never reached the window).
        self._window = Window(
            params.spec.max_parallel or DEFAULT_MAX_PARALLEL, may_limit=lambda: workflow.patched(WINDOW_PATCH)
        )
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
        self._checkpoint([], start=True)
        await self._after_reset()
        self._events.start(self._completed)
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
            failure = _run_failure(exc)
            await self._events.run_finished("failed", failure.message)
            raise failure from None
        except ApplicationError as exc:  # the run's timeout
            await self._events.run_finished("failed", exc.message)
            raise
        except asyncio.CancelledError:  # cancelled from outside: readers and GeckoStatus say so
            await self._events.run_finished("cancelled")
            raise
        self._status = "completed"
        self._show()
        await self._events.run_finished("completed")
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
                self._apply_edits()
                tasks, done = self._sched.next_layer(), {}
                if not tasks:
                    break
                self._layer += 1
            self._inputs.new_layer()
            outputs = await self._run_layer(tasks, done)
            deltas = []
            for task, out in zip(tasks, outputs):  # node order (then Send order), never completion order
                self._sched.finish(task, out.value, out.jump, routes=out.routes, sends=out.sends)
                if out.jump is not None:
                    self._events.jump(task.node, out.jump.node, task.step)
                deltas.extend((task.node, d) for d in self._deltas_of(task, out))
                self._completed.append(task.node)
            del self._completed[: -control.KEEP_COMPLETED]
            self._conflicts = self._merge(deltas)
            if self._conflicts:
                workflow.logger.info(
                    "layer %d: several nodes wrote %s; the last in node order won", self._layer, self._conflicts
                )
            self._checkpoint([t.node for t in tasks])
            await self._after_reset()
            self._apply_edits()
            more = bool(self._sched.inbox or self._sched.jumps or self._sched.sends)  # never switch just to finish
            if more:
                await self._end_long_local_burst(tasks)
            if (
                more
                and not self._can_blocked
                and (
                    self._sched.step - steps_at_start >= self._spec.steps_per_run
                    or workflow.info().is_continue_as_new_suggested()
                )
            ):
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
        running: dict[str, tuple[Task, asyncio.Future[NodeOutput]]] = {}  # by Task.key
        redirected: set[str] = set()  # running when a jump from outside redirected the run
        seen_redirects: list = []
        started_at: dict[str, int] = {}  # node -> how many merges had happened when it started
        last_write: dict[str, tuple[str, int]] = {}  # key -> (node, merge number)
        merges = 0
        held: dict[str, dict[int, list[StateDelta]]] = {}  # writes of fan-out instances, until the fan-out ends
        draining = False  # continue-as-new is due: start nothing more, switch once all finished
        while True:
            if self._control.apply_redirects(seen_redirects):
                redirected.update(running)
            self._apply_edits()  # only when no node activity runs (see _quiet)
            if not draining:
                tasks = self._sched.next_layer(running={t.node for t, _ in running.values()}, pending=len(running))
                if tasks:
                    self._layer += 1
                    self._inputs.new_layer()
                for task in tasks:
                    started_at[task.key] = merges
                    running[task.key] = (task, asyncio.ensure_future(self._run_task(task)))
            if not running:
                if draining:
                    draining = False
                    await self._continue_as_new(params)  # returns only if the snapshot cannot switch
                    continue
                return
            timeout = None
            if self._deadline is not None:
                timeout = max(0.0, self._deadline - workflow.now().timestamp())
            done, _ = await workflow.wait(
                [f for _, f in running.values()], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            order = self._sched.node_order
            if not done:
                names = [t.key for t, _ in sorted(running.values(), key=lambda r: (order(r[0].node), r[0].send or 0))]
                for _, fut in running.values():
                    _abandon(fut)
                self._status = "failed"
                raise _timed_out(self._spec.name, names, self._sched.step)
            batch = sorted((t for t, f in running.values() if f in done), key=lambda t: (order(t.node), t.send or 0))
            for task in batch:  # the first failure in node order fails the run
                error = running[task.key][1].exception()
                if error is not None:
                    for _, fut in running.values():
                        if not fut.done():
                            _abandon(fut)
                    raise error
            merges += 1
            deltas, overlapping = [], []
            reducers = self._spec.reducers
            for task in batch:
                out = running.pop(task.key)[1].result()
                whole = self._sched.finish(
                    task, out.value, out.jump, redirected=task.key in redirected, routes=out.routes, sends=out.sends
                )
                if out.jump is not None:
                    self._events.jump(task.node, out.jump.node, task.step)
                redirected.discard(task.key)
                if task.send is None:
                    deltas.extend((task.node, d) for d in self._deltas_of(task, out))
                else:  # a fan-out's writes merge when its last instance finishes, in Send order
                    held.setdefault(task.node, {})[task.send] = self._deltas_of(task, out)
                    if whole:
                        group = held.pop(task.node)
                        deltas.extend((task.node, d) for i in sorted(group) for d in group[i])
                self._completed.append(task.node)
                for key in [*out.writes, *out.deletes]:
                    earlier = last_write.get(key)
                    if (
                        earlier is not None
                        and earlier[0] != task.key
                        and earlier[1] > started_at[task.key]
                        and key not in reducers
                    ):  # a reduced key combines: no conflict
                        overlapping.append(key)
                    last_write[key] = (task.key, merges)
            del self._completed[: -control.KEEP_COMPLETED]
            self._sched.finished_last(list(dict.fromkeys(t.node for t in batch)))
            self._conflicts = list(dict.fromkeys(overlapping + self._merge(deltas)))
            self._checkpoint([t.node for t in batch])
            await self._after_reset()
            if self._conflicts:
                workflow.logger.info(
                    "nodes that ran at the same time wrote %s; the last to finish won", self._conflicts
                )
            more = bool(self._sched.inbox or self._sched.jumps or self._sched.sends)
            if more and not running:
                await self._end_long_local_burst(batch)
            if (
                more
                and not draining
                and not self._can_blocked
                and (
                    self._sched.step - steps_at_start >= self._spec.steps_per_run
                    or workflow.info().is_continue_as_new_suggested()
                )
            ):
                draining = True

    def _deltas_of(self, task: Task, out: NodeOutput) -> list[StateDelta]:
        """What ``task`` did to the state: one delta, or with reducers a Team's members' one by one
        (so a reduced key combines every member's contribution, not only the last member's)."""
        members = self._team_deltas.pop(task.key, None)
        if members is not None and self._spec.reducers:
            return members
        return [StateDelta(out.writes, out.deletes)]

    def _merge(self, deltas: list[tuple[str, StateDelta]]) -> list[str]:
        """Merge deltas (in node order) into the state, reduced keys by their reducers."""
        try:
            return merge_layer(self._state, deltas, self._spec.reducers)
        except ReducerError as exc:
            raise _NodeFailed(exc.node, "ReducerError", str(exc)) from None

    async def _end_long_local_burst(self, tasks: list[Task]) -> None:
        if any(not self._nodes[t.node].local or self._nodes[t.node].kind != KIND_FUNCTION for t in tasks):
            self._local_streak = 0  # a regular activity ended the workflow task anyway
            return
        self._local_streak += len(tasks)
        if self._local_streak >= _LOCAL_BURST and workflow.patched(LOCAL_BURST_PATCH):
            self._local_streak = 0
            # A no-op regular activity ends the task (a timer would too, but the server fires timers
            # about 0.5 s late; this costs one dispatch, ~30 ms), and waiting queries and signals get in.
            await workflow.execute_activity(
                YIELD_ACTIVITY,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=2)),
            )

    async def _continue_as_new(self, params: RunParams, partial_layer: dict[str, Any] | None = None) -> None:
        # Handlers still running (an update mid-flight) would be lost by the switch; stream readers'
        # polls wait for events, so they are answered first (they follow the run to the next one).
        await self._events.release_readers()
        snapshot = RunSnapshot(
            scheduler=self._sched.snapshot(),
            state=self._state,
            deadline=self._deadline,
            run=self._run + 1,
            completed=self._completed,
            rejected=self._control.rejected,
            answers=self._control.answers,
            layer=self._layer,
            warned=list(self._inputs.warned),
            edits=self._control.edits,
            rewound_from=self._control.rewound_from,
            partial_layer=partial_layer,
        )
        next_run = {"spec": self._plain_spec, "input": params.input, "snapshot": snapshot.to_plain()}
        if params.payload_limit != PAYLOAD_LIMIT:  # a payload store raised it; runs without one stay as before
            next_run["payload_limit"] = params.payload_limit
        stream = self._events.carry()
        if stream is not None:
            next_run["stream"] = stream
        too_big = snapshot_problem(json.dumps(next_run), self._spec.name, self._state, params.payload_limit)
        if too_big:
            # Switching would fail the workflow task forever; going on in this run only costs history.
            self._can_blocked = True
            workflow.logger.warning(too_big)
            self._events.reattach()
            return
        workflow.continue_as_new(next_run)

    async def _run_layer(self, tasks: list[Task], done: dict[int, NodeOutput] | None = None) -> list[NodeOutput]:
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
        # Plain nodes only: a Team, a wait or a fan-out (whose instances fan in within the run) finishes first.
        if cap < len(queue) and all(self._nodes[t.node].kind == KIND_FUNCTION and t.send is None for t in tasks):
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

        def landed(i: int, fut: asyncio.Future[NodeOutput]) -> None:
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
                    raise _timed_out(self._spec.name, [tasks[i].key for i in late], self._sched.step)
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
            info.get_current_history_length(), info.get_current_history_size(), self._window.size
        )

    async def _pause_layer(self, tasks: list[Task], done: dict[int, NodeOutput]) -> None:
        """Continue as new in the middle of a layer: its tasks and the outputs of those that finished."""
        workflow.logger.info(
            "layer %d: continuing as new after %d of its %d nodes (history is long)", self._layer, len(done), len(tasks)
        )
        partial = {
            "tasks": [[t.node, t.input, t.step, t.jumped] for t in tasks],
            "done": {str(i): out.to_plain() for i, out in sorted(done.items())},
        }
        await self._continue_as_new(self._params, partial_layer=partial)

    async def _run_task(self, task: Task) -> NodeOutput:
        node = self._nodes[task.node]
        self._running[task.key] = task.step
        self._events.node_started(task.node, task.step)
        self._show()
        try:
            if node.kind == KIND_TEAM:
                return await self._run_team(node, task)
            if node.kind == KIND_WAIT:
                return await self._wait_for_answer(node, task)
            if node.kind == KIND_SUBGRAPH:
                return await self._run_subgraph(node, task)
            try:
                out = await self._run_activity(node, task, None, node)
                if out.interrupt is not None and task.send is not None:
                    # Instances of one fan-out share the node's name, which answers address.
                    raise _NodeFailed(
                        task.node,
                        "InterruptError",
                        "context.interrupt() in a Send instance: the instances of a fan-out run "
                        "together and share one node name; interrupt in a node before or after "
                        "the fan-out",
                    )
                if out.interrupt is not None:
                    out = await self._interrupted(node, task, out)
                return out
            except (ActivityError, ApplicationError, TemporalTimeout) as exc:
                # A local activity's failure arrives as the bare ApplicationError/TimeoutError.
                raise _NodeFailed(task.node, *_error_of(exc)) from None
        except _NodeFailed as exc:
            if task.send is not None and exc.send is None:
                exc.send = (task.send, task.sends)
            raise
        finally:
            self._running.pop(task.key, None)
            ended = sys.exc_info()[1]
            if not isinstance(ended, GeneratorExit):  # GeneratorExit: evicted from the cache, not in a workflow
                self._events.node_finished(task.node, task.step, ended, _failure_text)
                self._show()

    def _reject(self, name: str, args: list, reason: str) -> None:
        """A malformed stream publish: listed under gecko_state["rejected"] and logged, never fatal."""
        entry = control.rejection(name, [control.Arg(a) for a in args], reason, self._sched.step)
        self._control.rejected.append(entry)
        del self._control.rejected[: -control.KEEP_REJECTED]
        workflow.logger.warning("rejected %s %s: %s", name, entry["request"], reason)

    def _show(self) -> None:
        """The Temporal UI's current details: what runs and waits now."""
        status = "waiting" if self._control.waiting and self._status == "running" else self._status
        self._events.details(status, self._running, self._control.waiting, self._sched.step)

    def _run_activity(self, node: NodeSpec, task: Task, member: int | None, how: NodeSpec | MemberSpec) -> Any:
        """Run the activity of ``task`` (of one Team ``member``), run as ``how`` says (the node or member),
        once the window has a slot for it (its input is built then)."""
        return self._window.run(lambda: self._start_activity(node, task, member, how))

    def _start_activity(self, node: NodeSpec, task: Task, member: int | None, how: NodeSpec | MemberSpec) -> Any:
        """Start the activity of ``task`` (of one Team ``member``), run as ``how`` says (the node or member)."""
        try:
            arg, warning = self._inputs.build(
                node,
                task,
                member=member,
                takes_context=how.takes_context,
                session_id=workflow.info().workflow_id,
                state=self._state,
                outputs=self._sched.outputs,
            )
        except InputTooLarge as exc:
            raise _NodeFailed(task.node, "PayloadTooLarge", str(exc)) from None
        if warning:
            workflow.logger.warning(warning)
        # Input and result travel as plain dicts: the converter's dataclass handling (a deep copy
        # on the way out, reflection over type hints on the way in) cost ~10x more per activity,
        # which a wide layer pays a thousand times in one workflow task. Same JSON either way.
        common: dict[str, Any] = dict(
            start_to_close_timeout=timedelta(seconds=how.start_to_close_timeout),
            retry_policy=_retry_policy(how.retry),
            result_type=dict,
            activity_id=f"{self._run}.{task.step}" + (f".{member}" if member is not None else ""),
        )
        summary = self._events.summary(task.node, task.step, how.name if member is not None else None)
        if summary is not None:  # only new runs (OBSERVE_PATCH): recorded commands carry none
            common["summary"] = summary
        if node.local:
            return _node_output(workflow.execute_local_activity(how.activity_type, vars(arg), **common), self._events)
        heartbeat = timedelta(seconds=how.heartbeat_timeout) if how.heartbeat_timeout else None
        return _node_output(
            workflow.execute_activity(how.activity_type, vars(arg), heartbeat_timeout=heartbeat, **common)
        )

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
            output = run.output()
            if self._spec.reducers:
                self._team_deltas[task.key] = run.member_deltas()
            return output
        except TeamFailed as exc:
            raise _NodeFailed(task.node, "TeamFailed", exc.message, exc.failures) from None

    # -- subgraphs --------------------------------------------------------------------------------
    async def _run_subgraph(self, node: NodeSpec, task: Task) -> NodeOutput:
        """Run the node's graph as a child GeckoWorkflow on this task queue: its own history,
        continue-as-new and gecko_state. It starts with the node's input and an empty state; its
        result is the node's output."""
        assert node.subgraph is not None
        parent = workflow.info().workflow_id
        # Stable on replay and unique in the session (steps count across continue-as-new).
        child_id = child_session_id(parent, node.name, task.step)  # fits Temporal's 1,000-byte id limit
        # The child graph as this run received it (inside its own spec), never as deployed now.
        child: dict[str, Any] = {"spec": node.subgraph.to_plain(), "input": task.input}
        limit = self._params.payload_limit
        if limit != PAYLOAD_LIMIT:
            child["payload_limit"] = limit
        size = json_size(task.input) + len(json.dumps(child["spec"])) + FRAME
        if size > limit:  # Temporal would refuse the start and fail this workflow task forever
            raise _NodeFailed(
                node.name,
                "PayloadTooLarge",
                f'subgraph node "{node.name}" would start its child run with {human(size)} '
                f"(its input {human(json_size(task.input))}), over {limit_name(limit)}; set "
                "GECKO_PAYLOAD_STORE on workers and clients, or keep large data outside the run "
                "(write it to a file or a store and pass its path)",
            )
        self._children[task.key] = child_id
        try:
            # Through the window like activities: max_parallel bounds what a run keeps in flight.
            result = await self._window.run(
                lambda: workflow.execute_child_workflow(
                    WORKFLOW_TYPE,
                    child,
                    id=child_id,
                    # Whatever ends the parent (cancel, timeout, terminate) cancels the child.
                    parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                    search_attributes=self._events.child_attributes(node.subgraph.name),
                    static_summary=f'subgraph "{node.subgraph.name}", node "{node.name}" of session {parent}',
                )
            )
        except WorkflowAlreadyStartedError:
            raise _NodeFailed(
                node.name,
                "ChildSessionTaken",
                f'a run with the child session id "{child_id}" is still open (a session of the '
                "same id that ended before may still be closing it); retry once it has ended",
                child={"session": child_id, "workflow": node.subgraph.name},
            ) from None
        except ChildWorkflowError as exc:
            raise _child_failure(exc, node.name, child_id, node.subgraph.name) from None
        finally:
            self._children.pop(task.key, None)
        # The child returns its result as plain JSON; the node's output travels as JSON text.
        return NodeOutput(value=json.dumps(result, separators=(",", ":"), ensure_ascii=False))

    # -- waiting for a person ------------------------------------------------------------------
    async def _wait_for_answer(self, node: NodeSpec, task: Task) -> NodeOutput:
        live = self._control
        live.start_waiting(node.name, node.wait_prompt, task.input, workflow.now().isoformat(), node.wait_timeout)
        self._events.waiting(node.name, task.step, node.wait_prompt)
        self._show()
        try:
            await workflow.wait_condition(lambda: node.name in live.answers, timeout=node.wait_timeout)
            value = live.answer_for(node.name)
        except asyncio.TimeoutError:
            if node.wait_default is None:
                raise _NodeFailed(
                    node.name,
                    "WaitTimeout",
                    f"no answer within {node.wait_timeout} s (answer with handle.answer"
                    f'("{node.name}", value) or give WaitForInput a default)',
                ) from None
            value = node.wait_default
        finally:
            live.stop_waiting(node.name)
            if not live.waiting:
                self._events.set_status("running")
        return NodeOutput(value=value)

    # -- context.interrupt(), state edits, rewind points ------------------------------------------
    async def _interrupted(self, node: NodeSpec, task: Task, out: NodeOutput) -> NodeOutput:
        """The node called context.interrupt(): its activity has ended. Wait (durably, no activity
        running) for each answer, then run the node again from its start with the answers so far,
        until it returns without interrupting. Only reachable from runs whose nodes interrupt."""
        live = self._control
        answers: list[str] = []
        while out.interrupt is not None:
            asked = out.interrupt
            timeout = asked.get("timeout")
            live.start_waiting(
                node.name,
                "",
                task.input,
                workflow.now().isoformat(),
                timeout,
                payload=asked["payload"],
                index=len(answers),
            )
            # The stream shows the payload as the waiting prompt (plain JSON, as gecko_state shows it).
            self._events.waiting(node.name, task.step, live.waiting[node.name].get("payload"), len(answers))
            self._show()
            self._apply_edits()  # the run may be quiet now: an edit sent meanwhile lands before the re-run
            try:
                await workflow.wait_condition(lambda: node.name in live.answers, timeout=timeout)
                answers.append(live.answer_for(node.name))
            except asyncio.TimeoutError:
                if asked.get("default") is None:
                    raise _NodeFailed(
                        node.name,
                        "WaitTimeout",
                        f"no answer to interrupt {len(answers)} within {timeout} s (answer with "
                        f'handle.answer("{node.name}", value) or give interrupt() a default)',
                    ) from None
                answers.append(asked["default"])
            finally:
                live.stop_waiting(node.name)
                if not live.waiting:
                    self._events.set_status("running")
            task.resume = answers
            out = await self._run_activity(node, task, None, node)
        return out

    def _quiet(self) -> bool:
        """No node activity is in flight: every running node waits for a person (or none runs)."""
        waiting = self._control.waiting
        return all(n in waiting for n in self._running)

    def _apply_edits(self) -> None:
        """State edits from outside land at safe points: between layers, or while the run only waits."""
        if self._control.pending_edits and self._quiet():
            self._control.apply_edits(self._state, self._sched.step, self._layer)
            self._inputs.new_layer()  # the state changed: measure it again

    def _checkpoint(self, nodes: list[str], start: bool = False) -> None:
        last = self._checkpoints[-1]["event"] if self._checkpoints else None
        event = workflow.info().get_current_history_length()
        step = self._sched.step
        self._checkpoints.append(
            {
                "step": step,
                "layer": self._layer,
                "nodes": list(dict.fromkeys(nodes)),  # a fan-out's instances once
                "time": workflow.now().isoformat(),
                "event": event,
                # A later merge in the same workflow task (local steps) cannot be
                # reset to on its own: a reset redoes the whole task. Nor a run's
                # start: a run reset to its first task cannot tell (no reseed seen
                # there), so it would not wait for the rewind's edits.
                "rewindable": event != last and not start,
            }
        )
        del self._checkpoints[: -control.KEEP_CHECKPOINTS]

    async def _after_reset(self) -> None:
        """A rewind resets the run to the task that merged a step, then signals gecko_rewound (where
        it came from, edits, updates the reset dropped). Wait here for that signal so the edits land
        before the next layer starts; after a reset by other means, go on after a minute."""
        state = workflow.random_seed()
        if state == self._seed_state:
            return
        self._seed_state = state
        if not workflow.patched(REWIND_WAIT_PATCH):
            return  # a run reset (by hand) under code without rewinds went on at once: replay it so
        self._resets += 1
        live = self._control
        if live.rewinds < self._resets:
            try:
                await workflow.wait_condition(lambda: live.rewinds >= self._resets, timeout=60)
            except asyncio.TimeoutError:
                live.rewinds = self._resets
                live.rewound_from = {
                    "run_id": None,
                    "step": self._sched.step,
                    "time": live.clock(),
                    "note": "reset without gecko-temporal rewind (no gecko_rewound signal)",
                }

    @workflow.query(name=STEPS_QUERY)
    def steps(self, *_args: Any) -> dict[str, Any]:
        """The merges of this run a rewind can go back to (arguments ignored)."""
        return {
            "run": self._run,
            "run_id": workflow.info().run_id,
            "steps": list(self._checkpoints),
            "status": self._status,
        }

    @workflow.update(name=STATE_UPDATE)
    def update_state(self, *args: Any) -> dict[str, Any]:
        """Set or delete state keys at the next safe point (at once when the run only waits)."""
        edit, _ = self._control.check_edit(_given_args(args), self._status)
        if edit is None:  # as in jump_update
            return {"applied": False, "step": self._sched.step}
        self._control.queue_edit(edit)
        self._apply_edits()
        return {
            "applied": not self._control.pending_edits,
            "step": self._sched.step,
            "set": list(edit["values"]),
            "deleted": edit["delete"],
        }

    @update_state.validator
    def _validate_update_state(self, *args: Any) -> None:
        _, problem = self._control.check_edit(_given_args(args), self._status)
        if problem:
            raise ValueError(problem)

    # -- queries, signals, updates -------------------------------------------------------------
    # Every handler takes any number of arguments in any encoding and never raises into the
    # workflow task: a handler that did would fail the task on every replay and wedge the run.
    @workflow.query(name=STATE_QUERY)
    def state(self, *_args: Any) -> dict[str, Any]:
        """The live run as JSON: state, progress, what is running and waiting, jumps (arguments ignored)."""
        answer = self._control.state_answer(
            status=self._status,
            state=self._state,
            completed=self._completed,
            running=list(self._running),
            step=self._sched.step,
            layer=self._layer,
            run=self._run,
            conflicts=self._conflicts,
        )
        if any(n.kind == KIND_SUBGRAPH for n in self._spec.nodes):  # graphs without subgraphs answer as before
            answer["children"] = dict(self._children)
        answer["queued"] = self._queued  # nodes of the layer waiting for a slot of the window
        return answer

    @workflow.signal(dynamic=True)
    def on_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """gecko_next (jump) and gecko_answer; anything malformed or unknown is rejected, never fatal."""
        queued = len(self._sched.jumps)
        entry = self._control.signal(name, _read_args(args))
        if entry is None and len(self._sched.jumps) > queued:
            self._events.jump(None, self._sched.jumps[-1].node)
        if entry is not None:
            workflow.logger.warning("rejected %s %s: %s", name, entry["request"], entry["reason"])

    @workflow.update(name=JUMP_UPDATE)
    def jump_update(self, *args: Any) -> dict[str, Any]:
        """Like the gecko_next signal, but the caller hears at once whether the jump is valid."""
        request, _ = self._control.check_jump(_given_args(args))
        if request is None:  # cannot happen: the validator accepted these args, and the check
            # depends only on the graph; but a handler must never raise into the workflow task
            return {"node": None, "queued_after_step": self._sched.step}
        reply = self._control.queue_jump(request, "update")
        self._events.jump(None, request["node"])
        return reply

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


def _failure_text(exc: BaseException) -> str:
    if isinstance(exc, _NodeFailed):
        return f"{exc.error_type}: {exc.message}"
    return "{}: {}".format(*_error_of(exc))


def _read_args(args: Sequence[RawValue]) -> list[control.Arg]:
    """Decode raw signal arguments one by one; one that cannot be read says why instead of raising."""
    converter = workflow.payload_converter()
    received = []
    for raw in args:
        encoding = raw.payload.metadata.get("encoding", b"").decode("utf-8", "replace")
        try:
            received.append(control.Arg(converter.from_payload(raw.payload), encoding))
        except Exception as exc:
            received.append(
                control.Arg(
                    encoding=encoding,
                    problem=f"encoding {encoding or 'none'!r}: {type(exc).__name__}; send JSON (encoding json/plain)",
                )
            )
    return received


def _given_args(args: Sequence[Any]) -> list[control.Arg]:
    """Update arguments, already decoded by the SDK (one it cannot decode rejects the update)."""
    return [
        control.Arg(a)
        if not isinstance(a, bytes)
        else control.Arg(
            encoding="binary/plain", problem=("raw bytes (encoding binary/plain); send JSON (encoding json/plain)")
        )
        for a in args
    ]
