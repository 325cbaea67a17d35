"""Operators' view of parked outbox rows: rows the broker can never take (ADR 8).

A parked row holds back the later rows of its topic and key, so that key's events stay in order.
`ticketflow outbox list` shows parked rows and how many rows wait behind each; `retry` hands one back
to the relay (after the cause was fixed, e.g. the topic's `max.message.bytes` raised); `discard`
gives it up for good: it is marked sent without being published, its successors leave, and
consumers of that key see a gap in its `version` sequence (the row stays in the table until pruned).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.tables import outbox
from storage.unit_of_work import now_utc


@dataclass(frozen=True)
class ParkedRow:
    id: int
    producer: str
    topic: str
    key: str
    size: int
    failed_at: datetime
    failure: str
    held_behind: int

    def line(self) -> str:
        return (f"#{self.id} {self.producer} {self.topic} key={self.key[:60]!r} {self.size} bytes, parked "
                f"{self.failed_at:%Y-%m-%d %H:%M:%S}, {self.held_behind} row(s) waiting behind it: {self.failure[:300]}")


async def parked_rows(engine: AsyncEngine, producer: str | None = None) -> list[ParkedRow]:
    """Every parked row (oldest first), with the number of unsent rows of its key behind it."""
    behind = outbox.alias("behind")
    waiting = (select(func.count()).where(and_(
        behind.c.producer == outbox.c.producer, behind.c.topic == outbox.c.topic, behind.c.key == outbox.c.key,
        behind.c.id > outbox.c.id, behind.c.sent_at.is_(None))).scalar_subquery())
    query = (select(outbox.c.id, outbox.c.producer, outbox.c.topic, outbox.c.key, func.length(outbox.c.value),
                    outbox.c.failed_at, outbox.c.failure, waiting)
             .where(outbox.c.failed_at.is_not(None), outbox.c.sent_at.is_(None)).order_by(outbox.c.id))
    if producer:
        query = query.where(outbox.c.producer == producer)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [ParkedRow(*row) for row in rows]


async def retry_parked(engine: AsyncEngine, row_id: int) -> bool:
    """Hand a parked row back to the relay; False if no parked row has that id."""
    async with engine.begin() as conn:
        result = await conn.execute(update(outbox).where(
            outbox.c.id == row_id, outbox.c.failed_at.is_not(None), outbox.c.sent_at.is_(None))
            .values(failed_at=None))
    return bool(result.rowcount)


async def discard_parked(engine: AsyncEngine, row_id: int, reason: str) -> bool:
    """Give a parked row up for good (never published); False if no parked row has that id."""
    async with engine.begin() as conn:
        result = await conn.execute(update(outbox).where(
            outbox.c.id == row_id, outbox.c.failed_at.is_not(None), outbox.c.sent_at.is_(None))
            .values(sent_at=now_utc(), failure=literal("discarded by operator: " + reason + "; ") + outbox.c.failure))
    return bool(result.rowcount)
