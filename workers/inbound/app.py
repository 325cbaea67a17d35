"""The inbound worker: `ticketflow worker inbound`, or `faststream run workers.inbound.app:app`."""

from __future__ import annotations

from functools import partial

from faststream.kafka.annotations import KafkaMessage

from contracts.topics import ACCOUNTS, CONVERSATION_COMMANDS, INBOUND_MESSAGES
from ticketflow.config import Settings
from workers.accounts import apply_account_record
from workers.command_flow import ACCOUNTS_PROJECTION
from workers.inbound import handlers
from workers.runtime import Worker


def build(settings: Settings) -> Worker:
    worker = Worker("inbound", settings)
    worker.projection(ACCOUNTS_PROJECTION, "accounts", ACCOUNTS)
    on_messages = worker.reliable("messages")
    on_commands = worker.reliable("commands")
    on_accounts_reliably = worker.reliable("accounts")

    @worker.subscriber(INBOUND_MESSAGES, "messages")
    async def on_inbound_message(message: KafkaMessage) -> None:
        """C1-C3: an upstream channel's message becomes part of a conversation."""
        await on_messages.handle(message, partial(handlers.receive_message, worker))

    @worker.subscriber(CONVERSATION_COMMANDS, "commands")
    async def on_conversation_command(message: KafkaMessage) -> None:
        """C4-C7 and the sync worker's close/reopen/trash/move commands."""
        await on_commands.handle(message, partial(handlers.handle_command, worker))

    @worker.subscriber(ACCOUNTS, "accounts")
    async def on_account(message: KafkaMessage) -> None:
        """The inbound worker's copy of the accounts topic."""
        await on_accounts_reliably.handle(message, lambda record, _p: apply_account_record(worker.engine, "inbound", record))

    return worker


def __getattr__(name: str) -> object:
    if name == "app":  # built lazily so importing this module has no side effects
        return build(Settings.from_env()).app()
    raise AttributeError(name)
