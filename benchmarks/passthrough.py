"""The reference points the workers are compared with, each run as its own process:

    python -m benchmarks.passthrough raw SRC DST GROUP
    python -m benchmarks.passthrough faststream SRC DST GROUP
    python -m benchmarks.passthrough faststream-batch SRC DST GROUP

- raw: aiokafka consume -> produce every record to DST (acks=all, idempotent), wait for the acks,
  commit once per getmany batch (up to 500 records). The ceiling for anything that copies records.
- faststream: a FastStream KafkaBroker subscriber, AckPolicy.MANUAL, one message at a time: republish
  it (acks=all, awaiting the broker's ack), then `msg.ack()` (one offset commit per message). The
  framework's per-message pattern, which is what the workers were built on.
- faststream-batch: the same subscriber with batch=True (up to 500 records): republish all, await the
  acks, one `ack()` per batch.

Settings come from the environment like the workers' (KAFKA_BOOTSTRAP_SERVERS and the KAFKA_* access
variables); runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any

from workers.settings import Settings

BATCH = 500


async def raw(settings: Settings, src: str, dst: str, group: str, stop: asyncio.Event) -> None:
    consumer = settings.kafka.consumer(src, group_id=group, client_id="bench-raw", auto_offset_reset="earliest",
                                       max_poll_records=BATCH)
    producer = settings.kafka.producer("bench-raw")
    await producer.start()
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=BATCH)
            if not batch:
                continue
            futures = [await producer.send(dst, key=r.key, value=r.value, headers=list(r.headers or ()))
                       for records in batch.values() for r in records]
            await asyncio.gather(*futures)
            await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


async def faststream(settings: Settings, src: str, dst: str, group: str, stop: asyncio.Event, batch: bool) -> None:
    from faststream import AckPolicy
    from faststream.kafka import KafkaBroker
    from faststream.kafka.annotations import KafkaMessage

    broker = KafkaBroker(settings.bootstrap_list, security=settings.kafka.faststream_security(),
                         client_id="bench-faststream", allow_auto_create_topics=False, acks="all",
                         enable_idempotence=True, logger=logging.getLogger("bench.faststream"))
    options: dict[str, Any] = {"group_id": group, "auto_offset_reset": "earliest", "ack_policy": AckPolicy.MANUAL}
    if batch:
        @broker.subscriber(src, batch=True, max_records=BATCH, **options)  # type: ignore[untyped-decorator]
        async def on_batch(msg: KafkaMessage) -> None:
            futures = [await broker.publish(r.value, topic=dst, key=r.key, headers=dict(_headers(r)), no_confirm=True)
                       for r in msg.raw_message]
            await asyncio.gather(*futures)
            await msg.ack()
    else:
        @broker.subscriber(src, **options)  # type: ignore[untyped-decorator]
        async def on_message(msg: KafkaMessage) -> None:
            r: Any = msg.raw_message
            await broker.publish(r.value, topic=dst, key=r.key, headers=dict(_headers(r)))
            await msg.ack()

    await broker.start()
    try:
        await stop.wait()
    finally:
        await broker.stop()


def _headers(record: Any) -> list[tuple[str, str]]:
    return [(k, v.decode(errors="replace")) for k, v in record.headers or ()]


async def main(kind: str, src: str, dst: str, group: str) -> None:
    settings = Settings.from_env()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if kind == "raw":
        await raw(settings, src, dst, group, stop)
    elif kind in ("faststream", "faststream-batch"):
        await faststream(settings, src, dst, group, stop, batch=kind == "faststream-batch")
    else:
        raise SystemExit(f"unknown passthrough {kind!r}: raw, faststream or faststream-batch")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    asyncio.run(main(*sys.argv[1:5]))
