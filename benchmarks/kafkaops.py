"""The broker side of the benchmark: preloading records, watching a consumer group drain, cleaning up.

Everything here talks to Kafka from outside, like another service would (committed offsets, end
offsets, group state), so it measures whatever the workers do inside, whichever way they do it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka import errors as kafka_errors
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import (
    DeleteGroupsRequest,
    DescribeGroupsRequest_v1,
    DescribeGroupsRequest_v2,
)
from aiokafka.protocol.api import Request

from benchmarks.data import Record
from workers.kafka import KafkaAccess

log = logging.getLogger("bench")


class _DescribeGroups(Request[DescribeGroupsRequest_v1 | DescribeGroupsRequest_v2]):  # type: ignore[misc]
    """DescribeGroups pinned to v1-v2: aiokafka 0.14's admin negotiates v3, whose answer from Kafka 4.x
    it cannot decode (it drops the connection)."""

    API_KEY = 15

    def __init__(self, groups: list[str]) -> None:
        self.groups = groups

    def build(self, request_struct_class: Any) -> Any:
        return request_struct_class(self.groups)


COORDINATOR_AWAY = (kafka_errors.GroupCoordinatorNotAvailableError, kafka_errors.NotCoordinatorForGroupError,
                    kafka_errors.CoordinatorLoadInProgressError)
"""A group's coordinator not answering yet: a broker just started creates `__consumer_offsets` on the first
lookup, and a restart moves coordinators. Asked again, as any Kafka client would."""


@dataclass
class GroupState:
    state: str
    members: int


class Broker:
    """One admin client and one offsets consumer for the whole run."""

    def __init__(self, kafka: KafkaAccess) -> None:
        self.kafka = kafka
        self.admin: AIOKafkaAdminClient = kafka.admin("bench-admin")
        self.offsets: AIOKafkaConsumer = kafka.consumer(client_id="bench-offsets")
        self._coordinators: dict[str, int] = {}

    async def start(self) -> None:
        await self.admin.start()
        await self.offsets.start()

    async def close(self) -> None:
        await self.offsets.stop()
        await self.admin.close()

    async def partitions(self, topic: str) -> list[TopicPartition]:
        for _ in range(50):
            described = await self.admin.describe_topics([topic])
            if described and described[0]["error_code"] == 0 and described[0]["partitions"]:
                return sorted(TopicPartition(topic, p["partition"]) for p in described[0]["partitions"])
            await asyncio.sleep(0.2)
        raise RuntimeError(f"topic {topic} has no partitions")

    async def end_total(self, parts: Sequence[TopicPartition]) -> int:
        ends = await self.offsets.end_offsets(list(parts))
        return sum(ends.values())

    async def committed_total(self, group: str, parts: Sequence[TopicPartition]) -> int:
        for _ in range(50):
            try:
                committed = await self.admin.list_consumer_group_offsets(group, partitions=list(parts))
                break
            except COORDINATOR_AWAY:
                await asyncio.sleep(0.2)
        else:
            raise RuntimeError(f"no coordinator answered for group {group} in 10 s")
        return sum(m.offset for m in committed.values() if m is not None and m.offset > 0)

    async def group_state(self, group: str) -> GroupState:
        """The group's state as its coordinator reports it; `Unknown` while no coordinator answers for it (a
        broker just started creates `__consumer_offsets` on the first group's lookup, and moves
        coordinators on a restart): the caller asks again, as any Kafka client would."""
        try:
            if group not in self._coordinators:
                self._coordinators[group] = await self.admin.find_coordinator(group)
            response = await self.admin._send_request(_DescribeGroups([group]), self._coordinators[group])
        except COORDINATOR_AWAY:
            self._coordinators.pop(group, None)
            return GroupState("Unknown", 0)
        code, _name, state, _ptype, _protocol, members = response.groups[0][:6]
        if code in {e.errno for e in COORDINATOR_AWAY}:
            self._coordinators.pop(group, None)
            return GroupState("Unknown", 0)
        return GroupState(state, len(members))

    async def delete_groups(self, groups: list[str]) -> None:
        for group in groups:
            with contextlib.suppress(Exception):
                node = await self.admin.find_coordinator(group)
                await self.admin._send_request(DeleteGroupsRequest([group]), node)

    async def delete_prefix(self, prefix: str) -> None:
        """Delete every topic and consumer group under `prefix` (a scenario's own)."""
        if not prefix.startswith("bench-"):
            raise ValueError(f"refusing to delete under {prefix!r}")
        topics = [t for t in await self.admin.list_topics() if t.startswith(prefix)]
        if topics:
            await self.admin.delete_topics(topics)
        groups = [g for g, *_ in await self.admin.list_consumer_groups() if g.startswith(prefix)]
        await self.delete_groups(groups)


async def produce(kafka: KafkaAccess, topic: str, records: Sequence[Record], client_id: str = "bench-preload") -> float:
    """Publish `records` to `topic` as fast as the producer goes (acks=all, idempotent); returns seconds."""
    producer = kafka.producer(client_id, linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    started = time.monotonic()
    try:
        pending = []
        for r in records:
            pending.append(await producer.send(topic, key=r.key, value=r.value, headers=r.headers))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - started


@dataclass
class Drain:
    """How a consumer group drained a preloaded backlog."""

    status: str  # ok | capped | failed
    backlog: int
    measured: int
    seconds: float
    wall_seconds: float
    start_by: str
    note: str = ""

    @property
    def rate(self) -> float:
        return self.measured / self.seconds if self.seconds > 0 else 0.0


async def wait_stable(broker: Broker, group: str, members: int, timeout: float,
                      alive: Callable[[], str | None] | None = None) -> None:
    """Wait until the broker reports `group` Stable with `members` members (all joined and assigned)."""
    deadline = time.monotonic() + timeout
    state = GroupState("?", 0)
    while not (state.state == "Stable" and state.members >= members):
        if time.monotonic() > deadline:
            raise RuntimeError(f"group {group} not stable with {members} members within {timeout:.0f}s: {state}")
        if alive is not None and (dead := alive()):
            raise RuntimeError(dead)
        with contextlib.suppress(Exception):
            state = await broker.group_state(group)
        await asyncio.sleep(0.1)


async def watch_drain(broker: Broker, group: str, parts: Sequence[TopicPartition], members: int, spawned: float,
                      cap: float, on_start: Callable[[], None], done: Callable[[], Awaitable[bool]] | None = None,
                      alive: Callable[[], str | None] | None = None, interval: float = 0.02,
                      started: float | None = None) -> Drain:
    """Wait until `group` has committed the end of every partition and `done()` says the rest is done
    too (e.g. an empty outbox).

    The measured window starts when the broker reports the group Stable with `members` members (the
    processes are up, subscribed and assigned: start-up and imports are left out); should one process
    commit before that is seen (or, with several, half the backlog be gone before the last joins), it
    starts at that commit. The rate is what was committed inside the
    window over its length: (end - committed at the start) / (finish - start).

    `started`: the window started then, with nothing committed (the processes were up before the records
    arrived; the caller marked their CPU itself).
    """
    ends = await broker.end_total(parts)
    # what the group had done before: a setup phase (nothing when the processes were waiting for these records)
    baseline = 0 if started is not None else await broker.committed_total(group, parts)
    backlog = ends - baseline
    deadline = spawned + cap
    start_at: float | None = started
    start_committed = baseline
    start_by = "records sent to running processes" if started is not None else ""
    last_state = GroupState("?", 0)
    committed = baseline
    while True:
        now = time.monotonic()
        if now > deadline:
            if start_at is None:
                start_at, start_committed, start_by = now, committed, "never started"
            return Drain("capped", backlog, committed - start_committed, now - start_at, now - spawned, start_by,
                         f"capped at {cap:.0f}s: {committed - baseline}/{backlog} committed, group {last_state.state}")
        if alive is not None and (dead := alive()):
            return Drain("failed", backlog, committed - start_committed, now - (start_at or now), now - spawned,
                         start_by, dead)
        committed = await broker.committed_total(group, parts)
        if start_at is None:
            with contextlib.suppress(Exception):
                last_state = await broker.group_state(group)
            if last_state.state == "Stable" and last_state.members >= members:
                start_at, start_committed, start_by = time.monotonic(), committed, "group stable"
                on_start()
            elif committed > baseline and (members == 1 or (committed - baseline) * 2 >= backlog):
                # one process already at work before we saw it stable; or, with several, the first ones
                # took half the backlog before the last joined: measure the rest from here
                start_at, start_committed, start_by = time.monotonic(), committed, "first commit"
                on_start()
        if committed >= ends and start_at is not None and (done is None or await done()):
            finished = time.monotonic()
            return Drain("ok", backlog, ends - start_committed, finished - start_at, finished - spawned, start_by)
        await asyncio.sleep(interval)
