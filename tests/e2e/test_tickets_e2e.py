"""Ticket rules end to end: driven only through Kafka topics, asserting on the events that come out
and on the stored state (real broker, real PostgreSQL, the three workers running)."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts import commands as c
from contracts.common import Tier


async def test_t1_ticket_created_for_inbox_conversation_takes_its_defaults(system):
    account = await system.account()
    conv = await system.new_conversation(account, subject="Refund for order 1042")
    await system.command(c.AssignConversationOwner, account, conversation_id=conv, owner_id="agent-ann")
    await system.wait_event(conv, "conversation.owner_changed")
    await system.settle()
    ticket_id = await system.new_ticket(account, conv)
    ticket = await system.ticket(ticket_id)
    assert (ticket.subject, ticket.pipeline, ticket.status, ticket.owner_id, ticket.source_channel) == (
        "Refund for order 1042", "support", "new", "agent-ann", "email")
    created = (await system.wait_event(ticket_id, "ticket.created"))[0].body
    assert created["conversation_ids"] == [conv] and created["workspace"] == "inbox"


async def test_t2_second_ticket_for_a_conversation_is_rejected_and_replay_is_not_a_second_ticket(system):
    account = await system.account()
    conv = await system.new_conversation(account)
    create = c.CreateTicket(command_id="t2-create-" + conv, account_id=account, conversation_id=conv)
    await system.publish(create, create)  # the same command twice: one ticket
    await system.probe.wait_for(lambda r: r.type == "ticket.created" and conv in r.body["conversation_ids"])
    second = await system.command(c.CreateTicket, account, conversation_id=conv)
    rejection = await system.rejection(second)
    assert rejection["reason"] == "conversation_already_has_ticket"
    await system.settle()
    assert len(await system.tickets_of(account)) == 1
    assert system.rejections(create.command_id) == []


async def test_t3_no_message_can_unlink_a_ticket_from_its_conversation(system):
    account = await system.account()
    conv = await system.new_conversation(account)
    ticket_id = await system.new_ticket(account, conv)
    unlink = await system.command(c.RemoveConversationAssociation, account, ticket_id=ticket_id, conversation_id=conv)
    assert (await system.rejection(unlink))["reason"] == "association_immutable"
    edit = await system.command(c.UpdateTicketProperties, account, ticket_id=ticket_id, properties={"conversation_id": None})
    assert (await system.rejection(edit))["reason"] == "association_immutable"
    await system.settle()
    assert [r.type for r in system.events(ticket_id)] == ["ticket.created"]


async def test_t6_s4_changing_ticket_owner_leaves_conversation_owner_alone(system):
    account = await system.account()
    conv = await system.new_conversation(account)
    await system.command(c.AssignConversationOwner, account, conversation_id=conv, owner_id="agent-ann")
    await system.wait_event(conv, "conversation.owner_changed")
    ticket_id = await system.new_ticket(account, conv)
    await system.command(c.ChangeTicketOwner, account, ticket_id=ticket_id, owner_id="agent-bob")
    await system.wait_event(ticket_id, "ticket.owner_changed")
    await system.settle()
    assert (await system.ticket(ticket_id)).owner_id == "agent-bob"
    assert (await system.conversation(conv)).owner_id == "agent-ann"
    assert system.types(conv).count("conversation.owner_changed") == 1


async def test_t7_deleting_a_ticket_deletes_its_conversations(system):
    account = await system.account()
    a, first, second = await system.ticket_with_two_conversations(account)
    await system.command(c.DeleteTicket, account, ticket_id=a)
    await system.wait_event(first, "conversation.deleted")
    await system.wait_event(second, "conversation.deleted")
    await system.settle()
    assert (await system.conversation(first)).deleted and (await system.conversation(second)).deleted
    assert (await system.ticket(a)).deleted


async def test_t8_professional_account_since_cutoff_routes_ticket_and_conversation_to_help_desk(system):
    account = await system.account(tier=Tier.PROFESSIONAL, created_at=datetime(2024, 6, 1, tzinfo=UTC))
    conv = await system.new_conversation(account)
    ticket_id = await system.new_ticket(account, conv)
    await system.wait_event(conv, "conversation.moved_to_help_desk")
    await system.settle()
    assert (await system.ticket(ticket_id)).workspace == "help_desk"
    assert (await system.conversation(conv)).workspace == "help_desk"
    from_inbox = await system.command(c.ChangeTicketOwner, account, ticket_id=ticket_id, owner_id="agent-ann")
    assert (await system.rejection(from_inbox))["reason"] == "help_desk_required"
    from_help_desk = await system.command(c.ChangeTicketOwner, account, ticket_id=ticket_id, owner_id="agent-ann",
                                          from_workspace="help_desk")
    await system.wait_event(ticket_id, "ticket.owner_changed")
    assert system.rejections(from_help_desk) == []


async def test_t8_older_professional_account_keeps_tickets_in_the_inbox(system):
    account = await system.account(tier=Tier.PROFESSIONAL, created_at=datetime(2024, 3, 1, tzinfo=UTC))
    conv = await system.new_conversation(account)
    ticket_id = await system.new_ticket(account, conv)
    await system.settle()
    assert (await system.ticket(ticket_id)).workspace == "inbox"
    assert (await system.conversation(conv)).workspace == "inbox"


async def test_t4_property_edits_apply_whole_or_not_at_all(system):
    from contracts.accounts import CustomProperty, PropertyType

    account = await system.account(custom_properties=(
        CustomProperty(name="order_number", type=PropertyType.STRING),
        CustomProperty(name="refund_type", type=PropertyType.ENUMERATION, options=("full", "partial")),
    ))
    conv = await system.new_conversation(account)
    ticket_id = await system.new_ticket(account, conv)
    bad = await system.command(c.UpdateTicketProperties, account, ticket_id=ticket_id,
                               properties={"priority": "urgent", "refund_type": "some", "colour": "red"})
    rejection = await system.rejection(bad)
    assert rejection["reason"] == "unknown_property" and set(rejection["names"]) == {"colour", "refund_type"}
    await system.command(c.UpdateTicketProperties, account, ticket_id=ticket_id,
                         properties={"priority": "urgent", "refund_type": "full", "order_number": "1042"})
    changed = (await system.wait_event(ticket_id, "ticket.properties_changed"))[0].body
    assert set(changed["changes"]) == {"priority", "refund_type", "order_number"}
    await system.settle()
    ticket = await system.ticket(ticket_id)
    assert ticket.priority == "urgent"
    assert ticket.properties == {"refund_type": "full", "order_number": "1042"}
    assert system.types(ticket_id) == ["ticket.created", "ticket.properties_changed"]


async def test_t5_close_date_is_set_on_closing_and_cleared_on_reopening(system):
    account = await system.account()
    conv = await system.new_conversation(account)
    ticket_id = await system.new_ticket(account, conv)
    await system.command(c.ChangeTicketStatus, account, ticket_id=ticket_id, status="closed")
    closed = (await system.wait_event(ticket_id, "ticket.closed"))[0].body
    await system.settle()
    assert (await system.ticket(ticket_id)).close_date is not None and closed["close_date"]
    await system.command(c.ChangeTicketStatus, account, ticket_id=ticket_id, status="waiting_on_contact")
    await system.wait_event(ticket_id, "ticket.reopened")
    await system.settle()
    assert (await system.ticket(ticket_id)).close_date is None


async def test_t10_a_conversation_without_ticket_joins_an_existing_ticket(system):
    account = await system.account()
    first = await system.new_conversation(account)
    second = await system.new_conversation(account, email="sam@example.com")
    ticket_id = await system.new_ticket(account, first)
    await system.command(c.AssociateConversation, account, ticket_id=ticket_id, conversation_id=second)
    associated = (await system.wait_event(ticket_id, "ticket.conversation_associated"))[0].body
    assert associated["conversation_ids"] == [first, second]
    again = await system.command(c.CreateTicket, account, conversation_id=second)
    assert (await system.rejection(again))["reason"] == "conversation_already_has_ticket"


async def test_t9_merging_moves_the_conversations_and_ends_the_merged_ticket(system):
    account = await system.account()
    a, first, second = await system.ticket_with_two_conversations(account)
    merged = next(r.body for r in system.probe.records if r.type == "ticket.merged" and r.body["into_ticket_id"] == a)
    b = merged["ticket_id"]
    assert merged["moved_conversation_ids"] == [second] and merged["conversation_ids"] == []
    associated = (await system.wait_event(a, "ticket.conversation_associated"))[0].body
    assert associated["conversation_ids"] == [first, second]
    assert (await system.ticket(b)).merged_into == a
    on_b = await system.command(c.ChangeTicketOwner, account, ticket_id=b, owner_id="agent-ann")
    assert (await system.rejection(on_b))["reason"] == "ticket_merged"
