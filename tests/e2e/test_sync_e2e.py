"""Lifecycle sync end to end (S1-S3, S5, S7): a change on one side shows up on the other, once, driven
only through Kafka topics (real broker, real PostgreSQL, the three workers running)."""

from __future__ import annotations

from contracts import commands as c
from contracts.topics import CONVERSATION_COMMANDS_INTERNAL, TICKET_EVENTS


async def move_ticket(system, account: str, ticket_id: str, status: str, then: str) -> None:
    before = system.types(ticket_id).count(then)
    await system.command(c.ChangeTicketStatus, account, ticket_id=ticket_id, status=status)
    await system.wait_event(ticket_id, then, count=before + 1)


def sync_close_commands(system, conv: str) -> list:
    """The close_conversation commands the sync worker sent for `conv` (S1)."""
    return system.probe.matching(
        lambda r: r.topic.endswith(CONVERSATION_COMMANDS_INTERNAL) and r.key == conv and r.type == "close_conversation"
        and r.body["actor_id"] == c.SYNC_ACTOR)


def seen_ticket_closed(system, ticket_id: str) -> list:
    return system.probe.matching(
        lambda r: r.topic.endswith(TICKET_EVENTS) and r.key == ticket_id and r.type == "ticket.closed")


# --- S1 ----------------------------------------------------------------------------------------------

async def test_s1_closing_a_ticket_closes_every_associated_conversation_and_sets_close_date(system):
    account = await system.account()
    a, first, second = await system.ticket_with_two_conversations(account)
    await move_ticket(system, account, a, "closed", "ticket.closed")
    await system.wait_event(first, "conversation.closed")
    await system.wait_event(second, "conversation.closed")
    await system.settle()
    assert (await system.conversation(first)).status == "closed"
    assert (await system.conversation(second)).status == "closed"
    ticket = await system.ticket(a)
    assert (ticket.status, ticket.state) == ("closed", "CLOSED")
    assert ticket.close_date is not None
    closed = seen_ticket_closed(system, a)[0].body
    assert sorted(closed["conversation_ids"]) == sorted([first, second])
    assert system.types(first).count("conversation.closed") == 1
    assert system.types(second).count("conversation.closed") == 1


# --- S2 ----------------------------------------------------------------------------------------------

async def test_s2_reopening_a_ticket_with_one_conversation_reopens_it(system):
    account = await system.account()
    conv = await system.new_conversation(account)
    ticket_id = await system.new_ticket(account, conv)
    await move_ticket(system, account, ticket_id, "closed", "ticket.closed")
    await system.wait_event(conv, "conversation.closed")
    await move_ticket(system, account, ticket_id, "waiting_on_us", "ticket.reopened")
    reopened = (await system.wait_event(conv, "conversation.reopened"))[0].body
    assert reopened["cause"] == "ticket_reopened"
    await system.settle()
    assert (await system.conversation(conv)).status == "open"
    ticket = await system.ticket(ticket_id)
    assert (ticket.status, ticket.state, ticket.close_date) == ("waiting_on_us", "OPEN", None)


async def test_s2_reopening_a_ticket_with_two_conversations_reopens_none(system):
    account = await system.account()
    a, first, second = await system.ticket_with_two_conversations(account)
    await move_ticket(system, account, a, "closed", "ticket.closed")
    await system.wait_event(first, "conversation.closed")
    await system.wait_event(second, "conversation.closed")
    await move_ticket(system, account, a, "new", "ticket.reopened")
    await system.settle()
    assert (await system.conversation(first)).status == "closed"
    assert (await system.conversation(second)).status == "closed"
    assert "conversation.reopened" not in system.types(first)
    assert "conversation.reopened" not in system.types(second)
    assert (await system.ticket(a)).state == "OPEN"


# --- S3 ----------------------------------------------------------------------------------------------

async def test_s3_conversation_owner_change_moves_the_ticket_owner_too(system):
    account = await system.account()
    conv = await system.new_conversation(account)
    ticket_id = await system.new_ticket(account, conv)
    await system.command(c.AssignConversationOwner, account, conversation_id=conv, owner_id="agent-ann")
    changed = (await system.wait_event(ticket_id, "ticket.owner_changed"))[0].body
    assert (changed["owner_id"], changed["previous_owner_id"]) == ("agent-ann", None)
    await system.settle()
    assert (await system.ticket(ticket_id)).owner_id == "agent-ann"
    await system.command(c.AssignConversationOwner, account, conversation_id=conv, owner_id="agent-bob")
    changed = (await system.wait_event(ticket_id, "ticket.owner_changed", count=2))[1].body
    assert (changed["owner_id"], changed["previous_owner_id"]) == ("agent-bob", "agent-ann")
    await system.settle()
    assert (await system.ticket(ticket_id)).owner_id == "agent-bob"
    assert (await system.conversation(conv)).owner_id == "agent-bob"
    assert system.types(ticket_id).count("ticket.owner_changed") == 2


