"""The consume step every handler shares (X4, X5).

    parse -> process in one DB transaction -> ack

* transient failures (database down, locked) retry with capped backoff, forever: never dead-lettered;
* conflicts (a concurrent update of the same row, a unique key inserted meanwhile) retry a few times;
* `NotYetKnown` retries until the projection it names has read everything published before the
  record arrived (`workers.delivery.barrier`); then the handler decides without waiting;
* `BadMessage`, and any other error, dead-letters the message with its reason;
* the offset is committed (ack) only after the transaction committed or the dead letter was acked.

The FastStream subscribers use AckPolicy.MANUAL, and each consumer processes one message at a time,
so `ack()` (which commits the consumer's position on all its partitions) never passes a message that
is not done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer

from workers.decision import Missing
from workers.delivery.backoff import Backoff, until_available
from workers.delivery.barrier import Mark, Projection, ProjectionBarrier
from workers.delivery.checkpoints import reached
from workers.delivery.deadletter import build_dead_letter, send_dead_letter
from workers.delivery.errors import BadMessage, NotYetKnown, dependency_of, is_conflict, is_transient
from workers.delivery.report import SILENT, Report, input_of
from workers.observability.logs import log_fields, record_log_fields
from workers.observability.tracing import note_outcome, record_span

log = logging.getLogger("ticketflow.delivery")

MAX_CONFLICT_RETRIES = 10
"""A race with another transaction is retried this often before the message counts as failed."""

Process = Callable[[Any, frozenset[str]], Awaitable[None]]
"""process(record, caught_up) runs one transaction for the record; `caught_up` names the projections
that have applied everything published before the record arrived (what is missing there is missing)."""

OnFatal = Callable[[str], None]
"""Told when a record can be neither processed nor dead-lettered: the worker must stop."""


class ReliableHandler:
    def __init__(
        self,
        consumer: str,
        producer: Callable[[], AIOKafkaProducer],
        deadletter_topic: str,
        barrier: ProjectionBarrier | None = None,
        projections: dict[str, Projection] | None = None,
        max_backoff: float = 5.0,
        on_fatal: OnFatal | None = None,
        report: Callable[[], Report] = lambda: SILENT,
        worker: str = "",
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.deadletter_topic = deadletter_topic
        self.barrier = barrier
        self.projections = projections or {}
        self.max_backoff = max_backoff
        self.on_fatal = on_fatal
        self.report = report
        self.worker = worker
        self.input = input_of(consumer)

    async def handle(self, message: Any, process: Process) -> None:
        """Process the FastStream message's record, then ack it."""
        record = message.raw_message
        taken = time.time()
        report = self.report()
        report.waited(self.input, [taken - record.timestamp / 1000])
        await self.run(record, process)
        reached("after_commit_before_ack", self.consumer)
        await message.ack()
        report.batch(self.input, 1, time.time() - taken)
        report.processed(self.input)

    async def run(self, record: Any, process: Process) -> None:
        backoff = Backoff(0.1, self.max_backoff)
        conflicts = 0
        waited: str | None = None
        marks: dict[str, Mark] = {}
        caught_up: frozenset[str] = frozenset()
        while True:
            try:
                with record_span(record, self.worker, self.consumer), \
                        log_fields(**record_log_fields(self.worker, record)):
                    await process(record, caught_up)
                if waited:
                    self.report().available(waited)
                return
            except NotYetKnown as exc:
                if exc.projection in caught_up:
                    raise RuntimeError(f"{exc} although its projection caught up: the handler must decide") from exc
                if exc.projection not in marks:
                    marks[exc.projection] = await self._mark(exc)
                    log.info("%s[%s]@%s names %s; waiting for the %s projection to reach %s",
                             record.topic, record.partition, record.offset, exc, exc.projection,
                             marks[exc.projection])
                if await self._passed(exc, marks[exc.projection]):
                    caught_up |= {exc.projection}
                else:
                    await asyncio.sleep(0.2)
            except BadMessage as exc:
                await self.dead_letter(record, type(exc).__name__, exc.reason, exc.detail)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_conflict(exc) and conflicts < MAX_CONFLICT_RETRIES:
                    conflicts += 1
                    log.info("conflict on %s[%s]@%s, retrying (%d): %r",
                             record.topic, record.partition, record.offset, conflicts, exc)
                    await asyncio.sleep(0.05 * conflicts)
                    continue
                if is_transient(exc):
                    waited = dependency_of(exc)
                    self.report().waiting(waited)
                    log.warning("transient failure on %s[%s]@%s, retrying in %.1fs: %r",
                                record.topic, record.partition, record.offset, backoff.delay, exc)
                    await backoff.wait()
                    continue
                log.exception("processing failed on %s[%s]@%s", record.topic, record.partition, record.offset)
                await self.dead_letter(record, type(exc).__name__, "processing_failed", repr(exc))
                return

    async def catch_up(self, needs: set[Missing]) -> frozenset[str]:
        """Wait until each projection in `needs` has applied everything published, now, on the partitions
        of the keys named; returns the projections that are caught up (for a whole batch at once)."""
        assert self.barrier is not None
        barrier = self.barrier
        names = sorted({n.projection for n in needs})
        for name in names:
            await self._catch_up_one(barrier, self.projections[name], {n.key for n in needs if n.projection == name})
        return frozenset(names)

    @staticmethod
    async def _catch_up_one(barrier: ProjectionBarrier, projection: Projection, keys: set[str]) -> None:
        marks = await until_available(lambda: barrier.marks(projection, keys), "Kafka", log)
        while not await until_available(lambda: barrier.all_passed(projection, marks), "Kafka", log):
            await asyncio.sleep(0.2)

    async def _mark(self, exc: NotYetKnown) -> Mark:
        """Where the projection must get to (retrying while the broker is unreachable)."""
        assert self.barrier is not None and exc.projection in self.projections, f"no projection {exc.projection!r}"
        projection = self.projections[exc.projection]
        return await until_available(lambda: self.barrier.mark(projection, exc.key), "Kafka", log)  # type: ignore[union-attr]

    async def _passed(self, exc: NotYetKnown, mark: Mark) -> bool:
        projection = self.projections[exc.projection]
        return await until_available(lambda: self.barrier.passed(projection, mark), "Kafka", log)  # type: ignore[union-attr]

    async def dead_letter(self, record: Any, error_class: str, reason: str, detail: str) -> None:
        """Publish the dead letter, retrying transient failures forever. A permanent failure is tried once
        more with the minimal dead letter (coordinates, key, reason); if that fails too, nothing can
        take the record: the worker is told to stop and this record is held (never acked)."""
        letter = build_dead_letter(record, self.consumer, error_class, reason, detail)
        backoff = Backoff(0.5, self.max_backoff)
        while True:
            try:
                reached("before_dead_letter", self.consumer)
                await send_dead_letter(self.producer(), self.deadletter_topic, record, letter)
                reached("after_dead_letter_before_ack", self.consumer)
                self.report().dead_lettered(self.input, reason)
                note_outcome("dead_lettered", reason)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_transient(exc):
                    log.warning("dead-letter publish failed, retrying in %.1fs: %r", backoff.delay, exc)
                    await backoff.wait()
                    continue
                if "dlq_truncated" not in dict(letter.headers):
                    log.error("dead-letter publish refused (%r); sending the minimal dead letter", exc)
                    letter = build_dead_letter(record, self.consumer, error_class, reason, detail, minimal=True)
                    continue
                await self._fatal(record, f"the dead-letter topic refuses even the minimal dead letter: {exc!r}")

    async def _fatal(self, record: Any, why: str) -> None:
        message = (f"cannot process or dead-letter {record.topic}[{record.partition}]@{record.offset}: {why}; "
                   f"{self.consumer} stops without committing past it")
        log.critical(message)
        if self.on_fatal is not None:
            self.on_fatal(message)
        await asyncio.Event().wait()  # held until the worker stops: the offset never passes this record
