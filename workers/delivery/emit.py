"""Writing outgoing messages to the outbox with their CloudEvents envelope."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from contracts.envelope import Envelope
from contracts.topics import route
from storage.unit_of_work import UnitOfWork


def envelope_for(body: Any, source: str, cause: Envelope | None, message_id: str | None = None) -> Envelope:
    msg_id = message_id or str(uuid.uuid4())
    return Envelope(
        id=msg_id,
        type=body.type,
        source=source,
        time=datetime.now(timezone.utc),
        subject=body.partition_key(),
        account_id=getattr(body, "account_id", None),
        correlation_id=(cause.correlation_id or cause.id) if cause else msg_id,
        causation_id=cause.id if cause else None,
    )


async def emit(uow: UnitOfWork, topic_prefix: str, source: str, bodies: tuple[Any, ...] | list[Any],
               cause: Envelope | None) -> None:
    for body in bodies:
        env = envelope_for(body, source, cause)
        await uow.publish(f"{topic_prefix}{route(body)}", body.partition_key(), body, env)