# --- S5 ----------------------------------------------------------------------------------------------

async def test_s5_trashing_a_conversation_deletes_its_ticket_and_the_chain_ends(system):
    account = await system.account()
    a, first, second = await system.ticket_with_two_conversations(account)
    await system.command(c.TrashConversation, account, conversation_id=first)
    await system.wait_event(a, "ticket.deleted")
    await system.wait_event(second, "conversation.deleted")  # T7: the deleted ticket's other conversation
    await system.settle()
    assert (await system.ticket(a)).deleted
    assert (await system.conversation(first)).deleted and (await system.conversation(second)).deleted
    assert system.types(first).count("conversation.deleted") == 1
    assert system.types(second).count("conversation.deleted") == 1
    assert system.types(a).count("ticket.deleted") == 1


async def test_s5_trashing_the_only_conversation_deletes_its_ticket_once(system):
    account = await system.account()
    conv = await system.new_conversation(account)
    ticket_id = await system.new_ticket(account, conv)
    await system.command(c.TrashConversation, account, conversation_id=conv)
    deleted = (await system.wait_event(ticket_id, "ticket.deleted"))[0].body
    assert deleted["conversation_ids"] == [conv]
    await system.settle()
    assert (await system.ticket(ticket_id)).deleted and (await system.conversation(conv)).deleted
    assert system.types(conv).count("conversation.deleted") == 1
    assert system.types(ticket_id).count("ticket.deleted") == 1


# --- S7 ----------------------------------------------------------------------------------------------

async def test_s7_a_duplicated_ticket_closed_event_closes_the_conversation_once(system):
    account = await system.account()
    conv = await system.new_conversation(account)
    ticket_id = await system.new_ticket(account, conv)
    await move_ticket(system, account, ticket_id, "closed", "ticket.closed")
    await system.wait_event(conv, "conversation.closed")
    await system.settle()
    record = seen_ticket_closed(system, ticket_id)[0]
    conv_version = (await system.conversation(conv)).version
    await system.republish(record)
    await system.probe.wait_for(
        lambda r: r.topic.endswith(TICKET_EVENTS) and r.key == ticket_id and r.type == "ticket.closed", count=2,
        what="the duplicate ticket.closed")
    await system.settle()
    # the sync worker did react to the duplicate, with the same derived command id, which was dropped
    commands = sync_close_commands(system, conv)
    assert len(commands) == 2 and commands[0].body["command_id"] == commands[1].body["command_id"]
    assert system.types(conv).count("conversation.closed") == 1
    stored = await system.conversation(conv)
    assert (stored.status, stored.version) == ("closed", conv_version)


async def test_s7_a_late_ticket_closed_event_after_reopen_leaves_the_conversation_reopened(system):
    account = await system.account()
    conv = await system.new_conversation(account)
    ticket_id = await system.new_ticket(account, conv)
    await move_ticket(system, account, ticket_id, "closed", "ticket.closed")
    await system.wait_event(conv, "conversation.closed")
    await move_ticket(system, account, ticket_id, "waiting_on_contact", "ticket.reopened")
    await system.wait_event(conv, "conversation.reopened")
    await system.settle()
    on_time = (await system.conversation(conv), await system.ticket(ticket_id))
    conv_types = system.types(conv)
    late = seen_ticket_closed(system, ticket_id)[0]
    await system.republish(late)
    await system.probe.wait_for(
        lambda r: r.topic.endswith(TICKET_EVENTS) and r.key == ticket_id and r.type == "ticket.closed", count=2,
        what="the late ticket.closed")
    await system.settle()
    commands = sync_close_commands(system, conv)
    assert len(commands) == 2 and commands[0].body["command_id"] == commands[1].body["command_id"]
    stored = await system.conversation(conv)
    assert (stored.status, stored.version) == ("open", on_time[0].version)
    assert system.types(conv) == conv_types
    assert system.types(conv).count("conversation.closed") == 1
    ticket = await system.ticket(ticket_id)
    assert (ticket.status, ticket.state, ticket.close_date) == ("waiting_on_contact", "OPEN", None)
