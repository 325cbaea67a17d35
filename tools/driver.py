"""Driving a running Ticketflow only through Kafka topics, as a channel or an agent's tool would, and
watching what comes out, plus read access to the stored state. Used by the demo and the tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import commands as c
from contracts.accounts import Account, AccountSettings
from contracts.common import Channel, ReplyToClosedPolicy, Tier
from contracts.inbound import InboundMessage
from contracts.topics import (
    CONVERSATION_COMMANDS,
    CONVERSATION_COMMANDS_INTERNAL,
    CONVERSATION_EVENTS,
    DEADLETTER,
    OUTBOUND_MESSAGES,
    REJECTIONS,
    TICKET_COMMANDS,
    TICKET_COMMANDS_INTERNAL,
    TICKET_EVENTS,
)
from storage.tables import conversations, messages, outbox, tickets
from ticketflow.publishing import publish
from ticketflow.running import worker_groups
from tools.probe import WAIT_SECONDS, Probe, Seen, settle
from workers.settings import Settings

WATCHED = (CONVERSATION_EVENTS, TICKET_EVENTS, REJECTIONS, OUTBOUND_MESSAGES, DEADLETTER, CONVERSATION_COMMANDS,
           TICKET_COMMANDS, CONVERSATION_COMMANDS_INTERNAL, TICKET_COMMANDS_INTERNAL)



def new_id(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


class Driver:
    def __init__(self, settings: Settings, engine: AsyncEngine, probe: Probe) -> None:
        self.settings = settings
        self.engine = engine
        self.probe = probe

    # --- driving it, as the outside world does -------------------------------------------
    async def publish(self, *bodies: Any) -> list[str]:
        return await publish(self.settings, list(bodies), source="/ticketflow/driver")

    async def account(self, tier: Tier = Tier.STARTER, created_at: datetime | None = None,
                      reply_to_closed: ReplyToClosedPolicy = ReplyToClosedPolicy.REOPEN, **settings: Any) -> str:
        account_id = new_id("acct-")
        await self.publish(Account(
            account_id=account_id, tier=tier, created_at=created_at or datetime(2023, 5, 1, tzinfo=UTC),
            settings=AccountSettings(reply_to_closed=reply_to_closed, **settings),
        ))
        return account_id

    def inbound(self, account_id: str, thread: str | None = None, channel: Channel = Channel.EMAIL,
                email: str | None = "pat@example.com", phone: str | None = None, text: str = "Hello, my order is late",
                subject: str | None = "Order late", message_id: str | None = None, name: str = "Pat") -> InboundMessage:
        return InboundMessage(
            account_id=account_id, channel=channel, channel_message_id=message_id or new_id("msg-"),
            channel_thread_key=thread or new_id("thread-"), sender_email=email, sender_phone=phone,
            sender_name=name, subject=subject, text=text, sent_at=datetime.now(UTC) - timedelta(seconds=1),
        )

    async def receive(self, msg: InboundMessage) -> str:
        """Publish one inbound channel message; returns the conversation it was threaded into."""
        await self.publish(msg)
        seen = await self.probe.wait_for(
            lambda r: r.type == "conversation.message_received" and r.body["account_id"] == msg.account_id
            and r.body["channel_message_id"] == msg.channel_message_id,
            what=f"message {msg.channel_message_id} received")
        return seen[0].body["conversation_id"]

    async def new_conversation(self, account_id: str, **kwargs: Any) -> str:
        """Send an inbound message on a new thread and return the conversation it created."""
        return await self.receive(self.inbound(account_id, **kwargs))

    async def new_ticket(self, account_id: str, conversation_id: str, **fields: Any) -> str:
        cmd = c.CreateTicket(command_id=new_id("cmd-"), account_id=account_id, conversation_id=conversation_id, **fields)
        await self.publish(cmd)
        created = await self.probe.wait_for(
            lambda r: r.type == "ticket.created" and conversation_id in r.body["conversation_ids"],
            what=f"ticket for {conversation_id}")
        return created[0].body["ticket_id"]

    async def ticket_with_two_conversations(self, account_id: str) -> tuple[str, str, str]:
        """Two conversations, two tickets, the second merged into the first (T9): (ticket, first, second)."""
        first = await self.new_conversation(account_id)
        second = await self.new_conversation(account_id, email="sam@example.com")
        a = await self.new_ticket(account_id, first)
        b = await self.new_ticket(account_id, second)
        await self.command(c.MergeTickets, account_id, ticket_id=a, merged_ticket_id=b)
        await self.wait_event(b, "ticket.merged")
        await self.settle()
        return a, first, second

    async def publish_raw(self, topic: str, key: bytes | None, value: bytes,
                          headers: list[tuple[str, bytes]] | None = None, partition: int | None = None) -> None:
        """Publish bytes as they are (malformed input, or a record seen before, again) to a full topic name."""
        producer = self.settings.kafka.producer("ticketflow-driver-raw")
        await producer.start()
        try:
            await producer.send_and_wait(topic, value=value, key=key, headers=headers or [], partition=partition)
        finally:
            await producer.stop()

    async def republish(self, record: Seen) -> None:
        """A record the probe saw, again, byte for byte and to the same partition: a duplicate or late delivery."""
        await self.publish_raw(record.topic, record.key.encode() if record.key is not None else None, record.value,
                               [(k, v.encode()) for k, v in record.headers.items()], record.partition)

    async def command(self, cls: type, account_id: str, **fields: Any) -> str:
        cmd = cls(command_id=new_id("cmd-"), account_id=account_id, **fields)
        await self.publish(cmd)
        return cmd.command_id

    # --- watching it --------------------------------------------------------------------
    def events(self, aggregate_id: str) -> list[Seen]:
        """Events about one conversation or ticket, in the order they were published (X3)."""
        return [r for r in self.probe.records
                if r.topic.endswith((CONVERSATION_EVENTS, TICKET_EVENTS)) and r.key == aggregate_id]

    def types(self, aggregate_id: str) -> list[str]:
        return [r.type or "" for r in self.events(aggregate_id)]

    async def wait_event(self, aggregate_id: str, type_: str, count: int = 1) -> list[Seen]:
        return await self.probe.wait_for(lambda r: r.key == aggregate_id and r.type == type_, count,
                                         what=f"{type_} on {aggregate_id}")

    async def rejection(self, command_id: str) -> dict[str, Any]:
        found = await self.probe.wait_for(lambda r: r.type == "command.rejected" and r.body["command_id"] == command_id,
                                          what=f"rejection of {command_id}")
        return found[0].body

    def rejections(self, command_id: str) -> list[Seen]:
        return self.probe.matching(lambda r: r.type == "command.rejected" and r.body["command_id"] == command_id)

    async def settle(self, timeout: float = WAIT_SECONDS) -> None:
        """Wait until the workers have processed everything published so far (and relayed their outbox)."""
        await settle(self.settings.kafka, worker_groups(self.settings), timeout=timeout,
                     also_quiet=self._outbox_empty)

    async def _outbox_empty(self) -> bool:
        async with self.engine.connect() as conn:
            return (await conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None)))) == 0

    # --- stored state -------------------------------------------------------------------
    async def conversation(self, conversation_id: str) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(conversations).where(conversations.c.id == conversation_id))).first()

    async def ticket(self, ticket_id: str) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(tickets).where(tickets.c.id == ticket_id))).first()

    async def conversations_of(self, account_id: str) -> list[Any]:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(conversations).where(conversations.c.account_id == account_id)
                                       .order_by(conversations.c.created_at))).all()

    async def tickets_of(self, account_id: str) -> list[Any]:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(tickets).where(tickets.c.account_id == account_id))).all()

    async def messages_of(self, conversation_id: str) -> list[Any]:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(messages).where(messages.c.conversation_id == conversation_id)
                                       .order_by(messages.c.sent_at))).all()
