"""The one way a Ticketflow message is put on Kafka: its topic, key and CloudEvents envelope come from
the contract itself. The outbox, the sync worker and the command line all build their records here.
The trace context of the record being handled (`traceparent`) rides along."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from contracts.common import Publishable
from contracts.envelope import Envelope
from contracts.topics import INTERNAL
from workers.ids import new_id
from workers.observability.tracing import trace_pairs


@dataclass(frozen=True)
class Outgoing:
    """One record to publish: `topic` already carries the deployment's prefix; headers kept as text
    (the outbox stores them so) and encoded for Kafka on demand."""

    id: str
    topic: str
    key: str
    value: bytes
    text_headers: tuple[tuple[str, str], ...]

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        return [(k, v.encode()) for k, v in self.text_headers]


def envelope_for(body: Publishable, source: str, cause: Envelope | None, message_id: str | None = None,
                 time: datetime | None = None) -> Envelope:
    """The envelope of `body`, caused by `cause`: one correlation id for everything one input causes."""
    msg_id = message_id or new_id()
    return Envelope(
        id=msg_id,
        type=body.type,
        source=source,
        time=time or datetime.now(UTC),
        subject=body.partition_key(),
        account_id=getattr(body, "account_id", None),
        correlation_id=(cause.correlation_id or cause.id) if cause else msg_id,
        causation_id=cause.id if cause else None,
    )


def outgoing(body: Publishable, source: str, cause: Envelope | None = None, prefix: str = "",
             message_id: str | None = None, internal: bool = False, time: datetime | None = None) -> Outgoing:
    """The record for `body`. A command keeps its `command_id` as `ce_id`; anything else gets a new id.
    `internal`: a command the sync worker derived goes to the internal variant of its topic."""
    msg_id = message_id or getattr(body, "command_id", None) or new_id()
    pairs = envelope_for(body, source, cause, msg_id, time).header_pairs() + trace_pairs()
    topic = INTERNAL[body.TOPIC] if internal else body.TOPIC
    return Outgoing(msg_id, f"{prefix}{topic}", body.partition_key(), body.model_dump_json().encode(), tuple(pairs))
