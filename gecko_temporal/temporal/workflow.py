"""GeckoWorkflow: the one Temporal workflow that interprets every compiled graph.

It is its handlers plus a short loop of Temporal I/O over pure decisions. ``_steps`` is the one run
loop of both scheduling modes: it asks the ``RunDriver`` (``core/run/driver.py``) to begin a step
(outside jumps redirect, state edits land, continue-as-new once due), starts the tasks the driver
gives, waits until a batch has finished (``steps.py``: a layered run's whole layer through its
``LayerQueue``, an eager run's tasks that finished together), and hands the batch back to the
driver, which merges it in node order. After each merge: a rewind point and a reset check
(``RewindPoints``), a yield after a long local burst, the continue-as-new check.

One node's work goes through ``node_runs.py``: an activity, a Team's members (``TeamRun`` decides),
a subgraph's child GeckoWorkflow (its input from ``handoff.py``, the one builder of every workflow
input). A WaitForInput node and ``context.interrupt()`` wait as one ``PersonWait``. Temporal's
exceptions are unpacked in the shell and worded by ``failure.py``. Queries, signals and updates
decode their arguments and hand them to ``RunControl``. Everything that must survive a crash is in
Temporal's history or in the ``RunSnapshot`` carried across continue-as-new.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Sequence
from datetime import timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeout

from gecko_temporal.temporal import versions
from gecko_temporal.temporal.compat import workflow_readers
from gecko_temporal.temporal.flow import RunFlow
from gecko_temporal.temporal.node_runs import (
    abandon,
    error_of,
    failure_text,
    raised,
    run_child,
    run_team,
    start_activity,
)
from gecko_temporal.temporal.steps import (
    Running,
    finished_together,
    rewind_point,
    run_layer,
    switch_while_waiting,
    wait_for_person,
)

with workflow.unsafe.imports_passed_through():
    from gecko_temporal.core import control
    from gecko_temporal.core.errors import GeckoError
    from gecko_temporal.core.inputs import NodeInputs
    from gecko_temporal.core.limits import result_problem
    from gecko_temporal.core.run import failure
    from gecko_temporal.core.run.driver import RunDriver
    from gecko_temporal.core.run.failure import NodeFailed
    from gecko_temporal.core.run.handoff import child_run, child_session, next_run, payloads_note
    from gecko_temporal.core.run.layer import LayerQueue
    from gecko_temporal.core.run.person import PersonWait, WaitPaused
    from gecko_temporal.core.run.rewind import RewindPoints
    from gecko_temporal.core.scheduler import Scheduler, Task
    from gecko_temporal.core.spec import (
        KIND_SUBGRAPH,
        KIND_TEAM,
        KIND_WAIT,
        MemberSpec,
        NodeOutput,
        NodeSpec,
        RunParams,
        RunSnapshot,
    )
    from gecko_temporal.core.window import DEFAULT_MAX_PARALLEL, Window
    from gecko_temporal.protocol import (
        ANSWER_UPDATE,
        CHILD_USAGE_SIGNAL,
        FROM_STORE_METADATA,
        JUMP_UPDATE,
        LOCAL_BURST_PATCH,
        REFS_PATCH,
        ROUTE_LOOP_PATCH,
        SEND_INTERRUPT_PATCH,
        STATE_QUERY,
        STATE_UPDATE,
        STEPS_QUERY,
        VALUES_QUERY,
        WINDOW_PATCH,
        WORKFLOW_TYPE,
        YIELD_ACTIVITY,
    )
    from gecko_temporal.temporal.run_events import RunEvents


@workflow.defn(name=WORKFLOW_TYPE, failure_exception_types=[GeckoError])
class GeckoWorkflow:
    @workflow.init
    def __init__(self, plain: dict[str, Any]) -> None:
        # The input arrives as a plain dict: rebuilding RunParams ourselves is ~20x cheaper than the
        # converter's reflection (50 ms for a 200-node graph at every run start).
        plain, self._version = versions.admit(plain)  # the graph this run follows here (versions.py), or RunRefused
        params = self._params = RunParams.from_plain(plain)
        self._spec = params.spec
        self._nodes = {n.name: n for n in params.spec.nodes}
        snap = RunSnapshot.from_plain(params.snapshot) if params.snapshot is not None else RunSnapshot(flow=params.flow)
        self._sched = Scheduler(params.spec, snap.scheduler, lambda: workflow.patched(ROUTE_LOOP_PATCH))
        self._control = control.RunControl(params.spec, self._sched, snap)
        self._control.clock = lambda: workflow.now().isoformat()
        inputs = NodeInputs(params.spec.key, params.input, snap.warned, payload_limit=params.payload_limit)
        # start(..., state=...) seeds a first run's state (checked by the client)
        state = dict(params.state) if params.snapshot is None and params.state else snap.state
        self.drive = RunDriver(params.spec, self._sched, self._control, inputs, snap, state)
        self._running: dict[str, int] = {}  # Task.key -> step of every node in flight
        self._status = "running"
        self._children: dict[str, str] = {}  # subgraph node -> its running child session
        self._rewind = RewindPoints(workflow.random_seed())  # a new seed later: the run was reset
        self._events = RunEvents(params.spec, params.stream, snap.run, on_reject=self._reject)
        # Every activity start goes through one window (Temporal allows 2,000 pending activities).
        # It only ever holds a start back in runs that record the patch: older runs started every
        # node of a layer at once and replay that way (their layers never reached the window).
        self.window = Window(
            params.spec.max_parallel or DEFAULT_MAX_PARALLEL, may_limit=lambda: workflow.patched(WINDOW_PATCH)
        )
        self.queued = 0  # tasks of the layer waiting for a slot of the window
        self.waits_may_pause = False  # run_layer says when a wait may stop for a switch of runs
        self.wait_patch: str | None = None  # and the patch a run must record for it (steps.py)
        self._kinds = {n.name: n.kind for n in params.spec.nodes}
        self.flow = RunFlow(self.drive, self._events)  # budget gate, usage roll-up (flow control)

    # -- the interpreter loop ----------------------------------------------------------------
    @workflow.run
    async def run(self, plain: dict[str, Any]) -> Any:
        params, drive = self._params, self.drive
        if workflow.patched(REFS_PATCH):  # node inputs refer to long texts, outputs carry what is new
            drive.use_refs(workflow.info().run_id)
        # A reset reseeds the run: only then may a gecko_rewound tell it where it came from. The seed
        # callback runs while jobs are applied, outside the loop, where no wait condition is checked
        # again: reseeded runs in the loop, so an answer it redoes wakes its wait in this activation.
        self._control.task_marker, self._control.clock, self._control.rewound_run = workflow_readers()
        loop = asyncio.get_running_loop()

        def reseeded(_seed: int) -> None:
            loop.call_soon(self._control.reseeded)

        workflow.register_random_seed_callback(reseeded)
        drive.begin_run(params.snapshot is None, params.input, params.timeout, workflow.now().timestamp())
        await rewind_point(self._rewind, drive, self._control, [], start=True)
        self._events.start(drive.completed)
        try:
            await self._steps()
            result = self._sched.result()
            too_big = result_problem(result, self._sched.last_layer, params.payload_limit)
            if too_big:
                raise NodeFailed(too_big[0], "PayloadTooLarge", too_big[1])
        except (NodeFailed, GeckoError) as exc:
            self._status = "failed"
            error = raised(failure.run_failure(exc))
            await self._events.run_finished("failed", error.message)
            raise error from None
        except ApplicationError as exc:  # the run's timeout
            await self._events.run_finished("failed", exc.message)
            raise
        except asyncio.CancelledError:  # cancelled from outside: readers and GeckoStatus say so
            await self._events.run_finished("cancelled")
            raise
        self._status = "completed"
        self._show()
        await self.flow.report_to_parent()  # a subgraph's child run: what it spent counts in its parent
        await self._events.run_finished("completed")
        return json.loads(result)

    async def _steps(self) -> None:
        """The run loop of both scheduling modes: begin a step, start what is ready, wait for a batch
        of tasks to finish (layered: the whole layer; eager: those that finished together), merge it."""
        drive = self.drive
        running: Running = {}  # eager only: a layered run waits for its layer inside the step
        while True:
            partial = drive.take_partial_layer()  # go on with the layer the previous run paused, as it was
            if partial is None:
                drive.begin_step(running)
                await self.flow.before_step(self._wait_for_person, self)  # the budget, if reached, holds the run
                self._apply_edits()  # only when no node activity runs
                if drive.switch_now(bool(running)):
                    await self.continue_as_new()  # returns only if the snapshot cannot switch
                    continue
                tasks = drive.next_tasks({k: t for k, (t, _) in running.items()})
            if drive.eager:  # (the previous run's stopped waits, if it switched while they waited)
                for task in tasks if partial is None else drive.carried_over(partial):
                    running[task.key] = (task, asyncio.ensure_future(self.run_task(task)))
                if not running:
                    return
                batch = await finished_together(self, running)
                if not batch:  # a jump from outside: redirect the running tasks, start its target now
                    continue
            else:
                layer = LayerQueue.resumed(partial) if partial is not None else LayerQueue(tasks)
                if not layer.tasks:
                    return
                batch = list(zip(layer.tasks, await run_layer(self, layer, self._kinds)))
            drive.finish(batch, self._events.jump)
            self.flow.after_batch(batch)
            note = drive.conflict_note()
            if note:
                workflow.logger.info(note)
            await rewind_point(self._rewind, drive, self._control, [t.node for t, _ in batch])
            if drive.local_burst([t.node for t, _ in batch], bool(running)) and workflow.patched(LOCAL_BURST_PATCH):
                drive.burst_ended()
                # A no-op regular activity ends the task (a timer would too, but the server fires timers
                # about 0.5 s late; this costs one dispatch, ~30 ms), and waiting queries and signals get in.
                await workflow.execute_activity(
                    YIELD_ACTIVITY,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=2)),
                )
            drive.check_switch(workflow.info().is_continue_as_new_suggested)

    def give_up(self, futures: list[asyncio.Future[NodeOutput]], late: list[Task]) -> NoReturn:
        """The run's timeout: cancel the ``late`` tasks' activities and fail the run naming them."""
        for fut in futures:
            abandon(fut)
        self._status = "failed"
        raise raised(self.drive.timed_out(late))

    async def continue_as_new(self, partial_layer: dict[str, Any] | None = None) -> None:
        # Handlers still running (an update mid-flight) would be lost by the switch; stream readers'
        # polls wait for events, so they are answered first (they follow the run to the next one).
        found = await versions.look_for_upgrade(self._spec, self._version)  # before the snapshot, as readers
        await self._events.release_readers()
        params = self._params
        assert params.plain_spec is not None
        snapshot, notes = self.drive.snapshot(partial_layer), list[str]()
        carried = (params.plain_spec, params.input, snapshot, params.payload_limit, self._events.carry())
        plain, problem = next_run(*carried, self._spec.name, notes)
        for note in notes:  # what a payload store would save here
            workflow.logger.warning(note)
        if problem:  # switching would fail the workflow task forever; going on only costs history
            self.drive.cannot_switch = True
            workflow.logger.warning(problem)
            self._events.reattach()
            return
        plain, behavior = versions.next_version(found, self._spec, self._version, plain)  # move, or carry the graph
        workflow.continue_as_new(plain, initial_versioning_behavior=behavior)

    async def run_task(self, task: Task) -> NodeOutput:
        node = self._nodes[task.node]
        self._running[task.key] = task.step
        self._events.node_started(task.node, task.step)
        self._show()
        try:
            if node.kind == KIND_TEAM:
                return await self._run_team(node, task)
            if node.kind == KIND_WAIT:
                return NodeOutput(value=await self._wait_for_person(PersonWait.for_node(node), task))
            if node.kind == KIND_SUBGRAPH:
                return await self._run_subgraph(node, task)
            try:
                out: NodeOutput = await self._run_activity(node, task, None, node)
                if out.interrupt is not None and task.send is not None and not workflow.patched(SEND_INTERRUPT_PATCH):
                    raise failure.interrupt_in_send(task.node)  # runs recorded before refused it
                # context.interrupt(): the activity has ended; wait (durably) for each answer, then run
                # the node again from its start with the answers so far, until it does not interrupt.
                answers: list[str] = list(task.resume or [])  # (a previous run's, when its wait moved here)
                while out.interrupt is not None:
                    wait = PersonWait.for_interrupt(task.key, out.interrupt, len(answers))  # "Node[i]" in a fan-out
                    answers.append(await self._wait_for_person(wait, task))
                    task.resume = answers
                    out = await self._run_activity(node, task, None, node)
                self._events.cached(task.node, task.step, out.cached)
                return out
            except (ActivityError, ApplicationError, TemporalTimeout) as exc:
                # A local activity's failure arrives as the bare ApplicationError/TimeoutError.
                self.flow.failed(task.node, exc)  # its usage was spent: it counts
                raise NodeFailed(task.node, *error_of(exc)) from None
        except NodeFailed as exc:
            failure.in_send(exc, task.send, task.sends)
            raise
        finally:
            self._running.pop(task.key, None)
            ended = sys.exc_info()[1]
            # GeneratorExit: evicted from the cache, not in a workflow; WaitPaused: the wait goes on in the next run
            if not isinstance(ended, (GeneratorExit, WaitPaused)):
                self._events.node_finished(task.node, task.step, ended, failure_text)
                self._show()

    def _reject(self, name: str, args: list[Any], reason: str) -> None:
        """A malformed stream publish: listed under gecko_state["rejected"] and logged, never fatal."""
        entry = control.rejection(name, [control.Arg(a) for a in args], reason, self._sched.step)
        self._control.rejected.append(entry)
        del self._control.rejected[: -control.KEEP_REJECTED]
        # The request itself stays out of the log: with encryption on, a log line would be its plaintext.
        workflow.logger.warning("rejected %s (listed in gecko_state.rejected): %s", name, reason)

    def _show(self) -> None:
        """The Temporal UI's current details: what runs and waits now."""
        status = "waiting" if self._control.waiting and self._status == "running" else self._status
        self._events.details(status, self._running, self._control.waiting, self._sched.step)

    def _run_activity(self, node: NodeSpec, task: Task, member: int | None, how: NodeSpec | MemberSpec) -> Any:
        """Run the activity of ``task`` (of one Team ``member``), run as ``how`` says (the node or member),
        once the window has a slot for it (its input is built then)."""
        return self.window.run(lambda: self._start_activity(node, task, member, how))

    def _start_activity(self, node: NodeSpec, task: Task, member: int | None, how: NodeSpec | MemberSpec) -> Any:
        """Start the activity of ``task`` (of one Team ``member``), run as ``how`` says (the node or member)."""
        drive = self.drive
        arg, warning = drive.node_input(node, task, member, how.takes_context, workflow.info().workflow_id)
        if warning:
            workflow.logger.warning(warning)
        routing = self.flow.routing(node, how)  # a named limit's task queue, the tenant's fairness key
        started = start_activity(node, how, arg, drive.activity_id(task, member), self._events, routing)
        return drive.expanded(task, member, started)

    # -- Team and subgraph nodes ------------------------------------------------------------------
    async def _run_team(self, node: NodeSpec, task: Task) -> NodeOutput:
        """Run the members as activities; TeamRun decides who starts, who won, what it outputs."""
        assert node.team is not None
        members = node.team.members
        output, run = await run_team(node, lambda i: self._run_activity(node, task, i, members[i]))
        if self._spec.reducers:
            self.drive.team_deltas[task.key] = run.member_deltas()
        return output

    async def _run_subgraph(self, node: NodeSpec, task: Task) -> NodeOutput:
        """Run the node's graph as a child GeckoWorkflow. It starts with the node's input and an
        empty state; its result is the node's output."""
        assert node.subgraph is not None
        session, name = child_session(workflow.info().workflow_id, node.name, task.step), node.subgraph.name
        child = child_run(node.name, node.subgraph.to_plain(), task.input, self._params.payload_limit)
        child = self.flow.for_child(child)  # the tenant, what is left of the budget; its usage comes back
        self._children[task.key] = session
        try:
            out = await run_child(self.window, node.name, child, session, name, self._events.child_attributes(name))
            return self.flow.with_child_usage(session, out)
        finally:
            self._children.pop(task.key, None)

    # -- waiting for a person, state edits, rewind points ------------------------------------------
    def _wait_for_person(self, wait: PersonWait, task: Task) -> Awaitable[str]:
        """Wait (durably, no activity running) for the answer to ``wait.node``; return it (JSON text)."""
        show = (self._control, self._events, self._show, self._apply_edits)
        return wait_for_person(wait, task, *show, switch=lambda: switch_while_waiting(self))

    def _apply_edits(self) -> None:
        """State edits from outside land at safe points: between steps, or while the run only waits."""
        self.drive.apply_edits(self._running)

    @workflow.query(name=STEPS_QUERY)
    def steps(self, *_args: Any) -> dict[str, Any]:
        """The merges of this run a rewind can go back to (arguments ignored)."""
        run_id = workflow.info().run_id
        return {"run": self.drive.run, "run_id": run_id, "steps": list(self._rewind.points), "status": self._status}

    @workflow.query(name=VALUES_QUERY)
    def values(self, *args: Any) -> dict[str, str]:
        """The texts of the value references a node's activity asks for (core/refs.py)."""
        return self.drive.values(args)

    @workflow.update(name=STATE_UPDATE)
    def update_state(self, *args: Any) -> dict[str, Any]:
        """Set or delete state keys at the next safe point (at once when the run only waits)."""
        edit, _ = self._control.check_edit(_given_args(args), self._status)
        if edit is None:  # as in jump_update
            return {"applied": False, "step": self._sched.step}
        self._control.queue_edit(edit)
        self._apply_edits()
        applied = not self._control.pending_edits
        return {"applied": applied, "step": self._sched.step, "set": list(edit["values"]), "deleted": edit["delete"]}

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
        drive = self.drive
        answer = self._control.state_answer(
            status=self._status,
            state=drive.state,
            completed=drive.completed,
            running=list(self._running),
            step=self._sched.step,
            layer=drive.layer,
            run=drive.run,
            conflicts=drive.conflicts,
        )
        if any(n.kind == KIND_SUBGRAPH for n in self._spec.nodes):  # graphs without subgraphs answer as before
            answer["children"] = dict(self._children)
        answer["queued"] = self.queued  # nodes of the layer waiting for a slot of the window
        self._events.show_cached(answer)
        self.flow.show(answer)
        answer["payloads"] = payloads_note(drive.refs is not None, self._params.payload_limit, drive.carried)
        answer["version"] = self._version  # build id, pinned or not, graph fingerprint
        return answer

    @workflow.signal(name=CHILD_USAGE_SIGNAL)
    def on_child_usage(self, session: Any, spent: Any) -> None:
        self.flow.child_spent(session, spent)

    @workflow.signal(dynamic=True)
    def on_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """gecko_next (jump) and gecko_answer; anything malformed or unknown is rejected, never fatal."""
        queued = len(self._sched.jumps)
        entry = self._control.signal(name, _read_args(args))
        if entry is None and len(self._sched.jumps) > queued:
            self._events.jump(None, self._sched.jumps[-1].node)
        if entry is not None:
            workflow.logger.warning("rejected %s (listed in gecko_state.rejected): %s", name, entry["reason"])

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


def _read_args(args: Sequence[RawValue]) -> list[control.Arg]:
    """Decode raw signal arguments one by one; one that cannot be read says why instead of raising."""
    converter = workflow.payload_converter()
    received = []
    for raw in args:
        encoding = raw.payload.metadata.get("encoding", b"").decode("utf-8", "replace")
        try:
            stored = FROM_STORE_METADATA in raw.payload.metadata  # never previewed (it may be another session's)
            received.append(control.Arg(converter.from_payload(raw.payload), encoding, stored=stored))
        except Exception as exc:
            received.append(
                control.Arg(
                    encoding=encoding,
                    problem=f"encoding {encoding or 'none'!r}: {_why(exc)}; send JSON (encoding json/plain)",
                )
            )
    return received


def _why(exc: Exception) -> str:
    """The converter's own reason (a payload too big to inflate, a key id it lacks), else the type."""
    cause = exc.__cause__
    return (
        str(cause)[:300] if cause is not None and type(cause).__name__ == "UndecodablePayload" else type(exc).__name__
    )


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
