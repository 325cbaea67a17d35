"""Unit tests of the message contracts: X4-style validation (NUL included), discriminated unions,
immutability, and X3 events read tolerantly (unknown fields ignored, unknown event types not for me)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from contracts import commands as c
from contracts import events as e
from contracts.accounts import DEFAULT_PIPELINE, Account
from contracts.common import Channel, StatusState, Tier, Workspace
from contracts.inbound import InboundMessage
from workers.delivery.errors import BadMessage
from workers.delivery.parsing import parse

AT = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


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


# --- X4: NUL (U+0000) is refused in every string, on every backend ------------------------


def _nul_error(exc: ValidationError) -> dict:
    (err,) = [e for e in exc.errors() if e["type"] == "string_nul"]
    return err


def test_x4_inbound_text_with_nul_is_rejected_naming_the_field():
    with pytest.raises(ValidationError) as caught:
        _inbound(text="broken\x00vase")
    err = _nul_error(caught.value)
    assert err["loc"] == ("text",)
    assert "NUL" in err["msg"] and "text" in err["msg"]


def test_x4_command_field_with_nul_is_rejected_naming_the_field():
    body = {**_BASE, "type": "reply_to_conversation", "conversation_id": "conv-1", "text": "hi\x00"}
    with pytest.raises(ValidationError) as caught:
        c.conversation_command_adapter.validate_json(json.dumps(body))
    assert _nul_error(caught.value)["loc"] == ("reply_to_conversation", "text")
    with pytest.raises(ValidationError) as caught:
        c.conversation_command_adapter.validate_python({**_BASE, "type": "close_conversation", "conversation_id": "conv\x001"})
    assert _nul_error(caught.value)["loc"] == ("close_conversation", "conversation_id")


def _ticket_command_nul_error(body: dict) -> dict:
    with pytest.raises(ValidationError) as caught:
        c.ticket_command_adapter.validate_python({**_BASE, **body})
    return _nul_error(caught.value)


def test_x4_nested_property_value_with_nul_is_rejected_naming_its_path():
    err = _ticket_command_nul_error({"type": "update_ticket_properties", "ticket_id": "tkt-1",
                                     "properties": {"notes": {"lines": ["fine", "bad\x00"]}}})
    assert err["loc"] == ("update_ticket_properties", "properties")
    assert "properties['notes']['lines'][1]" in err["msg"]


def test_x4_property_key_with_nul_is_rejected_naming_the_key():
    err = _ticket_command_nul_error({"type": "create_ticket", "conversation_id": "conv-1",
                                     "properties": {"sla\x00tier": "gold"}})
    assert err["loc"] == ("create_ticket", "properties")
    assert "a key of properties: 'sla\\x00tier'" in err["msg"]


def test_x4_account_nested_string_with_nul_is_rejected_naming_its_path():
    settings = {"pipelines": [{"id": "support", "label": "Sup\x00port",
                               "statuses": [{"id": "new", "label": "New", "state": "OPEN"}]}]}
    with pytest.raises(ValidationError) as caught:
        Account.model_validate({"account_id": "acme", "tier": "starter", "created_at": AT, "settings": settings})
    assert _nul_error(caught.value)["loc"] == ("settings", "pipelines", 0, "label")


def test_x4_nul_is_dead_lettered_as_invalid_schema_with_the_field_in_the_detail():
    body = {**_BASE, "type": "reply_to_conversation", "conversation_id": "conv-1", "text": "hi\x00"}
    record = SimpleNamespace(value=json.dumps(body).encode(), headers=[], key=b"conv-1")
    with pytest.raises(BadMessage) as caught:
        parse(record, c.conversation_command_adapter, "conversation command")
    assert caught.value.reason == "invalid_schema"
    assert "reply_to_conversation.text" in caught.value.detail and "NUL" in caught.value.detail


def test_x4_strings_without_nul_and_other_control_characters_still_pass():
    assert _inbound(text="tab\tnew line\nbell\x07").text == "tab\tnew line\nbell\x07"


# --- X3: events are read tolerantly ----------------------------------------------------------

_CLOSED = {"type": "conversation.closed", "conversation_id": "conv-1", "account_id": "acme", "version": 2,
           "occurred_at": "2024-06-01T12:00:00+00:00"}
_TICKET_DELETED = {"type": "ticket.deleted", "ticket_id": "tkt-1", "account_id": "acme", "version": 3,
                   "occurred_at": "2024-06-01T12:00:00+00:00", "conversation_ids": ["conv-1"]}


def test_x3_event_with_a_field_added_by_a_newer_producer_parses():
    conv_ev = e.read_conversation_event({**_CLOSED, "closed_by": "agent-7"})
    assert conv_ev == e.ConversationClosed.model_validate(_CLOSED)
    t_ev = e.ticket_event_adapter.validate_python({**_TICKET_DELETED, "reason": "spam"})
    assert type(t_ev) is e.TicketDeleted and not hasattr(t_ev, "reason")
    rejected = e.CommandRejected.model_validate(
        {"command_id": "cmd-1", "command_type": "delete_ticket", "account_id": "acme", "reason": "not_found",
         "detail": "no such ticket", "occurred_at": AT, "retry_after": 5})
    assert rejected.command_id == "cmd-1"
    change = e.TicketPropertiesChanged.model_validate(
        {**_TICKET_DELETED, "type": "ticket.properties_changed", "changes": {"x": {"old": 1, "new": 2, "by": "a"}}})
    assert change.changes["x"] == e.PropertyChange(old=1, new=2)


def test_x3_unknown_event_type_of_the_topic_is_not_for_this_reader():
    assert e.read_conversation_event({**_CLOSED, "type": "conversation.snoozed", "until": "tomorrow"}) is None
    assert e.read_ticket_event({**_TICKET_DELETED, "type": "ticket.archived"}) is None


def test_x3_known_event_type_with_missing_or_wrong_field_still_fails():
    missing = {k: v for k, v in _CLOSED.items() if k != "version"}
    with pytest.raises(ValidationError):
        e.read_conversation_event(missing)
    with pytest.raises(ValidationError):
        e.read_ticket_event({**_TICKET_DELETED, "conversation_ids": "conv-1"})
    with pytest.raises(ValidationError):
        e.read_ticket_event({**_TICKET_DELETED, "version": "three"})


def test_x3_event_without_type_or_with_a_type_of_another_topic_still_fails():
    with pytest.raises(ValidationError):
        e.read_conversation_event({k: v for k, v in _CLOSED.items() if k != "type"})
    with pytest.raises(ValidationError):
        e.read_conversation_event({**_TICKET_DELETED})
    with pytest.raises(ValidationError):
        e.read_ticket_event({**_TICKET_DELETED, "type": "launch_rocket"})


def test_x3_readers_parse_every_known_event_type():
    assert type(e.read_conversation_event(_CLOSED)) is e.ConversationClosed
    assert type(e.read_ticket_event(_TICKET_DELETED)) is e.TicketDeleted
    assert "conversation.closed" in e.CONVERSATION_EVENT_TYPES and "ticket.deleted" in e.TICKET_EVENT_TYPES


def test_x4_inputs_from_outside_stay_strict_about_unknown_fields():
    with pytest.raises(ValidationError, match="extra"):
        c.ticket_command_adapter.validate_python({**_BASE, "type": "delete_ticket", "ticket_id": "tkt-1", "force": True})
    with pytest.raises(ValidationError, match="extra"):
        Account.model_validate({"account_id": "acme", "tier": "starter", "created_at": AT, "plan": "gold"})
