"""Publishing Ticketflow messages from outside the workers (the CLI, the demo, tests' clients)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from contracts.envelope import Envelope
from contracts.topics import route
from ticketflow.config import Settings
from workers.delivery.producer import make_producer


def key_of(body: Any) -> str:
    if getattr(body, "type", None) == "account":
        return body.account_id
    return body.partition_key()


async def publish(settings: Settings, bodies: list[Any], source: str = "/ticketflow/cli") -> list[str]:
    """Publish each body to its catalogue topic with a CloudEvents envelope; returns the message ids."""
    producer = make_producer(settings.bootstrap_servers, "ticketflow-cli")
    await producer.start()
    ids = []
    try:
        for body in bodies:
            msg_id = getattr(body, "command_id", None) or str(uuid.uuid4())
            env = Envelope(id=msg_id, type=body.type, source=source, time=datetime.now(timezone.utc),
                           subject=key_of(body), account_id=getattr(body, "account_id", None))
            await producer.send_and_wait(settings.topic(route(body)), key=key_of(body).encode(),
                                         value=body.model_dump_json().encode(), headers=env.to_headers())
            ids.append(msg_id)
    finally:
        await producer.stop()
    return ids
