"""Storage on both real backends (PostgreSQL and a SQLite file): Alembic migrations, and the building
blocks of exactly-once processing (X5) in `storage.unit_of_work.UnitOfWork`: a unique processed-message
id per consumer, an outbox written in the same transaction as the state, and UTC datetimes throughout."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from pydantic import BaseModel
from sqlalchemy import func, insert, inspect, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from contracts.envelope import Envelope
from storage.database import create_engine
from storage.migrate import HEAD, alembic_config, upgrade_async
from storage.tables import metadata, outbox, processed_messages
from storage.unit_of_work import UnitOfWork
from workers.delivery.outgoing import Outgoing

pytestmark = pytest.mark.db


REPO = Path(__file__).resolve().parents[2]


def _head(url: str) -> str:
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None
    return head


async def _schema(eng: AsyncEngine) -> dict[str, Any]:
    def read(sync_conn: Any) -> dict[str, Any]:
        insp = inspect(sync_conn)
        return {
            table: (sorted((c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)),
                    insp.get_pk_constraint(table)["constrained_columns"],
                    sorted(i["name"] for i in insp.get_indexes(table)))
            for table in sorted(insp.get_table_names())
        }

    async with eng.connect() as conn:
        return await conn.run_sync(read)


async def _version(eng: AsyncEngine) -> list[str]:
    async with eng.connect() as conn:
        return list((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars())


async def test_migrations_bring_an_empty_database_to_head_and_a_second_run_is_a_no_op(db_url: str) -> None:
    eng = create_engine(db_url)
    try:
        assert await _schema(eng) == {}

        await upgrade_async(db_url)
        schema = await _schema(eng)
        assert set(schema) == set(metadata.tables) | {"alembic_version"}
        assert await _version(eng) == [_head(db_url)]
        async with eng.begin() as conn:
            await conn.execute(insert(processed_messages).values(
                consumer="migrations-test", message_id="m-1", processed_at=datetime.now(UTC)))

        await upgrade_async(db_url)  # already at head: nothing changes, nothing is lost
        assert await _schema(eng) == schema
        assert await _version(eng) == [_head(db_url)]
        async with eng.connect() as conn:
            kept = (await conn.execute(select(processed_messages.c.message_id)
                                       .where(processed_messages.c.consumer == "migrations-test"))).scalars().all()
        assert kept == ["m-1"]
    finally:
        await eng.dispose()


async def test_x5_processed_message_id_is_unique_per_consumer(engine: AsyncEngine) -> None:
    async with UnitOfWork(engine, "inbound.messages", "inbound") as uow:
        assert not await uow.already_processed("acct-1", "msg-1")
        await uow.mark_processed("acct-1", "msg-1")

    with pytest.raises(IntegrityError):
        async with UnitOfWork(engine, "inbound.messages", "inbound") as uow:
            assert await uow.already_processed("acct-1", "msg-1")
            await uow.mark_processed("acct-1", "msg-1")  # a redelivery that skipped the check cannot record it twice

    # The id is unique per consumer: another consumer of the same message records it independently.
    async with UnitOfWork(engine, "ticketing.conversations", "ticketing") as uow:
        assert not await uow.already_processed("acct-1", "msg-1")
        await uow.mark_processed("acct-1", "msg-1")

    async with engine.connect() as conn:
        rows = (await conn.execute(select(processed_messages.c.consumer, processed_messages.c.message_id)
                                   .order_by(processed_messages.c.consumer))).all()
    assert [tuple(r) for r in rows] == [("inbound.messages", "msg-1"), ("ticketing.conversations", "msg-1")]


async def test_x1_x5_two_accounts_may_use_the_same_message_id(engine: AsyncEngine) -> None:
    """A command id is the sender's: account B's `cmd-42` is not account A's `cmd-42`."""
    async with UnitOfWork(engine, "ticketing.commands", "ticketing") as uow:
        await uow.mark_processed("acct-b", "cmd-42")
    async with UnitOfWork(engine, "ticketing.commands", "ticketing") as uow:
        assert not await uow.already_processed("acct-a", "cmd-42")
        await uow.mark_processed("acct-a", "cmd-42")
        assert await uow.already_processed("acct-b", "cmd-42")


