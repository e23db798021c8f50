"""GeckoWorker: serves GeckoWorkflow and the node activities of any number of graphs.

``worker.py``, ``gecko-temporal worker`` and the embedded worker (:mod:`gecko_temporal.temporal.embedded`)
all run one; :meth:`GeckoWorker.stopped` lets a caller notice a worker that crashed.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkerDeploymentConfig

from gecko_temporal.core.errors import GeckoError
from gecko_temporal.temporal import deployments, versions
from gecko_temporal.temporal.activities import NodeRunner
from gecko_temporal.temporal.limits_worker import LimitWorkers
from gecko_temporal.temporal.workflow import GeckoWorkflow

if TYPE_CHECKING:
    from gecko_temporal.core.build.graph import Workflow


def deployment_version(
    task_queue: str, build_id: str | None, deployment: str | None = None
) -> WorkerDeploymentVersion | None:
    """The Worker Deployment version a worker with ``build_id`` serves (None without one): the
    deployment is named after the task queue unless ``deployment`` names it."""
    if not build_id:
        if deployment:
            raise GeckoError(f"--deployment {deployment!r} needs a build id: add --build-id ID (or set GECKO_BUILD_ID)")
        return None
    for what, value in (("build id", build_id), ("deployment name", deployment or task_queue)):
        if len(value) > 255 or not value.strip() or "/" in value or ":" in value:
            raise GeckoError(
                f"{what} {value!r} cannot name a Worker Deployment version: use 1 to 255 characters "
                "without '/' or ':' (e.g. a git commit or a release number)"
            )
    return WorkerDeploymentVersion(deployment_name=deployment or task_queue, build_id=build_id)


class GeckoWorker:
    """One Temporal worker on one task queue for every graph it is told to serve.

    ``max_threads`` sizes the pool sync nodes run on (and how many nodes run at once);
    ``graceful_shutdown`` is how long running nodes may finish when the worker stops.
    ``sticky_timeout`` is how long a run's next workflow task waits for this worker (which has the
    run cached) before any worker may take it. Temporal's default is 10 s, which is also how long a
    run stalls after its worker crashed; 2 s keeps crash recovery quick, and a busy worker merely
    costs another worker a replay.
    """

    def __init__(
        self,
        client: Client,
        task_queue: str,
        *,
        max_threads: int = 64,
        graceful_shutdown: float = 10.0,
        sticky_timeout: float = 2.0,
        build_id: str | None = None,
        deployment: str | None = None,
    ) -> None:
        self.client = client
        self.task_queue = task_queue
        self.runner = NodeRunner(max_threads=max_threads)
        self._keys: dict[int, str] = {}
        from datetime import timedelta

        self.version = deployment_version(task_queue, build_id, deployment)

        self._worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[GeckoWorkflow],
            activities=[self.runner.activity(), self.runner.yield_activity(), deployments.upgrade_target],
            max_concurrent_activities=max_threads,
            graceful_shutdown_timeout=timedelta(seconds=graceful_shutdown),
            workflow_failure_exception_types=[GeckoError],
            sticky_queue_schedule_to_start_timeout=timedelta(seconds=sticky_timeout),
            # The SDK sends heartbeats at most every 0.8 x heartbeat_timeout: 4 s of a 5 s timeout, so
            # a 1 s hiccup of a busy worker made the server give up on a healthy node and retry it.
            # Nodes heartbeat every timeout/3; let each one through.
            max_heartbeat_throttle_interval=timedelta(seconds=1),
            # GeckoWorkflow runs outside Temporal's sandbox. It is the engine's own interpreter, and
            # user code never runs in it: nodes and routers are activities, and custom reducers come
            # from the worker's own modules. The sandbox's import restrictions never applied to
            # those, since they pass through it. What it did cost: the SDK asks the sandboxed
            # instance for a serialization context for every payload of every command, in three
            # passes, and each ask enters the sandbox. That was about a third of a busy engine
            # worker's main-thread CPU (issue 29). tests/test_replay.py still replays every recorded
            # history inside the sandbox, with its restrictions, as a check on the interpreter.
            workflow_runner=UnsandboxedWorkflowRunner(),
            # With a build id the worker serves one version of a Worker Deployment, and every run it
            # starts is pinned there: its nodes, Team members and subgraph children all run on
            # workers of this version (Temporal routes them), whatever is deployed later.
            deployment_config=WorkerDeploymentConfig(
                version=self.version,
                use_worker_versioning=True,
                default_versioning_behavior=VersioningBehavior.PINNED,
            )
            if self.version is not None
            else None,
        )
        self._task: asyncio.Task[None] | None = None
        self.scan: deployments.RunScan | None = None  # open runs it cannot serve, once the start scan ends
        self._checks: list[asyncio.Task[object]] = []
        self.limits = LimitWorkers(client, task_queue, self.runner, max_threads, graceful_shutdown)  # flow control

    def serve(self, wf: Workflow, unique_key: bool = False) -> str:
        """Serve ``wf``'s nodes; return the key its runs must carry.

        With ``unique_key`` (the embedded worker) two different Workflow objects of the same name
        both get served, under ``name``, ``name~2``, ...; a cluster worker requires unique names.
        """
        key = self._keys.get(id(wf))
        if key is None:
            key = wf.name
            if unique_key:
                taken = self.runner.graphs()
                n = 1
                while key in taken and taken[key] is not wf:
                    n += 1
                    key = f"{wf.name}~{n}"
        self.runner.register(wf, key)  # again each time: nodes added since are served too
        for graph in [wf, *wf.subgraphs(key).values()]:
            self.limits.serve(graph.limits)
        versions.register(self.task_queue, self.version, wf, key)
        self._keys[id(wf)] = key
        return key

    async def start(self) -> None:
        """Run the worker in the background on the current loop."""
        self.limits.start()
        self._start_checks()
        if self._task is None:
            self._task = asyncio.create_task(self._worker.run(), name=f"gecko-worker-{self.task_queue}")

    async def stopped(self) -> None:
        """Wait until the worker started with :meth:`start` stops; raise what stopped it if it crashed.

        Cancelling the wait leaves the worker running."""
        if self._task is None:
            raise RuntimeError("the worker is not started: call start() first")
        await asyncio.shield(self._task)

    async def run(self) -> None:
        """Run the worker until it is shut down (or its task is cancelled)."""
        self.limits.start()
        self._start_checks()
        await self._worker.run()

    def _start_checks(self) -> None:
        """In the background, never delaying the start: publish the graphs in the version's metadata
        (runs moving here at continue-as-new read them) and scan the open runs this worker could
        pick up for ones it cannot serve (``self.scan``, and the log). Only when graphs are served
        at start (the embedded worker serves them later, one by one)."""
        if self._checks or not versions.served_graphs(self.task_queue):
            return
        if self.version is not None:
            self._checks.append(
                asyncio.create_task(deployments.publish_when_known(self.client, self.version, self.task_queue))
            )
        self._checks.append(asyncio.create_task(self._scan()))

    async def _scan(self) -> None:
        self.scan = await deployments.scan_in_background(self.client, self.task_queue, self.version)

    async def shutdown(self) -> None:
        import sys

        if "gecko_temporal.integrations.durable_agents" in sys.modules:  # the durable agents' workers, if any ran here
            await sys.modules["gecko_temporal.integrations.durable_agents"].shutdown_agent_workers()
        for check in self._checks:
            check.cancel()
        await self.limits.shutdown()
        await self._worker.shutdown()
        versions.forget(self.task_queue)
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        self.runner.shutdown()
