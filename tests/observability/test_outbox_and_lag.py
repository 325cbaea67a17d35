"""What the sampler measures, on real stores: the outbox backlog on PostgreSQL and SQLite, and consumer
lag per partition on the real broker."""

from __future__ import annotations

from datetime import timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import insert

from storage.tables import outbox
from storage.unit_of_work import now_utc
from workers.observability.lag import LagReader, PartitionLag
from workers.observability.metrics import Metrics
from workers.observability.outbox import OutboxBacklog, outbox_backlog
from workers.observability.sampler import Sampler, lag_job, outbox_job


async def _rows(engine, producer: str, ages_seconds: list[int], now, parked: bool = False, sent: bool = False):
    async with engine.begin() as conn:
        for age in ages_seconds:
            created = now - timedelta(seconds=age)
            await conn.execute(insert(outbox).values(
                producer=producer, topic="t", key="k", headers=[], value=b"{}", created_at=created,
                sent_at=now if sent else None, failed_at=now if parked else None, failure="refused" if parked else None))


async def test_an_empty_outbox_has_no_backlog(engine):
    assert await outbox_backlog(engine, "inbound") == OutboxBacklog(0, 0, 0.0)


async def test_backlog_counts_unsent_and_parked_rows_and_ages_the_oldest_waiting_one(engine):
    now = now_utc()
    await _rows(engine, "inbound", [30, 5], now)
    await _rows(engine, "inbound", [900], now, parked=True)
    await _rows(engine, "inbound", [3600], now, sent=True)
    await _rows(engine, "ticketing", [7200], now)
    backlog = await outbox_backlog(engine, "inbound", now=now)
    assert (backlog.unsent, backlog.parked) == (3, 1)
    assert round(backlog.oldest_unsent_age_seconds) == 30


async def test_the_sampler_puts_the_backlog_into_the_worker_metrics(engine):
    now = now_utc()
    await _rows(engine, "inbound", [120], now)
    metrics = Metrics()
    sampler = Sampler(interval=60)
    sampler.add("inbound.outbox", outbox_job(engine, metrics.worker("inbound")))
    assert await sampler.sample() == {}
    body = metrics.render()[0].decode()
    assert 'ticketflow_outbox_unsent_rows{worker="inbound"} 1.0' in body
    assert 'ticketflow_outbox_oldest_unsent_age_seconds{worker="inbound"} 0.0' not in body


async def test_lag_is_measured_per_partition_from_committed_offsets(kafka, topic):
    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    await producer.start()
    try:
        for partition, count in ((0, 3), (1, 1)):
            for i in range(count):
                await producer.send_and_wait(topic, f"r{i}".encode(), partition=partition)
    finally:
        await producer.stop()
    group = f"{topic}.lagged"
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.commit({TopicPartition(topic, 0): 2})
    finally:
        await consumer.stop()
    reader = LagReader({"bootstrap_servers": kafka})
    await reader.start()
    try:
        lags = await reader.read([(group, topic), (f"{topic}.never", topic), (group, f"{topic}-missing")])
    finally:
        await reader.close()
    assert lags == [PartitionLag(group, topic, 0, 2, 3), PartitionLag(group, topic, 1, None, 1),
                    PartitionLag(f"{topic}.never", topic, 0, None, 3), PartitionLag(f"{topic}.never", topic, 1, None, 1)]
    assert [lag.lag for lag in lags] == [1, 1, 3, 1]


async def test_a_lag_job_starts_its_reader_and_reports_into_the_metrics(kafka, topic):
    metrics = Metrics()
    reader = LagReader({"bootstrap_servers": kafka})
    sampler = Sampler(interval=60)
    sampler.add("sync.lag", lag_job(reader, [(f"{topic}.g", topic)], metrics.worker("sync")))
    try:
        assert await sampler.sample() == {}
        assert await sampler.sample() == {}  # the second round reuses the started reader
    finally:
        await reader.close()
    body = metrics.render()[0].decode()
    assert f'ticketflow_consumer_lag{{group="{topic}.g",partition="1",topic="{topic}",worker="sync"}} 0.0' in body


async def test_a_failing_job_is_reported_and_the_others_still_run(engine):
    async def broken() -> None:
        raise ConnectionError("broker down")

    metrics = Metrics()
    sampler = Sampler(interval=60)
    sampler.add("sync.lag", broken)
    sampler.add("inbound.outbox", outbox_job(engine, metrics.worker("inbound")))
    assert await sampler.sample() == {"sync.lag": "ConnectionError('broker down')"}
