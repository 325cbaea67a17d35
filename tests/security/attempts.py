"""What a principal tries on the secured broker, and the broker's answer: None when allowed, else the error
class (TopicAuthorizationFailedError, GroupAuthorizationFailedError, ...). Each attempt is a real request
with the project's own clients (workers.kafka), or, for a fetch, Kafka's Fetch request itself (aiokafka's
consumer never sends one for a topic the metadata already says is not authorized: it only logs it)."""

from __future__ import annotations

import asyncio
import time

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.fetch import FetchRequest

from workers.kafka import KafkaAccess

Outcome = type[KafkaError] | None
WAIT_SECONDS = 60.0


def _outcome(code: int) -> Outcome:
    return None if code == 0 else for_code(code)


async def produce_each(kafka: KafkaAccess, topics: list[str]) -> dict[str, Outcome]:
    """One record to each topic with the project's idempotent producer: what the broker said per topic."""
    producer = kafka.producer("ticketflow-security-test", request_timeout_ms=15_000)
    outcomes: dict[str, Outcome] = {}
    try:
        try:
            await producer.start()  # a principal that may write nowhere gets no producer id
        except KafkaError as exc:
            return dict.fromkeys(topics, type(exc))
        for topic in topics:
            try:
                await producer.send_and_wait(topic, b"{}", key=b"security-test")
                outcomes[topic] = None
            except KafkaError as exc:
                outcomes[topic] = type(exc)
    finally:
        await producer.stop()
    return outcomes


async def fetch_each(kafka: KafkaAccess, topics: list[str]) -> dict[str, Outcome]:
    """Kafka's Fetch request for partition 0 of each topic, sent to the broker that leads it (the
    authorization check comes before any other)."""
    admin = kafka.admin("ticketflow-security-test")
    await admin.start()
    try:
        node = min(b.nodeId for b in admin._client.cluster.brokers())
        outcomes: dict[str, Outcome] = {}
        for topic in topics:
            request = FetchRequest(100, 1, 1 << 20, 0, [(topic, [(0, 0, 1 << 20)])])
            response = await admin._send_request(request, node)
            [(_name, [partition])] = response.topics
            code = partition[1]
            outcomes[topic] = None if code in (0, 6) else _outcome(code)  # 6: that node does not lead it
        return outcomes
    finally:
        await admin.close()


async def describe_each(kafka: KafkaAccess, topics: list[str]) -> dict[str, Outcome]:
    """Each topic's metadata (Metadata request) as the broker answers it for this principal."""
    admin = kafka.admin("ticketflow-security-test")
    await admin.start()
    try:
        return {t["topic"]: _outcome(t["error_code"]) for t in await admin.describe_topics(topics)}
    finally:
        await admin.close()


async def join_group(kafka: KafkaAccess, group: str, topic: str) -> Outcome:
    """Join `group` consuming `topic` (one the principal may read): None once it has partitions assigned."""
    consumer = kafka.consumer(topic, group_id=group, client_id="ticketflow-security-test",
                              session_timeout_ms=10_000, heartbeat_interval_ms=1_000)
    try:
        await consumer.start()  # finds the group's coordinator: the first group request
        deadline = time.monotonic() + WAIT_SECONDS
        while not consumer.assignment():
            assert time.monotonic() < deadline, f"never joined {group}"
            await consumer.getmany(timeout_ms=500)
        return None
    except KafkaError as exc:
        return type(exc)
    finally:
        await consumer.stop()


async def end_offset(kafka: KafkaAccess, topic: str, partitions: int) -> int:
    """How many records `topic` holds in all (read as a principal that may describe it)."""
    consumer = kafka.consumer(client_id="ticketflow-security-test")
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return sum(ends.values())
    finally:
        await consumer.stop()


async def refused(kafka: KafkaAccess) -> BaseException:
    """The error of opening one authenticated connection (aiokafka's own connection, so the broker's answer
    is not folded into "unable to bootstrap")."""
    from aiokafka.conn import create_conn
    from aiokafka.protocol.metadata import MetadataRequest

    options = {k: v for k, v in kafka.options().items() if k != "bootstrap_servers"}
    host, port = kafka.bootstrap_list[0].rsplit(":", 1)
    conn = None
    try:
        conn = await asyncio.wait_for(create_conn(host, int(port), request_timeout_ms=15_000, **options), 30)
        await conn.send(MetadataRequest([]))  # ApiVersions is answered before authentication; this is not
    except (KafkaError, OSError) as exc:
        return exc
    finally:
        if conn is not None:
            conn.close()
    raise AssertionError(f"the broker answered {kafka.security_protocol} as {kafka.username!r}")
