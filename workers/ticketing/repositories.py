"""The ticketing worker's tables as repositories of its domain values (it is the only writer of
tickets, ticket_conversations and conversation_refs), and its unit of work.

Like the inbound worker's: loaded once per unit (a batch), prefetched for a whole batch, written in
bulk at commit; tickets and their associations are loaded `FOR UPDATE` on PostgreSQL (the commands
consumer and the sync-commands consumer may touch one ticket at once).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import Text, cast, select

from contracts import commands as c
from contracts import events as e
from contracts.common import Channel, StatusState, Workspace
from storage.columns import plain_values, row_of
from storage.json_codec import loads
from storage.queries import any_of, built, keys
from storage.tables import conversation_refs, ticket_conversations, tickets
from storage.unit_of_work import UnitOfWork, unit_ref
from workers.accounts import Accounts
from workers.ticketing.domain import ConversationRef, Ticket, TicketDecision
from workers.unit import WorkUnit

OWNER = "ticketing"
TICKET_COLUMNS = tuple(f.name for f in fields(Ticket) if f.name != "conversation_ids")
"""A ticket's row is its fields; its conversations live in ticket_conversations."""
REF_COLUMNS = tuple(f.name for f in fields(ConversationRef))


def _ticket(row: Any, conversation_ids: tuple[str, ...]) -> Ticket:
    """A ticket from its row, whose `properties` come as JSON text (see `_ticket_rows`)."""
    values = {name: getattr(row, name) for name in TICKET_COLUMNS}
    return Ticket(**{**values, "state": StatusState(row.state), "source_channel": Channel(row.source_channel),
                     "workspace": Workspace(row.workspace), "properties": dict(loads(row.properties))},
                  conversation_ids=conversation_ids)


def _ticket_rows() -> Any:
    """Every column of `tickets`, `properties` as its JSON text: decoded in `_ticket`, it costs a few µs;
    through the driver's JSON codec and SQLAlchemy's JSON type, about 10 µs a row (the relay's outbox
    headers likewise)."""
    return select(*(cast(column, Text).label(column.name) if column.name == "properties" else column
                    for column in tickets.c))


def _ref(row: Any) -> ConversationRef:
    values = {name: getattr(row, name) for name in REF_COLUMNS}
    return ConversationRef(**{**values, "channel": Channel(row.channel), "workspace": Workspace(row.workspace)})


