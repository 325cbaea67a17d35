"""The inbound worker's tables as repositories of its domain values (it is the only writer of
contacts, conversations and messages), and its unit of work."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.common import Channel, ConversationStatus, Workspace
from contracts.inbound import InboundMessage
from storage.columns import plain_values
from storage.tables import contacts, conversations, messages
from storage.unit_of_work import now_utc
from workers.accounts import Accounts
from workers.delivery.errors import BadMessage, ConcurrentUpdate
from workers.inbound.domain import Contact, Conversation, ConversationDecision, Message
from workers.unit import WorkUnit

OWNER = "inbound"


def _conversation(row: Any) -> Conversation:
    return Conversation(
        id=row.id, account_id=row.account_id, contact_id=row.contact_id, channel=Channel(row.channel),
        thread_key=row.thread_key, subject=row.subject, status=ConversationStatus(row.status), owner_id=row.owner_id,
        workspace=Workspace(row.workspace), deleted=row.deleted, version=row.version, created_at=row.created_at,
    )


def _contact(row: Any) -> Contact:
    return Contact(id=row.id, account_id=row.account_id, email=row.email, phone=row.phone, name=row.name)


class Conversations:
    """Conversations, remembering the version each was loaded at (optimistic writes)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._loaded: dict[str, int] = {}

    def _seen(self, row: Any) -> Conversation | None:
        if row is None:
            return None
        conv = _conversation(row)
        self._loaded.setdefault(conv.id, conv.version)
        return conv

    async def get(self, conversation_id: str) -> Conversation | None:
        return self._seen((await self.conn.execute(
            select(conversations).where(conversations.c.id == conversation_id))).first())

    async def thread_of(self, msg: InboundMessage) -> Conversation | None:
        """The newest conversation of the message's thread that is not in the trash (C1)."""
        return self._seen((await self.conn.execute(
            select(conversations).where(
                conversations.c.account_id == msg.account_id, conversations.c.channel == msg.channel.value,
                conversations.c.thread_key == msg.channel_thread_key, conversations.c.deleted.is_(False),
            ).order_by(conversations.c.created_at.desc(), conversations.c.id.desc()).limit(1))).first())

    async def save(self, conv: Conversation) -> None:
        values = {**plain_values(asdict(conv)), "updated_at": now_utc()}
        loaded = self._loaded.get(conv.id)
        if loaded is None:
            await self.conn.execute(insert(conversations).values(**values))
        else:
            result = await self.conn.execute(update(conversations).where(
                conversations.c.id == conv.id, conversations.c.version == loaded).values(**values))
            if result.rowcount != 1:
                raise ConcurrentUpdate(f"conversation {conv.id} changed since version {loaded}")
        self._loaded[conv.id] = conv.version


class Contacts:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def get(self, contact_id: str) -> Contact | None:
        row = (await self.conn.execute(select(contacts).where(contacts.c.id == contact_id))).first()
        return _contact(row) if row else None

    async def with_address(self, account_id: str, email: str | None, phone: str | None) -> list[Contact]:
        """C1's candidates: the account's contacts with this email or this phone, oldest first."""
        conds = [col == value for col, value in ((contacts.c.email, email), (contacts.c.phone, phone)) if value]
        if not conds:
            return []
        rows = (await self.conn.execute(select(contacts).where(
            and_(contacts.c.account_id == account_id, or_(*conds))).order_by(contacts.c.created_at))).all()
        return [_contact(r) for r in rows]

    async def add(self, contact: Contact) -> None:
        await self.conn.execute(insert(contacts).values(**asdict(contact), created_at=now_utc()))


class Messages:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def stored(self, msg: InboundMessage) -> bool:
        """C2: has this channel message been stored already?"""
        row = (await self.conn.execute(select(messages.c.id).where(
            messages.c.account_id == msg.account_id, messages.c.channel == msg.channel.value,
            messages.c.channel_message_id == msg.channel_message_id))).first()
        return row is not None

    async def add(self, message: Message, channel: Channel) -> None:
        await self.conn.execute(insert(messages).values(**plain_values(asdict(message)), channel=channel.value))


class InboundUnit(WorkUnit[ConversationDecision]):
    """The inbound worker's unit of work: its repositories and how a decision is saved."""

    conversations: Conversations
    contacts: Contacts
    messages: Messages
    accounts: Accounts

    async def __aenter__(self) -> InboundUnit:
        await super().__aenter__()
        self.conversations, self.contacts = Conversations(self.conn), Contacts(self.conn)
        self.messages, self.accounts = Messages(self.conn), Accounts(self.conn, OWNER)
        return self

    async def save(self, decision: ConversationDecision) -> None:
        if decision.new_contact is not None:
            await self.contacts.add(decision.new_contact)
        if decision.conversation is not None:
            await self.conversations.save(decision.conversation)
            if decision.message is not None:
                await self.messages.add(decision.message, decision.conversation.channel)

    async def conclude_message(self, msg: InboundMessage, decision: ConversationDecision) -> None:
        """An inbound message's outcome: stored with its events, or (refused) a dead letter (X4)."""
        self.final(decision.rejection)
        if decision.rejection is not None:
            raise BadMessage(decision.rejection.reason.value, decision.rejection.detail)
        await self.save(decision)
        for event in decision.events:
            await self.publish(event)
        if decision.conversation is not None:
            await self.mark_processed(msg.account_id, msg.natural_id())

