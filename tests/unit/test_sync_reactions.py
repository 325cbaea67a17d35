"""Unit tests of the sync worker's pure reactions (S1-S7, T7/T8): event -> commands."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts import commands as c
from contracts import events as e
from contracts.commands import SYNC_ACTOR
from contracts.common import Channel, ConversationStatus, StatusState, Workspace
from tests.unit.conftest import build_account
from workers.inbound.domain import decide_conversation_command
from workers.sync.domain import react
from workers.ticketing.domain import delete_with_conversation, follow_conversation_owner

AT = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

ACCOUNT = build_account()


def _ticket_fields(conversation_ids=("conv-1",), version=2, ticket_id="tkt-1", account_id="acme"):
    return {"ticket_id": ticket_id, "account_id": account_id, "version": version, "occurred_at": AT,
            "conversation_ids": tuple(conversation_ids)}


def _conv_fields(conversation_id="conv-1", version=2, account_id="acme"):
    return {"conversation_id": conversation_id, "account_id": account_id, "version": version, "occurred_at": AT}


def ticket_closed(conversation_ids=("conv-1",), **kw):
    return e.TicketClosed(close_date=AT, **_ticket_fields(conversation_ids, **kw))


def ticket_reopened(conversation_ids=("conv-1",), **kw):
    return e.TicketReopened(**_ticket_fields(conversation_ids, **kw))


def ticket_deleted(conversation_ids=("conv-1",), **kw):
    return e.TicketDeleted(**_ticket_fields(conversation_ids, **kw))


def ticket_owner_changed(conversation_ids=("conv-1",), **kw):
    return e.TicketOwnerChanged(owner_id="agent-2", previous_owner_id="agent-1", **_ticket_fields(conversation_ids, **kw))


def ticket_created(workspace, conversation_ids=("conv-1",), **kw):
    return e.TicketCreated(
        subject="Printer on fire", description=None, pipeline="support", status="new", state=StatusState.OPEN,
        priority=None, owner_id=None, source_channel=Channel.EMAIL, category=None, workspace=workspace,
        properties={}, create_date=AT, close_date=None, **_ticket_fields(conversation_ids, version=1, **kw),
    )


def _assert_sync_command(cmd, account_id="acme"):
    assert cmd.actor_id == SYNC_ACTOR
    assert cmd.account_id == account_id
    assert cmd.command_id


# --- S1 -------------------------------------------------------------------------------------


def test_s1_ticket_closed_closes_each_conversation():
    cmds = react("ev-1", ticket_closed(("conv-1", "conv-2", "conv-3")))
    assert [type(x) for x in cmds] == [c.CloseConversation] * 3
    assert [x.conversation_id for x in cmds] == ["conv-1", "conv-2", "conv-3"]
    for cmd in cmds:
        _assert_sync_command(cmd)
    assert len({x.command_id for x in cmds}) == 3


def test_s1_closing_commands_close_the_conversations(make_conversation):
    for cmd in react("ev-1", ticket_closed(("conv-1",))):
        d = decide_conversation_command(cmd, ACCOUNT, make_conversation(id=cmd.conversation_id), None, AT, "m")
        assert d.conversation.status is ConversationStatus.CLOSED
        assert [ev.type for ev in d.events] == ["conversation.closed"]


# --- S2 -------------------------------------------------------------------------------------


def test_s2_reopen_with_exactly_one_conversation_reopens_it(make_conversation):
    cmds = react("ev-2", ticket_reopened(("conv-1",)))
    assert len(cmds) == 1
    (cmd,) = cmds
    assert isinstance(cmd, c.ReopenConversation)
    assert cmd.conversation_id == "conv-1"
    _assert_sync_command(cmd)
    d = decide_conversation_command(cmd, ACCOUNT, make_conversation(status=ConversationStatus.CLOSED), None, AT, "m")
    assert d.conversation.status is ConversationStatus.OPEN
    assert d.events[0].cause == "ticket_reopened"


def test_s2_reopen_with_two_conversations_reopens_none():
    assert react("ev-2", ticket_reopened(("conv-1", "conv-2"))) == []


def test_s2_reopen_with_no_conversation_reopens_none():
    assert react("ev-2", ticket_reopened(())) == []


# --- S3 / S4 --------------------------------------------------------------------------------


def test_s3_conversation_owner_change_applies_owner_to_ticket():
    ev = e.ConversationOwnerChanged(owner_id="agent-2", previous_owner_id="agent-1", **_conv_fields("conv-7"))
    cmds = react("ev-3", ev)
    assert len(cmds) == 1
    (cmd,) = cmds
    assert isinstance(cmd, c.ApplyConversationOwnerToTicket)
    assert cmd.type == "apply_conversation_owner_to_ticket"
    assert cmd.conversation_id == "conv-7"
    assert cmd.owner_id == "agent-2"
    _assert_sync_command(cmd)


def test_s3_conversation_owner_removed_applies_no_owner_to_ticket():
    ev = e.ConversationOwnerChanged(owner_id=None, previous_owner_id="agent-1", **_conv_fields())
    (cmd,) = react("ev-3", ev)
    assert cmd.owner_id is None


def test_s3_s4_owner_chain_stops_at_the_ticket(make_ticket):
    (cmd,) = react("ev-3", e.ConversationOwnerChanged(owner_id="agent-2", previous_owner_id=None, **_conv_fields()))
    d = follow_conversation_owner(make_ticket(owner_id=None), cmd.owner_id, AT)
    (owner_changed,) = d.events
    assert owner_changed.type == "ticket.owner_changed"
    assert react("ev-4", owner_changed) == []


def test_s4_ticket_owner_changed_causes_no_commands():
    assert react("ev-4", ticket_owner_changed(("conv-1", "conv-2"))) == []


# --- S5 / T7 --------------------------------------------------------------------------------


def test_s5_conversation_deleted_deletes_ticket_of_conversation():
    cmds = react("ev-5", e.ConversationDeleted(**_conv_fields("conv-4")))
    assert len(cmds) == 1
    (cmd,) = cmds
    assert isinstance(cmd, c.DeleteTicketOfConversation)
    assert cmd.conversation_id == "conv-4"
    _assert_sync_command(cmd)


def test_s5_ticket_deleted_trashes_each_conversation():
    cmds = react("ev-6", ticket_deleted(("conv-1", "conv-2")))
    assert [type(x) for x in cmds] == [c.TrashConversation, c.TrashConversation]
    assert [x.conversation_id for x in cmds] == ["conv-1", "conv-2"]
    for cmd in cmds:
        _assert_sync_command(cmd)


def test_s5_chain_from_trash_ends_after_one_round(make_conversation, make_ticket):
    """Trash conv -> delete its ticket -> trash its conversations -> nothing more (each effect once)."""
    trash = c.TrashConversation(command_id="cmd-0", account_id="acme", actor_id="agent-1", conversation_id="conv-1")
    first = decide_conversation_command(trash, ACCOUNT, make_conversation(), None, AT, "m")
    (conv_deleted,) = first.events
    (delete_cmd,) = react("ev-a", conv_deleted)
    ticket_step = delete_with_conversation(make_ticket(conversation_ids=("conv-1",)), AT)
    (t_deleted,) = ticket_step.events
    (trash_again,) = react("ev-b", t_deleted)
    assert trash_again.conversation_id == "conv-1"
    last = decide_conversation_command(trash_again, ACCOUNT, first.conversation, None, AT, "m")
    assert last.noop  # the already-trashed conversation emits nothing, so the chain ends
    assert delete_with_conversation(ticket_step.tickets[0], AT).noop


# --- S6 -------------------------------------------------------------------------------------


def test_s6_conversation_closed_causes_no_commands():
    assert react("ev-7", e.ConversationClosed(**_conv_fields())) == []


def test_s6_other_conversation_events_cause_no_ticket_commands():
    assert react("ev-7", e.ConversationReopened(cause="agent", **_conv_fields())) == []
    assert react("ev-7", e.ConversationMovedToHelpDesk(**_conv_fields())) == []


# --- S7: deterministic command ids ----------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        ticket_closed(("conv-1", "conv-2")),
        ticket_reopened(("conv-1",)),
        ticket_deleted(("conv-1", "conv-2")),
        ticket_created(Workspace.HELP_DESK, ("conv-1",)),
        e.ConversationOwnerChanged(owner_id="agent-2", previous_owner_id=None, **_conv_fields()),
        e.ConversationDeleted(**_conv_fields()),
    ],
    ids=lambda ev: ev.type,
)
def test_s7_same_event_id_gives_identical_commands_and_other_ids_differ(event):
    first = react("ev-42", event)
    again = react("ev-42", event)
    other = react("ev-43", event)
    assert first
    assert [x.command_id for x in first] == [x.command_id for x in again]
    assert first == again
    assert not {x.command_id for x in first} & {x.command_id for x in other}
    assert [x.model_dump(exclude={"command_id"}) for x in first] == [x.model_dump(exclude={"command_id"}) for x in other]


def test_s7_command_ids_differ_per_target_and_per_kind():
    closes = react("ev-1", ticket_closed(("conv-1", "conv-2")))
    trashes = react("ev-1", ticket_deleted(("conv-1", "conv-2")))
    ids = [x.command_id for x in closes + trashes]
    assert len(set(ids)) == 4


# --- T8 -------------------------------------------------------------------------------------


def test_t8_help_desk_ticket_created_moves_its_conversations():
    cmds = react("ev-8", ticket_created(Workspace.HELP_DESK, ("conv-1",)))
    assert len(cmds) == 1
    (cmd,) = cmds
    assert isinstance(cmd, c.MoveConversationToHelpDesk)
    assert cmd.conversation_id == "conv-1"
    _assert_sync_command(cmd)


def test_t8_inbox_ticket_created_moves_nothing():
    assert react("ev-8", ticket_created(Workspace.INBOX, ("conv-1",))) == []


# --- events that other slices own ----------------------------------------------------------


def test_t4_ticket_properties_changed_causes_no_commands():
    assert react("ev-9", e.TicketPropertiesChanged(changes={}, **_ticket_fields())) == []


def test_t9_merge_and_association_events_cause_no_commands():
    merged = e.TicketMerged(into_ticket_id="tkt-a", moved_conversation_ids=("conv-1",), **_ticket_fields(()))
    assoc = e.TicketConversationAssociated(conversation_id="conv-2", **_ticket_fields(("conv-1", "conv-2")))
    assert react("ev-9", merged) == []
    assert react("ev-9", assoc) == []
