"""The workers of named limits: one Temporal worker per limit, on the limit's own task queue.

A limited node's activity is scheduled on ``<queue>.limit.<name>`` (``core/flow_limits.py``). Each
worker process that serves a graph with limits polls those queues too, through one extra
``temporalio`` worker per limit (the same node activity), with

- ``max_task_queue_activities_per_second`` = the limit's ``per_second``: a rate the *server* holds
  for the whole queue, over every run and worker (``gecko-temporal limits set`` overrides it at run
  time through the task queue's config, ``limits reset`` goes back to the workers' figure);
- ``max_concurrent_activities`` = its ``concurrency``: the nodes this process runs at once; a
  killed process's slots end with it, and its nodes run again elsewhere after their heartbeat timeout;
- ``tokens_per_minute``: the limit's limiter workflow runs on the same queue (``limits_tokens.py``);
- ``per_tenant``: set on the queue's config at start (each fairness key's rate, and weights).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from gecko_temporal.core.errors import GraphError
from gecko_temporal.core.flow_limits import Limit, limit_queue
from gecko_temporal.temporal import limits_admin
from gecko_temporal.temporal.limits_tokens import TokenLimiter

_log = logging.getLogger("gecko_temporal.worker")


class LimitWorkers:
    """The limit workers of one GeckoWorker (its ``task_queue``, its node ``runner``)."""

    def __init__(self, client: Client, task_queue: str, runner: Any, max_threads: int, graceful: float) -> None:
        self._client, self._queue, self._runner = client, task_queue, runner
        self._max_threads, self._graceful = max_threads, graceful
        self.limits: dict[str, Limit] = runner.limits  # (the node activity reserves tokens from them)
        self._workers: dict[str, Worker] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None  # the worker's loop, where limit workers run

    def serve(self, limits: dict[str, Limit]) -> None:
        """Poll the queues of ``limits`` too (a limit already served must be declared the same)."""
        for name, limit in limits.items():
            known = self.limits.get(name)
            if known is not None:
                if known != limit:
                    raise GraphError(
                        f'two workflows served by this worker declare limit "{name}" differently ({known} and '
                        f"{limit}); a limit is shared by every run, so declare it once and import it"
                    )
                continue
            self.limits[name] = limit
            self._workers[name] = Worker(
                self._client,
                task_queue=limit_queue(self._queue, name),
                activities=[self._runner.activity()],
                workflows=[TokenLimiter] if limit.tokens_per_minute is not None else [],
                max_concurrent_activities=limit.concurrency or self._max_threads,
                max_task_queue_activities_per_second=limit.per_second,
                graceful_shutdown_timeout=timedelta(seconds=self._graceful),
                max_heartbeat_throttle_interval=timedelta(seconds=1),  # as the main worker (worker.py)
            )
            if self._running:
                self._start(name)

    def start(self) -> None:
        """Start every limit worker (and those of limits served later) on the running loop."""
        self._running = True
        self._loop = asyncio.get_running_loop()
        for name in self._workers:
            self._start(name)

    def _start(self, name: str) -> None:
        """Run the limit's worker on the worker's own loop. A graph may be served from another
        thread's loop (the embedded worker's callers): a task there would die with the caller's
        ``asyncio.run``, and its cancelled SDK worker could hang that loop's close."""
        loop = self._loop
        assert loop is not None

        def launch() -> None:
            if name not in self._tasks and self._running:
                self._tasks[name] = loop.create_task(self._run(name), name=f"gecko-limit-worker-{name}")

        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is loop:
            launch()
        else:
            loop.call_soon_threadsafe(launch)

    async def _run(self, name: str) -> None:
        default, weights = self.limits[name].tenant_caps()
        if default is not None:  # declared in code: applied as `limits set --per-tenant` and `limits weight` would
            queue = limit_queue(self._queue, name)
            try:
                await limits_admin.set_tenant_cap(self._client, queue, default)
                if weights:
                    await limits_admin.set_weights(self._client, queue, weights)
            except Exception as exc:  # e.g. a server without task-queue config: the limit still serves
                _log.warning(
                    "limit %r: the server refused its per_tenant caps (%s); set them with `gecko-temporal limits`",
                    name,
                    exc,
                )
        await self._workers[name].run()

    async def shutdown(self) -> None:
        self._running = False
        for name, worker in self._workers.items():
            if name in self._tasks:
                await worker.shutdown()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
