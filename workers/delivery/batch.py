"""The batch pipeline (X4, X5): what one poll returns is processed in order inside ONE database
transaction, then the offsets are committed once.

    parse each record -> unit.prefetch(all messages) -> handler per message, in order -> flush, commit
    -> dead letters of the batch's bad records (acked by the broker) -> ack (commit the offsets)

(A batch that only passed records over, with nothing to write, commits its offsets within a second
rather than at once: `workers.delivery.quiet_commits`.)

* A record that is bad input (unreadable, or a handler refusing it as bad before writing anything) is
  dead-lettered without losing the rest of the batch.
* A record that names something a projection has not applied yet ends the batch there: the records
  before it commit, it is handled alone (waiting for the projection, ADR 5), then the rest go on.
* A transient failure rolls the whole transaction back and retries it, with backoff, forever.
* A conflict (a unique key raced by another process) retries the batch a few times; any other error,
  or a conflict that keeps coming, falls back to one record at a time (`ReliableHandler.run`), which
  isolates the record that fails and dead-letters it as `processing_failed`.
* Nothing commits an offset past a record that is not done: the ack comes last, after all of the above.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts.envelope import Envelope
from workers.decision import Missing
from workers.delivery.backoff import Backoff
from workers.delivery.checkpoints import reached
from workers.delivery.errors import BadMessage, NotYetKnown, dependency_of, is_conflict, is_transient
from workers.delivery.incoming import natural_envelope
from workers.delivery.parsing import Read, read_record
from workers.delivery.quiet_commits import QuietCommits
from workers.delivery.reliable import MAX_CONFLICT_RETRIES, Process, ReliableHandler
from workers.handling import run_handler
from workers.observability.logs import log_fields, record_log_fields
from workers.observability.tracing import record_span

log = logging.getLogger("ticketflow.delivery")

UnitFactory = Callable[[str, Envelope, frozenset[str]], Any]
Requires = Callable[[Any], "Missing | None"]
"""requires(message): the projection a message's rule needs current, if any (ADR 5)."""
BATCH_CAUSE = Envelope(id="batch", type="batch", source="/ticketflow", time=datetime(2000, 1, 1, tzinfo=UTC))
"""The unit's cause until the first message sets its own (nothing is published under it)."""


Parsed = tuple[Any, "Envelope | None", "BadMessage | None"]
"""A record read once: (its message, the envelope its effects are caused by, or why it is bad)."""


@dataclass
class Outcome:
    """What one transaction over (part of) a batch did."""

    dead: list[tuple[int, Any, BadMessage]]
    waiting: int | None = None
    """Index of a record that must wait for a projection alone (the records before it committed)."""


