"""What every worker process is made of: a FastStream Kafka broker for its subscribers, an
idempotent producer, the database engine, the outbox relay, and per input the reliable handler that
turns each record into `handler(message, unit, deps)` (see `Worker.consume`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from faststream import AckPolicy, FastStream
from faststream.kafka.annotations import KafkaMessage
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import Envelope
from contracts.topics import ACCOUNTS, DEADLETTER
from storage.database import create_engine
from storage.migrate import upgrade_async
from workers.accounts import apply_account_record
from workers.broker import WorkerBroker
from workers.delivery.backoff import until_available
from workers.delivery.barrier import Projection, ProjectionBarrier
from workers.delivery.batch import BatchRunner, Requires
from workers.delivery.checkpoints import reached
from workers.delivery.errors import NotYetKnown
from workers.delivery.incoming import natural_envelope
from workers.delivery.parsing import Read, envelope_of, parse_with
from workers.delivery.raw import raw_batch_parser, raw_decoder, raw_parser
from workers.delivery.relay import PRODUCER_BATCH_BYTES, OutboxRelay
from workers.delivery.relay_process import RelayProcess
from workers.delivery.reliable import ReliableHandler
from workers.delivery.report import SILENT, Report
from workers.handling import Deps, Handlers, run_handler
from workers.observability.config import ObservabilitySettings
from workers.observability.process import Observability
from workers.observability.tracing import configure_tracing
from workers.settings import Settings
from workers.unit import SendingUnit, WorkUnit

UnitFactory = Callable[[str, Envelope, frozenset[str]], Any]
"""unit(consumer, cause, caught_up): the async context manager a handler's transaction runs in."""

log = logging.getLogger("ticketflow.worker")


class Relay(Protocol):
    """What a worker does with its outbox relay, wherever it runs."""

    def start(self) -> None: ...
    def notify(self) -> None: ...
    async def stop(self) -> None: ...


class MissingTopics(ConnectionError):
    """The broker answers but the worker's input topics are not provisioned yet: waited for, like an outage."""


