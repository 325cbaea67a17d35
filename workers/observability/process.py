"""`Observability`: what one worker process reports, made of the parts of this package.

    obs = Observability(ObservabilitySettings.from_env(), kafka_options=settings.kafka.options())
    metrics = obs.worker("inbound", engine=engine, groups=[(group, topic), ...])   # per worker
    await obs.start()      # HTTP server (when TICKETFLOW_HTTP_PORT is set) and the sampler
    ...
    await obs.stop()

`ticketflow up` runs three workers in one process: one `Observability`, three `worker(...)` calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from sqlalchemy.ext.asyncio import AsyncEngine

from workers.observability.config import ObservabilitySettings
from workers.observability.health import Health, database_check, outbox_check
from workers.observability.lag import LagReader
from workers.observability.metrics import Metrics, WorkerMetrics, kafka_prometheus_middleware
from workers.observability.sampler import Sampler, lag_job, outbox_job
from workers.observability.server import ObservabilityServer


class Observability:
    """Metrics, health, sampler and (with a port) the HTTP server of one process."""

    def __init__(self, settings: ObservabilitySettings, kafka_options: Mapping[str, Any] | None = None,
                 metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.health = Health()
        self.sampler = Sampler(settings.sample_interval_seconds)
        self.lag_reader = LagReader(kafka_options) if kafka_options is not None else None
        self.server = (ObservabilityServer(self.metrics, self.health, settings.http_host, settings.http_port)
                       if settings.http_port is not None else None)

    def worker(self, name: str, engine: AsyncEngine | None = None,
               groups: Sequence[tuple[str, str]] = ()) -> WorkerMetrics:
        """Register worker `name`: its metrics (returned), the readiness facts `<name>.broker` and
        `<name>.consumers` (false until the worker sets them), with an `engine` the checks
        `<name>.database` and `<name>.outbox` and the outbox sampling, and the lag of its `groups`
        ((consumer group, topic) pairs)."""
        metrics = self.metrics.worker(name)
        self.health.require(f"{name}.broker")
        self.health.require(f"{name}.consumers")
        if engine is not None:
            self.health.add_check(f"{name}.database", database_check(engine))
            self.health.add_check(f"{name}.outbox", outbox_check(engine, name, self.settings.outbox_max_age_seconds))
            self.sampler.add(f"{name}.outbox", outbox_job(engine, metrics))
        if groups and self.lag_reader is not None:
            self.sampler.add(f"{name}.lag", lag_job(self.lag_reader, groups, metrics))
        return metrics

    def middleware(self, name: str) -> KafkaPrometheusMiddleware:
        """FastStream's Prometheus middleware for worker `name`'s broker, in this process's registry."""
        return kafka_prometheus_middleware(self.metrics, name)

    async def start(self) -> None:
        if self.server is not None:
            await self.server.start()
        self.sampler.start()

    async def stop(self) -> None:
        await self.sampler.stop()
        if self.server is not None:
            await self.server.stop()
        if self.lag_reader is not None:
            await self.lag_reader.close()
