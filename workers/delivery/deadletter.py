"""X4: a message that cannot be processed goes to the dead-letter topic, bytes and headers intact,
with headers saying where it came from and why. Operators list and replay them with
`ticketflow deadletters`."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from aiokafka import AIOKafkaProducer

log = logging.getLogger("ticketflow.deadletter")

DLQ_HEADERS = ("dlq_original_topic", "dlq_original_partition", "dlq_original_offset", "dlq_consumer",
               "dlq_error_class", "dlq_reason", "dlq_detail", "dlq_time")


async def dead_letter(
    producer: AIOKafkaProducer, topic: str, record: Any, consumer: str, error_class: str, reason: str, detail: str
) -> None:
    """Publish `record` to `topic` and wait for the broker's ack (it must be safe before the offset moves)."""
    original = [(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq_")]
    extra = {
        "dlq_original_topic": record.topic,
        "dlq_original_partition": str(record.partition),
        "dlq_original_offset": str(record.offset),
        "dlq_consumer": consumer,
        "dlq_error_class": error_class,
        "dlq_reason": reason,
        "dlq_detail": detail[:2000],
        "dlq_time": datetime.now(timezone.utc).isoformat(),
    }
    headers = original + [(k, v.encode()) for k, v in extra.items()]
    await producer.send_and_wait(topic, value=record.value or b"", key=record.key, headers=headers)
    log.warning("dead-lettered %s[%s]@%s: %s (%s)", record.topic, record.partition, record.offset, reason, detail[:200])
