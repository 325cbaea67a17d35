"""Unit tests of the inbound worker's pure rules: C1, C3-C7, X1 for conversations, S5 trash idempotence."""

from __future__ import annotations

from contracts import commands as c
from contracts import events as e
from contracts.commands import SYNC_ACTOR
from contracts.common import (
    Channel,
    ConversationStatus,
    Direction,
    ReplyToClosedPolicy,
    Workspace,
)
from contracts.rejections import Reason
from tests.unit.conftest import build_account
from workers.decision import ACCOUNTS_PROJECTION, Missing
from workers.inbound.domain import (
    NewIds,
    decide_conversation_command,
    pick_contact,
    receive,
    receive_inbound_message,
    resolve_contact,
)

ACCOUNT = build_account()


def _types(decision):
    return [ev.type for ev in decision.events]


# --- C1: threading and contact resolution ---------------------------------------------------


def test_c1_same_thread_key_lands_in_same_conversation(make_account, make_conversation, make_contact, make_inbound, make_ids, now):
    thread = make_conversation(id="conv-1", version=3)
    msg = make_inbound(channel_thread_key="thread-1", channel_message_id="<msg-2@example.com>", text="Still burning")

    d = receive_inbound_message(msg, make_account(), thread, make_contact(), make_ids(), now)

    assert not d.rejected
    assert d.conversation.id == "conv-1"
    assert d.conversation.version == 4
    assert d.conversation.status is ConversationStatus.OPEN
    assert _types(d) == ["conversation.message_received"]
    received = d.events[0]
    assert received.conversation_id == "conv-1"
    assert received.account_id == "acme"
    assert received.version == 4
    assert received.message_id == "msg-new"
    assert received.channel_message_id == "<msg-2@example.com>"
    assert received.contact_id == "contact-1"
    assert received.text == "Still burning"
    assert received.occurred_at == now
    message = d.message
    assert message.conversation_id == "conv-1"
    assert message.direction is Direction.INCOMING
    assert message.channel_message_id == "<msg-2@example.com>"


def test_c1_ids_are_made_only_for_what_the_message_creates(make_conversation, make_contact, make_inbound, now):
    """A message joining its conversation, from a known contact, takes one new id (its own); a first
    message from a new sender takes three (message, conversation, contact)."""
    made: list[str] = []

    def source() -> str:
        made.append(f"id-{len(made)}")
        return made[-1]

    joined = receive(make_inbound(channel_thread_key="thread-1"), False, ACCOUNT, make_conversation(id="conv-1"),
                     [make_contact()], NewIds(source), now)
    assert made == [joined.message.id]
    made.clear()
    opened = receive(make_inbound(sender_email="new@example.com"), False, ACCOUNT, None, [], NewIds(source), now)
    assert sorted(made) == sorted([opened.message.id, opened.conversation.id, opened.new_contact.id])


def test_c1_no_thread_opens_a_new_conversation(make_account, make_contact, make_inbound, make_ids, now):
    msg = make_inbound(channel=Channel.WHATSAPP, channel_thread_key="+31611111111", sender_email=None,
                       sender_phone="+31611111111", subject=None)

    d = receive_inbound_message(msg, make_account(), None, make_contact(id="contact-7"), make_ids(conversation_id="conv-9"), now)

    assert _types(d) == ["conversation.created", "conversation.message_received"]
    created, received = d.events
    assert isinstance(created, e.ConversationCreated)
    assert created.conversation_id == "conv-9"
    assert created.account_id == "acme"
    assert created.version == 1
    assert created.contact_id == "contact-7"
    assert created.channel is Channel.WHATSAPP
    assert created.channel_thread_key == "+31611111111"
    assert created.owner_id is None
    assert created.status is ConversationStatus.OPEN
    assert created.workspace is Workspace.INBOX
    assert received.conversation_id == "conv-9"
    assert received.version == 2
    assert d.conversation.id == "conv-9"
    assert d.conversation.version == 2
    assert d.conversation.channel is Channel.WHATSAPP
    assert d.conversation.thread_key == "+31611111111"
    assert d.conversation.contact_id == "contact-7"
    assert d.conversation.deleted is False


def test_c1_known_contact_is_reused(make_contact, make_inbound):
    known = make_contact(id="contact-1")
    contact, is_new = resolve_contact(make_inbound(), known, "contact-new")
    assert contact is known
    assert is_new is False


