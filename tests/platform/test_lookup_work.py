"""The reads a worker makes every batch cost the same whatever the tables already hold (X5: processed
ids, the relay's unsent rows and its prune; C1, C2: the inbound lookups), and find what they should by
the whole key.

Work is counted, not timed, on SQLite: it calls a progress handler every 100 virtual-machine
instructions, so the number of calls is how much a statement walked. Each read runs once over small
tables and once over tables a hundred times larger, for the same keys; a read that probes its index
does about the same work both times, one that walks the table a hundred times more. (On PostgreSQL the
planner rightly scans tables this small; docs/benchmarks.md gives the plans on a million messages.)

Before, on SQLite the relay read its unsent rows through the (producer, failed_at) index, walking
every sent row kept for the hour (migration 0005); composite keys as `(a, b) IN (VALUES ...)` scanned
conversations and messages whole; contacts by address read all of an account's contacts. On both,
processed ids were looked up by id under the consumer alone, walking every id it processed in 35 days;
on PostgreSQL contacts by address probed every account of the batch with every address."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.inbound import InboundMessage
from storage.database import create_engine
from storage.migrate import upgrade_async
from storage.queries import any_of, keys
from storage.tables import contacts, conversations, messages, outbox, processed_messages
from storage.unit_of_work import UnitOfWork
from tests.support.services import fresh_database
from workers.delivery.relay import OutboxRelay, prune
from workers.inbound.repositories import Contacts, Conversations, Messages

pytestmark = pytest.mark.db


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'work.db'}"
    await upgrade_async(url)
    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()

SMALL, LARGE = 100, 10_000
KEYS = 50
NOW = datetime.now(UTC)


async def _work(uow: UnitOfWork, read: Callable[[], Awaitable[Any]]) -> int:
    """SQLite: how many progress-handler calls (every 100 VM instructions) `read` made on the unit's connection."""
    calls = 0

    def count() -> int:
        nonlocal calls
        calls += 1
        return 0

    raw = (await uow.conn.get_raw_connection()).driver_connection
    await raw.set_progress_handler(count, 100)
    try:
        await read()
    finally:
        await raw.set_progress_handler(None, 100)
    return calls


async def _fill(engine: AsyncEngine, start: int, count: int) -> None:
    """`count` more contacts, conversations, messages and sent outbox rows (numbered from `start`)."""
    rows = range(start, start + count)
    async with engine.begin() as conn:
        await conn.execute(insert(contacts), [
            {"id": f"k{i}", "account_id": "acc", "email": f"c{i}@example.com", "phone": f"+3161{i:07d}",
             "name": None, "created_at": NOW} for i in rows])
        await conn.execute(insert(conversations), [
            {"id": f"v{i}", "account_id": "acc", "contact_id": f"k{i}", "channel": "email", "thread_key": f"t{i}",
             "subject": None, "status": "open", "owner_id": None, "workspace": "inbox", "deleted": False,
             "version": 1, "created_at": NOW, "updated_at": NOW} for i in rows])
        await conn.execute(insert(messages), [
            {"id": f"m{i}", "conversation_id": f"v{i}", "account_id": "acc", "channel": "email", "direction": "inbound",
             "channel_message_id": f"cm{i}", "author_id": None, "text": "hi", "sent_at": NOW} for i in rows])
        await conn.execute(insert(outbox), [
            {"producer": "inbound", "topic": "t", "key": f"v{i}", "headers": [], "value": b"{}", "created_at": NOW,
             "sent_at": NOW, "failed_at": None, "failure": None} for i in rows])
        await conn.execute(insert(processed_messages), [
            {"consumer": "test.commands", "account_id": "acc", "message_id": f"cmd{i}", "processed_at": NOW} for i in rows])


def _inbound(i: int) -> InboundMessage:
    return InboundMessage.model_validate({
        "type": "inbound.message", "account_id": "acc", "channel": "email", "channel_thread_key": f"t{i}",
        "channel_message_id": f"cm{i}", "sender_email": f"c{i}@example.com", "text": "hi",
        "sent_at": NOW.isoformat()})


