"""The lifecycle sync worker: `ticketflow worker sync`, or `faststream run workers.sync.app:app`.

It owns no table. For each event it sends the commands its reactions return, waits for the
broker's acks, then commits the offset. A crash in between sends them again with the same
derived ids, which their owners drop as replays (S7, X5).
"""

from __future__ import annotations

from contracts.events import read_conversation_event, read_ticket_event
from contracts.topics import (
    CONVERSATION_COMMANDS_INTERNAL,
    CONVERSATION_EVENTS,
    TICKET_COMMANDS_INTERNAL,
    TICKET_EVENTS,
)
from workers.observability.process import Observability
from workers.runtime import Worker, app_of
from workers.settings import Settings
from workers.sync.handlers import HANDLERS


def build(settings: Settings, obs: Observability | None = None) -> Worker:
    worker = Worker("sync", settings, uses_database=False, obs=obs)
    unit = worker.sending_unit()
    worker.consume(TICKET_EVENTS, "ticket-events", read_ticket_event, "ticket event", HANDLERS, unit)
    worker.consume(CONVERSATION_EVENTS, "conversation-events", read_conversation_event, "conversation event",
                   HANDLERS, unit)
    worker.publishes(CONVERSATION_COMMANDS_INTERNAL, TICKET_COMMANDS_INTERNAL)
    return worker


def __getattr__(name: str) -> object:
    if name == "app":
        return app_of(build)
    raise AttributeError(name)
