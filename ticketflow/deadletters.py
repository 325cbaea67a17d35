"""Operators' view of the dead-letter topic (X4): list what is there and why, replay one record or every
record matching a filter to the partition it came from.

A replay republishes the original key, value and headers (minus the dlq_* headers, plus
`dlq_replayed_from`) to the ORIGINAL partition, not re-hashed: partition counts or partitioners may
differ, and the record must land where its key's other records are. A dead letter whose value was cut
(`dlq_truncated=true`) is never replayed: the original bytes are gone.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import MessageSizeTooLargeError

from contracts.topics import DEADLETTER
from ticketflow.errors import OperatorError
from ticketflow.operator_kafka import (
    FETCH_SECONDS,
    admin_client,
    fetch_record,
    partition_count,
    reader,
    require_partition,
    writer,
)
from workers.settings import Settings

VALUE_PREFIX_BYTES = 200
REPLAYED_FROM = "dlq_replayed_from"


@dataclass(frozen=True)
class DeadLetter:
    """One record of the dead-letter topic, with its dlq_* headers read out."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int

    @classmethod
    def of(cls, record: Any) -> DeadLetter:
        """From an aiokafka ConsumerRecord of the dead-letter topic."""
        return cls(record.partition, record.offset, record.key, record.value or b"",
                   tuple(record.headers or ()), record.timestamp)

    def header(self, name: str) -> str | None:
        """A header's value as text (the first of that name), or None."""
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace")
        return None

    @property
    def original_topic(self) -> str | None:
        return self.header("dlq_original_topic")

    @property
    def original_partition(self) -> int | None:
        return _int_or_none(self.header("dlq_original_partition"))

    @property
    def original_offset(self) -> int | None:
        return _int_or_none(self.header("dlq_original_offset"))

    @property
    def reason(self) -> str | None:
        return self.header("dlq_reason")

    @property
    def truncated(self) -> bool:
        return (self.header("dlq_truncated") or "").lower() == "true"

    @property
    def time(self) -> datetime:
        """When it was dead-lettered: the dlq_time header, else the record's timestamp."""
        stamped = self.header("dlq_time")
        try:
            parsed = datetime.fromisoformat(stamped) if stamped else None
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)

    def as_json(self) -> dict[str, Any]:
        """What `deadletters list --json` prints for it (one object per line)."""
        return {
            "partition": self.partition, "offset": self.offset,
            "original_topic": self.original_topic, "original_partition": self.original_partition,
            "original_offset": self.original_offset, "consumer": self.header("dlq_consumer"),
            "reason": self.reason, "error_class": self.header("dlq_error_class"),
            "detail": self.header("dlq_detail"), "time": self.time.isoformat(), "truncated": self.truncated,
            "key": self.key.decode(errors="replace") if self.key is not None else None,
            "value_prefix": self.value[:VALUE_PREFIX_BYTES].decode(errors="replace"),
        }

    def line(self) -> str:
        """What `deadletters list` prints for it."""
        cut = " [value truncated: not replayable]" if self.truncated else ""
        key = self.key.decode(errors="replace") if self.key is not None else None
        return (f"p{self.partition}@{self.offset} {self.time.isoformat()} from {self.original_topic}"
                f"[{self.original_partition}]@{self.original_offset} by {self.header('dlq_consumer')}: "
                f"{self.reason} - {(self.header('dlq_detail') or '')[:160]}{cut} | key={key!r} "
                f"value={self.value[:80].decode(errors='replace')!r}")

    def replay_headers(self, dead_letter_topic: str) -> list[tuple[str, bytes]]:
        """The original headers (no dlq_*), plus where the replay came from."""
        kept = [(k, v) for k, v in self.headers if not k.startswith("dlq_")]
        return [*kept, (REPLAYED_FROM, f"{dead_letter_topic}:{self.partition}:{self.offset}".encode())]


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Selection:
    """Which dead letters an operator means: by reason, by original topic, dead-lettered since a time."""

    reason: str | None = None
    topic: str | None = None
    since: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        """True when `letter` passes every filter that was given."""
        return ((self.reason is None or letter.reason == self.reason)
                and (self.topic is None or letter.original_topic == self.topic)
                and (self.since is None or letter.time >= self.since))


def newest_first(letters: list[DeadLetter]) -> list[DeadLetter]:
    """Most recently dead-lettered first (dlq_time, then the record's timestamp and position)."""
    return sorted(letters, key=lambda d: (d.time, d.timestamp_ms, d.partition, d.offset), reverse=True)


async def read_dead_letters(settings: Settings, selection: Selection = Selection()) -> list[DeadLetter]:
    """Every matching dead letter, newest first: all partitions read up to the end offsets they had when
    the read started (records arriving meanwhile are left for the next look); an empty topic returns at once."""
    topic = settings.topic(DEADLETTER)
    async with admin_client(settings.kafka) as admin:
        count = await partition_count(admin, topic)
    if count == 0:
        raise OperatorError(f"the dead-letter topic {topic} does not exist (run `ticketflow topics apply`)")
    async with reader(settings.kafka) as consumer:
        records = await _read_to_end(consumer, [TopicPartition(topic, p) for p in range(count)], selection)
    return newest_first(records)


