"""The one way a Ticketflow message is put on Kafka: its topic, key and CloudEvents envelope come from
the contract itself. The outbox, the sync worker and the command line all build their records here.
The trace context of the record being handled (`traceparent`) rides along."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from contracts.common import Publishable
from contracts.envelope import Envelope, ce_pairs, iso_time
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


def outgoing(body: Publishable, source: str, cause: Envelope | None = None, prefix: str = "",
             message_id: str | None = None, internal: bool = False, time: datetime | None = None) -> Outgoing:
    """The record for `body`. A command keeps its `command_id` as `ce_id`; anything else gets a new id.
    `internal`: a command the sync worker derived goes to the internal variant of its topic.
    Its envelope: caused by `cause`, one correlation id for everything one input causes."""
    msg_id = message_id or _field(body, "command_id") or new_id()
    key = body.partition_key()
    pairs = ce_pairs(msg_id, body.type, source, _formatted(time or datetime.now(UTC)), key,
                     _field(body, "account_id"), (cause.correlation_id or cause.id) if cause else msg_id,
                     cause.id if cause else None)
    topic = INTERNAL[body.TOPIC] if internal else body.TOPIC
    return Outgoing(msg_id, f"{prefix}{topic}", key, body.model_dump_json().encode(), tuple(pairs + trace_pairs()))


_HAS: dict[tuple[type, str], bool] = {}


def _field(body: Publishable, name: str) -> str | None:
    """`body.name`, or None for a contract without that field (known per type: asking a pydantic model
    for a field it lacks raises and catches an AttributeError, per event)."""
    has = _HAS.get((type(body), name))
    if has is None:
        has = _HAS[(type(body), name)] = hasattr(body, name)
    return getattr(body, name) if has else None


_last_time: tuple[datetime, str] | None = None


def _formatted(time: datetime) -> str:
    """`iso_time(time)`, remembered for the last time formatted (every event of a unit shares its time)."""
    global _last_time
    if _last_time is None or _last_time[0] is not time:
        _last_time = (time, iso_time(time))
    return _last_time[1]
