"""What every worker process is made of: a FastStream Kafka broker for its subscribers, an
idempotent producer, the database engine, the outbox relay, and the reliable handler per input."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.topics import DEADLETTER
from storage.database import create_engine
from storage.migrate import upgrade_async
from ticketflow.config import Settings
from workers.delivery.backoff import until_available
from workers.delivery.barrier import Projection, ProjectionBarrier
from workers.delivery.producer import make_producer
from workers.delivery.raw import raw_decoder, raw_parser
from workers.delivery.relay import OutboxRelay
from workers.delivery.reliable import ReliableHandler

log = logging.getLogger("ticketflow.worker")


class MissingTopics(ConnectionError):
    """The broker answers but the worker's input topics are not provisioned yet: waited for, like an outage."""


class Worker:
    """One worker process. `start()`/`stop()` for embedding (tests, the demo), `app()` for `faststream run`."""

    def __init__(self, name: str, settings: Settings, uses_database: bool = True) -> None:
        self.name = name
        self.settings = settings
        self.source = f"/ticketflow/{name}"
        self.uses_database = uses_database
        self.broker = KafkaBroker(
            settings.bootstrap_list,
            client_id=f"ticketflow-{name}",
            allow_auto_create_topics=False,
            ack_policy=AckPolicy.MANUAL,
            acks="all",
            enable_idempotence=True,
            graceful_timeout=30.0,
            logger=logging.getLogger(f"ticketflow.{name}.faststream"),
            log_level=logging.DEBUG,
        )
        self._producer: AIOKafkaProducer | None = None
        self._engine: AsyncEngine | None = None
        self._reader: AsyncEngine | None = None
        self.relay: OutboxRelay | None = None
        self._started = False
        self.failure: str | None = None
        self.failed = asyncio.Event()
        self.projections: dict[str, Projection] = {}
        self.inputs: list[str] = []
        self.barrier = ProjectionBarrier(settings.bootstrap_servers, f"ticketflow-{name}-barrier")

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

    def subscriber(self, topic: str, purpose: str) -> Any:
        """A subscriber that never commits an offset before its message is done (see workers.delivery.reliable).

        With `consumers_per_input` > 1 it runs that many consumers in the group, each with its own
        partitions, processed in order; `ack()` commits only that consumer's partitions.
        """
        extra = {"max_workers": self.settings.consumers_per_input} if self.settings.consumers_per_input > 1 else {}
        self.inputs.append(self.settings.topic(topic))
        return self.broker.subscriber(
            self.settings.topic(topic),
            group_id=self.settings.group(self.name, purpose),
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,
            parser=raw_parser,
            decoder=raw_decoder,
            max_poll_interval_ms=300_000,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=2_000,
            title=f"{self.name}.{purpose}",
            **extra,
        )

    def reliable(self, purpose: str) -> ReliableHandler:
        return ReliableHandler(
            consumer=f"{self.name}.{purpose}",
            producer=lambda: self.producer,
            deadletter_topic=self.settings.topic(DEADLETTER),
            barrier=self.barrier,
            projections=self.projections,
            on_fatal=self.fail,
        )

    def fail(self, reason: str) -> None:
        """Something can neither be processed nor parked: the worker must stop (see `run_until_stopped`)."""
        if self.failure is None:
            self.failure = reason
        self.failed.set()

    def committed(self) -> None:
        """A transaction that wrote outbox rows committed: wake the relay."""
        if self.relay is not None:
            self.relay.notify()

    async def open(self, migrate: bool = True) -> None:
        """Everything but the consumers: database, producer, relay. A database or broker that is not up yet
        is waited for, with backoff, however long it takes."""
        if self.uses_database:
            if migrate:
                await until_available(lambda: upgrade_async(self.settings.database_url), "database", log)
            self._engine = create_engine(self.settings.database_url)
        self._producer = await until_available(self._start_producer, "Kafka", log)
        if self.uses_database:
            self._reader = create_engine(self.settings.database_url, writer=False)
            self.relay = OutboxRelay(self.engine, self.producer, self.name, self.settings.relay_interval_seconds,
                                     reader=self._reader, on_fatal=self.fail)
            self.relay.start()

    async def _start_producer(self) -> AIOKafkaProducer:
        producer = make_producer(self.settings.bootstrap_servers, f"ticketflow-{self.name}-producer")
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        return producer

    async def close(self) -> None:
        if self.relay is not None:
            try:
                await self.relay.stop()
            except Exception as exc:  # noqa: BLE001 - unsent rows stay in the outbox for next time
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
        await until_available(self._inputs_exist, "Kafka topics", log)
        await until_available(self.broker.start, "Kafka", log)
        self._started = True

    async def _inputs_exist(self) -> None:
        """Subscribing to a topic that does not exist yet would leave the consumer without partitions until
        its next metadata refresh (minutes): wait for `ticketflow topics apply` instead."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.bootstrap_servers,
                                    client_id=f"ticketflow-{self.name}-topics")
        await admin.start()
        try:
            missing = sorted(set(self.inputs) - set(await admin.list_topics()))
        finally:
            await admin.close()
        if missing:
            raise MissingTopics(f"input topics missing (run `ticketflow topics apply`): {', '.join(missing)}")

    async def stop(self) -> None:
        if self._started:
            await self.broker.stop()
            self._started = False
        await self.close()

    def app(self) -> FastStream:
        async def _open() -> None:
            await self.open()

        async def _close() -> None:
            await self.close()

        return FastStream(self.broker, on_startup=[_open], after_shutdown=[_close])
