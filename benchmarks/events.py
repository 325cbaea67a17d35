"""Reading what the workers publish, as another service would: counts per `ce_type`, the bodies of the
types asked for, and the time each record was seen (for latency)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from workers.kafka import KafkaAccess

Hook = Callable[[dict[str, Any], float], None]


class WaitedTooLong(RuntimeError):
    """Something the benchmark waits for did not happen in time (not the scenario's own budget)."""


def record_type(record: Any) -> str | None:
    for key, value in record.headers or ():
        if key == "ce_type":
            return bytes(value).decode(errors="replace")
    try:
        body = json.loads(record.value)
    except ValueError:
        return None
    return body.get("type") if isinstance(body, dict) else None


class Collector:
    """A consumer (no group) on `topics` from the beginning (or from their end, `from_end`), counting
    records per type and handing the decoded body of the `hooks`' types to them with the time seen."""

    def __init__(self, kafka: KafkaAccess, topics: list[str], from_end: bool = False) -> None:
        self.kafka = kafka
        self.topics = topics
        self.from_end = from_end
        self.counts: Counter[str] = Counter()
        self.hooks: dict[str, list[Hook]] = {}
        self.bodies: dict[str, list[dict[str, Any]]] = {}
        self._keep: set[str] = set()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._parts: list[TopicPartition] = []

    def keep(self, *types: str) -> None:
        """Keep the bodies of these types (in `bodies`)."""
        self._keep |= set(types)

    def on(self, type_: str, hook: Hook) -> None:
        self.hooks.setdefault(type_, []).append(hook)

    async def start(self) -> None:
        admin = self.kafka.admin("bench-collector")
        await admin.start()
        try:
            described = await admin.describe_topics(self.topics)
        finally:
            await admin.close()
        self._parts = sorted(TopicPartition(t["topic"], p["partition"]) for t in described if t["error_code"] == 0
                             for p in t["partitions"])
        if not self._parts:
            raise RuntimeError(f"no partitions found for {self.topics}")
        self._consumer = self.kafka.consumer(client_id="bench-collector", fetch_max_wait_ms=100)
        await self._consumer.start()
        self._consumer.assign(self._parts)
        if self.from_end:
            await self._consumer.seek_to_end(*self._parts)
            for tp in self._parts:  # resolve the end now, not at the first fetch (which may be after sends)
                await self._consumer.position(tp)
        else:
            await self._consumer.seek_to_beginning(*self._parts)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            seen = time.monotonic()
            for records in batch.values():
                for r in records:
                    type_ = record_type(r)
                    if type_ is None:
                        continue
                    self.counts[type_] += 1
                    if type_ in self.hooks or type_ in self._keep:
                        body = json.loads(r.value)
                        if type_ in self._keep:
                            self.bodies.setdefault(type_, []).append(body)
                        for hook in self.hooks.get(type_, ()):
                            hook(body, seen)

    async def wait_count(self, type_: str, count: int, timeout: float, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while self.counts[type_] < count:
            if self._task is not None and self._task.done():
                self._task.result()
            if self.counts["command.rejected"] and "command.rejected" in self._keep:
                bodies = self.bodies.get("command.rejected", [])[:3]
                raise RuntimeError(f"commands were rejected while waiting for {type_} {what}: "
                                   f"{[(b.get('command_type'), b.get('reason'), b.get('detail')) for b in bodies]}")
            if time.monotonic() > deadline:
                raise WaitedTooLong(f"waited {timeout:.0f}s for {count} x {type_} {what}; saw {self.counts[type_]} "
                                   f"(all seen: {dict(self.counts)})")
            await asyncio.sleep(0.1)

    async def caught_up(self, timeout: float = 120.0) -> None:
        """Wait until everything on the topics when called has been read."""
        assert self._consumer is not None
        ends = await self._consumer.end_offsets(self._parts)
        deadline = time.monotonic() + timeout
        while True:
            positions = {tp: await self._consumer.position(tp) for tp in self._parts}
            if all(positions[tp] >= ends[tp] for tp in self._parts):
                return
            if time.monotonic() > deadline:
                raise WaitedTooLong(f"reader did not reach the end of {self.topics} in {timeout:.0f}s")
            await asyncio.sleep(0.1)


async def count_types(kafka: KafkaAccess, topics: list[str], timeout: float = 120.0) -> dict[str, int]:
    """Records per type on `topics`, from the beginning to their end now."""
    collector = Collector(kafka, topics)
    await collector.start()
    try:
        await collector.caught_up(timeout)
        return dict(collector.counts)
    finally:
        await collector.stop()
