"""One database transaction per consumed message (X5).

Inside it: the consumed message id is recorded (unique per consumer and account), the state change
is applied, and the messages to publish are written to the outbox. The Kafka offset is committed
only after it commits; a redelivered message then finds its id recorded and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.tables import outbox, processed_messages


def now_utc() -> datetime:
    return datetime.now(UTC)


class OutboxRecord(Protocol):
    """What an outbox row holds: a record ready for Kafka (topic already prefixed)."""

    @property
    def topic(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def value(self) -> bytes: ...
    @property
    def headers(self) -> list[tuple[str, bytes]]: ...


class UnitOfWork:
    """`async with UnitOfWork(engine, consumer, producer) as uow:` commits on success, rolls back on error.

    `before_commit` and `after_commit` are called around a successful commit (a checkpoint for fault
    tests; waking the outbox relay)."""

    def __init__(self, engine: AsyncEngine, consumer: str, producer: str,
                 before_commit: Callable[[], None] | None = None, after_commit: Callable[[], None] | None = None) -> None:
        self._engine = engine
        self.consumer = consumer
        self.producer = producer
        self._before_commit = before_commit
        self._after_commit = after_commit
        self._conn: AsyncConnection | None = None
        self._wrote_outbox = False

    @property
    def conn(self) -> AsyncConnection:
        assert self._conn is not None, "use UnitOfWork as an async context manager"
        return self._conn

    async def __aenter__(self) -> UnitOfWork:
        self._conn = await self._engine.connect()
        await self._conn.begin()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._conn is not None
        try:
            if exc_type is None:
                if self._before_commit is not None:
                    self._before_commit()
                await self._conn.commit()
            else:
                await self._conn.rollback()
        finally:
            await self._conn.close()
            self._conn = None
        if exc_type is None and self._wrote_outbox and self._after_commit is not None:
            self._after_commit()

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

    async def add_to_outbox(self, record: OutboxRecord) -> None:
        """Queue `record` for the relay; it reaches Kafka only if this transaction commits."""
        await self.conn.execute(insert(outbox).values(
            producer=self.producer, topic=record.topic, key=record.key,
            headers=[[k, v.decode()] for k, v in record.headers], value=record.value,
            created_at=now_utc(), sent_at=None))
        self._wrote_outbox = True
