"""One database transaction per consumed batch of messages (X5); a batch of one is a single message.

Inside it: the consumed message ids are recorded (unique per consumer and account), the state changes
are applied, and the messages to publish are written to the outbox. The Kafka offsets are committed
only after it commits; a redelivered message then finds its id recorded and changes nothing.

Writes are buffered and flushed at commit in bulk, in the order they were made: rows to insert by
table, then updates; on PostgreSQL each is one statement over one array per column (`unnest`), on
SQLite multi-row INSERTs and executemany updates. Reads that a batch makes in bulk up front
(`remember_processed`) and the buffers together let one transaction carry hundreds of messages with a
handful of round trips.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import Column, String, Table, bindparam, insert, select, text, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.types import JSON, TypeEngine

from storage.queries import any_pair, built, key_tuples
from storage.tables import outbox, processed_messages

U = TypeVar("U", bound="UnitOfWork")


def unit_ref(uow: U) -> U:
    """A weak reference to `uow` that reads as `uow`, for the repositories the unit holds. With a strong
    one, unit and repositories form a cycle, which reference counting never frees: every batch's unit,
    with all it loaded and buffered, stayed in memory until a full collection of the cyclic garbage
    collector (rare in a worker: `ticketflow.running.quiet_collector`), and a worker's memory grew with
    the length of a drain."""
    return cast(U, weakref.proxy(uow))


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
        """Write everything buffered, table by table: inserts first (multi-row), then updates (executemany).
        On PostgreSQL each is one statement over arrays (`unnest`), whatever the number of rows."""
        if self.postgres:
            await self._flush_arrays()
            return
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

    async def _flush_arrays(self) -> None:
        """PostgreSQL: every table's inserts as `INSERT ... SELECT ... FROM unnest(arrays) ORDER BY n` (rows
        keep their order: the outbox's ids follow it), its updates as `UPDATE ... FROM unnest(arrays)`:
        one statement and one parameter per column instead of one bound row per record."""
        for table, rows in self._inserts.items():
            for columns, run in _runs(rows):
                await self.conn.execute(*_insert_arrays(self._engine.dialect, table, columns, run))
        for table, by_key in self._updates.items():
            for columns, run in _runs(list(by_key.values())):
                key = run[0]["_key"]
                changed = [c for c in columns if c not in ("_key", key)]
                await self.conn.execute(*_update_arrays(self._engine.dialect, table, key, changed, run))
        self._inserts, self._updates = {}, {}

    # --- processed message ids (X5) -------------------------------------------------------------
    async def remember_processed(self, ids: Iterable[tuple[str, str]]) -> None:
        """Load, in one query, which of these (account, message id) this consumer already processed."""
        wanted = {i for i in ids if i not in self._checked}
        if not wanted:
            return
        # by the whole primary key, (account, id) and ('', id) for a row written before ids were per
        # account: by id alone, each lookup walked every id the consumer had processed in 35 days
        pairs = wanted | {("", m) for _a, m in wanted}
        pg = self.postgres
        columns = (processed_messages.c.account_id, processed_messages.c.message_id)
        query = built(("processed ids", pg), lambda: select(*columns).where(
            processed_messages.c.consumer == bindparam("consumer"), any_pair(columns, "ids", pg)))
        rows = (await self.conn.execute(query, {"consumer": self.consumer, **key_tuples("ids", pairs, 2, pg)})).all()
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
                             "headers": record.text_headers, "value": record.value,
                             "created_at": self.now, "sent_at": None, "failed_at": None, "failure": None})


def _runs(rows: list[dict[str, Any]]) -> list[tuple[tuple[str, ...], list[dict[str, Any]]]]:
    """`rows` cut into runs of consecutive rows with the same columns, in order."""
    out: list[tuple[tuple[str, ...], list[dict[str, Any]]]] = []
    for row in rows:
        columns = tuple(row)
        if out and out[-1][0] == columns:
            out[-1][1].append(row)
        else:
            out.append((columns, [row]))
    return out


_ARRAY_TYPES: dict[tuple[Table, str], tuple[str, Any, bool]] = {}


def _array_type(dialect: Dialect, table: Table, name: str) -> tuple[str, Any, bool]:
    """(SQL element type, bind processor, is JSON) of a column, for a parameter that is an array of its values
    (PostgreSQL: one dialect per process)."""
    key = (table, name)
    found = _ARRAY_TYPES.get(key)
    if found is None:
        column: Column[Any] = table.c[name]
        column_type: TypeEngine[Any] = column.type
        impl = column_type.dialect_impl(dialect)
        is_json = isinstance(impl, JSON) or isinstance(getattr(impl, "impl", None), JSON)
        # Text arrays, never varchar(n): an explicit cast cuts a longer string to fit, whereas assigning
        # text to a varchar(n) column refuses it (value too long), as a plain INSERT or UPDATE does.
        text_like = is_json or isinstance(impl, String) or isinstance(getattr(impl, "impl", None), String)
        sql_type = "TEXT" if text_like else column_type.compile(dialect=dialect)
        found = _ARRAY_TYPES[key] = (sql_type, impl.bind_processor(dialect), is_json)
    return found


def _same(value: Any, first: Any) -> bool:
    return value is first or (type(value) is type(first) and value == first)


def _unnest(dialect: Dialect, table: Table, names: list[str],
            rows: list[dict[str, Any]]) -> tuple[list[str], str, dict[str, Any]]:
    """The value of each column for a row of `unnest(CAST(:a0 AS t0[]), ...) WITH ORDINALITY AS u(a0, ..., n)`,
    that source, and its parameters. A column holding the same value in every row (a batch's consumer,
    producer, timestamp, NULLs), but the first, is passed once (`CAST(:s3 AS t3)`) instead of as an array."""
    params: dict[str, Any] = {}
    values, casts, aliases = [], [], []
    for i, name in enumerate(names):
        sql_type, process, is_json = _array_type(dialect, table, name)
        first = rows[0][name]
        if i > 0 and all(_same(row[name], first) for row in rows):
            params[f"s{i}"] = first if process is None else process(first)
            value = f"CAST(:s{i} AS {sql_type})"
        else:
            column = [row[name] for row in rows]
            params[f"a{i}"] = column if process is None else [process(v) for v in column]
            casts.append(f"CAST(:a{i} AS {sql_type}[])")
            aliases.append(f"a{i}")
            value = f"u.a{i}"
        values.append(f"CAST({value} AS JSON)" if is_json else value)
    return values, f"unnest({', '.join(casts)}) WITH ORDINALITY AS u({', '.join(aliases)}, n)", params


def _insert_arrays(dialect: Dialect, table: Table, columns: tuple[str, ...],
                   rows: list[dict[str, Any]]) -> tuple[Any, dict[str, Any]]:
    names = list(columns)
    quoted = dialect.identifier_preparer.quote
    values, source, params = _unnest(dialect, table, names, rows)
    sql = (f"INSERT INTO {quoted(table.name)} ({', '.join(quoted(n) for n in names)}) "
           f"SELECT {', '.join(values)} FROM {source} ORDER BY u.n")
    return built(("text", sql), lambda: text(sql)), params


def _update_arrays(dialect: Dialect, table: Table, key: str, columns: list[str],
                   rows: list[dict[str, Any]]) -> tuple[Any, dict[str, Any]]:
    quoted = dialect.identifier_preparer.quote
    values, source, params = _unnest(dialect, table, [key, *columns], rows)
    sets = ", ".join(f"{quoted(name)} = {value}" for name, value in zip(columns, values[1:], strict=True))
    sql = f"UPDATE {quoted(table.name)} SET {sets} FROM {source} WHERE {quoted(table.name)}.{quoted(key)} = u.a0"
    return built(("text", sql), lambda: text(sql)), params
