"""`ticketflow lag`: how far each worker consumer group is behind its input, from committed offsets."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ticketflow.running import worker_groups
from ticketflow.topology import partitions_of
from workers.kafka import started_admin, started_consumer
from workers.settings import Settings


async def group_lag(admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, group: str,
                    parts: list[TopicPartition]) -> int:
    ends = await consumer.end_offsets(parts)
    committed = await admin.list_consumer_group_offsets(group, partitions=parts)
    lag = 0
    for tp in parts:
        meta = committed.get(tp)
        done = meta.offset if meta is not None and meta.offset >= 0 else 0
        lag += max(0, ends[tp] - done)
    return lag


async def lag_report(settings: Settings) -> list[tuple[str, str, int]]:
    """(group, topic, lag) for every worker consumer group: what `ticketflow lag` prints."""
    groups = worker_groups(settings)
    parts = await partitions_of(settings.kafka, sorted({t for _g, t in groups}))
    async with started_admin(settings.kafka, "ticketflow-lag") as admin, \
            started_consumer(settings.kafka, "ticketflow-lag") as consumer:
        return [(g, t, await group_lag(admin, consumer, g, [tp for tp in parts if tp.topic == t])) for g, t in groups]
