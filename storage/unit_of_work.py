"""One database transaction per consumed batch of messages (X5); a batch of one is a single message.

Inside it: the consumed message ids are recorded (unique per consumer and account), the state changes
are applied, and the messages to publish are written to the outbox. The Kafka offsets are committed
only after it commits; a redelivered message then finds its id recorded and changes nothing.

Writes are buffered and flushed at commit in bulk, in the order they were made: rows to insert by
table (multi-row INSERT), then updates (executemany). Reads that a batch makes in bulk up front
(`remember_processed`) and the buffers together let one transaction carry hundreds of messages with a
handful of round trips.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol

from sqlalchemy import Table, bindparam, insert, select, tuple_, update
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
    def text_headers(self) -> tuple[tuple[str, str], ...]: ...


class UnitOfWork:
    """`async with UnitOfWork(engine, consumer, producer) as uow:` flushes and commits on success,
    rolls back on error.

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
        self._inserts: dict[Table, list[dict[str, Any]]] = {}
        self._updates: dict[Table, dict[str, dict[str, Any]]] = {}
        self._processed: set[tuple[str, str]] = set()
        self._known_processed: set[tuple[str, str]] = set()
        self._checked: set[tuple[str, str]] = set()
        self.now = now_utc()
        """One timestamp for the unit's bookkeeping rows (processed ids, outbox rows)."""
        self.writes = 0
        """How many writes this unit has buffered: the delivery core checks a failing message wrote none."""

    @property
    def conn(self) -> AsyncConnection:
        assert self._conn is not None, "use UnitOfWork as an async context manager"
        return self._conn

    @property
    def postgres(self) -> bool:
        return self._engine.dialect.name == "postgresql"

    async def __aenter__(self) -> UnitOfWork:
        self._conn = await self._engine.connect()
        await self._conn.begin()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._conn is not None
        wrote_outbox = bool(self._inserts.get(outbox))
        try:
            if exc_type is None:
                await self.flush()
                if self._before_commit is not None:
                    self._before_commit()
                await self._conn.commit()
            else:
                await self._conn.rollback()
        finally:
            await self._conn.close()
            self._conn = None
        if exc_type is None and wrote_outbox and self._after_commit is not None:
            self._after_commit()

    # --- buffered writes ------------------------------------------------------------------------
    def insert(self, table: Table, row: Mapping[str, Any]) -> None:
        """Insert `row` into `table` at flush time (rows of one table keep their order)."""
        self._inserts.setdefault(table, []).append(dict(row))
        self.writes += 1

    def update(self, table: Table, key: str, row: Mapping[str, Any]) -> None:
        """Set `row` (which holds the primary key `key`) at flush time; a later update of the same row wins."""
        self._updates.setdefault(table, {})[str(row[key])] = {"_key": key, **row}
        self.writes += 1

    async def flush(self) -> None:
        """Write everything buffered, table by table: inserts first (multi-row), then updates (executemany)."""
        for table, rows in self._inserts.items():
            if rows:
                await self.conn.execute(insert(table), rows)
        for table, by_key in self._updates.items():
            if not by_key:
                continue
            rows = list(by_key.values())
            key = rows[0]["_key"]
            columns = [c for c in rows[0] if c not in ("_key", key)]
            statement = (update(table).where(table.c[key] == bindparam("b_key"))
                         .values({c: bindparam(f"b_{c}") for c in columns}))
            await self.conn.execute(statement, [{"b_key": r[key], **{f"b_{c}": r[c] for c in columns}} for r in rows])
        self._inserts, self._updates = {}, {}

    # --- processed message ids (X5) -------------------------------------------------------------
    async def remember_processed(self, ids: Iterable[tuple[str, str]]) -> None:
        """Load, in one query, which of these (account, message id) this consumer already processed."""
        wanted = {i for i in ids if i not in self._checked}
        if not wanted:
            return
        message_ids = sorted({m for _a, m in wanted})
        rows = (await self.conn.execute(
            select(processed_messages.c.account_id, processed_messages.c.message_id).where(
                processed_messages.c.consumer == self.consumer,
                processed_messages.c.message_id.in_(message_ids)))).all()
        seen = {(r.account_id, r.message_id) for r in rows}
        legacy = {m for a, m in seen if a == ""}
        self._known_processed |= {(a, m) for a, m in wanted if (a, m) in seen or m in legacy}
        self._checked |= wanted

    async def already_processed(self, account_id: str, message_id: str) -> bool:
        """Whether this consumer already processed `message_id` for `account_id` (X5).

        Ids are the sender's, unique within an account only. Rows written before ids were per account
        (migration 0003) carry account '' and still count, so an old replay stays a no-op."""
        key = (account_id, message_id)
        if key in self._processed:
            return True
        if key not in self._checked:
            await self.remember_processed([key])
        return key in self._known_processed

    async def mark_processed(self, account_id: str, message_id: str) -> None:
        self._processed.add((account_id, message_id))
        self.insert(processed_messages, {"consumer": self.consumer, "account_id": account_id,
                                         "message_id": message_id, "processed_at": self.now})

    async def add_to_outbox(self, record: OutboxRecord) -> None:
        """Queue `record` for the relay; it reaches Kafka only if this transaction commits."""
        self.insert(outbox, {"producer": self.producer, "topic": record.topic, "key": record.key,
                             "headers": [list(pair) for pair in record.text_headers], "value": record.value,
                             "created_at": self.now, "sent_at": None, "failed_at": None, "failure": None})


def in_pairs(columns: tuple[Any, ...], pairs: Iterable[tuple[Any, ...]]) -> Any:
    """`(a, b, ...) IN ((x, y, ...), ...)` for composite keys, in the order of an index on them
    (PostgreSQL and SQLite both take row values)."""
    return tuple_(*columns).in_(sorted(pairs))
