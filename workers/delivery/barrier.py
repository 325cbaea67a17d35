"""When "not found" may be said: after the projection has read everything published before the
message arrived (ADR 5).

A worker keeps its own copy of what other slices own (accounts; the ticketing worker's view of
conversations), fed by a consumer group of its own. A message that names an id missing from that
copy may only be early: the event that creates it can still be on its way through the projection.
The barrier captures, once, the end offset of the partition that carries the id's key (the topic's
own partitioner: murmur2, like the Java client and aiokafka) and then answers "caught up" once the
projection's group has committed that offset: everything published before the message was then
applied. Only then is the id unknown for good. It does not depend on how long anything takes: a
projection 23,000 events behind after an outage is waited for; a caught-up one answers at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import murmur2

from workers.kafka import KafkaAccess, start_both


@dataclass(frozen=True)
class Projection:
    """A projection: the consumer group that applies `topic` to the worker's own tables."""

    group: str
    topic: str


@dataclass(frozen=True)
class Mark:
    """The end of `partition` when a message arrived: the projection must reach `offset`."""

    partition: TopicPartition
    offset: int


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives `key` (murmur2, positive, modulo the count)."""
    return int(murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class ProjectionBarrier:
    """Captures marks and tells whether a projection has passed them. One per worker, started lazily."""

    def __init__(self, kafka: KafkaAccess, client_id: str) -> None:
        self.kafka = kafka
        self.client_id = client_id
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._opening = asyncio.Lock()
        self._partitions: dict[str, int] = {}

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        """The admin client and consumer, opened on first use. Batches of several consumers ask at once:
        they wait for one opening; one that fails closes what it made, and the next ask tries again."""
        async with self._opening:
            if self._admin is None or self._consumer is None:
                self._admin, self._consumer = await start_both(
                    self.kafka.admin(self.client_id), self.kafka.consumer(client_id=self.client_id))
            return self._admin, self._consumer

    async def mark(self, projection: Projection, key: str) -> Mark:
        """The end offset, now, of the partition of `projection.topic` that carries `key`."""
        admin, consumer = await self._clients()
        if projection.topic not in self._partitions:
            described = await admin.describe_topics([projection.topic])
            self._partitions[projection.topic] = len(described[0]["partitions"])
        tp = TopicPartition(projection.topic, partition_for(key, self._partitions[projection.topic]))
        ends = await consumer.end_offsets([tp])
        return Mark(tp, ends[tp])

    async def marks(self, projection: Projection, keys: set[str]) -> list[Mark]:
        """The end offsets, now, of the partitions that carry `keys` (one request for all of them)."""
        admin, consumer = await self._clients()
        if projection.topic not in self._partitions:
            described = await admin.describe_topics([projection.topic])
            self._partitions[projection.topic] = len(described[0]["partitions"])
        count = self._partitions[projection.topic]
        parts = sorted({TopicPartition(projection.topic, partition_for(k, count)) for k in keys})
        ends = await consumer.end_offsets(parts)
        return [Mark(tp, ends[tp]) for tp in parts]

    async def all_passed(self, projection: Projection, marks: list[Mark]) -> bool:
        """Whether the projection's group has committed every mark (one request)."""
        pending = [m for m in marks if m.offset > 0]
        if not pending:
            return True
        admin, _consumer = await self._clients()
        committed = await admin.list_consumer_group_offsets(projection.group, partitions=[m.partition for m in pending])
        return all((meta := committed.get(m.partition)) is not None and meta.offset >= m.offset for m in pending)

    async def passed(self, projection: Projection, mark: Mark) -> bool:
        """Whether the projection's group has committed `mark` (applied everything before it)."""
        if mark.offset == 0:
            return True
        admin, _consumer = await self._clients()
        committed = await admin.list_consumer_group_offsets(projection.group, partitions=[mark.partition])
        meta = committed.get(mark.partition)
        return meta is not None and meta.offset >= mark.offset

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()
        self._admin = self._consumer = None
