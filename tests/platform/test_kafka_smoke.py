"""The messaging stack against the real broker: a FastStream subscriber typed with a pydantic model
consumes a keyed record from a plain idempotent aiokafka producer, and commits exactly past it."""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel

from tests.platform.kafka_admin import (
    WAIT_SECONDS,
    admin_client,
    create_topics,
    delete_topics_with_prefix,
)


class Greeting(BaseModel):
    greeting_id: str
    text: str
    count: int


async def test_faststream_subscriber_consumes_keyed_record_and_commits_past_it(kafka: str, run_prefix: str) -> None:
    prefix = f"{run_prefix}smoke-{uuid.uuid4().hex[:6]}."
    topic = f"{prefix}greetings"
    group = f"{prefix}group"
    async with admin_client(kafka) as admin:
        await create_topics(admin, [NewTopic(topic, num_partitions=3, replication_factor=1)])

    received: asyncio.Queue[tuple[Greeting, bytes | None, int, int]] = asyncio.Queue()
    broker = KafkaBroker(kafka, allow_auto_create_topics=False)

    @broker.subscriber(topic, group_id=group, auto_offset_reset="earliest", ack_policy=AckPolicy.ACK)
    async def handle(body: Greeting, msg: KafkaMessage) -> None:
        raw = msg.raw_message
        await received.put((body, raw.key, raw.partition, raw.offset))

    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all", enable_idempotence=True)
    sent = Greeting(greeting_id=uuid.uuid4().hex, text="hello, ticketflow", count=3)
    await producer.start()
    await broker.start()
    try:
        record = await producer.send_and_wait(topic, sent.model_dump_json().encode(), key=b"conversation-42")

        body, key, partition, offset = await asyncio.wait_for(received.get(), timeout=WAIT_SECONDS)
        assert isinstance(body, Greeting)
        assert body == sent
        assert (body.greeting_id, body.text, body.count) == (sent.greeting_id, "hello, ticketflow", 3)
        assert key == b"conversation-42"
        assert (partition, offset) == (record.partition, record.offset)

        # AckPolicy.ACK commits after the handler returned: the group's offset lands just past the record.
        tp = TopicPartition(topic, record.partition)
        async with admin_client(kafka) as admin:
            deadline = time.monotonic() + WAIT_SECONDS
            while True:
                committed = await admin.list_consumer_group_offsets(group, partitions=[tp])
                meta = committed.get(tp)
                if meta is not None and meta.offset == record.offset + 1:
                    break
                assert time.monotonic() < deadline, f"committed offset {meta} never reached {record.offset + 1}"
                await asyncio.sleep(0.2)
        assert received.empty()
    finally:
        await broker.stop()
        await producer.stop()
        await delete_topics_with_prefix(kafka, prefix)