async def _reads(engine: AsyncEngine) -> dict[str, int]:
    """The work of each read, for KEYS keys that exist (and, for the relay, KEYS unsent rows)."""
    found = [_inbound(i) for i in range(KEYS)]
    relay = OutboxRelay(engine, producer=None, owner="inbound")  # type: ignore[arg-type]
    work: dict[str, int] = {}
    async with UnitOfWork(engine, "test.commands", "inbound") as uow:
        work["conversations by thread"] = await _work(uow, lambda: Conversations(uow).load_threads(
            {(m.account_id, m.channel.value, m.channel_thread_key) for m in found}))
        work["messages by channel id"] = await _work(uow, lambda: Messages(uow).load(found))
        work["contacts by address"] = await _work(uow, lambda: Contacts(uow).load_addresses(
            {("acc", f"c{i}@example.com") for i in range(KEYS)}))
        work["processed ids"] = await _work(uow, lambda: uow.remember_processed(
            {("acc", f"cmd{i}") for i in range(KEYS)}))
        work["unsent outbox rows"] = await _work(uow, lambda: uow.conn.execute(relay._unsent_rows))
        work["prune"] = await _work(uow, lambda: prune(uow.conn, "test"))  # nothing is old enough yet
    return work


async def test_x5_c1_c2_sqlite_reads_cost_the_same_over_a_hundred_times_more_rows(sqlite: AsyncEngine) -> None:
    engine = sqlite
    await _fill(engine, 0, SMALL)
    async with engine.begin() as conn:  # the relay has KEYS rows to send
        await conn.execute(insert(outbox), [
            {"producer": "inbound", "topic": "t", "key": f"u{i}", "headers": [["ce_id", f"e{i}"]], "value": b"{}",
             "created_at": NOW, "sent_at": None, "failed_at": None, "failure": None} for i in range(KEYS)])
    small = await _reads(engine)
    await _fill(engine, SMALL, LARGE - SMALL)
    large = await _reads(engine)

    grew = {read: round(large[read] / max(small[read], 1), 1) for read in small}
    assert all(factor < 3 for factor in grew.values()), \
        f"work over {LARGE} rows / over {SMALL} rows, per read: {grew} ({json.dumps({'small': small, 'large': large})})"


async def test_c1_contacts_by_address_finds_each_pair_not_every_combination(engine: AsyncEngine) -> None:
    """The lookup is by (account, address) pairs: an address of one account is not found for another."""
    await _fill(engine, 0, 3)
    async with engine.begin() as conn:
        await conn.execute(insert(contacts), [{"id": "other", "account_id": "acc2", "email": "x@example.com",
                                              "phone": None, "name": None, "created_at": NOW}])
    async with UnitOfWork(engine, "test", "inbound") as uow:
        found = Contacts(uow)
        await found.load_addresses({("acc", "x@example.com"), ("acc2", "c1@example.com"), ("acc", "+31610000002")})
        assert await found.with_address("acc", "x@example.com", None) == []
        assert await found.with_address("acc2", "c1@example.com", None) == []
        assert [c.id for c in await found.with_address("acc", None, "+31610000002")] == ["k2"]
        assert [c.id for c in await found.with_address("acc2", "x@example.com", None)] == ["other"]


async def test_x5_a_processed_id_is_found_for_its_account_and_from_before_ids_were_per_account(
        engine: AsyncEngine) -> None:
    """Looked up by the whole key: the same id of another account is not a replay; a row written before
    ids were per account (account '', migration 0003) still makes a replay of it a no-op."""
    async with engine.begin() as conn:
        await conn.execute(insert(processed_messages), [
            {"consumer": "test", "account_id": "acc", "message_id": "cmd-1", "processed_at": NOW},
            {"consumer": "test", "account_id": "", "message_id": "cmd-old", "processed_at": NOW},
            {"consumer": "other", "account_id": "acc", "message_id": "cmd-2", "processed_at": NOW}])
    async with UnitOfWork(engine, "test", "inbound") as uow:
        await uow.remember_processed({("acc", "cmd-1"), ("acc2", "cmd-1"), ("acc", "cmd-old"), ("acc", "cmd-2")})
        assert await uow.already_processed("acc", "cmd-1")
        assert not await uow.already_processed("acc2", "cmd-1")
        assert await uow.already_processed("acc", "cmd-old")
        assert await uow.already_processed("acc9", "cmd-old")
        assert not await uow.already_processed("acc", "cmd-2")



