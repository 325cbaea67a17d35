"""Conversation rules end to end (C1-C7, C6/S6, X1-X3): driven only through Kafka topics, asserting on
the events that come out and on the stored state (real broker, real PostgreSQL, the three workers running)."""

from __future__ import annotations

import uuid

from contracts import commands as c
from contracts.common import Channel, ReplyToClosedPolicy
from contracts.topics import CONVERSATION_EVENTS, OUTBOUND_MESSAGES


async def close(system, account: str, conv: str) -> None:
    before = system.types(conv).count("conversation.closed")
    await system.command(c.CloseConversation, account, conversation_id=conv)
    await system.wait_event(conv, "conversation.closed", count=before + 1)


# --- C1: threading and contact resolution ----------------------------------------------------------

async def test_c1_same_thread_key_lands_in_the_same_conversation(system):
    account = await system.account()
    thread = "thread-" + uuid.uuid4().hex
    first = await system.receive(system.inbound(account, thread=thread, text="first"))
    second = await system.receive(system.inbound(account, thread=thread, text="second"))
    assert first == second
    await system.settle()
    assert [m.text for m in await system.messages_of(first)] == ["first", "second"]
    assert len(await system.conversations_of(account)) == 1
    assert system.types(first).count("conversation.created") == 1
    assert system.types(first).count("conversation.message_received") == 2


async def test_c1_different_thread_key_opens_a_new_conversation_for_the_same_contact_by_email(system):
    account = await system.account()
    first = await system.receive(system.inbound(account, email="lee@example.com"))
    second = await system.receive(system.inbound(account, email="lee@example.com"))
    assert first != second
    await system.settle()
    one, two = await system.conversation(first), await system.conversation(second)
    assert one.contact_id == two.contact_id
    assert len(await system.conversations_of(account)) == 2
    assert [len(await system.messages_of(first)), len(await system.messages_of(second))] == [1, 1]


async def test_c1_different_email_is_a_different_contact(system):
    account = await system.account()
    first = await system.receive(system.inbound(account, email="lee@example.com"))
    second = await system.receive(system.inbound(account, email="kim@example.com"))
    await system.settle()
    assert (await system.conversation(first)).contact_id != (await system.conversation(second)).contact_id


async def test_c1_phone_only_whatsapp_messages_with_the_same_number_find_the_same_contact(system):
    account = await system.account()
    first = await system.receive(system.inbound(account, channel=Channel.WHATSAPP, email=None,
                                                   phone="+31612345678", subject=None))
    second = await system.receive(system.inbound(account, channel=Channel.WHATSAPP, email=None,
                                                    phone="+31612345678", subject=None))
    assert first != second
    await system.settle()
    one, two = await system.conversation(first), await system.conversation(second)
    assert one.contact_id == two.contact_id
    assert one.channel == "whatsapp"


async def test_c1_phone_finds_the_contact_first_known_by_email_when_the_email_is_absent(system):
    account = await system.account()
    by_email = await system.receive(system.inbound(account, email="ria@example.com", phone="+31687654321"))
    by_phone = await system.receive(system.inbound(account, channel=Channel.WHATSAPP, email=None,
                                                      phone="+31687654321", subject=None))
    await system.settle()
    assert (await system.conversation(by_email)).contact_id == (await system.conversation(by_phone)).contact_id


# --- C2: redelivery -------------------------------------------------------------------------------

async def test_c2_the_same_channel_message_twice_is_stored_once_and_received_once(system):
    account = await system.account()
    msg = system.inbound(account)
    await system.publish(msg, msg)
    conv = await system.receive(msg)  # a third delivery of the same message, too
    await system.settle()
    assert len(await system.messages_of(conv)) == 1
    assert system.types(conv) == ["conversation.created", "conversation.message_received"]
    assert len(await system.conversations_of(account)) == 1


# --- C3: a contact writes on a closed conversation ----------------------------------------------------

async def test_c3_contact_message_reopens_a_closed_conversation(system):
    account = await system.account()
    thread = "thread-" + uuid.uuid4().hex
    conv = await system.receive(system.inbound(account, thread=thread, text="first"))
    await close(system, account, conv)
    again = await system.receive(system.inbound(account, thread=thread, text="are you there?"))
    assert again == conv
    reopened = (await system.wait_event(conv, "conversation.reopened"))[0].body
    assert reopened["cause"] == "contact_message"
    await system.settle()
    assert (await system.conversation(conv)).status == "open"
    assert [m.text for m in await system.messages_of(conv)] == ["first", "are you there?"]
    assert len(await system.conversations_of(account)) == 1


async def test_c3_account_setting_starts_a_new_conversation_instead_and_the_old_stays_closed(system):
    account = await system.account(reply_to_closed=ReplyToClosedPolicy.NEW_CONVERSATION)
    thread = "thread-" + uuid.uuid4().hex
    old = await system.receive(system.inbound(account, thread=thread, text="first"))
    await close(system, account, old)
    new = await system.receive(system.inbound(account, thread=thread, text="are you there?"))
    assert new != old
    await system.settle()
    assert (await system.conversation(old)).status == "closed"
    assert (await system.conversation(new)).status == "open"
    assert "conversation.reopened" not in system.types(old)
    assert [m.text for m in await system.messages_of(old)] == ["first"]
    assert [m.text for m in await system.messages_of(new)] == ["are you there?"]
    assert (await system.conversation(old)).contact_id == (await system.conversation(new)).contact_id


