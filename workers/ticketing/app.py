"""The ticketing worker: `ticketflow worker ticketing`, or `faststream run workers.ticketing.app:app`."""

from __future__ import annotations

from functools import partial

from faststream.kafka.annotations import KafkaMessage

from contracts.topics import ACCOUNTS, CONVERSATION_EVENTS, TICKET_COMMANDS
from ticketflow.config import Settings
from workers.accounts import apply_account_record
from workers.command_flow import ACCOUNTS_PROJECTION
from workers.runtime import Worker
from workers.ticketing import handlers


def build(settings: Settings) -> Worker:
    worker = Worker("ticketing", settings)
    worker.projection(ACCOUNTS_PROJECTION, "accounts", ACCOUNTS)
    worker.projection(handlers.CONVERSATIONS_PROJECTION, "conversations", CONVERSATION_EVENTS)
    on_commands = worker.reliable("commands")
    on_conversations = worker.reliable("conversations")
    on_accounts_reliably = worker.reliable("accounts")

    @worker.subscriber(TICKET_COMMANDS, "commands")
    async def on_ticket_command(message: KafkaMessage) -> None:
        """T1-T10, and the sync worker's S3/S5 commands."""
        await on_commands.handle(message, partial(handlers.handle_command, worker))

    @worker.subscriber(CONVERSATION_EVENTS, "conversations")
    async def on_conversation_event(message: KafkaMessage) -> None:
        """The ticketing worker's view of conversations."""
        await on_conversations.handle(message, partial(handlers.project_conversation, worker))

    @worker.subscriber(ACCOUNTS, "accounts")
    async def on_account(message: KafkaMessage) -> None:
        """The ticketing worker's copy of the accounts topic (policy, pipelines, properties)."""
        await on_accounts_reliably.handle(message, lambda record, _p: apply_account_record(worker.engine, "ticketing", record))

    return worker


def __getattr__(name: str) -> object:
    if name == "app":
        return build(Settings.from_env()).app()
    raise AttributeError(name)