class BatchRunner:
    """Runs the records of one poll for one input of a worker."""

    def __init__(self, reliable: ReliableHandler, read: Read, what: str, handlers: Any, unit: UnitFactory,
                 deps: Any, one: Process, requires: Requires | None = None) -> None:
        self.reliable = reliable
        self.read = read
        self.what = what
        self.handlers = handlers
        self.unit = unit
        self.deps = deps
        self.one = one
        self.requires = requires
        self.commits = QuietCommits(reliable.consumer)

    @property
    def consumer(self) -> str:
        return self.reliable.consumer

    async def handle(self, message: Any) -> None:
        """Process the FastStream batch message's records, then ack them all at once (a batch that only
        passed records over: within a second, `workers.delivery.quiet_commits`)."""
        records = list(message.raw_message)
        taken = time.time()
        report = self.reliable.report()
        report.waited(self.reliable.input, [taken - record.timestamp / 1000 for record in records])
        passed_over = await self.run(records)
        reached("after_commit_before_ack", self.consumer)
        await self.commits.ack(message, records, passed_over)
        report.batch(self.reliable.input, len(records), time.time() - taken)
        report.processed(self.reliable.input, len(records))

    async def run(self, records: Sequence[Any]) -> bool:
        """Process `records` in order; True when every one of them was passed over (read, and of a type this
        input has no handler for, or of a type this version does not know): nothing was written or sent."""
        parsed = {id(record): self._parse(record) for record in records}
        if all(cause is None and bad is None for _message, cause, bad in parsed.values()):
            return True
        pending = list(records)
        while pending:
            pending = await self._run_some(pending, parsed)
        return False

    def _parse(self, record: Any) -> Parsed:
        """The record's message and cause, or the BadMessage it is (the same every time: read once)."""
        try:
            message, headers = read_record(record, self.read, self.what)
            if message is None or type(message) not in self.handlers:
                return message, None, None
            return message, Envelope.from_headers(headers) or natural_envelope(message), None
        except BadMessage as exc:
            return None, None, exc

    async def _run_some(self, records: list[Any], parsed: dict[int, Parsed]) -> list[Any]:
        """Process `records` from the first; returns those left for the next round."""
        caught_up = await self._catch_up(records, parsed)
        outcome = await self._transaction_with_retries(records, caught_up, parsed)
        if outcome is None:  # fell back to one at a time: all done
            return []
        for _i, record, exc in outcome.dead:
            await self.reliable.dead_letter(record, type(exc).__name__, exc.reason, exc.detail)
        if outcome.waiting is None:
            return []
        await self.reliable.run(records[outcome.waiting], self.one)
        return records[outcome.waiting + 1:]

    async def _catch_up(self, records: list[Any], parsed: dict[int, Parsed]) -> frozenset[str]:
        """The projections the batch's messages need current (e.g. T1 reads the view of conversations),
        waited for once for the whole batch."""
        if self.requires is None:
            return frozenset()
        needs: set[Missing] = set()
        for record in records:
            message = parsed[id(record)][0]
            if message is not None and (need := self.requires(message)) is not None:
                needs.add(need)
        return await self.reliable.catch_up(needs) if needs else frozenset()

    async def _transaction_with_retries(self, records: list[Any], caught_up: frozenset[str],
                                        parsed: dict[int, Parsed]) -> Outcome | None:
        backoff = Backoff(0.1, self.reliable.max_backoff)
        conflicts = 0
        while True:
            try:
                return await self._transaction(records, caught_up, parsed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_transient(exc):
                    self.reliable.report().waiting(dependency_of(exc))
                    log.warning("transient failure on a batch of %d from %s, retrying in %.1fs: %r",
                                len(records), self.consumer, backoff.delay, exc)
                    await backoff.wait()
                    continue
                if is_conflict(exc) and conflicts < MAX_CONFLICT_RETRIES:
                    conflicts += 1
                    await asyncio.sleep(0.05 * conflicts)
                    continue
                log.warning("batch of %d from %s failed (%r): one record at a time", len(records), self.consumer, exc)
                for record in records:
                    await self.reliable.run(record, self.one)
                return None

    async def _transaction(self, records: list[Any], caught_up: frozenset[str], parsed: dict[int, Parsed]) -> Outcome:
        outcome = Outcome(dead=[])
        todo: list[tuple[int, Any, Any, Envelope]] = []
        for i, record in enumerate(records):
            message, cause, bad = parsed[id(record)]
            if bad is not None:
                outcome.dead.append((i, record, bad))
            elif cause is not None:
                todo.append((i, record, message, cause))
        if not todo:  # only records this input passes over (or bad ones): no unit of work, no BEGIN/COMMIT
            return outcome
        async with self.unit(self.consumer, BATCH_CAUSE, caught_up) as uow:
            await uow.prefetch([message for _i, _r, message, _c in todo])
            for i, record, message, cause in todo:
                uow.cause = cause
                before = uow.writes
                try:
                    with record_span(record, self.reliable.worker, self.consumer), \
                            log_fields(**record_log_fields(self.reliable.worker, record)):
                        await run_handler(self.handlers[type(message)], message, uow, self.deps)
                except NotYetKnown:
                    if uow.writes != before:
                        raise
                    outcome.waiting = i
                    break
                except BadMessage as exc:
                    if uow.writes != before:
                        raise
                    outcome.dead.append((i, record, exc))
        if outcome.waiting is not None:
            outcome.dead = [d for d in outcome.dead if d[0] < outcome.waiting]
        return outcome
