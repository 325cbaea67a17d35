"""The ticketing worker's tables as repositories of its domain values (it is the only writer of
tickets, ticket_conversations and conversation_refs), and its unit of work."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.common import Channel, StatusState, Workspace
from storage.columns import plain_values
from storage.tables import conversation_refs, ticket_conversations, tickets
from workers.accounts import Accounts
from workers.delivery.errors import ConcurrentUpdate
from workers.ticketing.domain import ConversationRef, Ticket, TicketDecision
from workers.unit import WorkUnit

OWNER = "ticketing"
TICKET_COLUMNS = tuple(f.name for f in fields(Ticket) if f.name != "conversation_ids")
"""A ticket's row is its fields; its conversations live in ticket_conversations."""


def _ticket(row: Any, conversation_ids: tuple[str, ...]) -> Ticket:
    values = {name: getattr(row, name) for name in TICKET_COLUMNS}
    return Ticket(**{**values, "state": StatusState(row.state), "source_channel": Channel(row.source_channel),
                     "workspace": Workspace(row.workspace), "properties": dict(row.properties)},
                  conversation_ids=conversation_ids)


class Tickets:
    """Tickets with their conversations, remembering what each was loaded as (optimistic writes,
    association rows written only for conversations added)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._loaded: dict[str, Ticket] = {}

    async def get(self, ticket_id: str) -> Ticket | None:
        row = (await self.conn.execute(select(tickets).where(tickets.c.id == ticket_id))).first()
        if row is None:
            return None
        conv_ids = (await self.conn.execute(
            select(ticket_conversations.c.conversation_id).where(ticket_conversations.c.ticket_id == ticket_id)
            .order_by(ticket_conversations.c.position))).scalars().all()
        ticket = _ticket(row, tuple(conv_ids))
        self._loaded.setdefault(ticket.id, ticket)
        return ticket

    async def of_conversation(self, conversation_id: str) -> Ticket | None:
        ticket_id = (await self.conn.execute(select(ticket_conversations.c.ticket_id).where(
            ticket_conversations.c.conversation_id == conversation_id))).scalar()
        return await self.get(ticket_id) if ticket_id else None

    async def save(self, ticket: Ticket) -> None:
        """Write the ticket and make its association rows match `conversation_ids`."""
        values = plain_values({k: v for k, v in asdict(ticket).items() if k in TICKET_COLUMNS})
        previous = self._loaded.get(ticket.id)
        if previous is None:
            await self.conn.execute(insert(tickets).values(**values))
        else:
            result = await self.conn.execute(update(tickets).where(
                tickets.c.id == ticket.id, tickets.c.version == previous.version).values(**values))
            if result.rowcount != 1:
                raise ConcurrentUpdate(f"ticket {ticket.id} changed since version {previous.version}")
        before = set(previous.conversation_ids) if previous else set()
        for position, conv_id in enumerate(ticket.conversation_ids):
            if conv_id not in before:
                await self._associate(ticket, conv_id, position)
        self._loaded[ticket.id] = ticket

    async def _associate(self, ticket: Ticket, conv_id: str, position: int) -> None:
        moved = await self.conn.execute(update(ticket_conversations).where(
            ticket_conversations.c.conversation_id == conv_id).values(ticket_id=ticket.id, position=position))
        if moved.rowcount == 0:
            await self.conn.execute(insert(ticket_conversations).values(
                conversation_id=conv_id, ticket_id=ticket.id, account_id=ticket.account_id, position=position))


REF_COLUMNS = tuple(f.name for f in fields(ConversationRef))


class ConversationRefs:
    """The ticketing worker's view of conversations."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._known: set[str] = set()

    async def get(self, conversation_id: str) -> ConversationRef | None:
        row = (await self.conn.execute(select(conversation_refs).where(
            conversation_refs.c.id == conversation_id))).first()
        if row is None:
            return None
        self._known.add(row.id)
        values = {name: getattr(row, name) for name in REF_COLUMNS}
        return ConversationRef(**{**values, "channel": Channel(row.channel), "workspace": Workspace(row.workspace)})

    async def save(self, ref: ConversationRef) -> None:
        values = plain_values(asdict(ref))
        if ref.id in self._known:
            await self.conn.execute(update(conversation_refs).where(conversation_refs.c.id == ref.id).values(**values))
        else:
            await self.conn.execute(insert(conversation_refs).values(**values))
            self._known.add(ref.id)


class TicketingUnit(WorkUnit[TicketDecision]):
    """The ticketing worker's unit of work: its repositories and how a decision is saved."""

    tickets: Tickets
    conversations: ConversationRefs
    accounts: Accounts

    async def __aenter__(self) -> TicketingUnit:
        await super().__aenter__()
        self.tickets, self.conversations = Tickets(self.conn), ConversationRefs(self.conn)
        self.accounts = Accounts(self.conn, OWNER)
        return self

    async def save(self, decision: TicketDecision) -> None:
        for ticket in decision.tickets:
            await self.tickets.save(ticket)
