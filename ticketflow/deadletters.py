"""Operators' view of the dead-letter topic: list what is there and why, replay one message."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.topics import DEADLETTER
from ticketflow.config import Settings
from ticketflow.topology import partitions_of
from workers.delivery.producer import make_producer


async def read_dead_letters(settings: Settings, limit: int = 1000) -> list[Any]:
    """Every record on the dead-letter topic (up to `limit`), without joining a consumer group."""
    topic = settings.topic(DEADLETTER)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                                client_id="ticketflow-deadletters")
    await consumer.start()
    try:
        partitions = await partitions_of(settings.bootstrap_servers, [topic])
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while len(records) < limit and await _behind(consumer, partitions, ends):
            batch = await consumer.getmany(timeout_ms=1000)
            for recs in batch.values():
                records.extend(recs)
        return records[:limit]
    finally:
        await consumer.stop()


async def _behind(consumer: AIOKafkaConsumer, partitions: list[TopicPartition], ends: dict[Any, int]) -> bool:
    for tp in partitions:
        if await consumer.position(tp) < ends[tp]:
            return True
    return False


def describe(record: Any) -> str:
    h = {k: v.decode(errors="replace") for k, v in record.headers or ()}
    value = (record.value or b"")[:80].decode(errors="replace")
    return (f"p{record.partition}@{record.offset} from {h.get('dlq_original_topic')}[{h.get('dlq_original_partition')}]"
            f"@{h.get('dlq_original_offset')} by {h.get('dlq_consumer')}: {h.get('dlq_reason')} - "
            f"{h.get('dlq_detail', '')[:160]} | value={value!r}")


async def list_dead_letters(settings: Settings, limit: int = 50) -> list[str]:
    return [describe(r) for r in await read_dead_letters(settings, limit)] or ["(no dead letters)"]


async def replay_dead_letter(settings: Settings, partition: int, offset: int) -> str:
    """Publish the dead letter at partition/offset back to its original topic, bytes and key unchanged."""
    topic = settings.topic(DEADLETTER)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        record = await consumer.getone()
    finally:
        await consumer.stop()
    headers = dict((k, v) for k, v in record.headers or ())
    original = headers["dlq_original_topic"].decode()
    kept = [(k, v) for k, v in record.headers or () if not k.startswith("dlq_")]
    kept.append(("dlq_replayed_from", f"{topic}:{partition}:{offset}".encode()))
    producer = make_producer(settings.bootstrap_servers, "ticketflow-deadletters")
    await producer.start()
    try:
        await producer.send_and_wait(original, value=record.value, key=record.key, headers=kept)
    finally:
        await producer.stop()
    return f"replayed {topic}[{partition}]@{offset} to {original}"
