"""Consumer-group progress, sampled from the broker the way an operator sees it (`ticketflow lag`,
`kafka.sh groups --describe`): committed offsets of every worker group, the end offsets of their
topics, and who holds which partition.

Recovery of a fault: the time from the moment the fault is lifted (the killed worker restarted, the
paused one resumed, the server back) until, in every group of the affected workers, each partition
that has work waiting (records past the offset committed when the fault struck) is held by a member
of a stable group that has committed progress since the fault. A consumer takes one record at a time
and drains what it fetched from one partition before the next, so under a backlog its other
partitions wait their turn; a member moving at all is what shows it is back. A partition with nothing
waiting imposes nothing, and while no partition has work the worker's recovery is not yet observable
(the next effect of that worker is what shows it).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from tests.chaos.infra import cancel
from tests.chaos.names import WORKER_GROUPS, Run, partitions_of

Key = tuple[str, TopicPartition]


@dataclass(frozen=True)
class Sample:
    at: float
    committed: dict[Key, int]
    ends: dict[TopicPartition, int]

    def lag(self, group: str, parts: list[TopicPartition]) -> int:
        return sum(max(0, self.ends.get(tp, 0) - max(self.committed.get((group, tp), 0), 0)) for tp in parts)


class Monitor:
    def __init__(self, run: Run, interval: float = 0.5) -> None:
        self.run = run
        self.interval = interval
        self.groups = [(w, run.group(w, p), run.topic(t)) for w, p, t in WORKER_GROUPS]
        self.parts: dict[str, list[TopicPartition]] = {}
        self.latest: Sample | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._fresh = asyncio.Condition()
        self.stuck: list[str] = []
        """After a recovery that did not come: the partitions with work that had not moved."""

    async def start(self) -> None:
        bootstrap = self.run.bootstrap
        topics = sorted({t for _w, _g, t in self.groups})
        for tp in await partitions_of(bootstrap, topics):
            self.parts.setdefault(tp.topic, []).append(tp)
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5_000)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                          request_timeout_ms=5_000)
        await self._admin.start()
        await self._consumer.start()
        self._task = asyncio.create_task(self._loop(), name="chaos-monitor")

    async def stop(self) -> None:
        await cancel(self._task)
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()

    async def sample(self) -> Sample:
        assert self._admin is not None and self._consumer is not None
        every = [tp for parts in self.parts.values() for tp in parts]
        ends = await self._consumer.end_offsets(every)

        async def one(group: str, topic: str) -> dict[Key, int]:
            got = await self._admin.list_consumer_group_offsets(group, partitions=self.parts[topic])  # type: ignore[union-attr]
            return {(group, tp): (meta.offset if meta is not None else -1) for tp, meta in got.items()}

        committed: dict[Key, int] = {}
        for part in await asyncio.gather(*(one(g, t) for _w, g, t in self.groups)):
            committed.update(part)
        return Sample(time.time(), committed, ends)

    async def _loop(self) -> None:
        while True:
            try:
                sample = await asyncio.wait_for(self.sample(), 10)
            except asyncio.CancelledError:
                raise
            except Exception:  # the broker is down or failing over: try again
                await asyncio.sleep(self.interval)
                continue
            self.latest = sample
            async with self._fresh:
                self._fresh.notify_all()
            await asyncio.sleep(self.interval)

    async def next_sample(self, after: float, timeout: float) -> Sample | None:
        """The first sample taken after `after` (None when the broker gave none within `timeout`)."""
        deadline = time.monotonic() + timeout
        while self.latest is None or self.latest.at <= after:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            async with self._fresh:
                try:
                    await asyncio.wait_for(self._fresh.wait(), min(remaining, 1.0))
                except TimeoutError:
                    pass
        return self.latest

    def groups_of(self, workers: set[str]) -> list[tuple[str, list[TopicPartition]]]:
        return [(g, self.parts[t]) for w, g, t in self.groups if w in workers]

    def backlog(self, workers: set[str]) -> int:
        """Records waiting in the affected workers' groups, by the latest sample (0 before the first)."""
        if self.latest is None:
            return 0
        return sum(self.latest.lag(g, parts) for g, parts in self.groups_of(workers))

    async def holders(self, group: str) -> tuple[str, dict[TopicPartition, str]]:
        """The group's state and the member holding each partition."""
        assert self._admin is not None
        described = await self._admin.describe_consumer_groups([group])
        state, held = "Unknown", {}
        for found in described[0].groups:
            state = found[2]
            for member in found[5]:
                if member[-1]:
                    for tp in ConsumerProtocolMemberAssignment.decode(member[-1]).partitions():
                        held[tp] = member[0]
        return state, held

    async def recovery(self, workers: set[str], before: Sample, lifted: float, timeout: float) -> float | None:
        """Seconds from `lifted` until every partition of `workers`' groups with work waiting since `before`
        is held by a member of a stable group that has committed progress since; None when that did not
        happen within `timeout` (`self.stuck` then says where)."""
        groups = self.groups_of(workers)
        seen = lifted
        deadline = time.time() + timeout
        self.stuck = []
        while time.time() < deadline:
            sample = await self.next_sample(seen, max(0.5, deadline - time.time()))
            if sample is None:
                return None
            seen = sample.at
            try:
                holders = await asyncio.wait_for(asyncio.gather(*(self.holders(g) for g, _p in groups)), 10)
            except Exception:  # the broker is failing over: look again
                continue
            waiting, stuck = 0, []
            for (group, parts), (state, held) in zip(groups, holders, strict=True):
                active = {held[tp] for tp in parts if tp in held
                          and sample.committed.get((group, tp), -1) > before.committed.get((group, tp), -1)}
                for tp in parts:
                    if sample.ends.get(tp, 0) <= max(before.committed.get((group, tp), -1), 0):
                        continue
                    waiting += 1
                    if state != "Stable" or held.get(tp) not in active:
                        stuck.append(f"{group.rsplit('ticketflow.', 1)[-1]}[{tp.partition}] ({state}, "
                                     f"{'held' if tp in held else 'unassigned'}, "
                                     f"{sample.ends.get(tp, 0) - max(sample.committed.get((group, tp), -1), 0)} waiting)")
            self.stuck = stuck
            if waiting and not stuck:
                return max(0.0, sample.at - lifted)
        return None
