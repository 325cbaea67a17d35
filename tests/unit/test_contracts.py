"""Unit tests of the message contracts: X4-style validation, discriminated unions, immutability."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from contracts import commands as c
from contracts import events as e
from contracts.accounts import DEFAULT_PIPELINE, Account
from contracts.common import Channel, StatusState, Tier, Workspace
from contracts.inbound import InboundMessage

AT = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)


def _inbound(**overrides):
    fields = {
        "account_id": "acme", "channel": "email", "channel_message_id": "<m1@example.com>",
        "channel_thread_key": "thread-1", "sender_email": "ann@example.com", "text": "Hello",
        "sent_at": "2024-06-01T12:00:00+00:00",
    }
    fields.update(overrides)
    return InboundMessage.model_validate(fields)


# --- InboundMessage -------------------------------------------------------------------------


def test_x4_inbound_message_valid_parses():
    msg = _inbound()
    assert msg.type == "inbound.message"
    assert msg.channel is Channel.EMAIL
    assert msg.sent_at == AT
    assert msg.partition_key() == "acme:email:thread-1"


def test_x4_inbound_message_with_phone_only_is_valid():
    msg = _inbound(sender_email=None, sender_phone="+31612345678")
    assert msg.sender_phone == "+31612345678"


@pytest.mark.parametrize("sender", [{"sender_email": None}, {"sender_email": ""}, {"sender_email": None, "sender_phone": ""}])
def test_x4_inbound_message_without_sender_email_or_phone_is_rejected(sender):
    with pytest.raises(ValidationError, match="sender_email or sender_phone"):
        _inbound(**sender)


def test_x4_inbound_message_with_naive_sent_at_is_rejected():
    with pytest.raises(ValidationError, match="timezone"):
        _inbound(sent_at="2024-06-01T12:00:00")
    with pytest.raises(ValidationError, match="timezone"):
        _inbound(sent_at=datetime(2024, 6, 1, 12, 0))


def test_x4_inbound_message_with_extra_field_is_rejected():
    with pytest.raises(ValidationError, match="extra"):
        _inbound(priority="high")


@pytest.mark.parametrize("missing", ["account_id", "channel", "channel_message_id", "channel_thread_key", "text", "sent_at"])
def test_x4_inbound_message_missing_required_field_is_rejected(missing):
    fields = _inbound().model_dump()
    del fields[missing]
    with pytest.raises(ValidationError):
        InboundMessage.model_validate(fields)


def test_x4_inbound_message_unknown_channel_is_rejected():
    with pytest.raises(ValidationError):
        _inbound(channel="pigeon")


def test_x4_inbound_message_from_json_bytes_round_trips():
    raw = _inbound().model_dump_json().encode()
    assert InboundMessage.model_validate_json(raw) == _inbound()
    with pytest.raises(ValidationError):
        InboundMessage.model_validate_json(b"{not json")


# --- accounts -------------------------------------------------------------------------------


def test_x4_account_defaults_to_the_support_pipeline():
    account = Account(account_id="acme", tier=Tier.STARTER, created_at=AT)
    assert account.settings.pipelines == (DEFAULT_PIPELINE,)
    assert [s.id for s in DEFAULT_PIPELINE.statuses] == ["new", "waiting_on_contact", "waiting_on_us", "closed"]
    assert [s.state for s in DEFAULT_PIPELINE.statuses] == [StatusState.OPEN] * 3 + [StatusState.CLOSED]
    assert account.pipeline("support") is DEFAULT_PIPELINE
    assert account.pipeline("nope") is None


def test_x4_account_with_naive_created_at_is_rejected():
    """Account.created_at is documented timezone-aware and T8 compares it with an aware cut-off; a naive
    value must be refused at the contract (X4), not crash the T8 policy with a TypeError later."""
    with pytest.raises(ValidationError):
        Account.model_validate({"account_id": "acme", "tier": "professional", "created_at": "2024-05-01T00:00:00"})


# --- commands: discriminated unions --------------------------------------------------------

_BASE = {"command_id": "cmd-1", "account_id": "acme"}


@pytest.mark.parametrize(
    "body, cls",
    [
        ({"type": "reply_to_conversation", "conversation_id": "conv-1", "text": "hi"}, c.ReplyToConversation),
        ({"type": "assign_conversation_owner", "conversation_id": "conv-1", "owner_id": None}, c.AssignConversationOwner),
        ({"type": "close_conversation", "conversation_id": "conv-1"}, c.CloseConversation),
        ({"type": "reopen_conversation", "conversation_id": "conv-1"}, c.ReopenConversation),
        ({"type": "trash_conversation", "conversation_id": "conv-1"}, c.TrashConversation),
        ({"type": "move_conversation_to_help_desk", "conversation_id": "conv-1"}, c.MoveConversationToHelpDesk),
    ],
)
def test_x4_conversation_commands_parse_by_type(body, cls):
    cmd = c.conversation_command_adapter.validate_json(json.dumps({**_BASE, **body}))
    assert type(cmd) is cls
    assert cmd.partition_key() == "conv-1"
    assert cmd.from_workspace is Workspace.INBOX


@pytest.mark.parametrize(
    "body, cls, key",
    [
        ({"type": "create_ticket", "conversation_id": "conv-1"}, c.CreateTicket, "conv-1"),
        ({"type": "update_ticket_properties", "ticket_id": "tkt-1", "properties": {"subject": "x"}}, c.UpdateTicketProperties, "tkt-1"),
        ({"type": "change_ticket_status", "ticket_id": "tkt-1", "status": "closed"}, c.ChangeTicketStatus, "tkt-1"),
        ({"type": "change_ticket_owner", "ticket_id": "tkt-1", "owner_id": "agent-1"}, c.ChangeTicketOwner, "tkt-1"),
        ({"type": "delete_ticket", "ticket_id": "tkt-1"}, c.DeleteTicket, "tkt-1"),
        ({"type": "merge_tickets", "ticket_id": "tkt-1", "merged_ticket_id": "tkt-2"}, c.MergeTickets, "tkt-1"),
        ({"type": "associate_conversation", "ticket_id": "tkt-1", "conversation_id": "conv-2"}, c.AssociateConversation, "tkt-1"),
        ({"type": "remove_conversation_association", "ticket_id": "tkt-1", "conversation_id": "conv-1"}, c.RemoveConversationAssociation, "tkt-1"),
        ({"type": "apply_conversation_owner_to_ticket", "conversation_id": "conv-1", "owner_id": None}, c.ApplyConversationOwnerToTicket, "conv-1"),
        ({"type": "delete_ticket_of_conversation", "conversation_id": "conv-1"}, c.DeleteTicketOfConversation, "conv-1"),
    ],
)
def test_x4_ticket_commands_parse_by_type(body, cls, key):
    cmd = c.ticket_command_adapter.validate_python({**_BASE, **body, "from_workspace": "help_desk"})
    assert type(cmd) is cls
    assert cmd.partition_key() == key
    assert cmd.from_workspace is Workspace.HELP_DESK


@pytest.mark.parametrize(
    "body",
    [
        {"type": "launch_rocket", "conversation_id": "conv-1"},
        {"conversation_id": "conv-1"},
        {"type": "close_conversation"},
        {"type": "close_conversation", "conversation_id": "conv-1", "note": "extra"},
        {"type": "close_conversation", "conversation_id": ""},
        {"type": "reply_to_conversation", "conversation_id": "conv-1", "text": ""},
    ],
)
def test_x4_invalid_conversation_commands_are_rejected(body):
    with pytest.raises(ValidationError):
        c.conversation_command_adapter.validate_python({**_BASE, **body})


def test_x4_ticket_command_sent_to_conversation_union_is_rejected():
    with pytest.raises(ValidationError):
        c.conversation_command_adapter.validate_python({**_BASE, "type": "delete_ticket", "ticket_id": "tkt-1"})


def test_x4_update_with_no_properties_is_rejected():
    with pytest.raises(ValidationError):
        c.ticket_command_adapter.validate_python({**_BASE, "type": "update_ticket_properties", "ticket_id": "tkt-1", "properties": {}})


def test_x4_assign_owner_requires_explicit_owner_id():
    with pytest.raises(ValidationError):
        c.conversation_command_adapter.validate_python({**_BASE, "type": "assign_conversation_owner", "conversation_id": "conv-1"})


def test_x4_events_parse_by_type():
    conv_ev = e.conversation_event_adapter.validate_python(
        {"type": "conversation.closed", "conversation_id": "conv-1", "account_id": "acme", "version": 2, "occurred_at": AT}
    )
    assert type(conv_ev) is e.ConversationClosed
    t_ev = e.ticket_event_adapter.validate_python(
        {"type": "ticket.deleted", "ticket_id": "tkt-1", "account_id": "acme", "version": 3, "occurred_at": AT,
         "conversation_ids": ["conv-1"]}
    )
    assert type(t_ev) is e.TicketDeleted
    assert t_ev.conversation_ids == ("conv-1",)
    with pytest.raises(ValidationError):
        e.conversation_event_adapter.validate_python(
            {"type": "conversation.closed", "conversation_id": "conv-1", "account_id": "acme", "version": 0, "occurred_at": AT}
        )


# --- immutability ---------------------------------------------------------------------------


def test_x4_models_are_frozen():
    msg = _inbound()
    with pytest.raises(ValidationError):
        msg.text = "changed"
    cmd = c.CloseConversation(command_id="cmd-1", account_id="acme", conversation_id="conv-1")
    with pytest.raises(ValidationError):
        cmd.conversation_id = "conv-2"
    account = Account(account_id="acme", tier=Tier.STARTER, created_at=AT)
    with pytest.raises(ValidationError):
        account.tier = Tier.ENTERPRISE
    ev = e.ConversationClosed(conversation_id="conv-1", account_id="acme", version=2, occurred_at=AT)
    with pytest.raises(ValidationError):
        ev.version = 3
    assert msg.text == "Hello" and cmd.conversation_id == "conv-1" and account.tier is Tier.STARTER and ev.version == 2


def test_x4_command_type_cannot_be_overridden():
    with pytest.raises(ValidationError):
        c.CloseConversation(command_id="cmd-1", account_id="acme", conversation_id="conv-1", type="reopen_conversation")
