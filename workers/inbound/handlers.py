"""The inbound worker's handlers: for each message type, load -> rule -> conclude. No decisions here."""

from __future__ import annotations

from contracts import commands as c
from contracts.inbound import InboundMessage
from workers.handling import Deps, Handlers
from workers.inbound import domain
from workers.inbound.repositories import InboundUnit


async def receive_message(msg: InboundMessage, uow: InboundUnit, deps: Deps) -> None:
    """C1, C2, C3: a channel's message joins its thread's conversation, or opens one."""
    stored = await uow.messages.stored(msg)
    account = await uow.accounts.get(msg.account_id)
    email, phone = domain.normalise_email(msg.sender_email), domain.normalise_phone(msg.sender_phone)
    candidates = await uow.contacts.with_address(msg.account_id, email, phone)
    thread = await uow.conversations.thread_of(msg)
    ids = domain.NewIds(deps.new_id)
    decision = domain.receive(msg, stored, account, thread, candidates, ids, uow.now)
    await uow.conclude_message(msg, decision)


async def on_conversation_command(cmd: c.ConversationCommand, uow: InboundUnit, deps: Deps) -> None:
    """C4-C7, trash, and the move to the help desk."""
    account = await uow.accounts.get(cmd.account_id)
    conv = await uow.conversations.get(cmd.conversation_id)
    contact = await uow.contacts.get(conv.contact_id) if conv else None
    decision = domain.decide_conversation_command(cmd, account, conv, contact, uow.now, deps.new_id())
    await uow.conclude(cmd, decision)


HANDLERS: Handlers = {
    InboundMessage: receive_message,
    c.ReplyToConversation: on_conversation_command,
    c.AssignConversationOwner: on_conversation_command,
    c.CloseConversation: on_conversation_command,
    c.ReopenConversation: on_conversation_command,
    c.TrashConversation: on_conversation_command,
    c.MoveConversationToHelpDesk: on_conversation_command,
}
