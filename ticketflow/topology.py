"""Asking the broker how many partitions a topic has (consumers that assign partitions themselves)."""

from __future__ import annotations

from aiokafka import TopicPartition

from workers.kafka import KafkaAccess, access


async def partitions_of(kafka: KafkaAccess | str, topics: list[str]) -> list[TopicPartition]:
    admin = access(kafka).admin("ticketflow-topology")
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return sorted(
        (TopicPartition(t["topic"], p["partition"]) for t in described if t["error_code"] == 0 for p in t["partitions"]),
        key=lambda tp: (tp.topic, tp.partition),
    )
