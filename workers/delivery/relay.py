"""The outbox relay: publishes committed outbox rows in order, then deletes them (X3, X5).

One relay per worker process polls its own rows (`producer` column), woken after every commit that
wrote some (once per batch). On PostgreSQL a session advisory lock, held on the relay's own
connection, lets only one replica of a worker relay at a time, so rows leave in id order; no
transaction stays open while Kafka acknowledges. Rows are published together and deleted with one
statement per round: the topic keeps what was published, and a deleted row costs the database less
than one marked sent and deleted an hour later (ADR 2, amendment of 2026-11-26).
A crash between publish and delete publishes those rows again on restart: events are
at-least-once with stable ids (`ce_id`), and every Ticketflow consumer drops repeats.

A row the broker can never take (larger than a record may be, or refused for good) is parked:
`failed_at` and `failure` are set, an error is logged, and the relay goes on with every other key.
The rows behind a parked row with the same topic and key are held, unsent, so that key's order
holds: an operator lists parked rows and retries or discards them (`ticketflow outbox`). ADR 8.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import Text, cast, delete, exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.topics import RECORD_MAX_BYTES
from storage.json_codec import loads
from storage.queries import any_of, built, keys
from storage.tables import outbox, processed_messages
from storage.unit_of_work import now_utc
from workers.delivery.backoff import Backoff
from workers.delivery.checkpoints import reached
from workers.delivery.errors import is_transient
from workers.delivery.partition_batches import PartitionBatches, Partitions, outcomes
from workers.delivery.report import SILENT, Report

log = logging.getLogger("ticketflow.relay")

PRODUCER_BATCH_BYTES = 512 * 1024
"""`max_batch_size` of a producer the relay publishes with: rounds of up to 2,000 records go out as one
batch per partition instead of a new one every 16 KiB (aiokafka's default), in fewer, larger produce
requests. Under the broker's record batch limit (1 MiB); a single larger record travels in a batch of
its own."""
STANDBY_SECONDS = 1.0
"""How often a replica whose relay does not hold its worker's outbox lock (another replica relays) tries
for it: when the holder dies, its session ends and a standby takes over within this long. Tried at the
relay's own interval (50 ms), a standby cost its worker and PostgreSQL about 80 round trips a second
for nothing; and its worker's wakes do not make it try: the holder publishes those rows."""
STOP_ROUND_SECONDS = 10.0
"""How long a stopping relay waits for the round in flight before it cancels it (a broker that is away)."""
SENT_RETENTION = timedelta(hours=1)
"""How long a parked row an operator discarded (`ticketflow outbox discard`, marked sent) is kept."""
PROCESSED_RETENTION = timedelta(days=35)
"""Longer than any input topic keeps a record (30 days for the dead-letter topic, whose records may be
replayed), so a redelivery always still finds its processed id."""


class OutboxRelay:
    def __init__(self, engine: AsyncEngine, producer: AIOKafkaProducer, owner: str,
                 interval: float = 0.05, batch: int = 2000, reader: AsyncEngine | None = None,
                 on_fatal: Callable[[str], None] | None = None, report: Report = SILENT) -> None:
        self.engine = engine
        self.reader = reader or engine
        self.producer = producer
        self.owner = owner
        self.interval = interval
        self.batch = batch
        self.on_fatal = on_fatal
        self.report = report
        self.wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._lock_key = zlib.crc32(f"ticketflow-outbox-{owner}".encode())
        self._lock_conn: AsyncConnection | None = None
        self.standby = False
        """PostgreSQL: another replica held the outbox lock at the last try (see STANDBY_SECONDS)."""
        self.partitions = Partitions(producer)
        self._one_by_one = False
        """Set after the broker refused a batch for good: the next round finds the row it refuses."""
        self._unsent_rows = self._unsent()
        """Built once: the relay asks it every round, and building it cost more than running it when idle."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"outbox-relay-{self.owner}")

    async def stop(self) -> None:
        """Let a round in flight finish (at most `STOP_ROUND_SECONDS`, then it is cancelled), publish what
        is committed, and let go of the outbox. A round cancelled between publish and delete published its
        rows again in the final flush: duplicates every consumer drops, but none a clean stop should make."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self.wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), STOP_ROUND_SECONDS)
            except TimeoutError:
                task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        try:
            await self.flush()
        finally:
            await self._release()

    def notify(self) -> None:
        """Called after a commit that wrote outbox rows: publish them now rather than at the next poll. A
        standby replica's relay lets it pass: the replica holding the lock publishes them."""
        if not self.standby:
            self.wake.set()

    def pause(self) -> float:
        """How long the relay waits for a wake between rounds that found nothing to do."""
        return STANDBY_SECONDS if self.standby else self.interval

    async def _loop(self) -> None:
        backoff = Backoff(0.2, 5.0)
        rounds = 0
        while not self._stopping:
            try:
                sent = await self.flush()
                backoff.reset()
                rounds += 1
                if rounds % 1000 == 0:
                    await self._prune()
                if sent:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_transient(exc):
                    self.report.relay_failed("fatal")
                    message = f"outbox relay {self.owner} stopped on a permanent error: {exc!r}"
                    log.critical(message)
                    if self.on_fatal is not None:
                        self.on_fatal(message)
                    return
                self.report.relay_failed("transient")
                log.warning("outbox relay %s failed, retrying in %.1fs: %r", self.owner, backoff.delay, exc)
                await backoff.wait()
                continue
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=self.pause())
            except TimeoutError:
                pass
            self.wake.clear()

    async def flush(self) -> int:
        """Publish one batch of unsent rows in id order; returns how many were sent or parked."""
        if self.engine.dialect.name == "postgresql":
            return await self._flush_locked()
        return await self._flush_unlocked()

    async def _flush_locked(self) -> int:
        """PostgreSQL: one replica at a time (a session advisory lock on the relay's own connection, in
        autocommit); read, publish, then mark sent."""
        conn = await self._locked_connection()
        if conn is None:
            return 0
        try:
            rows = (await conn.execute(self._unsent_rows)).all()
            await conn.commit()
            if not rows:
                return 0
            outcome = await self._publish(rows)
            reached("after_publish_before_mark_sent", self.owner)
            await self._record(conn, outcome)
            await conn.commit()
        except BaseException:
            await self._release()
            raise
        self._reported(rows, outcome)
        return outcome.result()

    async def _locked_connection(self) -> AsyncConnection | None:
        """The relay's connection, holding this worker's advisory lock; None while another replica holds it."""
        if self._lock_conn is None:
            conn = await self.engine.connect()
            # each statement commits on its own: a round is a read and a mark, not BEGIN/read/COMMIT and
            # BEGIN/mark/COMMIT (the two never needed to be atomic: a row marked late is sent again, X3)
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            got = await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._lock_key})
            await conn.commit()
            self.standby = not got
            if not got:
                await conn.close()
                return None
            # Every statement of a round has an index made for it (the read: ix_outbox_unsent and
            # ix_outbox_parked; the delete and the parking: the primary key). The outbox is a queue:
            # vacuumed while empty, PostgreSQL takes it for empty, and a plan made then (and cached on this
            # long-lived connection) scanned the whole outbox on every call while a backlog built. Without
            # sequential scans the plans probe those indexes whatever the statistics say (ADR 15).
            await conn.exec_driver_sql("SET enable_seqscan = off")
            self._lock_conn = conn
        return self._lock_conn

    async def _release(self) -> None:
        """Give the lock back by ending the connection's session. Closing an engine connection returns it
        to the pool, session, advisory lock and settings included: no other replica could take over, and
        this relay's next round, on another pooled connection, found its own lock taken."""
        conn, self._lock_conn = self._lock_conn, None
        if conn is not None:
            try:
                await conn.invalidate()
                await conn.close()
            except Exception as exc:
                log.debug("relay %s: closing its lock connection: %r", self.owner, exc)

    async def _flush_unlocked(self) -> int:
        """SQLite: read and mark in two short transactions, so the write lock is never held while Kafka acks."""
        async with self.reader.connect() as conn:
            rows = (await conn.execute(self._unsent_rows)).all()
        if not rows:
            return 0
        outcome = await self._publish(rows)
        reached("after_publish_before_mark_sent", self.owner)
        async with self.engine.begin() as conn:
            await self._record(conn, outcome)
        self._reported(rows, outcome)
        return outcome.result()

    def _reported(self, rows: Any, outcome: Outcome) -> None:
        self.report.relay_published(len(outcome.sent))
        if outcome.sent:
            now, sent = time.time(), set(outcome.sent)
            self.report.relay_delays([now - row.created_at.timestamp() for row in rows if row.id in sent])

    def _unsent(self) -> Any:
        """Unsent rows in id order, except parked ones and those held behind a parked row of their key."""
        # The parked rows' first id per key, gathered once per read (MATERIALIZED: never re-evaluated per
        # row). As a correlated NOT EXISTS over the outbox, a plan made while the outbox was empty (a
        # queue: PostgreSQL takes it for empty after a vacuum, and the relay's connection keeps the plan)
        # scanned the whole outbox once per unsent row: a round of a 7,500-row backlog took 21 s.
        # PostgreSQL only: SQLite before 3.35 (Debian 11, Ubuntu 20.04) refuses the hint, and it keeps
        # no statistics that could claim the outbox is empty.
        parked = (select(outbox.c.topic, outbox.c.key, func.min(outbox.c.id).label("first"))
                  .where(outbox.c.producer == self.owner, outbox.c.failed_at.is_not(None), outbox.c.sent_at.is_(None))
                  .group_by(outbox.c.topic, outbox.c.key)
                  .cte("parked").prefix_with("MATERIALIZED", dialect="postgresql"))
        held = exists().where(parked.c.topic == outbox.c.topic, parked.c.key == outbox.c.key,
                              parked.c.first < outbox.c.id)
        # headers as their JSON text, decoded here: through the driver's JSON codec and SQLAlchemy's JSON
        # type they cost about 10 µs a row, more than the rest of the row
        return (select(outbox.c.id, outbox.c.topic, outbox.c.key, cast(outbox.c.headers, Text).label("headers"),
                       outbox.c.value, outbox.c.created_at)
                .where(outbox.c.producer == self.owner, outbox.c.sent_at.is_(None), outbox.c.failed_at.is_(None),
                       ~held)
                .order_by(outbox.c.id).limit(self.batch))

    async def _record(self, conn: Any, outcome: Outcome) -> None:
        if outcome.sent:
            await conn.execute(self._sent_rows(conn.dialect.name == "postgresql"), keys("ids", outcome.sent))
        for row_id, why in outcome.parked.items():
            await conn.execute(update(outbox).where(outbox.c.id == row_id).values(failed_at=now_utc(), failure=why))

    @staticmethod
    def _sent_rows(postgres: bool) -> Any:
        """Delete a round's published rows by id."""
        return built(("outbox delete sent", postgres), lambda: delete(outbox).where(
            any_of(outbox.c.id, "ids", postgres, numbers=True)))

    async def _publish(self, rows: Any) -> Outcome:
        """Send every row, in order; which were sent, which are parked for good, and the first transient error.

        A row too large for any topic but the dead-letter topic is parked before it is sent. Once a key
        has a parked or failed row, its later rows in this batch are not sent (they wait, in order).
        Rows go out as one producer batch per partition (`workers.delivery.partition_batches`). The
        broker refuses a whole batch at once, so after a refusal for good the next round sends every
        row in a batch of its own: only the row the broker refuses is parked."""
        alone, self._one_by_one = self._one_by_one, False
        outcome = Outcome()
        stopped: set[tuple[str, str]] = set()
        unknown = await self.partitions.refresh({row.topic for row in rows})
        batches = PartitionBatches(self.producer, self.partitions, alone=alone)
        for row in rows:
            if (row.topic, row.key) in stopped:
                continue
            headers = [(k, v.encode()) for k, v in loads(row.headers)]
            if self._too_large(outcome, row, headers) or row.topic in unknown:
                if row.topic in unknown:
                    self._failed(outcome, row, unknown[row.topic])
                stopped.add((row.topic, row.key))
                continue
            await batches.add(row, row.topic, row.key.encode(), row.value, headers)
        await batches.close()
        failed: dict[int, BaseException] = {}
        for batch, error in zip(batches.submitted, await outcomes(batches.submitted), strict=True):
            if error is not None:
                failed.update((row.id, error) for row in batch.items)
        for row in rows:
            if (row.topic, row.key) in stopped or row.id in outcome.parked:
                continue  # published after a failed row of its key: sent again after it, in order
            error = failed.get(row.id)
            if error is None:
                outcome.sent.append(row.id)
                continue
            stopped.add((row.topic, row.key))
            if alone or is_transient(error) or isinstance(error, asyncio.CancelledError):
                self._failed(outcome, row, error)
            elif not self._one_by_one:
                self._one_by_one = True
                log.warning("relay %s: the broker refused a batch to %s (%r); next round every row goes in a "
                            "batch of its own", self.owner, row.topic, error)
        return outcome

    def _too_large(self, outcome: Outcome, row: Any, headers: list[tuple[str, bytes]]) -> bool:
        """Park `row` if it is larger than a record may be."""
        size = len(row.key) + len(row.value) + sum(len(k) + len(v) for k, v in headers)
        if size > RECORD_MAX_BYTES:
            self._park(outcome, row, f"record of {size} bytes is over the {RECORD_MAX_BYTES}-byte limit")
            return True
        return False

    def _failed(self, outcome: Outcome, row: Any, exc: BaseException) -> None:
        if is_transient(exc) or isinstance(exc, asyncio.CancelledError):
            if outcome.transient is None:
                outcome.transient = exc if isinstance(exc, Exception) else RuntimeError(repr(exc))
            return
        self._park(outcome, row, f"{type(exc).__name__}: {exc}")

    def _park(self, outcome: Outcome, row: Any, why: str) -> None:
        outcome.parked[row.id] = why[:2000]
        self.report.relay_failed("parked")
        log.error("outbox row %s of %s (%s, key %s) parked: %s. Later rows of that key wait; "
                  "`ticketflow outbox list` shows it", row.id, self.owner, row.topic, row.key[:100], why[:300])

    async def _prune(self) -> None:
        async with self.engine.begin() as conn:
            await prune(conn, self.owner)


async def prune(conn: Any, owner: str) -> None:
    """Drop `owner`'s outbox rows marked sent (discarded by an operator, or sent before published rows
    were deleted) after SENT_RETENTION, and its consumers' processed ids after PROCESSED_RETENTION (the
    relay, every 1,000 rounds)."""
    await conn.execute(delete(outbox).where(outbox.c.producer == owner, outbox.c.sent_at < now_utc() - SENT_RETENTION))
    await conn.execute(delete(processed_messages).where(
        processed_messages.c.consumer.like(f"{owner}.%"),
        processed_messages.c.processed_at < now_utc() - PROCESSED_RETENTION))


class Outcome:
    """What one publish round did: rows sent, rows parked (id -> why), the first transient failure."""

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.parked: dict[int, str] = {}
        self.transient: Exception | None = None

    def result(self) -> int:
        """How many rows are done (sent or parked); raises the transient failure once they are recorded."""
        if self.transient is not None:
            raise self.transient
        return len(self.sent) + len(self.parked)
