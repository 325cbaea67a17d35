"""The unit of work a handler receives: one database transaction for one consumed batch of messages
(often a batch of one), its repositories (added by each worker's subclass), and the outcome steps
every handler shares.

    async with unit:                           # made by the delivery core for each poll batch
        await unit.prefetch(messages)          # what every handler will load, in bulk
        for message, cause in batch:
            unit.cause = cause                 # events name the message that caused them
            await handler(message, unit, deps) # load -> rule -> unit.conclude(...)

`conclude` saves the decided state, publishes the decision's events (or, for a refused command, the
`command.rejected` event, X2) through the outbox, and records the command as processed (X5). A
refusal caused by an id missing from a projection that has not caught up yet is not final: it raises
`NotYetKnown`, and the delivery core retries once the projection has caught up (ADR 5).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Generic, TypeVar

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.commands import Command
from contracts.common import Publishable
from contracts.envelope import Envelope
from storage.unit_of_work import UnitOfWork, now_utc
from workers.decision import Decision, Rejection, rejection_event
from workers.delivery.errors import NotYetKnown
from workers.delivery.outgoing import Outgoing, outgoing
from workers.delivery.report import SILENT, Report, input_of

D = TypeVar("D", bound=Decision)


class WorkUnit(UnitOfWork, Generic[D]):
    """A transaction for one message: `cause` is its envelope, `caught_up` the projections that have
    read everything published before it arrived."""

    def __init__(self, engine: AsyncEngine, consumer: str, owner: str, *, source: str, prefix: str,
                 cause: Envelope, caught_up: frozenset[str], before_commit: Callable[[], None] | None = None,
                 after_commit: Callable[[], None] | None = None, clock: Callable[[], datetime] = now_utc,
                 report: Report = SILENT) -> None:
        super().__init__(engine, consumer, owner, before_commit, after_commit)
        self.report = report
        self.source = source
        self.prefix = prefix
        self.cause = cause
        self.caught_up = caught_up
        self.now = clock()

    async def prefetch(self, batch: Sequence[object]) -> None:
        """Load what the handlers of `batch` will need, in bulk (each worker's unit knows what)."""

    async def publish(self, body: Publishable) -> None:
        """Queue `body` for its topic, with an envelope caused by the message being handled."""
        await self.add_to_outbox(outgoing(body, self.source, self.cause, self.prefix, time=self.now))

    async def save(self, decision: D) -> None:
        """Write the state `decision` changed (each worker's repositories); nothing here."""

    def final(self, rejection: Rejection | None) -> None:
        """Raise NotYetKnown when `rejection` stands on a projection that has not caught up yet."""
        missing = rejection.unresolved if rejection is not None else None
        if missing is not None and missing.projection not in self.caught_up:
            raise NotYetKnown(missing.projection, missing.key)

    async def conclude(self, cmd: Command, decision: D) -> None:
        """The command's outcome: state, events or rejection, processed id, all in this transaction."""
        self.final(decision.rejection)
        await self.save(decision)
        if decision.rejection is not None:
            self.report.rejected(input_of(self.consumer), decision.rejection.reason.value)
            await self.publish(rejection_event(cmd, decision.rejection, self.now))
        for event in decision.events:
            await self.publish(event)
        await self.mark_processed(cmd.account_id, cmd.command_id)


class SendingUnit:
    """The unit of work of a worker without a database (sync): what the handler publishes is sent when
    the handler succeeds, and the offset moves only after the broker acknowledged all of it. A crash in
    between sends it again with the same ids, which their owners drop as replays (S7, X5)."""

    def __init__(self, producer: AIOKafkaProducer, *, source: str, prefix: str, cause: Envelope,
                 caught_up: frozenset[str] = frozenset(), clock: Callable[[], datetime] = now_utc) -> None:
        self.producer = producer
        self.source = source
        self.prefix = prefix
        self.cause = cause
        self.caught_up = caught_up
        self.now = clock()
        self._records: list[Outgoing] = []

    async def __aenter__(self) -> SendingUnit:
        return self

    async def prefetch(self, batch: Sequence[object]) -> None:
        """Nothing to load: the sync worker reacts to events alone."""

    @property
    def writes(self) -> int:
        return len(self._records)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if exc_type is not None:
            return
        futures = [await self.producer.send(r.topic, key=r.key.encode(), value=r.value, headers=r.headers)
                   for r in self._records]
        await asyncio.gather(*futures)

    async def publish(self, body: Publishable) -> None:
        """Queue a derived command for its internal topic (only the sync worker writes those, ADR 10)."""
        self._records.append(outgoing(body, self.source, self.cause, self.prefix, internal=True))
