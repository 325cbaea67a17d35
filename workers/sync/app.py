"""The lifecycle sync worker: `ticketflow worker sync`, or `faststream run workers.sync.app:app`.

It owns no table. For each event it publishes the commands its reactions return, waits for the
broker's acks, then commits the offset. A crash in between publishes them again with the same
derived ids, which their owners drop as replays (S7, X5).
"""

from __future__ import annotations

import asyncio
import hashlib
from functools import partial
from typing import Any

from faststream.kafka.annotations import KafkaMessage

from contracts.events import read_conversation_event, read_ticket_event
from contracts.topics import CONVERSATION_EVENTS, TICKET_EVENTS, route
from ticketflow.config import Settings
from workers.delivery.emit import envelope_for
from workers.delivery.parsing import envelope_of, parse_with
from workers.runtime import Worker
from workers.sync.reactions import react


async def relay_reactions(worker: Worker, reader: Any, what: str, record: Any, _caught_up: frozenset[str]) -> None:
    event = parse_with(record, reader, what)
    if event is None:
        return  # an event type this version does not know: not for it
    cause = envelope_of(record)
    event_id = cause.id if cause else hashlib.sha256(record.value).hexdigest()
    futures = []
    for command in react(event_id, event):
        env = envelope_for(command, worker.source, cause, message_id=command.command_id)
        futures.append(await worker.producer.send(
            worker.settings.topic(route(command)), key=command.partition_key().encode(),
            value=command.model_dump_json().encode(), headers=env.to_headers(),
        ))
    await asyncio.gather(*futures)


def build(settings: Settings) -> Worker:
    worker = Worker("sync", settings, uses_database=False)
    on_tickets = worker.reliable("ticket-events")
    on_conversations = worker.reliable("conversation-events")

    @worker.subscriber(TICKET_EVENTS, "ticket-events")
    async def on_ticket_event(message: KafkaMessage) -> None:
        """S1 (closed), S2 (reopened), T7/S5 (deleted), T8 (created in the help desk)."""
        await on_tickets.handle(message, partial(relay_reactions, worker, read_ticket_event, "ticket event"))

    @worker.subscriber(CONVERSATION_EVENTS, "conversation-events")
    async def on_conversation_event(message: KafkaMessage) -> None:
        """S3 (owner changed) and S5 (trashed)."""
        await on_conversations.handle(message, partial(relay_reactions, worker, read_conversation_event, "conversation event"))

    return worker


def __getattr__(name: str) -> object:
    if name == "app":
        return build(Settings.from_env()).app()
    raise AttributeError(name)
