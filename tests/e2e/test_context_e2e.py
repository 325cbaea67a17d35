"""The agent's context panel end to end (Q1, Q2): conversations and tickets made through Kafka, the panel
read with `ticketflow.context.conversation_context` over what the workers stored."""

from __future__ import annotations

from contracts.accounts import DEFAULT_DETAIL_PROPERTIES
from readmodel.context import conversation_context

CARD = ["subject", "pipeline", "status", "priority", "owner_id"]


async def test_q1_q2_context_shows_ticket_card_and_chosen_details_contact_and_previous_conversations(system):
    account = await system.account(ticket_detail_properties=("priority", "subject"))
    earlier = await system.new_conversation(account, email="dana@example.com", subject="Where is my parcel")
    later = await system.new_conversation(account, email="dana@example.com", subject="Refund please")
    ticket_id = await system.new_ticket(account, later, priority="high")
    await system.settle()

    ctx = await conversation_context(system.engine, later)
    assert ctx is not None
    assert ctx["conversation"]["id"] == later
    # Q1: its ticket, its contact, the contact's previous conversations
    stored = await system.conversation(later)
    assert ctx["contact"]["id"] == stored.contact_id
    assert ctx["contact"]["email"] == "dana@example.com"
    assert [p["id"] for p in ctx["previous_conversations"]] == [earlier]
    assert ctx["previous_conversations"][0]["subject"] == "Where is my parcel"
    ticket = ctx["ticket"]
    assert ticket["id"] == ticket_id and ticket["deleted"] is False
    # Q2: the card is fixed and read-only; the details follow the account's choice, in its order
    assert ticket["card"]["read_only"] is True
    assert list(ticket["card"]["properties"]) == CARD
    assert ticket["card"]["properties"] == {
        "subject": "Refund please", "pipeline": "support", "status": "new", "priority": "high", "owner_id": None}
    assert ticket["details"] == [{"name": "priority", "value": "high"}, {"name": "subject", "value": "Refund please"}]


async def test_q1_first_conversation_has_no_previous_ones_and_no_ticket_yet(system):
    account = await system.account()
    earlier = await system.new_conversation(account, email="eve@example.com")
    await system.new_conversation(account, email="eve@example.com")
    await system.new_conversation(account, email="other@example.com")
    await system.settle()
    ctx = await conversation_context(system.engine, earlier)
    assert ctx is not None
    assert ctx["ticket"] is None
    assert ctx["previous_conversations"] == []
    assert ctx["contact"]["email"] == "eve@example.com"


async def test_q1_previous_conversations_are_only_the_contacts_own_newest_first(system):
    account = await system.account()
    other_account = await system.account()
    first = await system.new_conversation(account, email="fay@example.com")
    second = await system.new_conversation(account, email="fay@example.com")
    await system.new_conversation(account, email="gus@example.com")
    await system.new_conversation(other_account, email="fay@example.com")
    third = await system.new_conversation(account, email="fay@example.com")
    await system.settle()
    ctx = await conversation_context(system.engine, third)
    assert [p["id"] for p in ctx["previous_conversations"]] == [second, first]


async def test_q2_card_is_the_same_whatever_the_details_choice_and_default_details_follow_the_default(system):
    chooser = await system.account(ticket_detail_properties=("priority", "subject"))
    default = await system.account()
    tickets = {}
    for account in (chooser, default):
        conv = await system.new_conversation(account)
        await system.new_ticket(account, conv, priority="low")
        tickets[account] = conv
    await system.settle()
    chosen = (await conversation_context(system.engine, tickets[chooser]))["ticket"]
    standard = (await conversation_context(system.engine, tickets[default]))["ticket"]
    assert chosen["card"] == standard["card"]
    assert chosen["card"]["read_only"] is True and list(chosen["card"]["properties"]) == CARD
    assert [d["name"] for d in chosen["details"]] == ["priority", "subject"]
    assert [d["name"] for d in standard["details"]] == list(DEFAULT_DETAIL_PROPERTIES)
