"""Publishing many records as one producer batch per partition instead of one `producer.send` each.

`producer.send` costs, per record, a metadata check, the partitioner (murmur2 of the key), the
accumulator's bookkeeping and a future. The outbox relay publishes rounds of up to thousands of
records: it builds the batches itself (`producer.create_batch()`), one open batch per partition, in
the order the records come, and submits each when it is full or the round ends
(`producer.send_batch`). Records of one key go to one partition, into batches submitted in order,
so a key's order holds as it does with `send`; each batch has one future for all its records.

The partition of a key is the one aiokafka's default partitioner gives it (murmur2 of the key over
all the topic's partitions), so a record lands where `send` would have put it; it is remembered per
(topic, key) while the topic's partition count stays the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

REMEMBERED_KEYS = 200_000
"""How many (topic, key) -> partition a producer remembers before it starts again (bounded memory)."""


class Partitions:
    """The partition of each key of a topic, as `producer.send` would choose it."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self._counts: dict[str, int] = {}
        self._known: dict[tuple[str, bytes], int] = {}

    async def refresh(self, topics: set[str]) -> dict[str, Exception]:
        """Read the partition count of these topics (waiting for their metadata); forget keys of a topic
        whose count changed. Returns the topics whose metadata could not be had, with why."""
        failed: dict[str, Exception] = {}
        for topic in topics:
            try:
                count = len(await self.producer.partitions_for(topic))
            except Exception as exc:
                failed[topic] = exc
                continue
            if self._counts.get(topic, count) != count:
                self._known.clear()
            self._counts[topic] = count
        return failed

    def of(self, topic: str, key: bytes) -> int:
        found = self._known.get((topic, key))
        if found is None:
            if len(self._known) >= REMEMBERED_KEYS:
                self._known.clear()
            found = self._known[(topic, key)] = (murmur2(key) & 0x7FFFFFFF) % self._counts[topic]
        return found


@dataclass
class Submitted:
    """One batch handed to the producer: the records (caller's items) it holds, and its future (or why
    the producer would not take it)."""

    items: list[Any]
    future: asyncio.Future[Any] | None = None
    error: Exception | None = None


async def outcomes(batches: Sequence[Submitted]) -> list[BaseException | None]:
    """Per batch, in order: None once the broker acknowledged it, else why not."""
    futures = [b.future for b in batches if b.future is not None]
    results = iter(await asyncio.gather(*futures, return_exceptions=True))
    return [b.error if b.future is None else _error(next(results)) for b in batches]


def _error(result: Any) -> BaseException | None:
    return result if isinstance(result, BaseException) else None


@dataclass
class _Open:
    builder: Any
    items: list[Any] = field(default_factory=list)


class PartitionBatches:
    """Collects records into one open batch per (topic, partition); `add` submits a full one, `close`
    submits the rest. `submitted` lists every batch in the order they were submitted.

    `alone`: every record in a batch of its own (the broker accepts or refuses a batch as a whole: this
    tells which record it refuses)."""

    def __init__(self, producer: AIOKafkaProducer, partitions: Partitions, alone: bool = False) -> None:
        self.producer = producer
        self.partitions = partitions
        self.alone = alone
        self._open: dict[tuple[str, int], _Open] = {}
        self.submitted: list[Submitted] = []

    async def add(self, item: Any, topic: str, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]]) -> None:
        """Add one record (`item`: what the caller gets back with its batch's outcome)."""
        tp = (topic, self.partitions.of(topic, key))
        batch = self._open.get(tp)
        if batch is None:
            batch = self._open[tp] = _Open(self.producer.create_batch())
        if batch.builder.append(timestamp=None, key=key, value=value, headers=headers) is None:  # full
            await self._submit(tp, self._open.pop(tp))
            batch = self._open[tp] = _Open(self.producer.create_batch())
            batch.builder.append(timestamp=None, key=key, value=value, headers=headers)  # a first record always fits
        batch.items.append(item)
        if self.alone:
            await self._submit(tp, self._open.pop(tp))

    async def close(self) -> None:
        """Submit every open batch."""
        for tp in list(self._open):
            await self._submit(tp, self._open.pop(tp))

    async def _submit(self, tp: tuple[str, int], batch: _Open) -> None:
        batch.builder.close()
        submitted = Submitted(batch.items)
        self.submitted.append(submitted)
        try:
            submitted.future = await self.producer.send_batch(batch.builder, tp[0], partition=tp[1])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            submitted.error = exc
