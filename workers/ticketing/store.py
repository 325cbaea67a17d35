"""The ticketing worker's tables <-> its model values (sole writer of tickets, ticket_conversations,
conversation_refs)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.common import Channel, StatusState, Workspace
from storage.tables import conversation_refs, ticket_conversations, tickets
from workers.delivery.errors import ConcurrentUpdate
from workers.ticketing.model import ConversationRef, Ticket

_TICKET_COLUMNS = ("id", "account_id", "subject", "description", "pipeline", "status", "state", "priority", "owner_id",
                   "source_channel", "category", "workspace", "properties", "create_date", "close_date", "deleted",
                   "merged_into", "version")


def _plain(v: Any) -> Any:
    return v.value if hasattr(v, "value") else v


async def get_ticket(conn: AsyncConnection, ticket_id: str) -> Ticket | None:
    row = (await conn.execute(select(tickets).where(tickets.c.id == ticket_id))).first()
    if row is None:
        return None
    conv_ids = (await conn.execute(
        select(ticket_conversations.c.conversation_id).where(ticket_conversations.c.ticket_id == ticket_id)
        .order_by(ticket_conversations.c.position)
    )).scalars().all()
    return Ticket(
        id=row.id, account_id=row.account_id, subject=row.subject, description=row.description,
        pipeline=row.pipeline, status=row.status, state=StatusState(row.state), priority=row.priority,
        owner_id=row.owner_id, source_channel=Channel(row.source_channel), category=row.category,
        workspace=Workspace(row.workspace), properties=dict(row.properties), create_date=row.create_date,
        close_date=row.close_date, conversation_ids=tuple(conv_ids), deleted=row.deleted,
        merged_into=row.merged_into, version=row.version,
    )


async def ticket_of_conversation(conn: AsyncConnection, conversation_id: str) -> Ticket | None:
    ticket_id = (await conn.execute(
        select(ticket_conversations.c.ticket_id).where(ticket_conversations.c.conversation_id == conversation_id)
    )).scalar()
    return await get_ticket(conn, ticket_id) if ticket_id else None


async def save_ticket(conn: AsyncConnection, ticket: Ticket, previous: Ticket | None) -> None:
    """Write the ticket and make its association rows match `conversation_ids` (optimistic on version)."""
    values = {k: _plain(getattr(ticket, k)) for k in _TICKET_COLUMNS}
    if previous is None:
        await conn.execute(insert(tickets).values(**values))
    else:
        result = await conn.execute(
            update(tickets).where(tickets.c.id == ticket.id, tickets.c.version == previous.version).values(**values))
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"ticket {ticket.id} changed since version {previous.version}")
    before = set(previous.conversation_ids) if previous else set()
    for position, conv_id in enumerate(ticket.conversation_ids):
        if conv_id in before:
            continue
        moved = await conn.execute(update(ticket_conversations).where(
            ticket_conversations.c.conversation_id == conv_id).values(ticket_id=ticket.id, position=position))
        if moved.rowcount == 0:
            await conn.execute(insert(ticket_conversations).values(
                conversation_id=conv_id, ticket_id=ticket.id, account_id=ticket.account_id, position=position))


async def get_ref(conn: AsyncConnection, conversation_id: str) -> ConversationRef | None:
    row = (await conn.execute(select(conversation_refs).where(conversation_refs.c.id == conversation_id))).first()
    if row is None:
        return None
    return ConversationRef(id=row.id, account_id=row.account_id, channel=Channel(row.channel), subject=row.subject,
                           owner_id=row.owner_id, workspace=Workspace(row.workspace), deleted=row.deleted,
                           version=row.version)


async def save_ref(conn: AsyncConnection, ref: ConversationRef, existed: bool) -> None:
    values = {k: _plain(getattr(ref, k)) for k in ("id", "account_id", "channel", "subject", "owner_id", "workspace",
                                                  "deleted", "version")}
    if existed:
        await conn.execute(update(conversation_refs).where(conversation_refs.c.id == ref.id).values(**values))
    else:
        await conn.execute(insert(conversation_refs).values(**values))


__all__ = ["get_ticket", "ticket_of_conversation", "save_ticket", "get_ref", "save_ref"]
