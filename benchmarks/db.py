"""The database side: a fresh database per scenario (PostgreSQL: CREATE DATABASE on the server of
DATABASE_URL, dropped afterwards; SQLite: a new file), the outbox check that ends a drain, and the
"1M stored" preparation (COPY straight into the inbound worker's tables).

Only SQL and the server's own catalogue are used (no import of the storage package's table objects),
so the benchmark keeps working while the schema evolves; a new NOT NULL column without a default in
a table the preparation fills is reported by name.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from benchmarks.data import WORDS

log = logging.getLogger("bench")


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class Database:
    kind: str  # postgresql | sqlite
    url: str
    name: str
    admin_url: str | None = None
    keep: bool = False
    _engine: AsyncEngine | None = None

    @classmethod
    async def fresh(cls, kind: str, name: str, admin_url: str, folder: Path) -> Database:
        """An empty database `name` (an older one of that name is dropped: only `bench*` names are accepted)."""
        if not name.startswith("bench"):
            raise ValueError(f"refusing to recreate database {name!r}: benchmark databases are named bench*")
        if kind == "sqlite":
            path = folder / f"{name}.db"
            path.parent.mkdir(parents=True, exist_ok=True)
            for old in path.parent.glob(f"{name}.*"):
                old.unlink()
            return cls("sqlite", f"sqlite+aiosqlite:///{path}", name)
        conn = await asyncpg.connect(_asyncpg_dsn(admin_url))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return cls("postgresql", make_url(admin_url).set(database=name).render_as_string(hide_password=False),
                   name, admin_url)

    @classmethod
    async def existing(cls, name: str, admin_url: str) -> tuple[Database, str | None]:
        """The PostgreSQL database `name` (created empty when missing) and its comment (the stored marker)."""
        conn = await asyncpg.connect(_asyncpg_dsn(admin_url))
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{name}"')
            comment = await conn.fetchval(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", name)
        finally:
            await conn.close()
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        return cls("postgresql", url, name, admin_url, keep=True), comment

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            args = {"timeout": 30} if self.kind == "sqlite" else {}
            self._engine = create_async_engine(self.url, poolclass=NullPool, connect_args=args)
        return self._engine

    async def scalar(self, sql: str) -> Any:
        async with self.engine.connect() as conn:
            return await conn.scalar(text(sql))

    async def outbox_unsent(self) -> int | None:
        """Outbox rows not yet published (parked ones included: they are not published either); None
        when the table is not there in this shape (then only the topics tell when the drain is done)."""
        try:
            return int(await self.scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
        except Exception:
            return None

    async def counts(self, tables: tuple[str, ...]) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for table in tables:
            try:
                out[table] = int(await self.scalar(f"SELECT count(*) FROM {table}"))
            except Exception:
                out[table] = None
        return out

    async def wal_position(self) -> int | None:
        """PostgreSQL: the server's WAL insert position in bytes (None on SQLite, or when it cannot be
        read). Two readings give what a window wrote to the WAL, every database of the server included:
        a drain is the only writer then."""
        if self.kind == "sqlite":
            return None
        try:
            return int(await self.scalar("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint"))
        except Exception:
            return None

    async def size_mb(self) -> float | None:
        if self.kind == "sqlite":
            path = Path(make_url(self.url).database or "")
            return round(sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20, 1)
        try:
            return round(float(await self.scalar("SELECT pg_database_size(current_database())")) / 2**20, 1)
        except Exception:
            return None

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def drop(self) -> None:
        await self.close()
        if self.keep:
            return
        if self.kind == "sqlite":
            path = Path(make_url(self.url).database or "")
            for p in path.parent.glob(path.stem + ".*"):
                p.unlink(missing_ok=True)
            return
        assert self.admin_url is not None
        conn = await asyncpg.connect(_asyncpg_dsn(self.admin_url))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await conn.close()


async def server_version(admin_url: str) -> str:
    try:
        conn = await asyncpg.connect(_asyncpg_dsn(admin_url))
    except Exception as exc:
        return f"unreachable: {exc.__class__.__name__}"
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


# ------------------------------------------------------------------ 1M stored

STORED_ACCOUNTS = 50
STORED_MARKER = "ticketflow bench stored: messages={rows} ready"


def stored_account_ids() -> list[str]:
    return [f"bench-stored-a{i:03d}" for i in range(STORED_ACCOUNTS)]


def _texts(rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        target = int(min(1500, max(150, rng.lognormvariate(5.8, 0.7))))
        words: list[str] = []
        while sum(len(w) + 1 for w in words) < target:
            words.append(rng.choice(WORDS))
        out.append(" ".join(words)[:target].capitalize() + ".")
    return out


async def _columns(conn: asyncpg.Connection, table: str) -> list[tuple[str, bool]]:
    """(column, required) in table order: required = NOT NULL without a default."""
    rows = await conn.fetch(
        "SELECT column_name, is_nullable, column_default FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position", table)
    return [(r["column_name"], r["is_nullable"] == "NO" and r["column_default"] is None) for r in rows]


async def _copy(conn: asyncpg.Connection, table: str, rows: Iterator[dict[str, Any]], total: int,
                progress: Callable[[str], None]) -> None:
    columns = await _columns(conn, table)
    if not columns:
        progress(f"  {table}: no such table, skipped")
        return
    first = next(rows)
    names = [c for c, _req in columns if c in first]
    missing = [c for c, req in columns if req and c not in first]
    if missing:
        raise RuntimeError(f"stored-1m: table {table} has required columns the benchmark does not fill: "
                           f"{', '.join(missing)} (update benchmarks/db.py)")
    started = time.monotonic()
    batch: list[tuple[Any, ...]] = [tuple(first[c] for c in names)]
    done = 0
    for row in rows:
        batch.append(tuple(row[c] for c in names))
        if len(batch) >= 50_000:
            await conn.copy_records_to_table(table, records=batch, columns=names)
            done += len(batch)
            batch = []
            if done % 200_000 == 0:
                progress(f"  {table}: {done:,}/{total:,} rows, {time.monotonic() - started:.0f}s")
    if batch:
        await conn.copy_records_to_table(table, records=batch, columns=names)
        done += len(batch)
    progress(f"  {table}: {done:,} rows in {time.monotonic() - started:.1f}s")


async def fill_stored(db: Database, messages: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """COPY `messages` messages (a third as many conversations, a fifth as many contacts, and as many
    processed command ids as incoming messages) into the migrated, empty database `db`."""
    rng = random.Random(42)
    accounts = stored_account_ids()
    n_conv = max(1, messages // 3)
    n_contacts = max(1, messages // 5)
    texts = _texts(rng, 2000)
    now = datetime.now(UTC)
    epoch = now - timedelta(days=30)
    span = 30 * 86400.0
    channels = ["email"] * 6 + ["chat"] * 3 + ["whatsapp"]

    def contact_account(c: int) -> str:
        return accounts[c % len(accounts)]

    def conv_contact(k: int) -> int:
        return (k * 7919) % n_contacts

    def conv_channel(k: int) -> str:
        return channels[k % len(channels)]

    def thread_key(k: int) -> str:
        return f"<s{k}.stored@mail.example.com>" if conv_channel(k) == "email" else f"{conv_channel(k)}-s{k}"

    def contacts_rows() -> Iterator[dict[str, Any]]:
        for c in range(n_contacts):
            yield {"id": f"00000000-0000-4000-8000-{c:012d}", "account_id": contact_account(c),
                   "email": f"stored{c}@example.com", "phone": f"+1666{c:07d}", "name": f"Stored customer {c}",
                   "created_at": epoch + timedelta(seconds=span * c / n_contacts)}

    def conversations_rows() -> Iterator[dict[str, Any]]:
        for k in range(n_conv):
            created = epoch + timedelta(seconds=span * k / n_conv)
            c = conv_contact(k)
            yield {"id": f"00000000-0000-4000-9000-{k:012d}", "account_id": contact_account(c),
                   "contact_id": f"00000000-0000-4000-8000-{c:012d}", "channel": conv_channel(k),
                   "thread_key": thread_key(k), "subject": texts[k % len(texts)][:60],
                   "status": "closed" if k % 4 == 0 else "open", "owner_id": f"agent-{k % 20}" if k % 3 else None,
                   "workspace": "inbox", "deleted": False, "version": 4, "created_at": created,
                   "updated_at": created + timedelta(hours=2)}

    def message_parts(m: int) -> tuple[int, str, str, bool, datetime]:
        k = m % n_conv
        incoming = (m // n_conv) % 3 != 1  # the second message of each conversation is an agent's reply
        sent = epoch + timedelta(seconds=span * k / n_conv + 600 * (m // n_conv))
        return k, contact_account(conv_contact(k)), f"<sm{m}.stored@mail.example.com>", incoming, sent

    def messages_rows() -> Iterator[dict[str, Any]]:
        for m in range(messages):
            k, account, cmid, incoming, sent = message_parts(m)
            yield {"id": f"00000000-0000-4000-a000-{m:012d}", "conversation_id": f"00000000-0000-4000-9000-{k:012d}",
                   "account_id": account, "channel": conv_channel(k), "direction": "incoming" if incoming else "outgoing",
                   "channel_message_id": cmid if incoming else None, "author_id": None if incoming else f"agent-{k % 20}",
                   "text": texts[m % len(texts)], "sent_at": sent}

    def processed_rows() -> Iterator[dict[str, Any]]:
        for m in range(messages):
            k, account, cmid, incoming, sent = message_parts(m)
            if incoming:  # an inbound message leaves no processed id (ADR 2); the agents' commands do
                yield {"consumer": "inbound.commands", "account_id": account,
                       "message_id": f"cmd-{account}-{cmid}"[:200], "processed_at": sent}

    conn = await asyncpg.connect(_asyncpg_dsn(db.url))
    try:
        await conn.execute("SET synchronous_commit = off")
        for table, rows, total in (("contacts", contacts_rows(), n_contacts),
                                   ("conversations", conversations_rows(), n_conv),
                                   ("messages", messages_rows(), messages),
                                   ("processed_messages", processed_rows(), messages * 2 // 3)):
            await _copy(conn, table, rows, total, progress)
        started = time.monotonic()
        await conn.execute("ANALYZE")
        progress(f"  ANALYZE in {time.monotonic() - started:.1f}s")
        await conn.execute(f"COMMENT ON DATABASE \"{db.name}\" IS '{STORED_MARKER.format(rows=messages)}'")
    finally:
        await conn.close()
    return {"messages": messages, "conversations": n_conv, "contacts": n_contacts}
