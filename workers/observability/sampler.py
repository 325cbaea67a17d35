"""Measurements taken every few seconds rather than per record: consumer lag and the outbox backlog.
A job that fails (broker or database down) is logged at DEBUG and tried again at the next round; the
dependency gauges and readiness report the outage."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from workers.observability.lag import LagReader
from workers.observability.metrics import WorkerMetrics
from workers.observability.outbox import outbox_backlog

log = logging.getLogger("ticketflow.observability")

Job = Callable[[], Awaitable[None]]


class Sampler:
    """Runs its jobs every `interval` seconds in a background task (`start()`, `stop()`)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.jobs: dict[str, Job] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, name: str, job: Job) -> None:
        self.jobs[name] = job

    async def sample(self) -> dict[str, str]:
        """Run every job once; returns the failures by job name (the loop only logs them)."""
        failures = {}
        for name, job in self.jobs.items():
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures[name] = repr(exc)
                log.debug("sampling %s failed: %r", name, exc)
        return failures

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="observability-sampler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(self.interval)


def outbox_job(engine: AsyncEngine, metrics: WorkerMetrics) -> Job:
    """Measure the worker's outbox into its metrics."""
    async def job() -> None:
        metrics.outbox(await outbox_backlog(engine, metrics.name))
    return job


def lag_job(reader: LagReader, groups: Sequence[tuple[str, str]], metrics: WorkerMetrics) -> Job:
    """Measure the lag of the worker's (group, topic) pairs into its metrics; `reader` is started on
    first use (and again after a failed start)."""
    async def job() -> None:
        await reader.start()
        metrics.lag(await reader.read(groups))
    return job
