"""The outbox relay on a real database and a real broker: committed rows leave in order, once marked
sent they are not published again, and old rows are pruned (X3, X5)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import OutOfOrderSequenceNumber
from sqlalchemy import delete, func, insert, select

from contracts.envelope import Envelope
from contracts.events import ConversationClosed
from storage.tables import outbox, processed_messages
from storage.unit_of_work import UnitOfWork, now_utc
from workers.delivery.outgoing import Outgoing
from workers.delivery.relay import PROCESSED_RETENTION, OutboxRelay
from workers.kafka import make_producer


async def _topic(kafka: str, prefix: str, partitions: int = 1, config: dict[str, str] | None = None) -> str:
    name = f"{prefix}relay-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                            topic_configs=config or {})])
    finally:
        await admin.close()
    return name


async def _read_all(kafka: str, topic: str, count: int) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen: list = []
    try:
        while len(seen) < count:
            batch = await consumer.getmany(timeout_ms=10_000)
            assert batch, f"only {len(seen)} of {count} records arrived"
            for records in batch.values():
                seen.extend(records)
        more = await consumer.getmany(timeout_ms=1_000)
        seen.extend(r for records in more.values() for r in records)
    finally:
        await consumer.stop()
    return seen


async def test_x3_x5_relay_publishes_committed_rows_in_order_once(engine, kafka, run_prefix):
    topic = await _topic(kafka, run_prefix)
    for version in range(1, 6):
        event = ConversationClosed(conversation_id="conv-1", account_id="acme", version=version, occurred_at=now_utc())
        async with UnitOfWork(engine, "test.relay", "relaytest") as uow:
            env = Envelope(id=f"evt-{version}", type=event.type, source="/test", time=now_utc(), subject="conv-1")
            await uow.add_to_outbox(Outgoing(env.id, topic, "conv-1", event.model_dump_json().encode(), tuple(env.header_pairs())))
    try:
        async with UnitOfWork(engine, "test.relay", "relaytest") as uow:
            env = Envelope(id="rolled-back", type=event.type, source="/t", time=now_utc())
            await uow.add_to_outbox(Outgoing(env.id, topic, "conv-1", event.model_dump_json().encode(), tuple(env.header_pairs())))
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    producer = make_producer(kafka, "relay-test")
    await producer.start()
    try:
        relay = OutboxRelay(engine, producer, "relaytest")
        assert await relay.flush() == 5
        assert await relay.flush() == 0  # done: never published again
        await relay.stop()  # lets go of its connection (and the outbox lock)
    finally:
        await producer.stop()
    async with engine.connect() as conn:  # a published row leaves the outbox (one delete, no update)
        left = await conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.producer == "relaytest"))
    assert left == 0
    records = await _read_all(kafka, topic, 5)
    ids = [dict(r.headers)["ce_id"].decode() for r in records]
    assert ids == [f"evt-{v}" for v in range(1, 6)]
    assert all(r.key == b"conv-1" for r in records)


async def test_x5_relay_prunes_sent_rows_and_expired_processed_ids_only(engine, kafka):
    old = now_utc() - PROCESSED_RETENTION - timedelta(days=1)
    async with engine.begin() as conn:
        for sent_at in (old, None):
            await conn.execute(insert(outbox).values(producer="prunetest", topic="t", key="k", headers=[], value=b"{}",
                                                     created_at=old, sent_at=sent_at))
        await conn.execute(insert(processed_messages).values(consumer="prunetest.commands", message_id="old",
                                                             processed_at=old))
        await conn.execute(insert(processed_messages).values(consumer="prunetest.commands", message_id="new",
                                                             processed_at=now_utc()))
        await conn.execute(insert(processed_messages).values(consumer="other.commands", message_id="old",
                                                             processed_at=old))
    producer = make_producer(kafka, "prune-test")
    await producer.start()
    try:
        await OutboxRelay(engine, producer, "prunetest")._prune()
    finally:
        await producer.stop()
    async with engine.connect() as conn:
        unsent = await conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.producer == "prunetest"))
        kept = (await conn.execute(select(processed_messages.c.consumer, processed_messages.c.message_id)
                                   .order_by(processed_messages.c.consumer))).all()
    assert unsent == 1  # the unsent row stays, however old
    assert [tuple(k) for k in kept] == [("other.commands", "old"), ("prunetest.commands", "new")]


async def _add(engine, producer: str, topic: str, key: str, value: bytes) -> int:
    async with engine.begin() as conn:
        result = await conn.execute(insert(outbox).values(
            producer=producer, topic=topic, key=key, headers=[["ce_id", f"evt-{key}-{len(value)}"]], value=value,
            created_at=now_utc(), sent_at=None))
        return result.inserted_primary_key[0]


async def test_x3_x4_an_unpublishable_row_is_parked_its_key_waits_and_other_keys_go_on(engine, kafka, run_prefix):
    from contracts.topics import RECORD_MAX_BYTES
    from ticketflow.outbox import discard_parked, parked_rows, retry_parked

    topic = await _topic(kafka, run_prefix)
    owner = f"parktest{uuid.uuid4().hex[:6]}"
    first = await _add(engine, owner, topic, "a", b'{"n": 1}')
    huge = await _add(engine, owner, topic, "b", b"x" * (RECORD_MAX_BYTES + 1))
    behind = await _add(engine, owner, topic, "b", b'{"n": 3}')
    other = await _add(engine, owner, topic, "c", b'{"n": 4}')
    producer = make_producer(kafka, "park-test")
    await producer.start()
    try:
        relay = OutboxRelay(engine, producer, owner)
        assert await relay.flush() == 3  # two sent, one parked
        assert await relay.flush() == 0  # the row behind the parked one waits; nothing is sent again
        parked = await parked_rows(engine, owner)
        assert [(p.id, p.key, p.held_behind) for p in parked] == [(huge, "b", 1)]
        assert "limit" in parked[0].failure

        assert await retry_parked(engine, huge)
        assert await relay.flush() == 1  # still too large: parked again, nothing else moves
        assert [p.id for p in await parked_rows(engine, owner)] == [huge]

        assert await discard_parked(engine, huge, "too large for any consumer")
        assert await relay.flush() == 1  # now the row behind it leaves
        await relay.stop()  # lets go of its connection (and the outbox lock)
        assert await parked_rows(engine, owner) == []
    finally:
        await producer.stop()
    records = await _read_all(kafka, topic, 3)
    assert [(r.key, r.value) for r in records] == [(b"a", b'{"n": 1}'), (b"c", b'{"n": 4}'), (b"b", b'{"n": 3}')]
    async with engine.connect() as conn:
        unsent = await conn.scalar(select(func.count()).select_from(outbox).where(
            outbox.c.producer == owner, outbox.c.sent_at.is_(None)))
    assert unsent == 0 and {first, behind, other}


async def test_x4_outbox_cli_lists_retries_and_discards_parked_rows(engine, db_url, monkeypatch, capsys):
    from ticketflow.cli import main

    owner = f"clitest{uuid.uuid4().hex[:6]}"
    row = await _add(engine, owner, "t", "k", b"{}")
    async with engine.begin() as conn:
        await conn.execute(outbox.update().where(outbox.c.id == row).values(failed_at=now_utc(), failure="too big"))
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert await asyncio.to_thread(main, ["outbox", "list"]) == 0
    assert f"#{row} {owner} t key='k'" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["outbox", "retry", str(row)]) == 0
    assert await asyncio.to_thread(main, ["outbox", "retry", str(row)]) == 1  # no longer parked
    async with engine.begin() as conn:
        await conn.execute(outbox.update().where(outbox.c.id == row).values(failed_at=now_utc()))
    assert await asyncio.to_thread(main, ["outbox", "discard", str(row), "--reason", "test"]) == 0
    async with engine.connect() as conn:
        kept = (await conn.execute(select(outbox.c.sent_at, outbox.c.failure).where(outbox.c.id == row))).one()
    assert kept.sent_at is not None and kept.failure.startswith("discarded by operator: test; too big")


async def test_x3_x5_rows_the_broker_refused_for_a_broken_producer_sequence_are_sent_again_not_parked(
        engine, kafka, run_prefix):
    """Found by the chaos suite: after a broker restart with a batch in flight, the broker refused the
    relay's batches with OUT_OF_ORDER_SEQUENCE_NUMBER and the relay parked 13 events for good. They are
    the producer session's fault, not the rows': the rows wait and go out, in order, on the next round."""
    from aiokafka import TopicPartition

    from ticketflow.outbox import parked_rows

    topic = await _topic(kafka, run_prefix)
    owner = f"seqtest{uuid.uuid4().hex[:6]}"
    producer = make_producer(kafka, "sequence-relay-test")
    await producer.start()
    try:
        relay = OutboxRelay(engine, producer, owner)
        await _add(engine, owner, topic, "k", b'{"n": 1}')
        assert await relay.flush() == 1
        producer._txn_manager._sequence_numbers[TopicPartition(topic, 0)] += 7  # what the broker saw after its restart
        for n in (2, 3):
            await _add(engine, owner, topic, "k", b'{"n": %d}' % n)

        with pytest.raises(OutOfOrderSequenceNumber):
            await relay.flush()  # a transient failure: the relay's loop retries it
        assert await parked_rows(engine, owner) == []
        assert await relay.flush() == 2
        await relay.stop()  # lets go of its connection (and the outbox lock)
    finally:
        await producer.stop()
    records = await _read_all(kafka, topic, 3)
    assert [r.value for r in records] == [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}']


async def test_x3_relay_batches_keep_each_keys_order_and_partition_across_partitions(engine, kafka, run_prefix):
    """Rows leave as one producer batch per partition: every key keeps its order, and lands on the
    partition a plain `producer.send` gives it (aiokafka's default partitioner)."""
    from aiokafka.partitioner import DefaultPartitioner

    topic = await _topic(kafka, run_prefix, partitions=6)
    owner = f"batchtest{uuid.uuid4().hex[:6]}"
    keys = [f"conv-{k}" for k in range(40)]
    for n in range(5):
        for key in keys:
            await _add(engine, owner, topic, key, b'{"n": %d}' % n)
    producer = make_producer(kafka, "batch-relay-test")
    await producer.start()
    try:
        relay = OutboxRelay(engine, producer, owner, batch=150)
        assert [await relay.flush() for _ in range(3)] == [150, 50, 0]
        await relay.stop()  # lets go of its connection (and the outbox lock)
    finally:
        await producer.stop()
    records = await _read_all(kafka, topic, 200)
    assert len(records) == 200
    for key in keys:
        mine = [r for r in records if r.key == key.encode()]
        assert [r.value for r in mine] == [b'{"n": %d}' % n for n in range(5)]
        assert {r.partition for r in mine} == {DefaultPartitioner()(key.encode(), list(range(6)), list(range(6)))}


async def test_x3_x4_a_batch_the_broker_refuses_costs_only_the_row_it_refuses(engine, kafka, run_prefix):
    """The broker refuses a producer batch as a whole (here: larger than the topic takes, though every
    record alone is under the relay's own limit). Nothing is parked for it; the next round sends each
    row in a batch of its own, parks only the row the broker refuses, holds that key, and sends the rest."""
    from ticketflow.outbox import parked_rows

    topic = await _topic(kafka, run_prefix, config={"max.message.bytes": "3000"})
    owner = f"refusetest{uuid.uuid4().hex[:6]}"
    await _add(engine, owner, topic, "a", b'{"n": 1}')
    big = await _add(engine, owner, topic, "b", b'"' + b"x" * 4000 + b'"')
    await _add(engine, owner, topic, "b", b'{"n": 3}')
    await _add(engine, owner, topic, "c", b'{"n": 4}')
    producer = make_producer(kafka, "refuse-relay-test")
    await producer.start()
    try:
        relay = OutboxRelay(engine, producer, owner)
        assert await relay.flush() == 0  # the whole batch refused: nothing sent, nothing parked
        assert await parked_rows(engine, owner) == []
        assert await relay.flush() == 3  # one at a time: two sent, the large one parked
        assert [(p.id, p.held_behind) for p in await parked_rows(engine, owner)] == [(big, 1)]
        assert await relay.flush() == 0
        await relay.stop()  # lets go of its connection (and the outbox lock)
    finally:
        await producer.stop()
    records = await _read_all(kafka, topic, 2)
    assert [(r.key, r.value) for r in records] == [(b"a", b'{"n": 1}'), (b"c", b'{"n": 4}')]


async def test_x5_a_relay_that_lets_go_of_the_outbox_lets_another_replica_take_it_at_once(postgres):
    """On PostgreSQL one replica of a worker relays at a time: it holds a session advisory lock on its
    own connection. Letting go (after a failed round, or on stop) returned that connection to the pool
    with the lock still held, so no other replica could take over until the process exited, and the
    relay's next round on another pooled connection found its own lock taken and published nothing."""
    from storage.database import create_engine
    from storage.migrate import upgrade_async

    await upgrade_async(postgres)
    owner = f"locktest{uuid.uuid4().hex[:6]}"
    first, second = create_engine(postgres), create_engine(postgres)
    try:
        relay, other = OutboxRelay(first, None, owner), OutboxRelay(second, None, owner)
        await _add(first, owner, "t", "k", b"{}")

        async def broker_gone(_rows):
            raise OSError("broker gone")

        relay._publish = broker_gone  # a round that fails after it took the lock
        with pytest.raises(OSError):
            await relay.flush()
        assert await other._locked_connection() is not None  # the other replica takes over at once
        assert await relay._locked_connection() is None  # and holds it
        async with first.begin() as conn:
            await conn.execute(delete(outbox).where(outbox.c.producer == owner))
        await other.stop()  # stopping lets go too
        assert await relay._locked_connection() is not None
        await relay.stop()
    finally:
        await first.dispose()
        await second.dispose()


async def test_x3_a_relay_stopped_between_publish_and_delete_finishes_its_round_rather_than_publish_it_twice(
        engine, kafka, run_prefix):
    """Stopping cancelled the round in flight: rows it had published but not yet deleted were published
    again by the final flush. Consumers drop the repeats, but a clean stop should make none."""
    topic = await _topic(kafka, run_prefix)
    owner = f"stoptest{uuid.uuid4().hex[:6]}"
    for i in range(3):
        await _add(engine, owner, topic, "k", f'{{"n": {i}}}'.encode())
    producer = make_producer(kafka, "relay-test")
    await producer.start()
    try:
        relay = OutboxRelay(engine, producer, owner, interval=3600)
        record, published = relay._record, asyncio.Event()

        async def slow_record(conn, outcome):  # published, not yet deleted
            published.set()
            await asyncio.sleep(1.0)
            await record(conn, outcome)

        relay._record = slow_record
        relay.start()
        await asyncio.wait_for(published.wait(), 30)
        for i in range(3, 5):
            await _add(engine, owner, topic, "k", f'{{"n": {i}}}'.encode())
        await relay.stop()
    finally:
        await producer.stop()
    values = [r.value for r in await _read_all(kafka, topic, 5)]
    assert values == [f'{{"n": {i}}}'.encode() for i in range(5)]
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.producer == owner)) == 0


