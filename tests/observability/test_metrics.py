"""Metrics of a worker process: our counters and gauges per worker in one registry, rendered in the
Prometheus text format, and FastStream's middleware counting what a real broker delivers."""

from __future__ import annotations

import asyncio

import pytest
from faststream.kafka import KafkaBroker
from prometheus_client.parser import text_string_to_metric_families

from workers.observability.lag import PartitionLag
from workers.observability.metrics import Metrics, kafka_prometheus_middleware
from workers.observability.outbox import OutboxBacklog


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, tuple(sorted(labels.items()))))


def test_outcomes_are_counted_per_worker_input_and_reason():
    metrics = Metrics()
    inbound, ticketing = metrics.worker("inbound"), metrics.worker("ticketing")
    inbound.processed("messages")
    inbound.processed("messages", 2)
    inbound.dead_lettered("messages", "not_json")
    ticketing.rejected("commands", "not_found")
    ticketing.rejected("commands", "not_found")
    assert value(metrics, "ticketflow_records_processed_total", worker="inbound", input="messages") == 3
    assert value(metrics, "ticketflow_records_dead_lettered_total", worker="inbound", input="messages",
                 reason="not_json") == 1
    assert value(metrics, "ticketflow_records_rejected_total", worker="ticketing", input="commands",
                 reason="not_found") == 2


def test_every_worker_series_exists_from_the_start_so_rates_and_alerts_see_zero():
    metrics = Metrics()
    metrics.worker("sync")
    assert value(metrics, "ticketflow_relay_failures_total", worker="sync", kind="parked") == 0
    assert value(metrics, "ticketflow_dependency_unavailable", worker="sync", dependency="database") == 0
    assert value(metrics, "ticketflow_outbox_oldest_unsent_age_seconds", worker="sync") == 0


def test_relay_dependencies_and_batches():
    metrics = Metrics()
    relay = metrics.worker("inbound")
    relay.relay_published(5)
    relay.relay_published(0)
    relay.relay_failed("transient")
    relay.relay_failed("parked", 2)
    relay.waiting("database")
    relay.waiting("database")
    assert value(metrics, "ticketflow_relay_published_total", worker="inbound") == 5
    assert value(metrics, "ticketflow_relay_failures_total", worker="inbound", kind="parked") == 2
    assert value(metrics, "ticketflow_dependency_unavailable", worker="inbound", dependency="database") == 1
    assert value(metrics, "ticketflow_transient_retries_total", worker="inbound", dependency="database") == 2
    relay.available("database")
    assert value(metrics, "ticketflow_dependency_unavailable", worker="inbound", dependency="database") == 0
    relay.batch("messages", 300, 0.04)
    assert value(metrics, "ticketflow_batch_size_bucket", worker="inbound", input="messages", le="250.0") == 0
    assert value(metrics, "ticketflow_batch_size_bucket", worker="inbound", input="messages", le="500.0") == 1
    assert value(metrics, "ticketflow_batch_duration_seconds_bucket", worker="inbound", input="messages",
                 le="0.025") == 0
    assert value(metrics, "ticketflow_batch_duration_seconds_bucket", worker="inbound", input="messages",
                 le="0.05") == 1


def test_where_a_record_spends_its_time_waiting_processing_and_in_the_outbox():
    metrics = Metrics()
    inbound = metrics.worker("inbound")
    inbound.waited("messages", [0.003, 0.2, -0.001])  # a producer's clock slightly ahead counts as no wait
    inbound.relay_delays([0.004, 0.03])
    assert value(metrics, "ticketflow_record_wait_seconds_count", worker="inbound", input="messages") == 3
    assert value(metrics, "ticketflow_record_wait_seconds_bucket", worker="inbound", input="messages",
                 le="0.001") == 1
    assert value(metrics, "ticketflow_record_wait_seconds_bucket", worker="inbound", input="messages",
                 le="0.005") == 2
    assert value(metrics, "ticketflow_record_wait_seconds_sum", worker="inbound", input="messages") == 0.203
    assert value(metrics, "ticketflow_relay_delay_seconds_bucket", worker="inbound", le="0.005") == 1
    assert value(metrics, "ticketflow_relay_delay_seconds_count", worker="inbound") == 2


def test_an_unknown_relay_failure_kind_is_refused():
    with pytest.raises(ValueError, match="kind"):
        Metrics().worker("inbound").relay_failed("sideways")


def test_outbox_and_lag_gauges_follow_the_latest_measurement():
    metrics = Metrics()
    inbound = metrics.worker("inbound")
    inbound.outbox(OutboxBacklog(unsent=7, parked=1, oldest_unsent_age_seconds=42.5))
    inbound.lag([PartitionLag("g", "t", 0, 3, 10), PartitionLag("g", "t", 1, None, 4)])
    assert value(metrics, "ticketflow_outbox_unsent_rows", worker="inbound") == 7
    assert value(metrics, "ticketflow_outbox_parked_rows", worker="inbound") == 1
    assert value(metrics, "ticketflow_outbox_oldest_unsent_age_seconds", worker="inbound") == 42.5
    assert value(metrics, "ticketflow_consumer_lag", worker="inbound", group="g", topic="t", partition="0") == 7
    assert value(metrics, "ticketflow_consumer_lag", worker="inbound", group="g", topic="t", partition="1") == 4
    inbound.lag([PartitionLag("g", "t", 0, 10, 10)])
    assert value(metrics, "ticketflow_consumer_lag", worker="inbound", group="g", topic="t", partition="0") == 0
    assert value(metrics, "ticketflow_consumer_lag", worker="inbound", group="g", topic="t", partition="1") is None


def test_two_registries_are_independent():
    one, two = Metrics(), Metrics()
    one.worker("inbound").processed("messages")
    two.worker("inbound")
    assert value(two, "ticketflow_records_processed_total", worker="inbound", input="messages") is None


async def test_faststream_middleware_counts_consumed_and_published_records_on_a_real_broker(kafka, topic):
    metrics = Metrics()
    brokers = [KafkaBroker(kafka, middlewares=[kafka_prometheus_middleware(metrics, name)])
               for name in ("inbound", "sync")]  # two brokers, one registry: as in `ticketflow up`
    got = asyncio.Event()

    @brokers[0].subscriber(topic, group_id=f"{topic}.metrics", auto_offset_reset="earliest")
    async def on_record(body: bytes) -> None:
        got.set()

    for broker in brokers:
        await broker.start()
    try:
        await brokers[1].publish(b"hello", topic, key=b"k")
        await asyncio.wait_for(got.wait(), 30)
    finally:
        for broker in brokers:
            await broker.stop()
    families = {name for name, _labels in samples(metrics)}
    assert {"faststream_received_messages_total", "faststream_published_messages_total"} <= families
    received = [v for (name, labels), v in samples(metrics).items()
                if name == "faststream_received_messages_total" and ("app_name", "inbound") in labels]
    published = [v for (name, labels), v in samples(metrics).items()
                 if name == "faststream_published_messages_total" and ("app_name", "sync") in labels]
    assert received == [1.0] and published == [1.0]