# --- C4: replies -----------------------------------------------------------------------------------

async def test_c4_reply_is_stored_as_outgoing_and_published_for_the_channel(system):
    account = await system.account()
    conv = await system.new_conversation(account, email="pat@example.com")
    await system.command(c.ReplyToConversation, account, conversation_id=conv, text="We are on it",
                         actor_id="agent-ann")
    sent = (await system.wait_event(conv, "conversation.message_sent"))[0].body
    assert sent["text"] == "We are on it" and sent["author_id"] == "agent-ann"
    outbound = (await system.probe.wait_for(
        lambda r: r.topic.endswith(OUTBOUND_MESSAGES) and r.body["conversation_id"] == conv,
        what=f"outbound message for {conv}"))
    await system.settle()
    assert len(outbound) == 1
    out = outbound[0]
    assert out.type == "outbound.message" and out.key == conv
    assert out.body["to_email"] == "pat@example.com"
    assert out.body["text"] == "We are on it" and out.body["channel"] == "email"
    assert out.body["message_id"] == sent["message_id"]
    stored = await system.messages_of(conv)
    assert [(m.direction, m.text) for m in stored] == [("incoming", "Hello, my order is late"),
                                                      ("outgoing", "We are on it")]
    assert stored[1].id == sent["message_id"]


# --- C5: owner ---------------------------------------------------------------------------------------

async def test_c5_owner_is_assigned_changed_and_removed(system):
    account = await system.account()
    conv = await system.new_conversation(account)
    for owner, n in (("agent-ann", 1), ("agent-bob", 2), (None, 3)):
        await system.command(c.AssignConversationOwner, account, conversation_id=conv, owner_id=owner)
        await system.wait_event(conv, "conversation.owner_changed", count=n)
    await system.settle()
    changes = [(r.body["owner_id"], r.body["previous_owner_id"]) for r in system.events(conv)
               if r.type == "conversation.owner_changed"]
    assert changes == [("agent-ann", None), ("agent-bob", "agent-ann"), (None, "agent-bob")]
    assert (await system.conversation(conv)).owner_id is None


# --- C6 / S6: closing a conversation closes only that conversation ------------------------------------

async def test_c6_s6_closing_one_conversation_leaves_its_ticket_and_the_other_conversation_open(system):
    account = await system.account()
    a, first, second = await system.ticket_with_two_conversations(account)
    ticket_before = await system.ticket(a)
    ticket_events_before = system.types(a)
    await close(system, account, first)
    await system.settle()
    assert (await system.conversation(first)).status == "closed"
    assert (await system.conversation(second)).status == "open"
    assert "conversation.closed" not in system.types(second)
    ticket = await system.ticket(a)
    assert (ticket.status, ticket.state, ticket.close_date) == (ticket_before.status, "OPEN", None)
    assert system.types(a) == ticket_events_before


# --- C7: agent reopens --------------------------------------------------------------------------------

async def test_c7_agent_reopens_a_closed_conversation(system):
    account = await system.account()
    conv = await system.new_conversation(account)
    await close(system, account, conv)
    await system.command(c.ReopenConversation, account, conversation_id=conv, actor_id="agent-ann")
    reopened = (await system.wait_event(conv, "conversation.reopened"))[0].body
    assert reopened["cause"] == "agent"
    await system.settle()
    assert (await system.conversation(conv)).status == "open"


# --- X1: tenant isolation -------------------------------------------------------------------------------

async def test_x1_commands_naming_another_accounts_conversation_or_ticket_are_rejected_not_found(system):
    owner = await system.account()
    intruder = await system.account()
    conv = await system.new_conversation(owner)
    ticket_id = await system.new_ticket(owner, conv)
    await system.settle()
    conv_events, ticket_events = system.types(conv), system.types(ticket_id)
    attempts = [
        await system.command(c.CloseConversation, intruder, conversation_id=conv),
        await system.command(c.AssignConversationOwner, intruder, conversation_id=conv, owner_id="agent-evil"),
        await system.command(c.ReplyToConversation, intruder, conversation_id=conv, text="phish"),
        await system.command(c.TrashConversation, intruder, conversation_id=conv),
        await system.command(c.ChangeTicketStatus, intruder, ticket_id=ticket_id, status="closed"),
        await system.command(c.ChangeTicketOwner, intruder, ticket_id=ticket_id, owner_id="agent-evil"),
        await system.command(c.UpdateTicketProperties, intruder, ticket_id=ticket_id, properties={"subject": "x"}),
        await system.command(c.DeleteTicket, intruder, ticket_id=ticket_id),
        await system.command(c.CreateTicket, intruder, conversation_id=conv),
    ]
    for command_id in attempts:
        rejection = await system.rejection(command_id)
        assert rejection["reason"] == "not_found", rejection
        assert rejection["account_id"] == intruder
    await system.settle()
    assert system.types(conv) == conv_events
    assert system.types(ticket_id) == ticket_events
    stored_conv, stored_ticket = await system.conversation(conv), await system.ticket(ticket_id)
    assert (stored_conv.status, stored_conv.owner_id, stored_conv.deleted) == ("open", None, False)
    assert (stored_ticket.status, stored_ticket.owner_id, stored_ticket.deleted) == ("new", None, False)
    assert stored_ticket.subject == "Order late"
    assert len(await system.messages_of(conv)) == 1
    assert await system.tickets_of(intruder) == []
    assert not system.probe.matching(lambda r: r.topic.endswith(OUTBOUND_MESSAGES) and r.key == conv)


