"""Watching topics and consumer groups on the real broker from outside, the way another service
would: used by the demo, the tests and the benchmarks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from aiokafka import AIOKafkaConsumer

from ticketflow.lag import group_lag
from ticketflow.topology import partitions_of
from workers.kafka import KafkaAccess, access, started_admin, started_consumer

WAIT_SECONDS = 60.0
"""How long to wait for an eventual outcome before giving up (generous: this is no timing check)."""


@dataclass
class Seen:
    topic: str
    partition: int
    offset: int
    key: str | None
    headers: dict[str, str]
    value: bytes

    @cached_property
    def body(self) -> dict[str, Any]:
        return json.loads(self.value)

    @cached_property
    def type(self) -> str | None:
        try:
            body = self.body
        except (ValueError, RecursionError):
            return None
        return body.get("type") if isinstance(body, dict) else None


class Probe:
    """Reads topics from the beginning in the background and keeps every record it saw."""

    def __init__(self, kafka: KafkaAccess | str, topics: list[str]) -> None:
        self.kafka = access(kafka)
        self.topics = topics
        self.records: list[Seen] = []
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._new = asyncio.Condition()

    async def start(self) -> None:
        consumer = self.kafka.consumer(client_id="ticketflow-probe")
        try:
            await consumer.start()
            parts = await partitions_of(self.kafka, self.topics)
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._consumer:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            if not batch:
                continue
            for recs in batch.values():
                for r in recs:
                    headers = {k: v.decode(errors="replace") for k, v in r.headers or ()}
                    self.records.append(Seen(r.topic, r.partition, r.offset, r.key.decode() if r.key else None,
                                             headers, r.value or b""))
            async with self._new:
                self._new.notify_all()

    def matching(self, predicate: Callable[[Seen], bool]) -> list[Seen]:
        return [r for r in self.records if _safe(predicate, r)]

    async def wait_for(self, predicate: Callable[[Seen], bool], count: int = 1, timeout: float = WAIT_SECONDS,
                       what: str = "") -> list[Seen]:
        """The matching records, once at least `count` have been seen; fails after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.matching(predicate)
            if len(found) >= count:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"waited for {count} x {what or predicate}; saw {len(found)}")
            async with self._new:
                try:
                    await asyncio.wait_for(self._new.wait(), timeout=min(remaining, 0.5))
                except TimeoutError:
                    pass


def _safe(predicate: Callable[[Seen], bool], r: Seen) -> bool:
    try:
        return bool(predicate(r))
    except (KeyError, ValueError, TypeError, AttributeError, RecursionError):
        return False


async def settle(kafka: KafkaAccess | str, groups: list[tuple[str, str]], timeout: float = WAIT_SECONDS,
                 also_quiet: Callable[[], Awaitable[bool]] | None = None) -> None:
    """Wait until every (group, topic) has committed everything published so far, twice in a row.

    Workers produce into each other's inputs, so one quiet pass is not enough: two consecutive passes
    with zero lag everywhere (and `also_quiet`, e.g. an empty outbox) mean the whole system has
    processed all it was given.
    """
    parts = await partitions_of(kafka, sorted({t for _g, t in groups}))
    by_topic = {t: [tp for tp in parts if tp.topic == t] for _g, t in groups}
    async with started_admin(kafka, "ticketflow-probe") as admin, started_consumer(kafka, "ticketflow-probe") as consumer:
        deadline = time.monotonic() + timeout
        quiet = 0
        lags: list[int] = []
        while quiet < 2:
            if time.monotonic() > deadline:
                raise AssertionError(f"the workers did not catch up within {timeout}s: {list(zip(groups, lags, strict=False))}")
            lags = [await group_lag(admin, consumer, g, by_topic[t]) for g, t in groups]
            idle = sum(lags) == 0 and (also_quiet is None or await also_quiet())
            quiet = quiet + 1 if idle else 0
            await asyncio.sleep(0.3)
