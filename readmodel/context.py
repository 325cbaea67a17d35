"""Q1/Q2: what an agent sees beside a conversation: its ticket, its contact, the contact's earlier
conversations. A read model over the workers' tables (read-only: each table keeps its one writer)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.accounts import Account
from storage.tables import (
    account_views,
    contacts,
    conversations,
    ticket_conversations,
    tickets,
)

CARD_PROPERTIES: tuple[str, ...] = ("subject", "pipeline", "status", "priority", "owner_id")
"""Q2: the inbox ticket card shows these, always, read-only; accounts choose only the details panel."""


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _ticket_value(row: Any, name: str) -> Any:
    if name in row._mapping:
        return _iso(row._mapping[name])
    return row.properties.get(name)


async def conversation_context(engine: AsyncEngine, conversation_id: str, previous_limit: int = 20) -> dict[str, Any] | None:
    """The context panel for one conversation, or None when there is no such conversation."""
    async with engine.connect() as conn:
        conv = (await conn.execute(select(conversations).where(conversations.c.id == conversation_id))).first()
        if conv is None:
            return None
        contact = (await conn.execute(select(contacts).where(contacts.c.id == conv.contact_id))).first()
        previous = (await conn.execute(
            select(conversations).where(
                conversations.c.contact_id == conv.contact_id, conversations.c.id != conv.id,
                conversations.c.account_id == conv.account_id, conversations.c.created_at <= conv.created_at,
            ).order_by(conversations.c.created_at.desc()).limit(previous_limit)
        )).all()
        ticket_row = (await conn.execute(
            select(tickets).join(ticket_conversations, ticket_conversations.c.ticket_id == tickets.c.id)
            .where(ticket_conversations.c.conversation_id == conversation_id)
        )).first()
        account_row = (await conn.execute(select(account_views.c.body).where(
            account_views.c.owner == "ticketing", account_views.c.account_id == conv.account_id))).first()
    detail_names = Account.model_validate(account_row.body).settings.ticket_detail_properties if account_row else ()
    ticket = None
    if ticket_row is not None:
        ticket = {
            "id": ticket_row.id,
            "deleted": ticket_row.deleted,
            "card": {"read_only": True, "properties": {n: _ticket_value(ticket_row, n) for n in CARD_PROPERTIES}},
            "details": [{"name": n, "value": _ticket_value(ticket_row, n)} for n in detail_names],
        }
    return {
        "conversation": {
            "id": conv.id, "account_id": conv.account_id, "channel": conv.channel, "status": conv.status,
            "owner_id": conv.owner_id, "workspace": conv.workspace, "deleted": conv.deleted, "subject": conv.subject,
        },
        "contact": None if contact is None else {
            "id": contact.id, "email": contact.email, "phone": contact.phone, "name": contact.name,
        },
        "ticket": ticket,
        "previous_conversations": [
            {"id": p.id, "channel": p.channel, "status": p.status, "subject": p.subject,
             "created_at": _iso(p.created_at), "deleted": p.deleted}
            for p in previous
        ],
    }
