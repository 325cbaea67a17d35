"""The ticketing worker's handlers: parse, load, call the rule, save, emit. No decisions here."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from contracts import commands as c
from contracts.accounts import Account
from contracts.events import read_conversation_event
from storage.unit_of_work import UnitOfWork
from workers.command_flow import account_for, record_outcome
from workers.decision import Decision
from workers.delivery.errors import NotYetKnown
from workers.delivery.parsing import envelope_of, parse, parse_with
from workers.runtime import Worker
from workers.ticketing import rules, store
from workers.ticketing.model import HelpDeskPolicy, Ticket

OWNER = "ticketing"
CONVERSATIONS_PROJECTION = "conversations"
"""The ticketing worker's view of conversations, fed by conversation events."""


async def _decide(conn: AsyncConnection, cmd: Any, account: Account, policy: HelpDeskPolicy,
                  now: datetime) -> tuple[Decision[tuple[Ticket, ...]], dict[str, Ticket]]:
    """Load what the command names, call its rule; returns the decision and the tickets as loaded."""
    if isinstance(cmd, c.CreateTicket):
        ref = await store.get_ref(conn, cmd.conversation_id)
        existing = await store.ticket_of_conversation(conn, cmd.conversation_id)
        return rules.create_ticket(cmd, account, ref, existing, policy, str(uuid.uuid4()), now), {}
    if isinstance(cmd, (c.ApplyConversationOwnerToTicket, c.DeleteTicketOfConversation)):
        ticket = await store.ticket_of_conversation(conn, cmd.conversation_id)
        return rules.decide_for_conversation(cmd, ticket, now), ({ticket.id: ticket} if ticket else {})
    ticket = await store.get_ticket(conn, cmd.ticket_id)
    loaded = {ticket.id: ticket} if ticket else {}
    if isinstance(cmd, c.MergeTickets):
        other = await store.get_ticket(conn, cmd.merged_ticket_id)
        if other is not None:
            loaded[other.id] = other
        return rules.decide_merge(cmd, ticket, other, account, policy, now), loaded
    if isinstance(cmd, c.AssociateConversation):
        ref = await store.get_ref(conn, cmd.conversation_id)
        existing = await store.ticket_of_conversation(conn, cmd.conversation_id)
        return rules.decide_association(cmd, ticket, ref, existing, account, policy, now), loaded
    return rules.decide_ticket_command(cmd, account, ticket, policy, now), loaded


async def handle_command(worker: Worker, record: Any, caught_up: frozenset[str]) -> None:
    """T1-T10, S3 and S5 (ticket side) for one ticket command."""
    cmd = parse(record, c.ticket_command_adapter, "ticket command")
    cause = envelope_of(record)
    now = datetime.now(timezone.utc)
    async with UnitOfWork(worker.engine, f"{OWNER}.commands", OWNER) as uow:
        if await uow.already_processed(cmd.account_id, cmd.command_id):
            return
        account = await account_for(uow, OWNER, cmd, caught_up)
        loaded: dict[str, Ticket] = {}
        if isinstance(account, Decision):
            decision: Decision[Any] = account
        else:
            decision, loaded = await _decide(uow.conn, cmd, account, worker.settings.help_desk_policy, now)
        if decision.rejected and decision.extra.get(rules.AWAIT_PROJECTION) and CONVERSATIONS_PROJECTION not in caught_up:
            raise NotYetKnown(CONVERSATIONS_PROJECTION, getattr(cmd, "conversation_id", ""))
        for ticket in decision.state or ():
            await store.save_ticket(uow.conn, ticket, loaded.get(ticket.id))
        subject = getattr(cmd, "ticket_id", None) or getattr(cmd, "conversation_id", None)
        await record_outcome(uow, worker.settings.topic_prefix, worker.source, cmd, decision, now, subject, cause)
    worker.committed()


async def project_conversation(worker: Worker, record: Any, _caught_up: frozenset[str]) -> None:
    """Keep the ticketing worker's view of conversations (T1 defaults, X1, T10); stale versions are dropped (S7)."""
    event = parse_with(record, read_conversation_event, "conversation event")
    if event is None:
        return  # an event type this version does not know: not for it
    async with worker.engine.begin() as conn:
        ref = await store.get_ref(conn, event.conversation_id)
        new = rules.project_conversation_event(ref, event)
        if new is not None:
            await store.save_ref(conn, new, existed=ref is not None)
