"""The envelope every Ticketflow message carries on Kafka: CloudEvents 1.0, binary content mode.

Attributes travel in Kafka headers (`ce_id`, `ce_type`, ...), the JSON body is the message itself,
so other services read Ticketflow with any CloudEvents SDK or a plain Kafka client. Inputs from
outside (channels, agents' tools) may omit the headers: the body alone is authoritative.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class Envelope:
    id: str
    type: str
    source: str
    time: datetime
    subject: str | None = None
    account_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None

    def to_headers(self) -> list[tuple[str, bytes]]:
        """The CloudEvents attributes as Kafka headers."""
        return [(k, v.encode()) for k, v in self.header_pairs()]

    def header_pairs(self) -> list[tuple[str, str]]:
        """The CloudEvents attributes as (name, text) pairs (what the outbox stores)."""
        return ce_pairs(self.id, self.type, self.source, iso_time(self.time), self.subject, self.account_id,
                        self.correlation_id, self.causation_id)

    @classmethod
    def from_headers(cls, headers: dict[str, str]) -> Envelope | None:
        """The envelope in `headers`, or None when the sender sent no CloudEvents headers."""
        if "ce_id" not in headers or "ce_type" not in headers:
            return None
        try:
            time = datetime.fromisoformat(headers.get("ce_time", ""))
        except ValueError:
            time = datetime.now(UTC)
        return cls(
            id=headers["ce_id"],
            type=headers["ce_type"],
            source=headers.get("ce_source", "unknown"),
            time=time,
            subject=headers.get("ce_subject"),
            account_id=headers.get("ce_accountid"),
            correlation_id=headers.get("ce_correlationid"),
            causation_id=headers.get("ce_causationid"),
        )


def iso_time(time: datetime) -> str:
    """`ce_time`: the time in UTC, ISO 8601."""
    return time.astimezone(UTC).isoformat()


def ce_pairs(ce_id: str, ce_type: str, source: str, time: str, subject: str | None = None,
             account_id: str | None = None, correlation_id: str | None = None,
             causation_id: str | None = None) -> list[tuple[str, str]]:
    """The CloudEvents attributes as (name, text) pairs, `time` already formatted (`iso_time`); the
    optional ones only when set. Made once per event: built straight from the values, no envelope."""
    pairs = [("ce_specversion", SPEC_VERSION), ("ce_id", ce_id), ("ce_type", ce_type), ("ce_source", source),
             ("ce_time", time), ("content-type", CONTENT_TYPE)]
    if subject:
        pairs.append(("ce_subject", subject))
    if account_id:
        pairs.append(("ce_accountid", account_id))
    if correlation_id:
        pairs.append(("ce_correlationid", correlation_id))
    if causation_id:
        pairs.append(("ce_causationid", causation_id))
    return pairs
