"""The inbound worker: `ticketflow worker inbound`, or `faststream run workers.inbound.app:app`.
The one place that wires its inputs, handlers, unit of work and dependencies."""

from __future__ import annotations

from pydantic import TypeAdapter

from contracts.commands import conversation_command_adapter
from contracts.inbound import InboundMessage
from contracts.topics import (
    ACCOUNTS,
    CONVERSATION_COMMANDS,
    CONVERSATION_COMMANDS_INTERNAL,
    CONVERSATION_EVENTS,
    INBOUND_MESSAGES,
    OUTBOUND_MESSAGES,
    REJECTIONS,
)
from workers.decision import ACCOUNTS_PROJECTION
from workers.delivery.parsing import public
from workers.inbound.handlers import HANDLERS
from workers.inbound.repositories import OWNER, InboundUnit
from workers.observability.process import Observability
from workers.runtime import Worker, app_of
from workers.settings import Settings

inbound_adapter: TypeAdapter[InboundMessage] = TypeAdapter(InboundMessage)


def build(settings: Settings, obs: Observability | None = None) -> Worker:
    worker = Worker(OWNER, settings, obs=obs)
    worker.projection(ACCOUNTS_PROJECTION, "accounts", ACCOUNTS)
    unit = worker.database_unit(InboundUnit)
    worker.consume(INBOUND_MESSAGES, "messages", inbound_adapter.validate_python, "inbound channel message",
                   HANDLERS, unit)
    worker.consume(CONVERSATION_COMMANDS, "commands", public(conversation_command_adapter.validate_python),
                   "conversation command", HANDLERS, unit)
    worker.consume(CONVERSATION_COMMANDS_INTERNAL, "sync-commands", conversation_command_adapter.validate_python,
                   "conversation command", HANDLERS, unit)
    worker.publishes(CONVERSATION_EVENTS, REJECTIONS, OUTBOUND_MESSAGES)
    worker.keep_accounts("accounts")
    return worker


def __getattr__(name: str) -> object:
    if name == "app":  # built lazily so importing this module has no side effects
        return app_of(build)
    raise AttributeError(name)