def test_c1_unknown_contact_is_created_within_the_account(make_inbound):
    msg = make_inbound(sender_email="  Ann@Example.COM ", sender_phone="+31 (6) 1234-5678", sender_name="Ann B")
    contact, is_new = resolve_contact(msg, None, "contact-new")
    assert is_new is True
    assert contact.id == "contact-new"
    assert contact.account_id == "acme"
    assert contact.email == "ann@example.com"
    assert contact.phone == "+31612345678"
    assert contact.name == "Ann B"


# --- C3: a contact's message on a closed conversation ------------------------------------------


def test_c3_message_on_closed_conversation_reopens_it_by_default(make_account, make_conversation, make_contact, make_inbound, make_ids, now):
    thread = make_conversation(status=ConversationStatus.CLOSED, version=5)

    d = receive_inbound_message(make_inbound(), make_account(), thread, make_contact(), make_ids(), now)

    assert _types(d) == ["conversation.reopened", "conversation.message_received"]
    reopened, received = d.events
    assert reopened.conversation_id == "conv-1"
    assert reopened.cause == "contact_message"
    assert reopened.version == 6
    assert received.conversation_id == "conv-1"
    assert received.version == 7
    assert d.conversation.id == "conv-1"
    assert d.conversation.status is ConversationStatus.OPEN
    assert d.conversation.version == 7


def test_c3_new_conversation_setting_starts_a_new_conversation_and_leaves_closed_one(
    make_account, make_conversation, make_contact, make_inbound, make_ids, now
):
    account = make_account(reply_to_closed=ReplyToClosedPolicy.NEW_CONVERSATION)
    thread = make_conversation(id="conv-1", status=ConversationStatus.CLOSED, version=5)

    d = receive_inbound_message(make_inbound(), account, thread, make_contact(), make_ids(conversation_id="conv-2"), now)

    assert _types(d) == ["conversation.created", "conversation.message_received"]
    assert all(ev.conversation_id == "conv-2" for ev in d.events)
    assert d.events[0].version == 1
    assert d.events[1].version == 2
    assert d.conversation.id == "conv-2"
    assert d.conversation.status is ConversationStatus.OPEN
    assert d.conversation.thread_key == "thread-1"
    # the closed conversation is not touched: no event concerns it
    assert not any(ev.conversation_id == "conv-1" for ev in d.events)


# --- C4: agent reply ------------------------------------------------------------------------


def test_c4_reply_is_stored_as_outgoing_and_published_for_the_channel(make_conversation, make_contact, now):
    conv = make_conversation(version=3, subject="Printer on fire", thread_key="thread-1")
    contact = make_contact(email="ann@example.com", phone="+31612345678")
    cmd = c.ReplyToConversation(command_id="cmd-1", account_id="acme", actor_id="agent-7",
                                conversation_id="conv-1", text="Unplug it!")

    d = decide_conversation_command(cmd, ACCOUNT, conv, contact, now, "msg-out-1")

    assert not d.rejected
    assert d.conversation.version == 4
    assert _types(d) == ["conversation.message_sent", "outbound.message"]
    sent, outbound = d.events
    assert sent.conversation_id == "conv-1"
    assert sent.version == 4
    assert sent.message_id == "msg-out-1"
    assert sent.author_id == "agent-7"
    assert sent.text == "Unplug it!"
    assert isinstance(outbound, e.OutboundMessage)
    assert outbound.message_id == "msg-out-1"
    assert outbound.conversation_id == "conv-1"
    assert outbound.account_id == "acme"
    assert outbound.channel is Channel.EMAIL
    assert outbound.channel_thread_key == "thread-1"
    assert outbound.to_email == "ann@example.com"
    assert outbound.to_phone == "+31612345678"
    assert outbound.subject == "Printer on fire"
    assert outbound.text == "Unplug it!"
    assert outbound.direction is Direction.OUTGOING
    message = d.message
    assert message.direction is Direction.OUTGOING
    assert message.author_id == "agent-7"
    assert message.text == "Unplug it!"
    assert message.conversation_id == "conv-1"


# --- C5: owner ------------------------------------------------------------------------------


def test_c5_owner_can_be_assigned(make_conversation, now):
    cmd = c.AssignConversationOwner(command_id="cmd-1", account_id="acme", conversation_id="conv-1", owner_id="agent-1")
    d = decide_conversation_command(cmd, ACCOUNT, make_conversation(owner_id=None, version=2), None, now, "m")
    assert d.conversation.owner_id == "agent-1"
    assert d.conversation.version == 3
    assert _types(d) == ["conversation.owner_changed"]
    ev = d.events[0]
    assert (ev.owner_id, ev.previous_owner_id, ev.version, ev.conversation_id) == ("agent-1", None, 3, "conv-1")