# --- X2: rejections carry the command id and a reason ----------------------------------------------------

async def test_x2_rejections_carry_the_command_id_and_a_machine_readable_reason(system):
    account = await system.account()
    conv = await system.new_conversation(account)
    ticket_id = await system.new_ticket(account, conv)
    unknown_prop = await system.command(c.UpdateTicketProperties, account, ticket_id=ticket_id,
                                        properties={"subject": "fine", "no_such_property": 1})
    unknown_status = await system.command(c.ChangeTicketStatus, account, ticket_id=ticket_id, status="no_such_status")
    missing_conv = await system.command(c.CloseConversation, account, conversation_id="conv-" + uuid.uuid4().hex[:12])

    r = await system.rejection(unknown_prop)
    assert (r["command_id"], r["reason"], r["names"]) == (unknown_prop, "unknown_property", ["no_such_property"])
    assert r["command_type"] == "update_ticket_properties" and r["subject_id"] == ticket_id and r["detail"]
    r = await system.rejection(unknown_status)
    assert (r["command_id"], r["reason"]) == (unknown_status, "unknown_status")
    assert r["command_type"] == "change_ticket_status" and r["detail"]
    r = await system.rejection(missing_conv)
    assert (r["command_id"], r["reason"]) == (missing_conv, "not_found")
    await system.settle()
    assert (await system.ticket(ticket_id)).subject == "Order late"  # nothing half-applied
    assert (await system.ticket(ticket_id)).status == "new"
    for command_id in (unknown_prop, unknown_status, missing_conv):
        assert len(system.rejections(command_id)) == 1
        rec = system.rejections(command_id)[0]
        assert rec.key == command_id


async def test_x2_command_for_an_unknown_account_is_rejected_unknown_account_once_accounts_caught_up(system):
    never_published = "acct-never-" + uuid.uuid4().hex[:12]
    conv_cmd = await system.command(c.CloseConversation, never_published, conversation_id="conv-" + uuid.uuid4().hex[:12])
    ticket_cmd = await system.command(c.ChangeTicketStatus, never_published, ticket_id="tkt-" + uuid.uuid4().hex[:12],
                                      status="closed")
    for command_id in (conv_cmd, ticket_cmd):
        r = await system.rejection(command_id)
        assert (r["command_id"], r["reason"], r["account_id"]) == (command_id, "unknown_account", never_published)


# --- X3: events of one conversation, in order, keyed, with CloudEvents headers ----------------------------

async def test_x3_conversation_events_are_in_order_versioned_keyed_and_carry_cloudevents_headers(system):
    account = await system.account()
    thread = "thread-" + uuid.uuid4().hex
    conv = await system.receive(system.inbound(account, thread=thread))
    await system.command(c.AssignConversationOwner, account, conversation_id=conv, owner_id="agent-ann")
    await system.command(c.ReplyToConversation, account, conversation_id=conv, text="On it")
    await system.command(c.CloseConversation, account, conversation_id=conv)
    await system.wait_event(conv, "conversation.closed")
    await system.receive(system.inbound(account, thread=thread, text="thanks, one more thing"))
    await system.wait_event(conv, "conversation.reopened")
    await system.settle()

    about_conv = system.probe.matching(
        lambda r: r.topic.endswith(CONVERSATION_EVENTS) and r.body["conversation_id"] == conv)
    assert about_conv and all(r.key == conv for r in about_conv)
    assert len({r.partition for r in about_conv}) == 1
    events = system.events(conv)
    assert [r.offset for r in events] == sorted(r.offset for r in events)
    assert [r.type for r in events] == [
        "conversation.created", "conversation.message_received", "conversation.owner_changed",
        "conversation.message_sent", "conversation.closed", "conversation.reopened",
        "conversation.message_received",
    ]
    versions = [r.body["version"] for r in events]
    assert versions == list(range(versions[0], versions[0] + len(events)))
    assert versions[0] == 1
    ids = []
    for r in events:
        h = r.headers
        assert h["ce_specversion"] == "1.0"
        assert h["ce_type"] == r.type
        assert h["ce_source"]
        assert h["ce_subject"] == r.key == conv
        assert h["ce_accountid"] == account
        ids.append(h["ce_id"])
    assert len(set(ids)) == len(ids) and all(ids)
