"""How far behind a worker's outbox relay is: unsent rows, parked rows, and the age of the oldest
row the relay still has to publish (storage.tables.outbox, rows keyed by `producer`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.tables import outbox
from storage.unit_of_work import now_utc


@dataclass(frozen=True)
class OutboxBacklog:
    """`unsent`: rows not published yet, parked ones included; `parked`: rows the broker can never take
    (ADR 8); `oldest_unsent_age_seconds`: age of the oldest unsent row that is not parked (0: none).
    Rows held behind a parked row of their key count in that age: they wait for an operator too."""

    unsent: int
    parked: int
    oldest_unsent_age_seconds: float


async def outbox_backlog(engine: AsyncEngine, producer: str, now: datetime | None = None) -> OutboxBacklog:
    """Measure the outbox of `producer` (the worker's name) in one read-only query."""
    parked = outbox.c.failed_at.is_not(None)
    query = (select(func.count(),
                    func.coalesce(func.sum(case((parked, 1), else_=0)), 0),
                    func.min(case((parked, None), else_=outbox.c.created_at), type_=outbox.c.created_at.type))
             .where(outbox.c.producer == producer, outbox.c.sent_at.is_(None)))
    async with engine.connect() as conn:
        row = (await conn.execute(query)).one()
    unsent, parked_rows, oldest = int(row[0]), int(row[1]), row[2]
    age = 0.0
    if oldest is not None:
        age = max(0.0, ((now or now_utc()) - oldest).total_seconds())
    return OutboxBacklog(unsent=unsent, parked=parked_rows, oldest_unsent_age_seconds=age)