def test_c5_owner_can_be_changed(make_conversation, now):
    cmd = c.AssignConversationOwner(command_id="cmd-1", account_id="acme", conversation_id="conv-1", owner_id="agent-2")
    d = decide_conversation_command(cmd, ACCOUNT, make_conversation(owner_id="agent-1"), None, now, "m")
    assert d.conversation.owner_id == "agent-2"
    ev = d.events[0]
    assert ev.type == "conversation.owner_changed"
    assert (ev.owner_id, ev.previous_owner_id) == ("agent-2", "agent-1")


def test_c5_owner_can_be_removed(make_conversation, now):
    cmd = c.AssignConversationOwner(command_id="cmd-1", account_id="acme", conversation_id="conv-1", owner_id=None)
    d = decide_conversation_command(cmd, ACCOUNT, make_conversation(owner_id="agent-1"), None, now, "m")
    assert d.conversation.owner_id is None
    ev = d.events[0]
    assert ev.type == "conversation.owner_changed"
    assert (ev.owner_id, ev.previous_owner_id) == (None, "agent-1")


def test_c5_assigning_the_same_owner_changes_nothing(make_conversation, now):
    cmd = c.AssignConversationOwner(command_id="cmd-1", account_id="acme", conversation_id="conv-1", owner_id="agent-1")
    d = decide_conversation_command(cmd, ACCOUNT, make_conversation(owner_id="agent-1"), None, now, "m")
    assert d.noop


# --- C6: closing closes only that conversation ----------------------------------------------


def test_c6_close_closes_only_that_conversation(make_conversation, now):
    cmd = c.CloseConversation(command_id="cmd-1", account_id="acme", conversation_id="conv-1")
    d = decide_conversation_command(cmd, ACCOUNT, make_conversation(version=4), None, now, "m")
    assert not d.rejected
    assert d.conversation.status is ConversationStatus.CLOSED
    assert d.conversation.version == 5
    assert _types(d) == ["conversation.closed"]
    assert d.events[0].conversation_id == "conv-1"
    assert d.events[0].version == 5
    # no ticket event and no command for any other conversation is produced
    assert all(isinstance(ev, e.ConversationEvent) and ev.conversation_id == "conv-1" for ev in d.events)


def test_c6_closing_a_closed_conversation_changes_nothing(make_conversation, now):
    cmd = c.CloseConversation(command_id="cmd-1", account_id="acme", conversation_id="conv-1")
    d = decide_conversation_command(cmd, ACCOUNT, make_conversation(status=ConversationStatus.CLOSED), None, now, "m")
    assert d.noop


# --- C7: agent reopens ----------------------------------------------------------------------


def test_c7_agent_reopens_a_closed_conversation(make_conversation, now):
    cmd = c.ReopenConversation(command_id="cmd-1", account_id="acme", actor_id="agent-1", conversation_id="conv-1")
    d = decide_conversation_command(cmd, ACCOUNT, make_conversation(status=ConversationStatus.CLOSED, version=3), None, now, "m")
    assert d.conversation.status is ConversationStatus.OPEN
    assert d.conversation.version == 4
    assert _types(d) == ["conversation.reopened"]
    assert d.events[0].cause == "agent"
    assert d.events[0].version == 4


def test_c7_reopen_by_sync_actor_is_caused_by_ticket_reopened(make_conversation, now):
    cmd = c.ReopenConversation(command_id="cmd-1", account_id="acme", actor_id=SYNC_ACTOR, conversation_id="conv-1")
    d = decide_conversation_command(cmd, ACCOUNT, make_conversation(status=ConversationStatus.CLOSED), None, now, "m")
    assert d.events[0].cause == "ticket_reopened"


def test_c7_reopening_an_open_conversation_changes_nothing(make_conversation, now):
    cmd = c.ReopenConversation(command_id="cmd-1", account_id="acme", conversation_id="conv-1")
    d = decide_conversation_command(cmd, ACCOUNT, make_conversation(status=ConversationStatus.OPEN), None, now, "m")
    assert d.noop


# --- X1: tenant isolation -------------------------------------------------------------------


def test_x1_command_on_other_accounts_conversation_is_not_found(make_conversation, now):
    conv = make_conversation(account_id="globex")
    for cmd in (
        c.CloseConversation(command_id="cmd-1", account_id="acme", conversation_id="conv-1"),
        c.ReplyToConversation(command_id="cmd-2", account_id="acme", conversation_id="conv-1", text="hi"),
        c.TrashConversation(command_id="cmd-3", account_id="acme", conversation_id="conv-1"),
        c.AssignConversationOwner(command_id="cmd-4", account_id="acme", conversation_id="conv-1", owner_id="a"),
    ):
        d = decide_conversation_command(cmd, ACCOUNT, conv, None, now, "m")
        assert d.rejected, cmd.type
        assert d.rejection.reason is Reason.NOT_FOUND
        assert d.conversation is None and d.events == ()


