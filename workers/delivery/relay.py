"""The outbox relay: publishes committed outbox rows in order, then marks them sent (X3, X5).

One relay per worker process polls its own rows (`producer` column). On PostgreSQL a transaction
advisory lock lets only one replica of a worker relay at a time, so rows leave in id order.
A crash between publish and mark-sent publishes those rows again on restart: events are
at-least-once with stable ids (`ce_id`), and every Ticketflow consumer drops repeats.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.tables import outbox, processed_messages
from storage.unit_of_work import now_utc

log = logging.getLogger("ticketflow.relay")

SENT_RETENTION = timedelta(hours=1)
PROCESSED_RETENTION = timedelta(days=35)
"""Longer than any input topic keeps a record (30 days for the dead-letter topic, whose records may be
replayed), so a redelivery always still finds its processed id."""


class OutboxRelay:
    def __init__(self, engine: AsyncEngine, producer: AIOKafkaProducer, owner: str,
                 interval: float = 0.05, batch: int = 500, reader: AsyncEngine | None = None) -> None:
        self.engine = engine
        self.reader = reader or engine
        self.producer = producer
        self.owner = owner
        self.interval = interval
        self.batch = batch
        self.wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock_key = zlib.crc32(f"ticketflow-outbox-{owner}".encode())
        self.published = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"outbox-relay-{self.owner}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self.flush()

    def notify(self) -> None:
        """Called after a commit that wrote outbox rows: publish them now rather than at the next poll."""
        self.wake.set()

    async def _loop(self) -> None:
        backoff = 0.2
        rounds = 0
        while True:
            try:
                sent = await self.flush()
                backoff = 0.2
                rounds += 1
                if rounds % 1000 == 0:
                    await self._prune()
                if sent:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Kafka or DB down: rows stay, retry
                log.warning("outbox relay %s failed, retrying in %.1fs: %r", self.owner, backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=self.interval)
            except asyncio.TimeoutError:
                pass
            self.wake.clear()

    async def flush(self) -> int:
        """Publish one batch of unsent rows in id order; returns how many were sent."""
        if self.engine.dialect.name == "postgresql":
            sent = await self._flush_locked()
        else:
            sent = await self._flush_unlocked()
        self.published += sent
        return sent

    async def _flush_locked(self) -> int:
        """PostgreSQL: one replica at a time (advisory lock), rows read, published and marked in one transaction."""
        async with self.engine.connect() as conn:
            async with conn.begin():
                got = await conn.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": self._lock_key})
                if not got:
                    return 0
                rows = (await conn.execute(self._unsent())).all()
                if rows:
                    await self._publish(rows)
                    await conn.execute(self._mark_sent(rows))
                return len(rows)

    async def _flush_unlocked(self) -> int:
        """SQLite: read and mark in two short transactions, so the write lock is never held while Kafka acks."""
        async with self.reader.connect() as conn:
            rows = (await conn.execute(self._unsent())).all()
        if not rows:
            return 0
        await self._publish(rows)
        async with self.engine.begin() as conn:
            await conn.execute(self._mark_sent(rows))
        return len(rows)

    def _unsent(self) -> Any:
        return (select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.headers, outbox.c.value)
                .where(outbox.c.producer == self.owner, outbox.c.sent_at.is_(None))
                .order_by(outbox.c.id).limit(self.batch))

    @staticmethod
    def _mark_sent(rows: Any) -> Any:
        return update(outbox).where(outbox.c.id.in_([r.id for r in rows])).values(sent_at=now_utc())

    async def _publish(self, rows: Any) -> None:
        futures = [
            await self.producer.send(row.topic, value=row.value, key=row.key.encode(),
                                     headers=[(k, v.encode()) for k, v in row.headers])
            for row in rows
        ]
        await asyncio.gather(*futures)

    async def _prune(self) -> None:
        """Drop sent outbox rows after an hour and processed ids after PROCESSED_RETENTION."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(outbox).where(outbox.c.producer == self.owner,
                                                    outbox.c.sent_at < now_utc() - SENT_RETENTION))
            await conn.execute(delete(processed_messages).where(
                processed_messages.c.consumer.like(f"{self.owner}.%"),
                processed_messages.c.processed_at < now_utc() - PROCESSED_RETENTION))