class Worker:
    """One worker process. `start()`/`stop()` for embedding (tests, the demo), `app()` for `faststream run`."""

    def __init__(self, name: str, settings: Settings, uses_database: bool = True, deps: Deps | None = None,
                 obs: Observability | None = None) -> None:
        self.name = name
        self.settings = settings
        self.deps = deps or Deps()
        self.obs = obs
        self.report: Report = SILENT
        """What the delivery core counts (the process's metrics once `open()` registered this worker)."""
        self.source = f"/ticketflow/{name}"
        self.uses_database = uses_database
        self.broker = WorkerBroker(
            settings.bootstrap_list,
            security=settings.kafka.faststream_security(),
            client_id=f"ticketflow-{name}",
            allow_auto_create_topics=False,
            ack_policy=AckPolicy.MANUAL,
            acks="all",
            enable_idempotence=True,
            graceful_timeout=30.0,
            logger=logging.getLogger(f"ticketflow.{name}.faststream"),
            log_level=logging.DEBUG,
            middlewares=[obs.middleware(name)] if obs is not None else (),
        )
        self._producer: AIOKafkaProducer | None = None
        self._engine: AsyncEngine | None = None
        self._reader: AsyncEngine | None = None
        self.relay: Relay | None = None
        self._started = False
        self.failure: str | None = None
        self.failed = asyncio.Event()
        self.projections: dict[str, Projection] = {}
        self.inputs: list[tuple[str, str]] = []
        """(purpose, topic) of every input: the consumer group is `settings.group(name, purpose)`."""
        self.batches: dict[str, BatchRunner] = {}
        self.outputs: list[str] = [settings.topic(DEADLETTER)]
        """Every topic this worker writes (its declared publications and the dead-letter topic)."""
        self.barrier = ProjectionBarrier(settings.kafka, f"ticketflow-{name}-barrier")

    def projection(self, name: str, purpose: str, topic: str) -> None:
        """Declare that the subscriber `purpose` keeps this worker's copy of `topic` (see workers.delivery.barrier)."""
        self.projections[name] = Projection(self.settings.group(self.name, purpose), self.settings.topic(topic))

    @property
    def producer(self) -> AIOKafkaProducer:
        assert self._producer is not None, f"worker {self.name} is not started"
        return self._producer

    @property
    def engine(self) -> AsyncEngine:
        assert self._engine is not None, f"worker {self.name} is not started"
        return self._engine

    def consume(self, topic: str, purpose: str, read: Read, what: str, handlers: Handlers, unit: UnitFactory,
                requires: Requires | None = None) -> None:
        """Subscribe to `topic` as input `purpose`: each poll's records are read with `read` (a contract,
        or None for a type this worker passes over), their handlers looked up by the message's type and
        run in order in one unit of work, reliably (`workers.delivery.batch`: dead letters, retries,
        one record at a time when a batch fails, one offset commit after all of it)."""
        consumer = f"{self.name}.{purpose}"
        reliable = self.reliable(purpose)

        async def process(record: Any, caught_up: frozenset[str]) -> None:
            message = parse_with(record, read, what)
            handler = handlers.get(type(message)) if message is not None else None
            if handler is None:
                return
            need = requires(message) if requires is not None else None
            if need is not None and need.projection not in caught_up:
                raise NotYetKnown(need.projection, need.key)
            cause = envelope_of(record) or natural_envelope(message)
            async with unit(consumer, cause, caught_up) as uow:
                await run_handler(handler, message, uow, self.deps)

        runner = BatchRunner(reliable, read, what, handlers, unit, self.deps, process, requires)
        self.batches[purpose] = runner

        async def on_batch() -> None:
            await runner.handle(self.message())

        self.subscriber(topic, purpose, batch=True)(on_batch)

    def publishes(self, *topics: str) -> None:
        """Declare the catalogue topics this worker writes (with its inputs: the source of its ACLs)."""
        self.outputs += [self.settings.topic(t) for t in topics]

    def keep_accounts(self, purpose: str) -> None:
        """Keep this worker's copy of the accounts topic (compacted; a tombstone deletes the copy)."""
        reliable = self.reliable(purpose)

        async def apply(record: Any, _caught_up: frozenset[str]) -> None:
            await apply_account_record(self.engine, self.name, record)

        async def on_account() -> None:
            await reliable.handle(self.message(), apply)

        self.subscriber(ACCOUNTS, purpose)(on_account)

    def database_unit(self, cls: type[WorkUnit[Any]]) -> UnitFactory:
        """Units of `cls` on this worker's database: the relay wakes after each commit that wrote the outbox."""
        def make(consumer: str, cause: Envelope, caught_up: frozenset[str]) -> WorkUnit[Any]:
            return cls(self.engine, consumer, self.name, source=self.source, prefix=self.settings.topic_prefix,
                       cause=cause, caught_up=caught_up, before_commit=lambda: reached("before_db_commit", consumer),
                       after_commit=self.committed, clock=self.deps.clock, report=self.report)
        return make

    def sending_unit(self) -> UnitFactory:
        """Units that send what their handler publishes straight to Kafka (a worker without a database)."""
        def make(_consumer: str, cause: Envelope, caught_up: frozenset[str]) -> SendingUnit:
            return SendingUnit(self.producer, source=self.source, prefix=self.settings.topic_prefix, cause=cause,
                               caught_up=caught_up, clock=self.deps.clock)
        return make

    def message(self) -> KafkaMessage:
        """The message a handler is called for, from FastStream's context. A `message: KafkaMessage`
        parameter would be resolved by a synchronous context lookup that FastDepends runs in a worker
        thread: a thread hop, about 0.5 ms of CPU, for every batch and every accounts record."""
        message: KafkaMessage = self.broker.context.get_local("message")
        return message

    def subscriber(self, topic: str, purpose: str, batch: bool = False) -> Callable[[Any], None]:
        """Registers a function as the consumer(s) of `topic` in the group of input `purpose`; nothing
        commits an offset before its records are done (see workers.delivery.batch and .reliable).

        With `consumers_per_input` > 1 that many consumers join the group, each with its own partitions,
        processed in order; each commits only its own partitions."""
        self.inputs.append((purpose, self.settings.topic(topic)))
        session = self.settings.session_timeout_ms
        options: dict[str, Any] = dict(
            group_id=self.settings.group(self.name, purpose), auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL, max_poll_interval_ms=300_000, session_timeout_ms=session,
            heartbeat_interval_ms=max(1_000, session // 5), title=f"{self.name}.{purpose}")
        shape: dict[str, Any] = (
            dict(batch=True, max_records=self.settings.batch_max_records, parser=raw_batch_parser) if batch
            else dict(parser=raw_parser))

        def register(function: Any) -> None:
            for member in group_instance_ids(self.settings):
                self.broker.subscriber(self.settings.topic(topic), decoder=raw_decoder, group_instance_id=member,
                                       **shape, **options)(function)

        return register

    def reliable(self, purpose: str) -> ReliableHandler:
        return ReliableHandler(
            consumer=f"{self.name}.{purpose}",
            producer=lambda: self.producer,
            deadletter_topic=self.settings.topic(DEADLETTER),
            barrier=self.barrier,
            projections=self.projections,
            on_fatal=self.fail,
            report=lambda: self.report,
            worker=self.name,
        )

    def fail(self, reason: str) -> None:
        """Something can neither be processed nor parked: the worker must stop (see `run_until_stopped`)."""
        if self.failure is None:
            self.failure = reason
        if self.obs is not None:
            self.obs.health.fail(reason)
        self.failed.set()

    def committed(self) -> None:
        """A transaction that wrote outbox rows committed: wake the relay."""
        if self.relay is not None:
            self.relay.notify()

    async def open(self, migrate: bool = True) -> None:
        """Everything but the consumers: database, producer, relay. A database or broker that is not up yet
        is waited for, with backoff, however long it takes."""
        if self.uses_database:
            if migrate and self.settings.migrate_on_start:
                await until_available(lambda: upgrade_async(self.settings.database_url), "database", log)
            self._engine = create_engine(self.settings.database_url)
        if self.obs is not None:
            groups = [(self.settings.group(self.name, purpose), topic) for purpose, topic in self.inputs]
            self.report = self.obs.worker(self.name, engine=self._engine, groups=groups)
        self._producer = await until_available(self._start_producer, "Kafka", log, report=self.report)
        if self.uses_database:
            self.relay = self._relay()
            self.relay.start()

    def _relay(self) -> Relay:
        """The outbox relay: a child process on PostgreSQL by default (ADR 17), else in this event loop."""
        if self.settings.relay_apart:
            if self.obs is not None:
                self.obs.health.require(f"{self.name}.relay", "relay process starting")
            return RelayProcess(self.settings, self.name, on_fatal=self.fail, report=self.report,
                                on_state=self._relay_state)
        self._reader = create_engine(self.settings.database_url, writer=False)
        return OutboxRelay(self.engine, self.producer, self.name, self.settings.relay_interval_seconds,
                           reader=self._reader, on_fatal=self.fail, report=self.report)

    def _relay_state(self, up: bool, detail: str) -> None:
        """Readiness waits for a relay process that relays (`<worker>.relay`), and fails while none does."""
        if self.obs is not None:
            self.obs.health.set(f"{self.name}.relay", up, detail)

    async def _start_producer(self) -> AIOKafkaProducer:
        return await self.settings.kafka.started_producer(f"ticketflow-{self.name}-producer",
                                                          max_batch_size=PRODUCER_BATCH_BYTES)

    async def close(self) -> None:
        if self.relay is not None:
            try:
                await self.relay.stop()
            except Exception as exc:
                log.warning("relay %s could not flush on stop: %r", self.name, exc)
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        await self.barrier.close()
        for engine in (self._engine, self._reader):
            if engine is not None:
                await engine.dispose()

    async def start(self, migrate: bool = True) -> None:
        await self.open(migrate)
        await until_available(self._inputs_exist, "Kafka topics", log, report=self.report)
        await until_available(self.broker.start, "Kafka", log, report=self.report)
        self._started = True
        if self.obs is not None:
            self.obs.health.set(f"{self.name}.broker", True)
            self.obs.health.set(f"{self.name}.consumers", True, "subscribed; partitions follow the group's assignment")

    async def _inputs_exist(self) -> None:
        """Subscribing to a topic that does not exist yet would leave the consumer without partitions until
        its next metadata refresh (minutes): wait for `ticketflow topics apply` instead."""
        admin = self.settings.kafka.admin(f"ticketflow-{self.name}-topics")
        await admin.start()
        try:
            missing = sorted({t for _p, t in self.inputs} - set(await admin.list_topics()))
        finally:
            await admin.close()
        if missing:
            raise MissingTopics(f"input topics missing (run `ticketflow topics apply`): {', '.join(missing)}")

    async def flush_commits(self) -> None:
        """Commit the offsets of passed-over batches that wait (`workers.delivery.quiet_commits`), so that a
        worker stopped cleanly leaves its committed offsets at the end of what it read."""
        for runner in self.batches.values():
            try:
                await runner.commits.flush()
            except Exception as exc:
                log.info("%s: offsets of passed-over records not committed on stop: %r", self.name, exc)

    async def stop(self) -> None:
        if self._started:
            await self.flush_commits()
            await self.broker.stop()
            self._started = False
        await self.close()

    def app(self, on_close: Callable[[], Awaitable[None]] | None = None) -> FastStream:
        async def _open() -> None:
            await self.open()

        async def _close() -> None:
            await self.close()
            if on_close is not None:
                await on_close()

        return FastStream(self.broker, on_startup=[_open], on_shutdown=[self.flush_commits], after_shutdown=[_close])


def group_instance_ids(settings: Settings) -> list[str | None]:
    """The static member name of each consumer of one input (`consumers_per_input` of them): unique within
    the group, the same after a restart, so a crashed replica that comes back under `TICKETFLOW_INSTANCE_ID`
    takes its partitions back without a rebalance (ADR 13). Without an instance id: dynamic members."""
    count = settings.consumers_per_input
    if settings.instance_id is None:
        return [None] * count
    return [f"{settings.instance_id}-{index}" for index in range(count)]


def app_of(build: Callable[[Settings, Observability | None], Worker]) -> FastStream:
    """The FastStream app `faststream run workers.<name>.app:app` runs: the worker from the environment's
    settings, reporting to this process's metrics, health (on `TICKETFLOW_HTTP_PORT`) and traces."""
    settings = Settings.from_env()
    tracing = configure_tracing("ticketflow")
    obs = Observability(ObservabilitySettings.from_env(), kafka_options=settings.kafka.options())
    worker = build(settings, obs)

    async def stop_observing() -> None:
        await obs.stop()
        if tracing is not None:
            tracing.shutdown()

    app = worker.app(on_close=stop_observing)
    app.on_startup(obs.start)
    return app
