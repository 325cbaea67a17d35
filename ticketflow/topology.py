"""Asking the broker how many partitions a topic has (consumers that assign partitions themselves)."""

from __future__ import annotations

from aiokafka import TopicPartition

from workers.kafka import KafkaAccess, started_admin


async def partitions_of(kafka: KafkaAccess | str, topics: list[str]) -> list[TopicPartition]:
    async with started_admin(kafka, "ticketflow-topology") as admin:
        described = await admin.describe_topics(topics)
    return sorted(
        (TopicPartition(t["topic"], p["partition"]) for t in described if t["error_code"] == 0 for p in t["partitions"]),
        key=lambda tp: (tp.topic, tp.partition),
    )