async def _read_to_end(consumer: Any, partitions: list[TopicPartition], selection: Selection) -> list[DeadLetter]:
    starts = await consumer.beginning_offsets(partitions)
    ends = await consumer.end_offsets(partitions)
    pending = {tp for tp in partitions if ends[tp] > starts[tp]}
    if not pending:
        return []
    consumer.assign(sorted(pending, key=lambda tp: tp.partition))
    for tp in pending:
        consumer.seek(tp, starts[tp])
    found: list[DeadLetter] = []
    stalled_since = time.monotonic()
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=1000)
        if batch:
            stalled_since = time.monotonic()
        elif time.monotonic() - stalled_since > FETCH_SECONDS:
            raise OperatorError(f"reading the dead-letter topic made no progress for {FETCH_SECONDS:.0f}s")
        for tp, records in batch.items():
            found += [d for d in (DeadLetter.of(r) for r in records if r.offset < ends[tp]) if selection.matches(d)]
        for tp in list(pending):
            if await consumer.position(tp) >= ends[tp]:
                pending.discard(tp)
    return found


async def list_dead_letters(settings: Settings, selection: Selection = Selection(), limit: int = 50,
                            as_json: bool = False) -> list[str]:
    """The lines `deadletters list` prints: the `limit` newest matching dead letters."""
    letters = (await read_dead_letters(settings, selection))[:limit]
    if as_json:
        return [json.dumps(d.as_json(), ensure_ascii=False) for d in letters]
    return [d.line() for d in letters] or ["(no dead letters)"]


async def replay_dead_letter(settings: Settings, partition: int, offset: int) -> str:
    """Republish the dead letter at partition/offset to its original topic and partition; the line to print."""
    topic = settings.topic(DEADLETTER)
    letter = DeadLetter.of(await fetch_record(settings.kafka, topic, partition, offset, FETCH_SECONDS))
    async with _Replayer.open(settings) as replayer:
        return await replayer.replay(letter)


async def replay_matching(settings: Settings, selection: Selection, dry_run: bool, say: Callable[[str], None]) -> int:
    """Replay every dead letter matching `selection`, oldest original offset first, saying `[n/total] ...`
    per record (with `dry_run`, only what it would replay). Truncated ones are refused; returns how many."""
    letters = sorted(await read_dead_letters(settings, selection),
                     key=lambda d: (d.original_topic or "", d.original_partition or 0, d.original_offset or 0))
    if not letters:
        say("nothing to replay: no dead letter matches")
        return 0
    refused = 0
    async with _Replayer.open(settings) as replayer:
        for n, letter in enumerate(letters, start=1):
            try:
                line = await (replayer.would_replay(letter) if dry_run else replayer.replay(letter))
            except NotReplayable as exc:
                refused += 1
                line = f"refused: {exc}"
            say(f"[{n}/{len(letters)}] {line}")
    verb = "would replay" if dry_run else "replayed"
    say(f"{verb} {len(letters) - refused} of {len(letters)} matching dead letters; {refused} refused")
    return refused


class NotReplayable(OperatorError):
    """The dead letter cannot be replayed (value truncated, origin unknown, or its partition is gone)."""


@dataclass
class _Replayer:
    """Sends dead letters back where they came from, checking first that they can go there."""

    admin: AIOKafkaAdminClient
    producer: AIOKafkaProducer
    topic: str

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings) -> AsyncIterator[_Replayer]:
        async with admin_client(settings.kafka) as admin, writer(settings.kafka) as producer:
            yield cls(admin, producer, settings.topic(DEADLETTER))

    async def target(self, letter: DeadLetter) -> tuple[str, int]:
        """The original topic and partition, or NotReplayable saying why not."""
        where = f"{self.topic}[{letter.partition}]@{letter.offset}"
        if letter.truncated:
            raise NotReplayable(f"{where} was truncated when dead-lettered (dlq_truncated=true): its original "
                                "value is gone, so it cannot be replayed; have the producer send it again")
        original, partition = letter.original_topic, letter.original_partition
        if original is None or partition is None:
            raise NotReplayable(f"{where} has no dlq_original_topic/dlq_original_partition headers: "
                                "it is not a dead letter Ticketflow wrote")
        try:
            await require_partition(self.admin, original, partition)
        except OperatorError as exc:
            raise NotReplayable(f"not replaying {where}: {exc}") from None
        return original, partition

    async def would_replay(self, letter: DeadLetter) -> str:
        original, partition = await self.target(letter)
        return (f"would replay {self.topic}[{letter.partition}]@{letter.offset} to {original}[{partition}] "
                f"({letter.reason}, dead-lettered {letter.time.isoformat()})")

    async def replay(self, letter: DeadLetter) -> str:
        original, partition = await self.target(letter)
        try:
            sent = await self.producer.send_and_wait(original, value=letter.value, key=letter.key,
                                                     partition=partition, headers=letter.replay_headers(self.topic))
        except MessageSizeTooLargeError:
            raise NotReplayable(f"{self.topic}[{letter.partition}]@{letter.offset} ({len(letter.value)} bytes) is "
                                f"larger than {original} accepts") from None
        return f"replayed {self.topic}[{letter.partition}]@{letter.offset} to {original}[{partition}]@{sent.offset}"
