"""The consume step every handler shares (X4, X5).

    parse -> process in one DB transaction -> ack

* transient failures (database down, locked) retry with capped backoff, forever: never dead-lettered;
* conflicts (a concurrent update of the same row, a unique key inserted meanwhile) retry a few times;
* `NotYetKnown` retries for a grace period, then the handler is told to stop waiting;
* `BadMessage`, and any other error, dead-letters the message with its reason;
* the offset is committed (ack) only after the transaction committed or the dead letter was acked.

The FastStream subscribers use AckPolicy.MANUAL, and each consumer processes one message at a time,
so `ack()` (which commits the consumer's position on all its partitions) never passes a message that
is not done.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer

from workers.delivery.deadletter import dead_letter
from workers.delivery.errors import BadMessage, NotYetKnown, is_conflict, is_transient

log = logging.getLogger("ticketflow.delivery")

MAX_CONFLICT_RETRIES = 10
"""A race with another transaction is retried this often before the message counts as failed."""

Process = Callable[[Any, bool], Awaitable[None]]
"""process(record, patience_expired) runs one transaction for the record."""


class ReliableHandler:
    def __init__(
        self,
        consumer: str,
        producer: Callable[[], AIOKafkaProducer],
        deadletter_topic: str,
        grace_seconds: float,
        fault: str = "",
        max_backoff: float = 5.0,
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.deadletter_topic = deadletter_topic
        self.grace_seconds = grace_seconds
        self.fault = fault
        self.max_backoff = max_backoff

    async def handle(self, message: Any, process: Process) -> None:
        """Process the FastStream message's record, then ack it."""
        record = message.raw_message
        await self.run(record, process)
        if self.fault == f"crash_before_ack:{self.consumer}":
            log.error("fault injection: exiting between the DB commit and the offset commit")
            os._exit(17)
        await message.ack()

    async def run(self, record: Any, process: Process) -> None:
        started = time.monotonic()
        backoff = 0.1
        conflicts = 0
        while True:
            patience_expired = time.monotonic() - started >= self.grace_seconds
            try:
                await process(record, patience_expired)
                return
            except NotYetKnown:
                await asyncio.sleep(0.2)
            except BadMessage as exc:
                await self._dead_letter(record, type(exc).__name__, exc.reason, exc.detail)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below
                if is_conflict(exc) and conflicts < MAX_CONFLICT_RETRIES:
                    conflicts += 1
                    log.info("conflict on %s[%s]@%s, retrying (%d): %r",
                             record.topic, record.partition, record.offset, conflicts, exc)
                    await asyncio.sleep(0.05 * conflicts)
                    continue
                if is_transient(exc):
                    log.warning("transient failure on %s[%s]@%s, retrying in %.1fs: %r",
                                record.topic, record.partition, record.offset, backoff, exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                log.exception("processing failed on %s[%s]@%s", record.topic, record.partition, record.offset)
                await self._dead_letter(record, type(exc).__name__, "processing_failed", repr(exc))
                return

    async def _dead_letter(self, record: Any, error_class: str, reason: str, detail: str) -> None:
        backoff = 0.5
        while True:
            try:
                await dead_letter(self.producer(), self.deadletter_topic, record, self.consumer, error_class, reason, detail)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Kafka unavailable: keep the message, retry
                log.warning("dead-letter publish failed, retrying in %.1fs: %r", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
