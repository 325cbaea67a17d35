"""X4: a message that cannot be processed goes to the dead-letter topic, bytes and headers intact,
with headers saying where it came from and why. Operators list and replay them with
`ticketflow deadletters`.

A dead letter always fits: the dead-letter topic takes records up to DEADLETTER_MAX_BYTES (larger
than any input topic allows), and a record that would still not fit keeps its coordinates, its key, a
hash and a prefix of its value and its small headers instead of the whole of them
(`dlq_truncated=true` says so). Such a dead letter cannot be replayed; its coordinates lead to the
original on the input topic for as long as that topic keeps it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from contracts.topics import DEADLETTER_MAX_BYTES

log = logging.getLogger("ticketflow.deadletter")

FIT_BYTES = DEADLETTER_MAX_BYTES - 64 * 1024
"""A dead letter above this is truncated (room for the record's framing)."""
KEPT_VALUE_PREFIX = 64 * 1024
KEPT_HEADER_BYTES = 1024
KEPT_KEY_BYTES = 1024
DETAIL_CHARS = 2000


@dataclass(frozen=True)
class DeadLetter:
    """What goes to the dead-letter topic for one record."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    @property
    def size(self) -> int:
        return len(self.key or b"") + len(self.value) + sum(len(k) + len(v) for k, v in self.headers)


def build_dead_letter(record: Any, consumer: str, error_class: str, reason: str, detail: str,
                      fit: int = FIT_BYTES, minimal: bool = False) -> DeadLetter:
    """The dead letter for `record`: the original, or (too big, or `minimal`) a truncated stand-in."""
    original = [(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq_")]
    value = record.value or b""
    extra = {
        "dlq_original_topic": record.topic,
        "dlq_original_partition": str(record.partition),
        "dlq_original_offset": str(record.offset),
        "dlq_consumer": consumer,
        "dlq_error_class": error_class,
        "dlq_reason": reason,
        "dlq_detail": detail[:DETAIL_CHARS],
        "dlq_time": datetime.now(UTC).isoformat(),
    }
    whole = DeadLetter(record.key, value, original + _encoded(extra))
    if whole.size <= fit and not minimal:
        return whole
    kept = [] if minimal else [(k, v) for k, v in original if len(k) + len(v) <= KEPT_HEADER_BYTES]
    dropped = sorted({k for k, _v in original} - {k for k, _v in kept})
    extra |= {
        "dlq_truncated": "true",
        "dlq_value_size": str(len(value)),
        "dlq_value_sha256": hashlib.sha256(value).hexdigest(),
        "dlq_dropped_headers": ",".join(dropped)[:DETAIL_CHARS],
    }
    key = record.key[:KEPT_KEY_BYTES] if record.key else record.key
    return DeadLetter(key, b"" if minimal else value[:KEPT_VALUE_PREFIX], kept + _encoded(extra))


def _encoded(headers: dict[str, str]) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in headers.items()]


async def send_dead_letter(producer: AIOKafkaProducer, topic: str, record: Any, letter: DeadLetter) -> None:
    """Publish `letter` and wait for the broker's ack (it must be safe before the offset moves)."""
    await producer.send_and_wait(topic, value=letter.value, key=letter.key, headers=letter.headers)
    headers = dict(letter.headers)
    log.warning("dead-lettered %s[%s]@%s: %s (%s)%s", record.topic, record.partition, record.offset,
                headers["dlq_reason"].decode(), headers["dlq_detail"].decode()[:200],
                " [truncated]" if "dlq_truncated" in headers else "")
