"""Faults end to end (X5): a real PostgreSQL shut down and killed under load, workers started before
the broker and the database exist, and a projection far behind when a command arrives. Nothing is
lost, nothing is dead-lettered that was valid, and "not found" is said only once the projection has
read everything published before the command."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from contracts import commands as c
from contracts.topics import CONVERSATION_EVENTS, DEADLETTER, INBOUND_MESSAGES
from storage.database import create_engine
from storage.migrate import upgrade_async
from storage.tables import messages
from tests.support.processes import caught_up, isolated, stop, worker_process
from tests.support.services_private import PrivateKafka, PrivatePostgres
from tests.support.system import System, new_id
from workers.kafka import make_producer


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    """A run folder for a PostgreSQL of the test's own that the 'postgres' user can always reach: not
    under pytest's tmp_path, whose root another pytest session on the machine may reset to 0700."""
    path = Path(tempfile.mkdtemp(prefix="ticketflow-test-pg-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def _trickle(iso: System, account: str, count: int, every: float) -> list[str]:
    """Publish `count` inbound messages, one each `every` seconds, on one producer; their channel ids."""
    producer = make_producer(iso.settings.bootstrap_servers, "trickle")
    await producer.start()
    ids = []
    try:
        for _ in range(count):
            msg = iso.inbound(account)
            await producer.send_and_wait(iso.settings.topic(INBOUND_MESSAGES), key=msg.partition_key().encode(),
                                         value=msg.model_dump_json().encode())
            ids.append(msg.channel_message_id)
            await asyncio.sleep(every)
    finally:
        await producer.stop()
    return ids


async def test_x5_postgresql_shut_down_and_killed_under_load_loses_nothing_and_dead_letters_nothing(system, pg_dir):
    pg = PrivatePostgres(pg_dir)
    await pg.start()
    settings, iso = await isolated(system)
    settings = settings.model_copy(update={"database_url": pg.url})
    iso.settings = settings
    session_engine, iso.engine = iso.engine, create_engine(pg.url)  # caught_up: this worker's outbox empty too
    worker = worker_process(settings, "inbound")
    try:
        account = await iso.account()
        await iso.new_conversation(account)  # up, and knows the account
        sending = asyncio.create_task(_trickle(iso, account, 400, 0.02))
        for round_ in range(4):  # fast shutdowns, a crash, and a server that refuses while starting up
            await asyncio.sleep(1.0)
            if round_ == 2:
                await pg.kill()
            else:
                await pg.stop_fast()
            if round_ == 1:
                await pg.start_refusing()  # SQLSTATE 57P03 to every connection for 3 s
                await asyncio.sleep(3.0)
                await pg.stop_refusing()
            await asyncio.sleep(0.5)
            await pg.start()
        sent = await sending
        await caught_up(iso, "inbound", "messages", INBOUND_MESSAGES)
        received = iso.probe.matching(lambda r: r.type == "conversation.message_received"
                                      and r.body["account_id"] == account)
        assert {r.body["channel_message_id"] for r in received} >= set(sent)
        assert iso.probe.matching(lambda r: r.topic.endswith(DEADLETTER)) == []
        engine = create_engine(pg.url)
        try:
            async with engine.connect() as conn:
                stored = await conn.scalar(select(func.count()).select_from(messages)
                                           .where(messages.c.account_id == account))
        finally:
            await engine.dispose()
        assert stored == len(sent) + 1
    finally:
        await stop(worker)
        await iso.probe.stop()
        await iso.engine.dispose()
        iso.engine = session_engine
        await pg.stop_fast()


async def test_x5_a_worker_started_before_the_broker_and_the_database_waits_then_works(system, tmp_path, pg_dir):
    kafka = PrivateKafka(tmp_path / "kafka")
    pg = PrivatePostgres(pg_dir)
    settings = system.settings.model_copy(update={"bootstrap_servers": kafka.bootstrap,
                                            "database_url": pg.url, "topic_prefix": f"early-{uuid.uuid4().hex[:6]}."})
    worker = worker_process(settings, "inbound")
    try:
        await asyncio.sleep(3)  # it meets neither the database nor the broker
        assert worker.poll() is None, worker.stderr.read().decode()[-2000:] if worker.stderr else ""
        await pg.start()
        await kafka.start()
        from ticketflow.provisioning import apply_topics

        assert (await apply_topics(settings)).ok
        _s, iso = await isolated_on(settings, system)
        try:
            account = await iso.account()
            conv = await iso.new_conversation(account)
            assert conv
        finally:
            await iso.probe.stop()
        assert worker.poll() is None
    finally:
        await stop(worker)
        await kafka.stop()
        await pg.stop_fast()


async def isolated_on(settings, system: System) -> tuple:
    from tests.support.kafka import Probe
    from tests.support.system import WATCHED

    probe = Probe(settings.bootstrap_servers, [settings.topic(t) for t in WATCHED])
    await probe.start()
    engine = create_engine(settings.database_url, writer=False)
    return settings, System(settings, engine, probe)


async def test_x2_t1_create_ticket_behind_a_long_projection_backlog_is_not_rejected(system):
    """After a ticketing outage the conversation projection is thousands of events behind: a create_ticket
    for a conversation stored a moment ago waits for it, however long that takes, instead of not_found."""
    settings, iso = await isolated(system)
    inbound = worker_process(settings, "inbound")
    ticketing = None
    try:
        account = await iso.account()
        producer = make_producer(settings.bootstrap_servers, "backlog")
        await producer.start()
        try:
            now = datetime.now(UTC).isoformat()
            for i in range(4000):  # the backlog: other conversations' events, on every partition
                conv = f"backlog-{i}-{uuid.uuid4().hex[:6]}"
                body = {"type": "conversation.created", "conversation_id": conv, "account_id": account, "version": 1,
                        "occurred_at": now, "contact_id": "k", "channel": "email", "channel_thread_key": conv}
                await producer.send(settings.topic(CONVERSATION_EVENTS), key=conv.encode(), value=json.dumps(body).encode())
            await producer.flush()
        finally:
            await producer.stop()
        conv = await iso.new_conversation(account)  # its conversation.created sits behind the backlog
        ticketing = worker_process(settings, "ticketing")
        create = await iso.command(c.CreateTicket, account, conversation_id=conv)
        created = await iso.probe.wait_for(lambda r: r.type == "ticket.created" and conv in r.body["conversation_ids"],
                                           timeout=180, what="the ticket, once the projection caught up")
        assert created[0].body["account_id"] == account
        assert iso.rejections(create) == []
        missing = await iso.command(c.CreateTicket, account, conversation_id=new_id("never-"))
        assert (await iso.rejection(missing))["reason"] == "not_found"  # caught up: missing is missing
    finally:
        if ticketing is not None:
            await stop(ticketing)
        await stop(inbound)
        await iso.probe.stop()


async def test_x5_upgrade_waits_for_a_database_that_is_starting(pg_dir):
    """`upgrade_async` through `until_available`: the Worker's start path, for a database not up yet."""
    import logging

    from workers.delivery.backoff import until_available

    pg = PrivatePostgres(pg_dir)
    task = asyncio.create_task(until_available(lambda: upgrade_async(pg.url), "database", logging.getLogger("t")))
    await asyncio.sleep(2)
    assert not task.done()
    await pg.start()
    try:
        await asyncio.wait_for(task, 120)
    finally:
        await pg.stop_fast()
    assert (pg_dir / f"postgres-{pg.port}").exists()


async def test_x5_a_new_database_server_knows_the_app_role_from_the_first_connection_it_accepts(pg_dir):
    """The launcher creates the role and database before a new server first listens: a worker connecting
    the moment the port opens never meets "role does not exist", which is not a transient failure (the
    upgrade test above flaked so when its first connection came between the start and the role)."""
    import asyncpg

    pg = PrivatePostgres(pg_dir)
    starting = asyncio.create_task(pg.start())
    try:
        while True:
            try:
                conn = await asyncpg.connect(host="127.0.0.1", port=pg.port, user="ticketflow", password="ticketflow",
                                             database="ticketflow", timeout=5)
                break
            except (OSError, asyncpg.CannotConnectNowError):  # not listening yet, or still starting up
                if starting.done():
                    starting.result()
                await asyncio.sleep(0.002)
        try:
            assert await conn.fetchval("SELECT current_user") == "ticketflow"
        finally:
            await conn.close()
    finally:
        await starting
        await pg.stop_fast()
