"""One database transaction per consumed message (X5).

Inside it: the consumed message id is recorded (unique per consumer), the state change is applied,
and the messages to publish are written to the outbox. The Kafka offset is committed only after it
commits; a redelivered message then finds its id recorded and changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.envelope import Envelope
from storage.tables import outbox, processed_messages
from workers.delivery.checkpoints import reached


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


class UnitOfWork:
    """`async with UnitOfWork(engine, consumer) as uow:` commits on success, rolls back on error."""

    def __init__(self, engine: AsyncEngine, consumer: str, producer: str) -> None:
        self._engine = engine
        self.consumer = consumer
        self.producer = producer
        self._conn: AsyncConnection | None = None

    @property
    def conn(self) -> AsyncConnection:
        assert self._conn is not None, "use UnitOfWork as an async context manager"
        return self._conn

    async def __aenter__(self) -> "UnitOfWork":
        self._conn = await self._engine.connect()
        await self._conn.begin()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self._conn is not None
        try:
            if exc_type is None:
                reached("before_db_commit", self.consumer)
                await self._conn.commit()
            else:
                await self._conn.rollback()
        finally:
            await self._conn.close()
            self._conn = None

    async def already_processed(self, account_id: str, message_id: str) -> bool:
        """Whether this consumer already processed `message_id` for `account_id` (X5).

        Ids are the sender's, unique within an account only. Rows written before ids were per account
        (migration 0003) carry account '' and still count, so an old replay stays a no-op."""
        row = await self.conn.execute(
            select(processed_messages.c.message_id).where(
                processed_messages.c.consumer == self.consumer,
                processed_messages.c.account_id.in_((account_id, "")),
                processed_messages.c.message_id == message_id,
            )
        )
        return row.first() is not None

    async def mark_processed(self, account_id: str, message_id: str) -> None:
        await self.conn.execute(insert(processed_messages).values(
            consumer=self.consumer, account_id=account_id, message_id=message_id, processed_at=now_utc()))

    async def publish(self, topic: str, key: str, body: BaseModel, envelope: Envelope) -> None:
        """Queue `body` for the relay; it reaches Kafka only if this transaction commits."""
        await self.conn.execute(
            insert(outbox).values(
                producer=self.producer, topic=topic, key=key,
                headers=[[k, v.decode()] for k, v in envelope.to_headers()],
                value=body.model_dump_json().encode(), created_at=now_utc(), sent_at=None,
            )
        )