async def test_x5_a_value_longer_than_its_column_is_refused_not_cut(engine: AsyncEngine, db_url: str) -> None:
    """The bulk writes (arrays on PostgreSQL) refuse a value too long for its column, as a plain INSERT does:
    an id cut to fit could be taken for another one's (X5). SQLite enforces no lengths: it keeps the whole
    value, which is never cut either."""
    too_long = "m" * 201  # processed_messages.message_id is String(200)
    if db_url.startswith("postgresql"):
        with pytest.raises(DBAPIError, match="too long"):
            async with UnitOfWork(engine, "inbound.messages", "inbound") as uow:
                await uow.mark_processed("acct-1", "short")
                await uow.mark_processed("acct-1", too_long)
        assert await _processed(engine, "inbound.messages") == 0
        return
    async with UnitOfWork(engine, "inbound.messages", "inbound") as uow:
        await uow.mark_processed("acct-1", too_long)
    async with engine.connect() as conn:
        stored = list(await conn.scalars(select(processed_messages.c.message_id)))
    assert stored == [too_long]


class Note(BaseModel):
    type: str = "note.added"
    note_id: str
    text: str


def _record(note: Note) -> Outgoing:
    return Outgoing(f"evt-{note.note_id}", "t.notes", "conv-1", note.model_dump_json().encode(),
                    tuple(_envelope(note).header_pairs()))


def _envelope(note: Note) -> Envelope:
    return Envelope(id=f"evt-{note.note_id}", type=note.type, source="/tests/platform",
                    time=datetime.now(UTC), subject=note.note_id, account_id="acct-1")


async def _outbox_rows(engine: AsyncEngine, producer: str) -> list[Any]:
    async with engine.connect() as conn:
        return (await conn.execute(select(outbox).where(outbox.c.producer == producer).order_by(outbox.c.id))).all()


async def _processed(engine: AsyncEngine, consumer: str) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(processed_messages)
                                 .where(processed_messages.c.consumer == consumer))


async def test_x5_outbox_rows_exist_only_when_the_transaction_commits(engine: AsyncEngine, db_url: str) -> None:
    class Boom(Exception):
        pass

    lost = Note(note_id="n-rolled-back", text="never published")
    with pytest.raises(Boom):
        async with UnitOfWork(engine, "notes.consumer", "notes") as uow:
            await uow.mark_processed("acct-1", "in-1")
            await uow.add_to_outbox(_record(lost))
            await uow.flush()  # written inside the transaction (writes are buffered until commit otherwise)
            assert len((await uow.conn.execute(select(outbox).where(outbox.c.producer == "notes"))).all()) == 1
            raise Boom("the state change failed after the outbox write")
    assert await _outbox_rows(engine, "notes") == []
    assert await _processed(engine, "notes.consumer") == 0  # nothing of the failed transaction remains

    reader = create_async_engine(db_url)
    try:
        kept = Note(note_id="n-committed", text="published once the transaction commits")
        async with UnitOfWork(engine, "notes.consumer", "notes") as uow:
            await uow.mark_processed("acct-1", "in-1")
            await uow.add_to_outbox(_record(kept))
            await uow.flush()
            # Not visible to another reader before the commit. (That reader uses a plain engine: the
            # project's SQLite engine opens every transaction with BEGIN IMMEDIATE, reads included, so
            # a reader on it would wait for this writer instead of reading.)
            assert await _outbox_rows(reader, "notes") == []

        assert len(await _outbox_rows(reader, "notes")) == 1
    finally:
        await reader.dispose()
    rows = await _outbox_rows(engine, "notes")
    assert len(rows) == 1
    row = rows[0]
    assert (row.topic, row.key, row.sent_at) == ("t.notes", "conv-1", None)
    assert Note.model_validate_json(row.value) == kept
    headers = dict(row.headers)
    assert headers["ce_id"] == "evt-n-committed" and headers["ce_type"] == "note.added"
    assert row.created_at.tzinfo == UTC
    assert await _processed(engine, "notes.consumer") == 1


