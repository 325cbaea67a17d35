"""Offset commits for batches an input only passed over, gathered into one a second (X5).

The sync and ticketing workers read every conversation event and act on a few types; most of their
batches hold only records they pass over (`message_received`, ...), and each of those batches still
committed its offsets: a request to the group coordinator and a record in `__consumer_offsets` per
partition its consumer holds, per batch, at light load per event (ADR 18). Such a batch changed
nothing, so committing its offsets late loses nothing: should the worker stop or die first, the
records are read again and passed over again.

* A batch that did anything (a transaction, a dead letter) commits at once, as always: `message.ack()`
  commits the consumer's positions, which covers the passed-over batches before it.
* A passed-over batch commits at once too when the last commit of its consumer is `QUIET_SECONDS` old;
  otherwise its offsets wait, and a timer commits them `QUIET_SECONDS` later unless a commit came first.
  So an idle input's committed offsets reach the end of its partitions within about a second.
* The timer commits the explicit offsets of the records it holds (never the consumer's positions, which
  may already be past a batch in progress), under the same lock as the acks of that consumer, so commits
  leave in order and none is past a record not done.
* `flush()` commits what waits (a worker about to stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

log = logging.getLogger("ticketflow.delivery")

QUIET_SECONDS = 1.0
"""How long the offsets of passed-over batches may wait for a commit."""


@dataclass
class _Consumer:
    """One Kafka consumer's commits (an input has one per member, `consumers_per_input`)."""

    consumer: Any
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_commit: float = float("-inf")
    waiting: dict[TopicPartition, int] = field(default_factory=dict)
    """The next offset to commit per partition, for the passed-over records not committed yet."""
    timer: asyncio.TimerHandle | None = None


class QuietCommits:
    """Acks the batches of one input, gathering the commits of batches that only passed records over."""

    def __init__(self, consumer_name: str, seconds: float = QUIET_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.consumer_name = consumer_name
        self.seconds = seconds
        self.clock = clock
        self._consumers: dict[int, _Consumer] = {}
        self._flushes: set[asyncio.Task[None]] = set()

    async def ack(self, message: Any, records: Sequence[Any], passed_over: bool) -> None:
        """Commit the offsets of `message`'s batch (its records all done), now or within `seconds` when the
        batch only passed records over."""
        state = self._consumers.get(id(message.consumer))
        if state is None:
            state = self._consumers[id(message.consumer)] = _Consumer(message.consumer)
        async with state.lock:
            now = self.clock()
            if not passed_over or now - state.last_commit >= self.seconds:
                await message.ack()  # the consumer's positions: every record it returned is done
                state.last_commit = now
                state.waiting.clear()
                self._cancel(state)
                return
            for record in records:
                tp = TopicPartition(record.topic, record.partition)
                state.waiting[tp] = max(state.waiting.get(tp, 0), record.offset + 1)
            if state.timer is None:
                state.timer = asyncio.get_running_loop().call_later(self.seconds, self._spawn_flush, state)

    def _spawn_flush(self, state: _Consumer) -> None:
        state.timer = None
        task = asyncio.ensure_future(self._commit_waiting(state))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    @staticmethod
    def _cancel(state: _Consumer) -> None:
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None

    async def _commit_waiting(self, state: _Consumer) -> None:
        async with state.lock:
            waiting, state.waiting = state.waiting, {}
            self._cancel(state)
            if not waiting:
                return
            try:
                await state.consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in waiting.items()})
            except Exception as exc:  # a rebalance took the partition, the broker is away: read again, passed over again
                log.info("%s: offsets of passed-over records not committed (%r); they will be read again",
                         self.consumer_name, exc)
                return
            state.last_commit = self.clock()

    async def flush(self) -> None:
        """Commit every offset that waits (a worker about to stop its consumers)."""
        for task in list(self._flushes):
            with contextlib.suppress(Exception):
                await task
        for state in list(self._consumers.values()):
            await self._commit_waiting(state)
