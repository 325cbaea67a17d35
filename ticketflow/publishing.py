"""Publishing Ticketflow messages from outside the workers (the CLI, the demo, tests' clients), through
the same `outgoing` records the workers use: topic, key and envelope come from the contract."""

from __future__ import annotations

from contracts.common import Publishable
from workers.delivery.outgoing import outgoing
from workers.settings import Settings


async def publish(settings: Settings, bodies: list[Publishable], source: str = "/ticketflow/cli") -> list[str]:
    """Publish each body to its catalogue topic with a CloudEvents envelope; returns the message ids."""
    producer = settings.kafka.producer("ticketflow-cli")
    await producer.start()
    ids = []
    try:
        for body in bodies:
            record = outgoing(body, source, prefix=settings.topic_prefix)
            await producer.send_and_wait(record.topic, key=record.key.encode(), value=record.value,
                                         headers=record.headers)
            ids.append(record.id)
    finally:
        await producer.stop()
    return ids
