"""The ticketing worker's handlers: for each message type, load -> rule -> conclude. No decisions here."""

from __future__ import annotations

from dataclasses import dataclass

from contracts import commands as c
from contracts import events as e
from workers.handling import Deps, Handlers
from workers.ticketing import domain
from workers.ticketing.repositories import TicketingUnit


@dataclass(frozen=True)
class TicketingDeps(Deps):
    policy: domain.HelpDeskPolicy | None = None

    @property
    def help_desk(self) -> domain.HelpDeskPolicy:
        assert self.policy is not None, "the ticketing worker is built with its T8 policy"
        return self.policy


async def create_ticket(cmd: c.CreateTicket, uow: TicketingUnit, deps: TicketingDeps) -> None:
    """T1, T2, T8: the ticket for a conversation."""
    account = await uow.accounts.get(cmd.account_id)
    conv = await uow.conversations.get(cmd.conversation_id)
    existing = await uow.tickets.of_conversation(cmd.conversation_id)
    decision = domain.create_ticket(cmd, account, conv, existing, deps.help_desk, deps.new_id(), uow.now)
    await uow.conclude(cmd, decision)


async def on_ticket(cmd: c.TicketCommand, uow: TicketingUnit, deps: TicketingDeps) -> None:
    """T4, T5/S1/S2, T6, T7: a command on one ticket."""
    account = await uow.accounts.get(cmd.account_id)
    ticket = await uow.tickets.get(cmd.ticket_id)
    await uow.conclude(cmd, domain.decide_ticket_command(cmd, account, ticket, deps.help_desk, uow.now))


async def merge(cmd: c.MergeTickets, uow: TicketingUnit, deps: TicketingDeps) -> None:
    """T9: B into A."""
    account = await uow.accounts.get(cmd.account_id)
    a, b = await uow.tickets.get(cmd.ticket_id), await uow.tickets.get(cmd.merged_ticket_id)
    await uow.conclude(cmd, domain.decide_merge(cmd, a, b, account, deps.help_desk, uow.now))


async def associate(cmd: c.AssociateConversation, uow: TicketingUnit, deps: TicketingDeps) -> None:
    """T10: a conversation without a ticket joins this one."""
    account = await uow.accounts.get(cmd.account_id)
    ticket = await uow.tickets.get(cmd.ticket_id)
    conv = await uow.conversations.get(cmd.conversation_id)
    existing = await uow.tickets.of_conversation(cmd.conversation_id)
    decision = domain.decide_association(cmd, ticket, conv, existing, account, deps.help_desk, uow.now)
    await uow.conclude(cmd, decision)


async def unlink(cmd: c.RemoveConversationAssociation, uow: TicketingUnit, _deps: TicketingDeps) -> None:
    """T3: always refused."""
    await uow.conclude(cmd, domain.refuse_unlink(cmd, await uow.accounts.get(cmd.account_id)))


async def follow_conversation(cmd: c.ApplyConversationOwnerToTicket | c.DeleteTicketOfConversation,
                              uow: TicketingUnit, _deps: TicketingDeps) -> None:
    """S3, S5 (ticket side): the sync worker's commands that name a conversation."""
    account = await uow.accounts.get(cmd.account_id)
    ticket = await uow.tickets.of_conversation(cmd.conversation_id)
    await uow.conclude(cmd, domain.decide_for_conversation(cmd, account, ticket, uow.now))


async def project_conversation(event: e.ConversationEvent, uow: TicketingUnit, _deps: TicketingDeps) -> None:
    """The ticketing worker's view of conversations (T1 defaults, X1, T10); stale versions change nothing (S7)."""
    new = domain.project_conversation_event(await uow.conversations.get(event.conversation_id), event)
    if new is not None:
        uow.conversations.save(new)


HANDLERS: Handlers = {
    c.CreateTicket: create_ticket,
    c.UpdateTicketProperties: on_ticket,
    c.ChangeTicketStatus: on_ticket,
    c.ChangeTicketOwner: on_ticket,
    c.DeleteTicket: on_ticket,
    c.MergeTickets: merge,
    c.AssociateConversation: associate,
    c.RemoveConversationAssociation: unlink,
    c.ApplyConversationOwnerToTicket: follow_conversation,
    c.DeleteTicketOfConversation: follow_conversation,
}

PROJECTION: Handlers = {event_type: project_conversation for event_type in domain.PROJECTED_EVENTS}
"""Only the conversation events that change the ticketing worker's view; the others (messages,
closed, reopened) are passed over: applying them only moved the stored version on, a read and a
write per inbound message."""
