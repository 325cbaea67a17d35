"""End-to-end throughput of the inbound path: N channel messages published to Kafka until every one is
stored and its `conversation.message_received` event is on the events topic.

    .venv/bin/python benchmarks/throughput.py --messages 2000 --threads 200
    DATABASE_URL=postgresql+asyncpg://... .venv/bin/python benchmarks/throughput.py

Needs a broker (KAFKA_BOOTSTRAP_SERVERS, default 127.0.0.1:9092). Uses its own topic prefix and, on
SQLite, its own database file. Prints one line of figures; record it with the command in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from contracts.accounts import Account
from contracts.common import Channel, Tier
from contracts.inbound import InboundMessage
from contracts.topics import CONVERSATION_EVENTS, INBOUND_MESSAGES
from storage.database import create_engine
from ticketflow.provisioning import apply_topics
from ticketflow.publishing import publish
from ticketflow.running import start_workers, stop_workers
from tools.probe import Probe
from workers.settings import Settings, run_dir


async def main(messages: int, threads: int) -> None:
    base = Settings.from_env()
    prefix = f"bench-{uuid.uuid4().hex[:6]}."
    url = base.database_url
    if url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{run_dir() / 'bench' / (prefix + 'db')}"
    settings = base.model_copy(update={"topic_prefix": prefix, "database_url": url})
    report = await apply_topics(settings)
    assert report.ok, report.lines()
    workers = await start_workers(settings, ("inbound",))
    probe = Probe(settings.bootstrap_servers, [settings.topic(CONVERSATION_EVENTS)])
    await probe.start()
    account = f"bench-{uuid.uuid4().hex[:6]}"
    await publish(settings, [Account(account_id=account, tier=Tier.STARTER,
                                     created_at=datetime(2022, 1, 1, tzinfo=UTC))])
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", enable_idempotence=True,
                                linger_ms=5)
    await producer.start()
    now = datetime.now(UTC)
    bodies = [
        InboundMessage(account_id=account, channel=Channel.EMAIL, channel_message_id=f"m{i}",
                       channel_thread_key=f"t{i % threads}", sender_email=f"c{i % threads}@example.com",
                       subject="Benchmark", text=f"message {i}", sent_at=now)
        for i in range(messages)
    ]
    started = time.monotonic()
    futures = [await producer.send(settings.topic(INBOUND_MESSAGES), key=b.partition_key().encode(),
                                   value=b.model_dump_json().encode()) for b in bodies]
    await asyncio.gather(*futures)
    published = time.monotonic() - started
    await probe.wait_for(lambda r: r.type == "conversation.message_received", count=messages, timeout=600)
    elapsed = time.monotonic() - started
    await producer.stop()
    await probe.stop()
    await stop_workers(workers)
    backend = create_engine(url).dialect.name
    print(f"{messages} messages on {threads} threads, {backend}, 1 inbound worker (6 partitions, one process): "
          f"published in {published:.2f}s, all stored and announced after {elapsed:.2f}s = "
          f"{messages / elapsed:.0f} msg/s end to end")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.threads))