async def test_utc_datetime_round_trips_timezone_aware_utc(engine: AsyncEngine) -> None:
    plus_0530 = timezone(timedelta(hours=5, minutes=30))
    written = {
        "utc": datetime(2024, 3, 31, 23, 59, 59, 123456, tzinfo=UTC),
        "offset": datetime(2024, 4, 1, 5, 29, 59, 654321, tzinfo=plus_0530),  # 2024-03-31T23:59:59.654321Z
        "negative": datetime(2023, 12, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5))),  # 2024-01-01T01:00Z
    }
    async with engine.begin() as conn:
        for name, when in written.items():
            await conn.execute(insert(processed_messages).values(consumer="tz", message_id=name, processed_at=when))

    async with engine.connect() as conn:
        read = {r.message_id: r.processed_at
                for r in (await conn.execute(select(processed_messages).where(processed_messages.c.consumer == "tz")))}
        # Ordering and comparison happen on the UTC instant in the database, too.
        ordered = (await conn.execute(select(processed_messages.c.message_id)
                                      .where(processed_messages.c.consumer == "tz")
                                      .order_by(processed_messages.c.processed_at))).scalars().all()
        later = (await conn.execute(select(processed_messages.c.message_id).where(
            processed_messages.c.consumer == "tz",
            processed_messages.c.processed_at > datetime(2024, 3, 31, 23, 59, 59, 500000, tzinfo=UTC),
        ))).scalars().all()

    for name, when in written.items():
        assert read[name] == when
        assert read[name].tzinfo == UTC
        assert read[name].utcoffset() == timedelta(0)
        assert read[name].isoformat() == when.astimezone(UTC).isoformat()
    assert ordered == ["negative", "utc", "offset"]
    assert later == ["offset"]

    with pytest.raises(StatementError, match="naive datetime"):
        async with engine.begin() as conn:
            await conn.execute(insert(processed_messages).values(
                consumer="tz", message_id="naive", processed_at=datetime(2024, 1, 1, 12, 0)))


def test_migrations_head_names_alembics_newest_revision(db_url: str) -> None:
    """`storage.migrate.HEAD`, which a starting worker compares with the database, is the newest migration."""
    assert _head(db_url) == HEAD


async def test_migrations_a_worker_on_a_database_at_head_never_loads_alembic(db_url: str) -> None:
    """A worker's start on a database already at head costs one query, not Alembic's modules (Alembic,
    Mako and Pygments stay out of the process: about 11 MB of every worker's memory)."""
    await upgrade_async(db_url)
    code = ("import asyncio, sys\n"
            "from storage.migrate import upgrade_async\n"
            "from ticketflow.running import WORKERS, build_worker\n"
            "from workers.settings import Settings\n"
            "for name in WORKERS: build_worker(name, Settings(database_url=sys.argv[1]))\n"
            "asyncio.run(upgrade_async(sys.argv[1]))\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako', 'pygments')))\n")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, db_url, cwd=REPO,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-1500:]
    assert out.decode().strip() == "[]"


async def test_x5_four_workers_migrating_an_empty_database_together_all_come_up(db_url: str) -> None:
    """Four processes starting together each run the migrations: they take turns (an advisory lock on
    PostgreSQL, the write lock on SQLite) and every one of them ends at head."""
    code = "import sys; from storage.migrate import upgrade; upgrade(sys.argv[1])"
    procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", code, db_url, cwd=REPO,
                                                  stderr=asyncio.subprocess.PIPE) for _ in range(4)]
    results = [(p.returncode, err.decode()[-1500:]) for p in procs for _out, err in [await p.communicate()]]
    assert [rc for rc, _err in results] == [0, 0, 0, 0], results
    eng = create_engine(db_url)
    try:
        assert await _version(eng) == [_head(db_url)]
    finally:
        await eng.dispose()
