"""The ticketing worker: `ticketflow worker ticketing`, or `faststream run workers.ticketing.app:app`.
The one place that wires its inputs, handlers, unit of work and dependencies (the T8 policy)."""

from __future__ import annotations

from contracts.commands import ticket_command_adapter
from contracts.events import read_conversation_event
from contracts.topics import (
    ACCOUNTS,
    CONVERSATION_EVENTS,
    REJECTIONS,
    TICKET_COMMANDS,
    TICKET_COMMANDS_INTERNAL,
    TICKET_EVENTS,
)
from workers.decision import ACCOUNTS_PROJECTION
from workers.delivery.parsing import public
from workers.observability.process import Observability
from workers.runtime import Worker, app_of
from workers.settings import Settings
from workers.ticketing.domain import CONVERSATIONS_PROJECTION, HelpDeskPolicy, current_view_needed
from workers.ticketing.handlers import HANDLERS, PROJECTION, TicketingDeps
from workers.ticketing.repositories import OWNER, TicketingUnit


def build(settings: Settings, obs: Observability | None = None) -> Worker:
    policy = HelpDeskPolicy(tiers=settings.helpdesk_tiers, cutoff=settings.helpdesk_cutoff)
    worker = Worker(OWNER, settings, deps=TicketingDeps(policy=policy), obs=obs)
    worker.projection(ACCOUNTS_PROJECTION, "accounts", ACCOUNTS)
    worker.projection(CONVERSATIONS_PROJECTION, "conversations", CONVERSATION_EVENTS)
    unit = worker.database_unit(TicketingUnit)
    worker.consume(TICKET_COMMANDS, "commands", public(ticket_command_adapter.validate_python), "ticket command",
                   HANDLERS, unit, requires=current_view_needed)
    worker.consume(TICKET_COMMANDS_INTERNAL, "sync-commands", ticket_command_adapter.validate_python, "ticket command",
                   HANDLERS, unit)
    worker.publishes(TICKET_EVENTS, REJECTIONS)
    worker.consume(CONVERSATION_EVENTS, "conversations", read_conversation_event, "conversation event",
                   PROJECTION, unit)
    worker.keep_accounts("accounts")
    return worker


def __getattr__(name: str) -> object:
    if name == "app":
        return app_of(build)
    raise AttributeError(name)
