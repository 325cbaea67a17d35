"""aiokafka 0.14.0 bugs met by the chaos and security suites, fixed in `workers/aiokafka_fixes.py`.

A Kafka client that has lost every broker it knew finds the cluster again from its bootstrap servers.

Found by the chaos suite: a worker restarted during a broker outage bootstrapped from a broker that was
still starting and named no broker in its metadata, so aiokafka kept only the bootstrap connection; when
that connection closed (the broker went down again), the client had no node left to ask and logged
"Unable to update metadata from []" for good: its consumers never rejoined, and the worker's input
topics stopped with thousands of records waiting (aiokafka 0.14.0; kafka-python had the same bug, #1494).
`workers.kafka` makes every client re-bootstrap in that state (see `workers/aiokafka_fixes.py`)."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient, ConnectionGroup
from aiokafka.errors import OutOfOrderSequenceNumber

import workers.kafka  # noqa: F401  (installs the fixes for every aiokafka client of the process)
from tests.support.services_private import PrivateKafka
from workers.delivery.errors import is_transient
from workers.kafka import make_producer

pytestmark = pytest.mark.kafka


async def test_x5_a_client_that_knows_no_broker_and_has_no_bootstrap_connection_bootstraps_again(kafka: str) -> None:
    client = AIOKafkaClient(bootstrap_servers=kafka)
    await client.bootstrap()
    try:
        # The state the worker reached: metadata without brokers, the bootstrap connection gone.
        client.cluster._brokers = {}
        conn = client._conns.pop(("bootstrap", ConnectionGroup.DEFAULT), None)
        if conn is not None:
            conn.close()
        assert client.cluster.brokers() == set()

        assert await client._metadata_update(client.cluster, []) is True
        assert client.cluster.brokers(), "the client knows the cluster's brokers again"
    finally:
        await client.close()


async def test_x5_a_consumer_whose_fetch_timed_out_stops_without_raising(tmp_path: Path) -> None:
    """The second aiokafka bug (see `workers/aiokafka_fixes.py`): stopping a consumer while a failed fetch
    waits out its retry backoff raised CancelledError to the caller (met in a test's teardown on a loaded
    broker). Here the broker is frozen with SIGSTOP so that a fetch times out, and the backoff is long
    enough that the stop surely lands inside it."""
    kafka = PrivateKafka(tmp_path / "kafka")
    await kafka.start()
    pid = int(next((tmp_path / "kafka").glob("kafka-*/kafka.pid")).read_text())
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("frozen", num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, request_timeout_ms=2_000,
                                retry_backoff_ms=60_000, metadata_max_age_ms=600_000)
    await consumer.start()
    try:
        consumer.assign([TopicPartition("frozen", 0)])
        await consumer.getmany(timeout_ms=1_000)
        os.kill(pid, signal.SIGSTOP)
        await asyncio.sleep(6)  # the fetch in flight times out (2 s) and its 60 s backoff begins
        await consumer.stop()  # raised CancelledError before the fix
    finally:
        os.kill(pid, signal.SIGCONT)
        await kafka.stop()


async def test_x5_a_producer_whose_sequence_the_broker_refused_starts_a_new_session(kafka: str, run_prefix: str) -> None:
    """The third aiokafka bug (see `workers/aiokafka_fixes.py`): once the broker refused a batch with
    OUT_OF_ORDER_SEQUENCE_NUMBER (after a broker restart with a batch in flight), every later batch to that
    partition was refused too, for the life of the producer. Here the producer's sequence is pushed
    ahead by hand, which the real broker answers exactly so."""
    topic = f"{run_prefix}sequence-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = make_producer(kafka, "sequence-test")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"first", key=b"k")
        producer._txn_manager._sequence_numbers[TopicPartition(topic, 0)] += 7  # the broker expects 1
        with pytest.raises(OutOfOrderSequenceNumber):
            await producer.send_and_wait(topic, b"refused", key=b"k")
        assert is_transient(OutOfOrderSequenceNumber()), "the caller sends it again, it does not park or dead-letter"

        await producer.send_and_wait(topic, b"second", key=b"k")  # refused the same way before the fix
        await producer.send_and_wait(topic, b"third", key=b"k")
    finally:
        await producer.stop()
