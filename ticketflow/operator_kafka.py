"""Kafka access for operator commands: short timeouts (a down broker fails in seconds, not minutes),
reading one exact record without hanging, and waiting briefly for a group coordinator on a fresh broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka import errors as kafka_errors
from aiokafka.admin import AIOKafkaAdminClient

from contracts.topics import CATALOGUE
from ticketflow.errors import KafkaUnreachable, OperatorError
from workers.kafka import KafkaAccess, access, started_admin, started_consumer
from workers.settings import Settings

REQUEST_TIMEOUT_MS = 10_000
"""Every operator client's request timeout, including the connection attempt at bootstrap."""

FETCH_SECONDS = 15.0
"""How long to wait for a record the broker says exists (or for a read to make progress)."""

COORDINATOR_SECONDS = 30.0
"""How long to wait for a group coordinator (a fresh broker creates its offsets topic at first use)."""

CLIENT_ID = "ticketflow-operator"

T = TypeVar("T")

_COORDINATOR_LOADING = (kafka_errors.GroupCoordinatorNotAvailableError, kafka_errors.CoordinatorLoadInProgressError,
                        kafka_errors.NotCoordinatorError)


@asynccontextmanager
async def admin_client(kafka: KafkaAccess | str) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client with the operator timeout; closed afterwards, also when starting failed."""
    async with started_admin(kafka, CLIENT_ID, request_timeout_ms=REQUEST_TIMEOUT_MS) as admin:
        yield admin


@asynccontextmanager
async def reader(kafka: KafkaAccess | str, group_id: str | None = None,
                 offset_reset: str = "earliest") -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer that never joins a group and never commits by itself (assign partitions to it)."""
    async with started_consumer(kafka, CLIENT_ID, group_id=group_id, auto_offset_reset=offset_reset,
                                request_timeout_ms=REQUEST_TIMEOUT_MS) as consumer:
        yield consumer


@asynccontextmanager
async def writer(kafka: KafkaAccess | str) -> AsyncIterator[AIOKafkaProducer]:
    """The project's producer (acks=all, idempotent), started; stopped afterwards, also when starting failed."""
    producer = access(kafka).producer(CLIENT_ID)
    try:
        await producer.start()
        yield producer
    finally:
        await producer.stop()


def deployed_topic(settings: Settings, name: str) -> str:
    """A catalogue name (`ticketflow.inbound.messages.v1`) gets the deployment's prefix; any other name is
    taken as the full topic name."""
    return settings.topic(name) if name in {spec.name for spec in CATALOGUE} else name


async def partition_count(admin: AIOKafkaAdminClient, topic: str) -> int:
    """How many partitions `topic` has on the broker; 0 when it does not exist."""
    [described] = await admin.describe_topics([topic])
    return len(described["partitions"]) if described["error_code"] == 0 else 0


async def require_partition(admin: AIOKafkaAdminClient, topic: str, partition: int) -> None:
    """OperatorError unless `topic` exists and has `partition`."""
    count = await partition_count(admin, topic)
    if count == 0:
        raise OperatorError(f"topic {topic} does not exist")
    if not 0 <= partition < count:
        raise OperatorError(f"{topic} has no partition {partition} (it has partitions 0-{count - 1})")


async def fetch_record(kafka: KafkaAccess | str, topic: str, partition: int, offset: int,
                       timeout: float = FETCH_SECONDS) -> Any:
    """The record at topic[partition]@offset, or OperatorError saying why there is none (never a hang)."""
    async with admin_client(kafka) as admin:
        await require_partition(admin, topic, partition)
    tp = TopicPartition(topic, partition)
    async with reader(kafka, offset_reset="none") as consumer:
        consumer.assign([tp])
        start = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        _require_in_range(tp, offset, start, end)
        consumer.seek(tp, offset)
        return await _read_exact(consumer, tp, offset, timeout)


def _require_in_range(tp: TopicPartition, offset: int, start: int, end: int) -> None:
    where = f"{tp.topic}[{tp.partition}]@{offset}"
    if start == end:
        raise OperatorError(f"no record at {where}: the partition holds no records (next offset {end})")
    if offset < start:
        raise OperatorError(f"no record at {where}: the partition now starts at offset {start} "
                            "(older records were deleted by retention)")
    if offset >= end:
        raise OperatorError(f"no record at {where}: the partition's last offset is {end - 1}")


async def _read_exact(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    where = f"{tp.topic}[{tp.partition}]@{offset}"
    while time.monotonic() < deadline:
        try:
            batch = await consumer.getmany(tp, timeout_ms=500, max_records=1)
        except kafka_errors.OffsetOutOfRangeError:
            raise OperatorError(f"no record at {where}: it was deleted while being read") from None
        for record in batch.get(tp, []):
            if record.offset == offset:
                return record
            raise OperatorError(f"no record at {where}: the next record is at offset {record.offset}")
    raise OperatorError(f"could not read {where} within {timeout:.0f}s although the broker lists it")


async def retry_while_coordinator_loads(call: Callable[[], Awaitable[T]], timeout: float = COORDINATOR_SECONDS) -> T:
    """`call()`, retried while the group coordinator is not available yet (a fresh broker creates its
    offsets topic at the first group request); KafkaUnreachable if it never becomes available."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except _COORDINATOR_LOADING as exc:
            if time.monotonic() >= deadline:
                raise KafkaUnreachable(f"the broker's group coordinator is still not available after "
                                       f"{timeout:.0f}s ({type(exc).__name__}); try again in a moment") from exc
            await asyncio.sleep(0.5)
