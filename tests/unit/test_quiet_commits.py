"""X5: offsets of batches an input only passed over are committed within a second, not once per batch
(`workers.delivery.quiet_commits`); a batch that did anything commits at once, and no commit is ever past
a record not done."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition

from workers.delivery.quiet_commits import QuietCommits

GUARD = 30  # seconds: a guard against a hang, not a timing check


class Consumer:
    """Records its commits: None for `commit()` (the positions), else the explicit offsets."""

    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, int] | None] = []
        self.committed = asyncio.Event()
        self.hold: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.fail: Exception | None = None

    async def commit(self, offsets: dict[TopicPartition, Any] | None = None) -> None:
        self.entered.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.fail is not None:
            raise self.fail
        self.commits.append(None if offsets is None else {tp: o.offset for tp, o in offsets.items()})
        self.committed.set()


class Message:
    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer

    async def ack(self) -> None:
        await self.consumer.commit()


def records(*offsets: tuple[int, int]) -> list[Any]:
    return [SimpleNamespace(topic="t", partition=p, offset=o) for p, o in offsets]


async def committed(consumer: Consumer) -> None:
    await asyncio.wait_for(consumer.committed.wait(), GUARD)
    consumer.committed.clear()


async def test_x5_a_batch_that_did_something_commits_at_once_each_time() -> None:
    consumer, commits = Consumer(), QuietCommits("in", seconds=3600, clock=still)
    for offset in range(3):
        await commits.ack(Message(consumer), records((0, offset)), passed_over=False)
    assert consumer.commits == [None, None, None]


def still() -> float:
    """A clock that does not move: the last commit is never old (the timer alone commits what waits)."""
    return 100.0


async def test_x5_passed_over_batches_right_after_a_commit_wait_and_leave_as_one_commit_of_their_offsets() -> None:
    consumer, commits = Consumer(), QuietCommits("in", seconds=0.05, clock=still)
    await commits.ack(Message(consumer), records((0, 0)), passed_over=False)
    await committed(consumer)
    await commits.ack(Message(consumer), records((0, 1), (1, 7)), passed_over=True)
    await commits.ack(Message(consumer), records((0, 2), (0, 3)), passed_over=True)
    assert consumer.commits == [None]  # nothing yet: both wait
    await committed(consumer)
    assert consumer.commits == [None, {TopicPartition("t", 0): 4, TopicPartition("t", 1): 8}]


async def test_x5_a_passed_over_batch_commits_at_once_when_the_last_commit_is_old() -> None:
    now = [100.0]
    consumer, commits = Consumer(), QuietCommits("in", seconds=1.0, clock=lambda: now[0])
    await commits.ack(Message(consumer), records((0, 0)), passed_over=True)  # no commit before: old
    await commits.ack(Message(consumer), records((0, 1)), passed_over=True)  # 0 s later: waits
    now[0] += 1.0
    await commits.ack(Message(consumer), records((0, 2)), passed_over=True)  # a second later: at once
    assert consumer.commits == [None, None]
    await commits.flush()
    assert consumer.commits == [None, None]  # offset 1 was covered by the positions committed with 2


async def test_x5_a_batch_that_did_something_covers_the_waiting_offsets_and_stops_their_timer() -> None:
    consumer, commits = Consumer(), QuietCommits("in", seconds=0.05, clock=still)
    await commits.ack(Message(consumer), records((0, 0)), passed_over=False)
    await commits.ack(Message(consumer), records((0, 1)), passed_over=True)
    await commits.ack(Message(consumer), records((0, 2)), passed_over=False)  # its positions cover offset 1
    await asyncio.sleep(0.2)
    await commits.flush()
    assert consumer.commits == [None, None]


async def test_x5_flush_commits_what_waits_and_only_once() -> None:
    consumer, commits = Consumer(), QuietCommits("in", seconds=3600, clock=still)
    await commits.ack(Message(consumer), records((0, 0)), passed_over=False)
    await commits.ack(Message(consumer), records((2, 5)), passed_over=True)
    await commits.flush()
    await commits.flush()
    assert consumer.commits == [None, {TopicPartition("t", 2): 6}]


async def test_x5_each_consumer_of_an_input_commits_its_own_offsets() -> None:
    first, second, commits = Consumer(), Consumer(), QuietCommits("in", seconds=3600, clock=still)
    await commits.ack(Message(first), records((0, 0)), passed_over=False)
    await commits.ack(Message(second), records((1, 0)), passed_over=True)  # its first: the last commit is old
    await commits.ack(Message(second), records((1, 1)), passed_over=True)
    await commits.flush()
    assert first.commits == [None]
    assert second.commits == [None, {TopicPartition("t", 1): 2}]


async def test_x5_an_ack_waits_for_the_commit_of_waiting_offsets_in_flight_so_commits_leave_in_order() -> None:
    consumer, commits = Consumer(), QuietCommits("in", seconds=3600, clock=still)
    await commits.ack(Message(consumer), records((0, 0)), passed_over=False)
    await commits.ack(Message(consumer), records((0, 1)), passed_over=True)
    consumer.hold, consumer.entered = asyncio.Event(), asyncio.Event()
    flushing = asyncio.ensure_future(commits.flush())  # its commit of offset 2 is held in flight
    await asyncio.wait_for(consumer.entered.wait(), GUARD)
    acking = asyncio.ensure_future(commits.ack(Message(consumer), records((0, 2)), passed_over=False))
    await asyncio.sleep(0.05)
    assert not acking.done()  # behind the lock, not beside it
    consumer.hold.set()
    await asyncio.wait_for(asyncio.gather(flushing, acking), GUARD)
    assert consumer.commits == [None, {TopicPartition("t", 0): 2}, None]


async def test_x5_waiting_offsets_that_cannot_be_committed_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    consumer, commits = Consumer(), QuietCommits("sync.conversation-events", seconds=3600, clock=still)
    await commits.ack(Message(consumer), records((0, 0)), passed_over=False)
    await commits.ack(Message(consumer), records((0, 1)), passed_over=True)
    consumer.fail = RuntimeError("partition revoked")
    with caplog.at_level(logging.INFO, logger="ticketflow.delivery"):
        await commits.flush()
    assert "sync.conversation-events: offsets of passed-over records not committed" in caplog.text
    consumer.fail = None
    await commits.ack(Message(consumer), records((0, 2)), passed_over=False)
    assert consumer.commits == [None, None]