def test_x1_command_on_missing_conversation_is_not_found(now):
    cmd = c.CloseConversation(command_id="cmd-1", account_id="acme", conversation_id="conv-404")
    d = decide_conversation_command(cmd, ACCOUNT, None, None, now, "m")
    assert d.rejection.reason is Reason.NOT_FOUND
    assert "conv-404" in d.rejection.detail


# --- S5: trash, and its idempotence ---------------------------------------------------------


def test_s5_trash_marks_conversation_deleted_and_emits_conversation_deleted(make_conversation, now):
    cmd = c.TrashConversation(command_id="cmd-1", account_id="acme", conversation_id="conv-1")
    d = decide_conversation_command(cmd, ACCOUNT, make_conversation(version=3), None, now, "m")
    assert d.conversation.deleted is True
    assert d.conversation.version == 4
    assert _types(d) == ["conversation.deleted"]
    assert d.events[0].conversation_id == "conv-1"
    assert d.events[0].version == 4


def test_s5_trashing_a_trashed_conversation_changes_nothing_and_is_not_an_error(make_conversation, now):
    cmd = c.TrashConversation(command_id="cmd-2", account_id="acme", actor_id=SYNC_ACTOR, conversation_id="conv-1")
    d = decide_conversation_command(cmd, ACCOUNT, make_conversation(deleted=True), None, now, "m")
    assert d.noop
    assert not d.rejected


def test_s5_other_commands_on_a_trashed_conversation_are_rejected(make_conversation, now):
    cmd = c.CloseConversation(command_id="cmd-1", account_id="acme", conversation_id="conv-1")
    d = decide_conversation_command(cmd, ACCOUNT, make_conversation(deleted=True), None, now, "m")
    assert d.rejection.reason is Reason.CONVERSATION_DELETED


# --- T8: the conversation side ---------------------------------------------------------------


def test_t8_move_to_help_desk_moves_the_conversation_once(make_conversation, now):
    cmd = c.MoveConversationToHelpDesk(command_id="cmd-1", account_id="acme", actor_id=SYNC_ACTOR, conversation_id="conv-1")
    d = decide_conversation_command(cmd, ACCOUNT, make_conversation(version=2), None, now, "m")
    assert d.conversation.workspace is Workspace.HELP_DESK
    assert _types(d) == ["conversation.moved_to_help_desk"]
    assert d.events[0].version == 3

    again = decide_conversation_command(cmd, ACCOUNT, d.conversation, None, now, "m")
    assert again.noop


# --- the whole inbound rule, from what the handler loaded (C1, C2, X2) ---------------------------


def test_c2_a_channel_message_already_stored_changes_nothing(make_inbound, make_ids, now):
    d = receive(make_inbound(), True, ACCOUNT, None, [], make_ids(), now)
    assert d.noop and d.new_contact is None


def test_x4_a_message_for_an_account_not_seen_waits_for_the_accounts_projection(make_inbound, make_ids, now):
    d = receive(make_inbound(account_id="ghost"), False, None, None, [], make_ids(), now)
    assert d.rejection.reason is Reason.UNKNOWN_ACCOUNT
    assert d.rejection.unresolved == Missing(ACCOUNTS_PROJECTION, "ghost")
    assert d.conversation is None and d.events == ()


def test_c1_a_new_sender_becomes_a_new_contact_of_the_account(make_inbound, make_ids, now):
    d = receive(make_inbound(sender_email="New@Example.com"), False, ACCOUNT, None, [], make_ids(), now)
    assert d.new_contact is not None
    assert (d.new_contact.id, d.new_contact.email, d.new_contact.account_id) == ("contact-new", "new@example.com", "acme")
    assert d.conversation.contact_id == "contact-new"


def test_c1_the_contact_with_the_senders_email_wins_over_an_older_one_with_the_phone(make_contact):
    by_phone = make_contact(id="older", email=None, phone="+31611111111")
    by_email = make_contact(id="newer", email="ann@example.com")
    assert pick_contact([by_phone, by_email], "ann@example.com") is by_email
    assert pick_contact([by_phone], "ann@example.com") is by_phone
    assert pick_contact([], "ann@example.com") is None


def test_c1_a_known_contact_is_not_created_again(make_contact, make_inbound, make_ids, now):
    d = receive(make_inbound(), False, ACCOUNT, None, [make_contact()], make_ids(), now)
    assert d.new_contact is None and d.conversation.contact_id == "contact-1"