class Tickets:
    """Tickets with their conversations, and which ticket each conversation has (T2)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self._by_id: dict[str, Ticket | None] = {}
        self._stored: dict[str, Ticket] = {}
        self._of_conversation: dict[str, str | None] = {}

    def _locked(self, query: Any) -> Any:
        return query.with_for_update() if self.uow.postgres else query

    async def load(self, ids: Iterable[str]) -> None:
        wanted = sorted({i for i in ids if i not in self._by_id})
        if not wanted:
            return
        pg = self.uow.postgres
        query = built(("tickets by id", pg), lambda: self._locked(
            _ticket_rows().where(any_of(tickets.c.id, "ids", pg)).order_by(tickets.c.id)))
        rows = (await self.uow.conn.execute(query, keys("ids", wanted))).all()
        query = built(("ticket links by ticket", pg), lambda: select(
            ticket_conversations.c.ticket_id, ticket_conversations.c.conversation_id)
            .where(any_of(ticket_conversations.c.ticket_id, "ids", pg)).order_by(ticket_conversations.c.position))
        links = (await self.uow.conn.execute(query, keys("ids", wanted))).all()
        convs: dict[str, list[str]] = {}
        for link in links:
            convs.setdefault(link.ticket_id, []).append(link.conversation_id)
            self._of_conversation.setdefault(link.conversation_id, link.ticket_id)
        for row in rows:
            ticket = _ticket(row, tuple(convs.get(row.id, ())))
            self._by_id[ticket.id] = self._stored[ticket.id] = ticket
        self._by_id.update({i: None for i in wanted if i not in self._by_id})

    async def load_for_conversations(self, conversation_ids: Iterable[str]) -> None:
        wanted = sorted({i for i in conversation_ids if i not in self._of_conversation})
        if not wanted:
            return
        pg = self.uow.postgres
        query = built(("ticket links by conversation", pg), lambda: self._locked(
            select(ticket_conversations.c.conversation_id, ticket_conversations.c.ticket_id)
            .where(any_of(ticket_conversations.c.conversation_id, "ids", pg))
            .order_by(ticket_conversations.c.conversation_id)))
        rows = (await self.uow.conn.execute(query, keys("ids", wanted))).all()
        found = {r.conversation_id: r.ticket_id for r in rows}
        self._of_conversation.update({conv: found.get(conv) for conv in wanted})
        await self.load(t for t in found.values())

    async def get(self, ticket_id: str) -> Ticket | None:
        await self.load([ticket_id])
        return self._by_id[ticket_id]

    async def of_conversation(self, conversation_id: str) -> Ticket | None:
        await self.load_for_conversations([conversation_id])
        ticket_id = self._of_conversation[conversation_id]
        return await self.get(ticket_id) if ticket_id else None

    def save(self, ticket: Ticket) -> None:
        """Write the ticket and make its association rows match `conversation_ids`."""
        values = plain_values({k: v for k, v in row_of(ticket).items() if k in TICKET_COLUMNS})
        previous = self._stored.get(ticket.id)
        if previous is None:
            self.uow.insert(tickets, values)
        else:
            self.uow.update(tickets, "id", values)
        before = set(previous.conversation_ids) if previous else set()
        for position, conv_id in enumerate(ticket.conversation_ids):
            if conv_id in before:
                continue
            row = {"conversation_id": conv_id, "ticket_id": ticket.id, "account_id": ticket.account_id,
                   "position": position}
            if self._of_conversation.get(conv_id) is None:
                self.uow.insert(ticket_conversations, row)
            else:  # T9: a merged ticket's conversation moves
                self.uow.update(ticket_conversations, "conversation_id", row)
            self._of_conversation[conv_id] = ticket.id
        self._by_id[ticket.id] = self._stored[ticket.id] = ticket


class ConversationRefs:
    """The ticketing worker's view of conversations."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self._by_id: dict[str, ConversationRef | None] = {}
        self._stored: set[str] = set()

    async def load(self, ids: Iterable[str]) -> None:
        wanted = sorted({i for i in ids if i not in self._by_id})
        if not wanted:
            return
        pg = self.uow.postgres
        query = built(("conversation refs by id", pg), lambda: select(conversation_refs).where(
            any_of(conversation_refs.c.id, "ids", pg)))
        rows = (await self.uow.conn.execute(query, keys("ids", wanted))).all()
        for row in rows:
            self._by_id[row.id] = _ref(row)
            self._stored.add(row.id)
        self._by_id.update({i: None for i in wanted if i not in self._by_id})

    async def get(self, conversation_id: str) -> ConversationRef | None:
        await self.load([conversation_id])
        return self._by_id[conversation_id]

    def save(self, ref: ConversationRef) -> None:
        values = plain_values(row_of(ref))
        if ref.id in self._stored:
            self.uow.update(conversation_refs, "id", values)
        else:
            self.uow.insert(conversation_refs, values)
            self._stored.add(ref.id)
        self._by_id[ref.id] = ref


class TicketingUnit(WorkUnit[TicketDecision]):
    """The ticketing worker's unit of work: its repositories, what a batch loads up front, and how a
    decision is saved."""

    tickets: Tickets
    conversations: ConversationRefs
    accounts: Accounts

    async def __aenter__(self) -> TicketingUnit:
        await super().__aenter__()
        me = unit_ref(self)
        self.tickets, self.conversations = Tickets(me), ConversationRefs(me)
        self.accounts = Accounts(self.conn, OWNER)
        return self

    async def prefetch(self, batch: Sequence[object]) -> None:
        """Everything the batch's handlers will load, in one query per kind."""
        events = [m for m in batch if isinstance(m, e.ConversationEvent)]
        commands = [m for m in batch if isinstance(m, c.Command)]
        if events:
            await self.conversations.load({ev.conversation_id for ev in events})
        if not commands:
            return
        await self.accounts.load({m.account_id for m in commands})
        await self.remember_processed((m.account_id, m.command_id) for m in commands)
        ticket_ids = {i for m in commands for i in (getattr(m, "ticket_id", None), getattr(m, "merged_ticket_id", None)) if i}
        conv_ids = {i for m in commands if isinstance(i := getattr(m, "conversation_id", None), str)}
        await self.tickets.load(ticket_ids)
        await self.tickets.load_for_conversations(conv_ids)
        await self.conversations.load(conv_ids)

    async def save(self, decision: TicketDecision) -> None:
        for ticket in decision.tickets:
            self.tickets.save(ticket)
