"""Prometheus metrics of one worker process, in a registry of its own (never the global one).

    metrics = Metrics()                       # once per process
    inbound = metrics.worker("inbound")       # bound to one worker's label
    inbound.processed("messages")             # the delivery core counts outcomes
    body, content_type = metrics.render()     # what `/metrics` serves

FastStream's consume/publish counts and durations come from `kafka_prometheus_middleware`, in the
same registry. Consumer lag and the outbox backlog are measured by `workers.observability.sampler`.
"""

from __future__ import annotations

from collections.abc import Iterable

from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from workers.observability.lag import PartitionLag
from workers.observability.outbox import OutboxBacklog

PREFIX = "ticketflow"
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
RELAY_FAILURE_KINDS = ("transient", "parked", "fatal")
DEPENDENCIES = ("database", "kafka")


class Metrics:
    """The metric families of one process: create once, then `worker(name)` per worker it runs."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.processed = Counter(f"{PREFIX}_records_processed", "Records processed to the end (committed or "
                                 "passed over), by worker and input", ["worker", "input"], registry=r)
        self.rejected = Counter(f"{PREFIX}_records_rejected", "Commands refused with command.rejected, by reason",
                                ["worker", "input", "reason"], registry=r)
        self.dead_lettered = Counter(f"{PREFIX}_records_dead_lettered", "Records sent to the dead-letter topic, "
                                     "by dlq_reason", ["worker", "input", "reason"], registry=r)
        self.outbox_unsent = Gauge(f"{PREFIX}_outbox_unsent_rows", "Outbox rows not yet published (parked included)",
                                   ["worker"], registry=r)
        self.outbox_parked = Gauge(f"{PREFIX}_outbox_parked_rows", "Outbox rows the broker can never take (ADR 8)",
                                   ["worker"], registry=r)
        self.outbox_age = Gauge(f"{PREFIX}_outbox_oldest_unsent_age_seconds", "Age of the oldest unsent outbox row "
                                "(0 when none)", ["worker"], registry=r)
        self.relay_published = Counter(f"{PREFIX}_relay_published", "Outbox rows the relay published",
                                       ["worker"], registry=r)
        self.relay_failures = Counter(f"{PREFIX}_relay_failures", "Relay failures: transient (retried), parked "
                                      "(a row set aside), fatal (the relay stopped)", ["worker", "kind"], registry=r)
        self.lag = Gauge(f"{PREFIX}_consumer_lag", "Records on a partition after the group's committed offset",
                         ["worker", "group", "topic", "partition"], registry=r)
        self.unavailable = Gauge(f"{PREFIX}_dependency_unavailable", "1 while the worker waits for a dependency "
                                 "(transient failures, retried with backoff)", ["worker", "dependency"], registry=r)
        self.retries = Counter(f"{PREFIX}_transient_retries", "Retries after a transient failure of a dependency",
                               ["worker", "dependency"], registry=r)
        self.batch_size = Histogram(f"{PREFIX}_batch_size", "Records per processed batch", ["worker", "input"],
                                    buckets=BATCH_BUCKETS, registry=r)
        self.batch_seconds = Histogram(f"{PREFIX}_batch_duration_seconds", "Wall time of a batch, from the poll "
                                       "that returned it to its offsets committed", ["worker", "input"],
                                       buckets=SECONDS_BUCKETS, registry=r)
        self.record_age = Histogram(f"{PREFIX}_record_wait_seconds", "How long each record waited before its "
                                    "batch was taken up: from its Kafka timestamp (the producer's send, or the "
                                    "broker's append on LogAppendTime topics) to the start of its batch",
                                    ["worker", "input"], buckets=SECONDS_BUCKETS, registry=r)
        self.relay_delay = Histogram(f"{PREFIX}_relay_delay_seconds", "From the transaction that wrote an outbox "
                                     "row to the broker's acknowledgement of it", ["worker"],
                                     buckets=SECONDS_BUCKETS, registry=r)

    def worker(self, name: str) -> WorkerMetrics:
        """The metrics of worker `name` (its label set on every family)."""
        return WorkerMetrics(self, name)

    def render(self) -> tuple[bytes, str]:
        """The registry in Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class WorkerMetrics:
    """What the delivery core of one worker reports. Every method is cheap and never raises."""

    def __init__(self, metrics: Metrics, worker: str) -> None:
        self.metrics = metrics
        self.name = worker
        m = metrics
        m.outbox_unsent.labels(worker).set(0)
        m.outbox_parked.labels(worker).set(0)
        m.outbox_age.labels(worker).set(0)
        m.relay_published.labels(worker)
        for kind in RELAY_FAILURE_KINDS:
            m.relay_failures.labels(worker, kind)
        for dependency in DEPENDENCIES:
            m.unavailable.labels(worker, dependency).set(0)
            m.retries.labels(worker, dependency)
        self._lag_series: set[tuple[str, str, str]] = set()

    def processed(self, input: str, count: int = 1) -> None:
        """`count` records of `input` (the subscriber's purpose, e.g. "messages") are done."""
        self.metrics.processed.labels(self.name, input).inc(count)

    def rejected(self, input: str, reason: str) -> None:
        """A command of `input` was refused (`command.rejected.reason`)."""
        self.metrics.rejected.labels(self.name, input, reason).inc()

    def dead_lettered(self, input: str, reason: str) -> None:
        """A record of `input` went to the dead-letter topic with `dlq_reason` = `reason`."""
        self.metrics.dead_lettered.labels(self.name, input, reason).inc()

    def waiting(self, dependency: str, retry: bool = True) -> None:
        """The worker waits for `dependency` ("database" or "kafka") after a transient failure."""
        self.metrics.unavailable.labels(self.name, dependency).set(1)
        if retry:
            self.metrics.retries.labels(self.name, dependency).inc()

    def available(self, dependency: str) -> None:
        """`dependency` answered again."""
        self.metrics.unavailable.labels(self.name, dependency).set(0)

    def relay_published(self, count: int) -> None:
        """The relay published `count` outbox rows."""
        if count:
            self.metrics.relay_published.labels(self.name).inc(count)

    def relay_failed(self, kind: str, count: int = 1) -> None:
        """`kind`: "transient" (will retry), "parked" (rows set aside) or "fatal" (the relay stopped)."""
        if kind not in RELAY_FAILURE_KINDS:
            raise ValueError(f"relay failure kind {kind!r}; one of {', '.join(RELAY_FAILURE_KINDS)}")
        self.metrics.relay_failures.labels(self.name, kind).inc(count)

    def batch(self, input: str, size: int, seconds: float) -> None:
        """A batch of `size` records of `input` was processed in `seconds` (poll to offsets committed)."""
        self.metrics.batch_size.labels(self.name, input).observe(size)
        self.metrics.batch_seconds.labels(self.name, input).observe(seconds)

    def waited(self, input: str, ages: Iterable[float]) -> None:
        """Records of `input` are taken up `ages` seconds after their Kafka timestamps."""
        series = self.metrics.record_age.labels(self.name, input)
        for age in ages:
            series.observe(max(age, 0.0))

    def relay_delays(self, delays: Iterable[float]) -> None:
        """Outbox rows were acknowledged by the broker `delays` seconds after they were written."""
        series = self.metrics.relay_delay.labels(self.name)
        for delay in delays:
            series.observe(max(delay, 0.0))

    def outbox(self, backlog: OutboxBacklog) -> None:
        """The latest measurement of this worker's outbox (see `workers.observability.outbox`)."""
        self.metrics.outbox_unsent.labels(self.name).set(backlog.unsent)
        self.metrics.outbox_parked.labels(self.name).set(backlog.parked)
        self.metrics.outbox_age.labels(self.name).set(backlog.oldest_unsent_age_seconds)

    def lag(self, lags: Iterable[PartitionLag]) -> None:
        """The latest lag of this worker's groups; partitions no longer measured are dropped."""
        seen = set()
        for item in lags:
            series = (item.group, item.topic, str(item.partition))
            self.metrics.lag.labels(self.name, *series).set(item.lag)
            seen.add(series)
        for gone in self._lag_series - seen:
            self.metrics.lag.remove(self.name, *gone)
        self._lag_series = seen


def kafka_prometheus_middleware(metrics: Metrics, app_name: str) -> KafkaPrometheusMiddleware:
    """FastStream's consume/publish counts, durations and sizes in `metrics`' registry, labelled
    `app_name` (the worker's name). Pass it to `KafkaBroker(..., middlewares=[...])`. Several brokers
    in one process may share the registry: the middleware reuses families already registered."""
    return KafkaPrometheusMiddleware(registry=metrics.registry, app_name=app_name, metrics_prefix="faststream")