async def test_x5_a_standby_relay_tries_for_the_outbox_lock_once_a_second_and_lets_wakes_pass(postgres, monkeypatch):
    """While another replica holds the outbox lock, a relay tried for it at its own interval (50 ms): about
    80 round trips a second for nothing, and once more after every commit of its worker. A standby waits
    STANDBY_SECONDS between tries and lets its worker's wakes pass (the holder publishes those rows); it
    relays at its interval again once it holds the lock, and a stop still ends its wait."""
    from storage.database import create_engine
    from storage.migrate import upgrade_async
    from workers.delivery.relay import STANDBY_SECONDS

    await upgrade_async(postgres)
    owner = f"standby{uuid.uuid4().hex[:6]}"
    first, second = create_engine(postgres), create_engine(postgres)
    try:
        holder, standby = OutboxRelay(first, None, owner), OutboxRelay(second, None, owner)
        assert await holder.flush() == 0 and not holder.standby
        assert await standby.flush() == 0
        assert standby.standby and standby.pause() == STANDBY_SECONDS > standby.interval
        standby.notify()
        assert not standby.wake.is_set()  # a commit of its worker does not make it try again
        holder.notify()
        assert holder.wake.is_set() and holder.pause() == holder.interval

        monkeypatch.setattr("workers.delivery.relay.STANDBY_SECONDS", 3600.0)
        standby.start()  # in its pause (an hour, here): a stop ends the wait
        await asyncio.sleep(0.2)
        await asyncio.wait_for(standby.stop(), timeout=60)

        await holder.stop()  # lets go: the standby takes over at its next try
        assert await standby.flush() == 0
        assert not standby.standby and standby.pause() == standby.interval
        await standby.stop()
    finally:
        await first.dispose()
        await second.dispose()
