"""Consumer lag per partition of a worker's own groups, from committed offsets (what
`ticketflow lag` sums per group). A group that never committed on a partition lags by the whole
partition (it starts from the earliest record)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from workers.kafka import start_both


@dataclass(frozen=True)
class PartitionLag:
    """How many records of `topic[partition]` come after `group`'s committed offset."""

    group: str
    topic: str
    partition: int
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - (self.committed or 0))


class LagReader:
    """Long-lived admin and consumer clients that measure lag (one per process; `start()`, `close()`).

    `client_options` are the keyword arguments every aiokafka client takes (bootstrap servers, security),
    e.g. `settings.kafka.options()`."""

    def __init__(self, client_options: Mapping[str, Any], client_id: str = "ticketflow-lag") -> None:
        self._options = {**client_options, "client_id": client_id}
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Connect (a no-op when connected); a failed start leaves nothing open and may be tried again."""
        if self._admin is not None:
            return
        self._admin, self._consumer = await start_both(
            AIOKafkaAdminClient(**self._options), AIOKafkaConsumer(**self._options, enable_auto_commit=False))

    async def close(self) -> None:
        admin, consumer = self._admin, self._consumer
        self._admin = self._consumer = None
        if consumer is not None:
            await consumer.stop()
        if admin is not None:
            await admin.close()

    def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            raise RuntimeError("LagReader is not started")
        return self._admin, self._consumer

    async def partitions(self, topics: Sequence[str]) -> list[TopicPartition]:
        """Every partition of `topics` the broker knows (a missing topic has none)."""
        admin, _consumer = self._clients()
        described = await admin.describe_topics(list(topics))
        return sorted((TopicPartition(t["topic"], p["partition"]) for t in described if t["error_code"] == 0
                       for p in t["partitions"]), key=lambda tp: (tp.topic, tp.partition))

    async def read(self, groups: Sequence[tuple[str, str]]) -> list[PartitionLag]:
        """The lag of every (group, topic) pair on each partition of its topic."""
        admin, consumer = self._clients()
        parts = await self.partitions(sorted({topic for _group, topic in groups}))
        ends = await consumer.end_offsets(parts) if parts else {}
        lags = []
        for group, topic in groups:
            mine = [tp for tp in parts if tp.topic == topic]
            if not mine:
                continue
            committed = await admin.list_consumer_group_offsets(group, partitions=mine)
            for tp in mine:
                meta = committed.get(tp)
                offset = meta.offset if meta is not None and meta.offset >= 0 else None
                lags.append(PartitionLag(group, topic, tp.partition, offset, ends[tp]))
        return lags
