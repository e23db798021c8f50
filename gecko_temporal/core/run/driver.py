"""One run loop for both scheduling modes, decided: begin a step, finish a batch, switch runs. Pure.

The workflow's loop is the same for layered and eager runs: begin a step (jumps from outside
redirect the run, state edits land), start the tasks the scheduler gives, wait until a batch of
them has finished (layered: the whole layer; eager: whatever finished together), then finish the
batch here, in node order: the scheduler records each task, jumps are told, the writes merge,
``completed`` is trimmed. After a batch the driver says whether a burst of local steps must yield
and whether the run should continue as new (once nothing runs). Only the two modes' differences
stay mode-specific: which tasks start (``next_tasks``), outside jumps redirecting running tasks,
and eager runs' write tracking (``writes.py``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

from gecko_temporal.core.control import KEEP_COMPLETED, RunControl
from gecko_temporal.core.inputs import InputTooLarge, NodeInputs
from gecko_temporal.core.refs import RefError, ValueTable, expand_output, pack_input
from gecko_temporal.core.run.failure import NodeFailed, RunFailure, timed_out
from gecko_temporal.core.run.layer import LayerQueue
from gecko_temporal.core.run.writes import HeldDeltas, WriteTracker
from gecko_temporal.core.scheduler import Scheduler, Task
from gecko_temporal.core.spec import KIND_FUNCTION, SCHEDULING_EAGER, GraphSpec, Jump, NodeOutput, NodeSpec, RunSnapshot
from gecko_temporal.core.state import ReducerError, StateDelta, merge_layer
from gecko_temporal.core.usage import UsageLedger

#: Local activities run inside one workflow task, during which queries and signals wait; a loop of
#: light local nodes would hold the task for seconds. End the task after this many local steps.
LOCAL_BURST = 100


class RunDriver:
    """The decisions of one run (this continue-as-new run of a session), for both modes."""

    def __init__(
        self,
        spec: GraphSpec,
        scheduler: Scheduler,
        control: RunControl,
        inputs: NodeInputs,
        snapshot: RunSnapshot,
        state: dict[str, str],
    ) -> None:
        self.spec, self.sched, self.control, self.inputs = spec, scheduler, control, inputs
        self.eager = spec.scheduling == SCHEDULING_EAGER
        self.state = state
        self.completed = snapshot.completed
        self.conflicts: list[str] = []  # keys several nodes wrote in the last batch
        self.layer = snapshot.layer
        self.deadline = snapshot.deadline  # workflow time the run's timeout ends at
        self.run = snapshot.run
        self.partial_layer = snapshot.partial_layer  # a layer the previous run paused (history full)
        self.team_deltas: dict[str, list[StateDelta]] = {}  # by Task.key: a Team's members' deltas
        self.switching = False  # continue-as-new is due: start nothing more, switch once all finished
        self.cannot_switch = False  # the snapshot outgrew a payload: stay in this run
        self.steps_at_start = self.sched.step
        self.usage = UsageLedger(snapshot.flow)  # usage per node, budget, tenant (flow control)
        self._local = {n.name: n.local and n.kind == KIND_FUNCTION for n in spec.nodes}
        self._streak = 0  # local steps since the workflow task last ended
        self._held = HeldDeltas()
        self._writes = WriteTracker(spec.reducers) if self.eager else None
        self._redirected: set[str] = set()  # running (eager) when a jump from outside redirected the run
        self._seen: list[Jump] | None = [] if self.eager else None  # outside jumps already applied
        self.wake_for_redirects = self.eager  # False in eager runs recorded before a jump woke the loop
        self.refs: ValueTable | None = None  # runs that record REFS_PATCH: inputs refer, outputs pack
        # bytes of the snapshot this run started from (gecko_state["payloads"]: a store would keep it once)
        self.carried = len(json.dumps(snapshot.to_plain())) if snapshot.run > 1 else 0

    def use_refs(self, run_id: str) -> None:
        """Node inputs refer to long texts and outputs carry what is new (runs with REFS_PATCH)."""
        self.refs = ValueTable(run_id)
        self.inputs.refs = True

    def values(self, args: Sequence[Any]) -> dict[str, str]:
        """The gecko_values query's answer: the texts of the references ``args[0]`` lists."""
        refs = self.refs
        return refs.answer(args[0]) if refs is not None and args and isinstance(args[0], list) else {}

    # -- a run and its steps ---------------------------------------------------------------
    def begin_run(self, first: bool, run_input: str, timeout: float | None, now: float) -> None:
        """A session's first run queues its entry node and sets the deadline (``now``: seconds)."""
        if first:
            self.sched.start(run_input)
            if timeout:
                self.deadline = now + timeout
        self.steps_at_start = self.sched.step

    def begin_step(self, running: Collection[str]) -> None:
        """Jumps sent from outside redirect the run before the next tasks start; in an eager run the
        ``running`` tasks (Task.key) keep their outputs but lose where they would have led."""
        if self.control.apply_redirects(self._seen) and self.eager:
            self._redirected.update(running)

    def redirect_due(self) -> bool:
        """Eager: a jump from outside has arrived that has not redirected the run yet. It redirects
        at once (the loop begins a step while tasks still run), not when a running task finishes."""
        return self._seen is not None and bool(self.control.fresh_redirects(self._seen))

    def apply_edits(self, running: Collection[str]) -> None:
        """State edits from outside land at safe points: between steps, or while the run only waits
        (every ``running`` task, by Task.key, waits for a person)."""
        if self.control.pending_edits and all(n in self.control.waiting for n in running):
            self.control.apply_edits(self.state, self.sched.step, self.layer)
            self.inputs.new_layer()  # the state changed: measure it again

    def next_tasks(self, running: Mapping[str, Task]) -> list[Task]:
        """The tasks to start now (``running``: the tasks in flight by Task.key; none in a layered
        run). A layered run's next layer; an eager run's ready nodes, none once switching is due."""
        if not self.eager:
            tasks = self.sched.next_layer()
        elif self.switching:
            return []
        else:
            tasks = self.sched.next_layer(running={t.node for t in running.values()}, pending=len(running))
        if tasks:
            self.layer += 1
            self.inputs.new_layer()
        if self._writes is not None:
            for task in tasks:
                self._writes.started(task.key)
        return tasks

    def take_partial_layer(self) -> dict[str, Any] | None:
        """The layer the previous run paused, once (the run's first step goes on with it)."""
        partial, self.partial_layer = self.partial_layer, None
        if partial is not None:
            self.inputs.new_layer()
        return partial

    def carried_over(self, partial: dict[str, Any]) -> list[Task]:
        """An eager run's tasks the previous run switched with (waits for a person that stopped
        because its history was full): they start again now. A Send instance among them goes on
        collecting its fan-out, with what its other instances finished and wrote there."""
        tasks = LayerQueue.resumed(partial).tasks
        self.sched.take_fan_ins(partial.get("fan_ins", {}))
        self._held.take(partial.get("held", {}))
        self._redirected.update(partial.get("redirected", []))
        if self._writes is not None:
            for task in tasks:
                self._writes.started(task.key)
        return tasks

    def with_fan_ins(self, waits: LayerQueue) -> dict[str, Any]:
        """An eager run's stopped ``waits``, paused for the next run, with what it needs to go on with
        their fan-outs (see :meth:`carried_over`); without Send instances, as ``waits.paused()``."""
        paused = waits.paused()
        fanned = {t.node for t in waits.tasks if t.send is not None}
        if not fanned:
            return paused
        keys = [t.key for t in waits.tasks if t.key in self._redirected]
        carried = {"fan_ins": self.sched.fan_ins(fanned), "held": self._held.to_plain(fanned), "redirected": keys}
        return {**paused, **carried}

    def node_input(
        self, node: NodeSpec, task: Task, member: int | None, takes_context: bool, session_id: str
    ) -> tuple[dict[str, Any], str | None]:
        """The plain input of ``task``'s activity (of one Team ``member``), and a warning about its
        size to log once, or None. Raise NodeFailed when it is too large to send."""
        try:
            arg, warning = self.inputs.build(
                node,
                task,
                member=member,
                takes_context=takes_context,
                session_id=session_id,
                state=self.state,
                outputs=self.sched.outputs,
            )
        except InputTooLarge as exc:
            raise NodeFailed(task.node, "PayloadTooLarge", str(exc)) from None
        how = node if member is None or node.team is None else node.team.members[member]
        plain = arg.to_plain(how.activity_type)
        if self.refs is not None:
            return pack_input(plain, self.refs, self.activity_id(task, member)), warning
        return plain, warning

    async def expanded(self, task: Task, member: int | None, pending: Awaitable[dict[str, Any]]) -> NodeOutput:
        """The output of ``pending`` (the activity's, plain), its references and compositions expanded
        in runs with references (the texts its input referred to are let go once it is back)."""
        refs = self.refs
        if refs is None:
            return NodeOutput.from_plain(await pending)
        owner = self.activity_id(task, member)
        try:
            return NodeOutput.from_plain(expand_output(await pending, refs, owner, task.node))
        except RefError as exc:
            raise NodeFailed(task.node, "RefError", str(exc)) from None
        finally:
            refs.release(owner)

    def activity_id(self, task: Task, member: int | None) -> str:
        """The activity id of ``task`` (of one Team ``member``): unique in the session."""
        return f"{self.run}.{task.step}" + (f".{member}" if member is not None else "")

    def in_node_order(self, tasks: Collection[Task]) -> list[Task]:
        """``tasks`` in node order, a fan-out's instances in Send order: the order results apply in."""
        order = self.sched.node_order
        return sorted(tasks, key=lambda t: (order(t.node), t.send or 0))

    # -- finishing a batch -------------------------------------------------------------------
    def finish(self, batch: list[tuple[Task, NodeOutput]], on_jump: Callable[[str, str, int], None]) -> None:
        """Apply a batch of finished tasks (in node order, never completion order): record each with
        the scheduler, tell its jump (``on_jump(node, target, step)``), merge the writes into the
        state and keep the keys in conflict. Raise NodeFailed when a reducer cannot combine a write."""
        writes = self._writes
        if writes is not None:
            writes.new_merge()
        deltas: list[tuple[str, StateDelta]] = []
        overlapping: list[str] = []
        for task, out in batch:
            whole = self.sched.finish(
                task,
                out.value,
                out.jump,
                redirected=task.key in self._redirected,
                routes=out.routes,
                sends=out.sends,
            )
            if out.jump is not None:
                on_jump(task.node, out.jump.node, task.step)
            self._redirected.discard(task.key)
            # a fan-out's writes merge when its last instance finishes, in Send order
            deltas.extend(
                (task.node, d) for d in self._held.add(task.node, task.send, self._deltas_of(task, out), whole)
            )
            self.completed.append(task.node)
            self.usage.add(task.node, out.usage)
            if writes is not None:
                overlapping += writes.wrote(task.key, [*out.writes, *out.deletes])
        del self.completed[:-KEEP_COMPLETED]
        if self.eager:  # a layered run's scheduler knows its last layer itself
            self.sched.finished_last(list(dict.fromkeys(t.node for t, _ in batch)))
        try:
            merged = merge_layer(self.state, deltas, self.spec.reducers)
        except ReducerError as exc:
            raise NodeFailed(exc.node, "ReducerError", str(exc)) from None
        self.conflicts = list(dict.fromkeys(overlapping + merged)) if self.eager else merged

    def _deltas_of(self, task: Task, out: NodeOutput) -> list[StateDelta]:
        """What ``task`` did to the state: one delta, or with reducers a Team's members' one by one
        (so a reduced key combines every member's contribution, not only the last member's)."""
        members = self.team_deltas.pop(task.key, None)
        if members is not None and self.spec.reducers:
            return members
        return [StateDelta(out.writes, out.deletes)]

    def conflict_note(self) -> str | None:
        """What to log about the last batch's conflicts, if any."""
        if not self.conflicts:
            return None
        if self.eager:
            return f"nodes that ran at the same time wrote {self.conflicts}; the last to finish won"
        return f"layer {self.layer}: several nodes wrote {self.conflicts}; the last in node order won"

    @property
    def more(self) -> bool:
        """Something is queued to run after this batch."""
        return bool(self.sched.inbox or self.sched.jumps or self.sched.sends)

    def local_burst(self, nodes: list[str], running: bool) -> bool:
        """Count a batch of ``nodes``; True if a burst of local steps has held the workflow task long
        enough and must end it now (only between steps: never just to finish, nor while tasks run)."""
        if not self.more or running:
            return False
        if not all(self._local[n] for n in nodes):
            self._streak = 0  # a regular activity ended the workflow task anyway
            return False
        self._streak += len(nodes)
        return self._streak >= LOCAL_BURST

    def burst_ended(self) -> None:
        """The workflow task ended (the run yielded)."""
        self._streak = 0

    # -- switching runs (continue-as-new) ----------------------------------------------------------
    def check_switch(self, suggested: Callable[[], bool]) -> None:
        """After a batch: continue as new once nothing runs, if more is queued and the run took its
        ``steps_per_run`` or Temporal ``suggested()`` it (never just to finish)."""
        if (
            self.more
            and not self.switching
            and not self.cannot_switch
            and (self.sched.step - self.steps_at_start >= self.spec.steps_per_run or suggested())
        ):
            self.switching = True

    def switch_now(self, running: bool) -> bool:
        """Whether to continue as new now (switching is due and nothing runs)."""
        if self.switching and not running:
            self.switching = False
            return True
        return False

    def snapshot(self, partial_layer: dict[str, Any] | None = None) -> RunSnapshot:
        """What the next run goes on from (``partial_layer``: a layer paused mid-way)."""
        return RunSnapshot(
            scheduler=self.sched.snapshot(),
            state=self.state,
            deadline=self.deadline,
            run=self.run + 1,
            completed=self.completed,
            rejected=self.control.rejected,
            answers=self.control.answers,
            layer=self.layer,
            warned=list(self.inputs.warned),
            edits=self.control.edits,
            rewound_from=self.control.rewound_from,
            partial_layer=partial_layer,
            flow=self.usage.to_plain(),
        )

    # -- the run's timeout -------------------------------------------------------------------------
    def time_left(self, now: float) -> float | None:
        """Seconds until the run's deadline (0 once past), or None without a timeout."""
        return None if self.deadline is None else max(0.0, self.deadline - now)

    def timed_out(self, running: list[Task]) -> RunFailure:
        """The run's timeout ended it while ``running`` (named in node order) still ran."""
        return timed_out(self.spec.name, [t.key for t in self.in_node_order(running)], self.sched.step)