def _rows_visited(plan: dict[str, Any]) -> int:
    """Rows every scan of the outbox in the plan visited, over all its loops: returned plus filtered out."""
    visited = 0
    if plan.get("Relation Name") == "outbox":
        visited += (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * plan.get("Actual Loops", 1)
    return visited + sum(_rows_visited(child) for child in plan.get("Plans", ()))


async def test_x3_postgresql_relay_reads_a_round_not_the_whole_backlog(postgres: str) -> None:
    """Before, the unsent rows were read through (producer, sent_at, id). `sent_at IS NULL` is no
    equality, so PostgreSQL could not take that index's order for id order: it read the worker's whole
    backlog and sorted it, every round. A relay that fell behind slowed down the further it fell: 2.4 s a
    round at the end of a 20,000-message drain. Now a partial index of unsent rows on (producer, id) gives
    id order (migration 0007). Three workers' rows interleave in the outbox, as they are written."""
    round_size, backlog, workers = 500, 10_000, ("inbound", "ticketing", "sync")
    async with fresh_database(postgres) as url:
        await upgrade_async(url)
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(insert(outbox), [
                    {"producer": workers[i % 3], "topic": "t", "key": f"k{i}", "headers": [], "value": b"{}",
                     "created_at": NOW, "sent_at": None, "failed_at": None, "failure": None}
                    for i in range(3 * backlog)])
            relay = OutboxRelay(engine, producer=None, owner="inbound", batch=round_size)  # type: ignore[arg-type]
            sql = str(relay._unsent_rows.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
            walked = {}
            for stats in ("before ANALYZE", "after ANALYZE"):
                async with engine.connect() as conn:
                    if stats == "after ANALYZE":
                        await conn.exec_driver_sql("ANALYZE outbox")
                    plan = (await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar_one()
                    plan = json.loads(plan) if isinstance(plan, str) else plan
                    rows = (await conn.execute(relay._unsent_rows)).all()
                    assert [r.key for r in rows] == [f"k{3 * i}" for i in range(round_size)]
                walked[stats] = _rows_visited(plan[0]["Plan"])
            # a round's rows, and the other workers' rows between them at most: not the backlog
            assert all(n <= len(workers) * round_size + 10 for n in walked.values()), \
                f"rows read for a round of {round_size} of a backlog of {backlog}: {walked}"
        finally:
            await engine.dispose()


@asynccontextmanager
async def _ticketing_relay(postgres: str, round_size: int) -> AsyncIterator[tuple[AsyncEngine, OutboxRelay]]:
    """The ticketing worker's relay, on a database of its own at the head migration."""
    async with fresh_database(postgres) as url:
        await upgrade_async(url)
        engine = create_engine(url)
        try:
            yield engine, OutboxRelay(engine, producer=None, owner="ticketing", batch=round_size)  # type: ignore[arg-type]
        finally:
            await engine.dispose()


async def test_x3_postgresql_relay_read_planned_on_an_empty_outbox_stays_linear(postgres: str) -> None:
    """The outbox is a queue: empty whenever the relay keeps up. Vacuumed empty, PostgreSQL takes it for
    empty (reltuples 0), and a plan made then stays cached on the relay's long-lived connection while a
    backlog builds. The read's check for rows held behind a parked row of their key became a nested
    loop that scanned the whole outbox once per unsent row: a relay round of a 7,500-row backlog took
    21 s, and ticket-pg drains ran at 300-800 msg/s instead of about 1,900. Now the parked rows are
    gathered once per read (a materialized CTE), and a plan made on an empty outbox visits each row a
    bounded number of times."""
    round_size, backlog = 500, 3_000
    async with _ticketing_relay(postgres, round_size) as (engine, relay):
        sql = str(relay._unsent_rows.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM outbox")  # empty: reltuples 0, as autovacuum leaves it
            await conn.exec_driver_sql(f"PREPARE relay_read AS {sql}")
            for _ in range(6):  # planned while empty, and cached
                assert (await conn.exec_driver_sql("EXECUTE relay_read")).all() == []
            await conn.execute(insert(outbox), [
                {"producer": "ticketing", "topic": "t", "key": f"k{i}", "headers": [], "value": b"{}",
                 "created_at": NOW, "sent_at": None, "failed_at": None, "failure": None}
                for i in range(backlog)])
            plan = (await conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE relay_read")).scalar_one()
            plan = json.loads(plan) if isinstance(plan, str) else plan
            rows = (await conn.exec_driver_sql("EXECUTE relay_read")).all()
        assert [r.key for r in rows] == [f"k{i}" for i in range(round_size)]
        visited = _rows_visited(plan[0]["Plan"])
        assert visited <= 3 * backlog, f"rows visited for a round of {round_size} of a backlog of {backlog}: {visited}"


async def test_x3_postgresql_relay_delete_planned_on_an_empty_outbox_probes_only_its_ids(postgres: str) -> None:
    """The sibling of the read above: the relay deletes each round's published rows by id on the same
    long-lived connection. Planned while the outbox was empty (vacuumed: reltuples 0) and cached, the
    delete was a sequential scan that tested every row of the outbox against the round's ids (`= ANY`
    over a parameter is not hashed): 30,000 rows for 500 ids, 85 ms, and a drain's rounds grew with
    its backlog. Plans made per call (`plan_cache_mode = force_custom_plan`) still scanned: 1,800 rows
    estimated from the vacuumed statistics, a sequential scan looked cheaper than 500 probes. Every
    statement of a round has an index made for it, so the relay's connection plans without sequential
    scans, and the delete probes the primary key whatever the statistics say."""
    round_size, backlog = 500, 30_000
    async with _ticketing_relay(postgres, round_size) as (engine, relay):
        conn = await relay._locked_connection()  # the relay's own connection, as a round uses it
        assert conn is not None
        done = relay._sent_rows(postgres=True)
        sql = str(done.compile(dialect=engine.dialect))  # DELETE ... WHERE id = ANY ($1::BIGINT[])
        await conn.exec_driver_sql("VACUUM outbox")  # empty: reltuples 0, as autovacuum leaves it
        await conn.exec_driver_sql(f"PREPARE relay_delete(bigint[]) AS {sql}")
        for _ in range(6):  # planned while empty, and cached
            await conn.exec_driver_sql("EXECUTE relay_delete('{}')")
        await conn.execute(insert(outbox), [
            {"producer": "ticketing", "topic": "t", "key": f"k{i}", "headers": [], "value": b"{}",
             "created_at": NOW, "sent_at": None, "failed_at": None, "failure": None}
            for i in range(backlog)])
        first = (await conn.exec_driver_sql(f"SELECT id FROM outbox ORDER BY id LIMIT {round_size}")).scalars().all()
        ids = "{" + ",".join(map(str, first)) + "}"
        plan = (await conn.exec_driver_sql(
            f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE relay_delete('{ids}')")).scalar_one()
        plan = json.loads(plan) if isinstance(plan, str) else plan
        left = (await conn.exec_driver_sql("SELECT count(*) FROM outbox")).scalar_one()
        await relay._release()
    assert left == backlog - round_size
    visited = _rows_visited(plan[0]["Plan"])
    assert visited <= 2 * round_size, f"rows visited to delete {round_size} of {backlog}: {visited}"


async def test_x5_sqlite_a_lookup_by_any_number_of_keys_is_one_statement(sqlite: AsyncEngine) -> None:
    """On SQLite a lookup by single keys was an expanding `IN (?, ?, ...)`: a new statement text for every
    number of keys, each prepared again and kept in every connection's statement cache (up to 128
    each; a relay round deletes up to 2,000 ids). The keys now travel as one JSON array read with
    `json_each`, as composite keys already did: one statement text, prepared once per connection."""
    texts: set[str] = set()

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("SELECT"):
            texts.add(statement)

    await _fill(sqlite, 0, 20)
    event.listen(sqlite.sync_engine, "before_cursor_execute", seen)
    query = select(conversations.c.id).where(any_of(conversations.c.id, "ids", False))
    found = {}
    async with sqlite.connect() as conn:
        for count in (1, 3, 7, 20):
            found[count] = {r.id for r in (await conn.execute(query, keys("ids", [f"v{i}" for i in range(count)])))}
    assert found == {count: {f"v{i}" for i in range(count)} for count in (1, 3, 7, 20)}
    assert len(texts) == 1, texts
