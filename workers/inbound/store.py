"""The inbound worker's tables <-> its model values (the only writer of contacts, conversations, messages)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.common import Channel, ConversationStatus, Workspace
from storage.tables import contacts, conversations, messages
from storage.unit_of_work import now_utc
from workers.delivery.errors import ConcurrentUpdate
from workers.inbound.model import Contact, Conversation, Message


def _conversation(row: Any) -> Conversation:
    return Conversation(
        id=row.id, account_id=row.account_id, contact_id=row.contact_id, channel=Channel(row.channel),
        thread_key=row.thread_key, subject=row.subject, status=ConversationStatus(row.status), owner_id=row.owner_id,
        workspace=Workspace(row.workspace), deleted=row.deleted, version=row.version, created_at=row.created_at,
    )


def _contact(row: Any) -> Contact:
    return Contact(id=row.id, account_id=row.account_id, email=row.email, phone=row.phone, name=row.name)


async def get_conversation(conn: AsyncConnection, conversation_id: str) -> Conversation | None:
    row = (await conn.execute(select(conversations).where(conversations.c.id == conversation_id))).first()
    return _conversation(row) if row else None


async def find_thread(conn: AsyncConnection, account_id: str, channel: Channel, thread_key: str) -> Conversation | None:
    """The newest conversation of this thread that is not in the trash (C1)."""
    row = (await conn.execute(
        select(conversations).where(
            conversations.c.account_id == account_id, conversations.c.channel == channel.value,
            conversations.c.thread_key == thread_key, conversations.c.deleted.is_(False),
        ).order_by(conversations.c.created_at.desc(), conversations.c.id.desc()).limit(1)
    )).first()
    return _conversation(row) if row else None


async def save_conversation(conn: AsyncConnection, conv: Conversation, previous: Conversation | None) -> None:
    values = {k: (v.value if hasattr(v, "value") else v) for k, v in asdict(conv).items()}
    values["updated_at"] = now_utc()
    if previous is None or previous.id != conv.id:
        await conn.execute(insert(conversations).values(**values))
        return
    result = await conn.execute(
        update(conversations).where(conversations.c.id == conv.id, conversations.c.version == previous.version).values(**values)
    )
    if result.rowcount != 1:
        raise ConcurrentUpdate(f"conversation {conv.id} changed since version {previous.version}")


async def find_contact(conn: AsyncConnection, account_id: str, email: str | None, phone: str | None) -> Contact | None:
    """C1: the account's contact with this email, else with this phone."""
    conds = []
    if email:
        conds.append(contacts.c.email == email)
    if phone:
        conds.append(contacts.c.phone == phone)
    if not conds:
        return None
    rows = (await conn.execute(
        select(contacts).where(and_(contacts.c.account_id == account_id, or_(*conds))).order_by(contacts.c.created_at)
    )).all()
    by_email = next((r for r in rows if email and r.email == email), None)
    row = by_email or (rows[0] if rows else None)
    return _contact(row) if row else None


async def get_contact(conn: AsyncConnection, contact_id: str) -> Contact | None:
    row = (await conn.execute(select(contacts).where(contacts.c.id == contact_id))).first()
    return _contact(row) if row else None


async def insert_contact(conn: AsyncConnection, contact: Contact) -> None:
    await conn.execute(insert(contacts).values(**asdict(contact), created_at=now_utc()))


async def channel_message_seen(conn: AsyncConnection, account_id: str, channel: Channel, channel_message_id: str) -> bool:
    """C2: has this channel message been stored already?"""
    row = (await conn.execute(select(messages.c.id).where(
        messages.c.account_id == account_id, messages.c.channel == channel.value,
        messages.c.channel_message_id == channel_message_id))).first()
    return row is not None


async def insert_message(conn: AsyncConnection, message: Message, channel: Channel) -> None:
    values = {k: (v.value if hasattr(v, "value") else v) for k, v in asdict(message).items()}
    await conn.execute(insert(messages).values(**values, channel=channel.value))
