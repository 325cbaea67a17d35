"""Unit tests of the ticketing worker's pure rules: T1-T10, X1, the ticket side of S3/S5, projection (S7)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts import commands as c
from contracts import events as e
from contracts.accounts import (
    DEFAULT_PIPELINE,
    CustomProperty,
    Pipeline,
    PipelineStatus,
    PropertyType,
)
from contracts.commands import SYNC_ACTOR
from contracts.common import Channel, StatusState, Tier, Workspace
from contracts.rejections import Reason
from tests.unit.conftest import build_account
from workers.decision import Missing
from workers.settings import SEED_HELP_DESK_CUTOFF, SEED_HELP_DESK_TIERS
from workers.ticketing.domain import (
    CONVERSATIONS_PROJECTION,
    HelpDeskPolicy,
    associate,
    create_ticket,
    decide_ticket_command,
    delete_with_conversation,
    follow_conversation_owner,
    manages_in_help_desk_only,
    merge,
    project_conversation_event,
    refuse_unlink,
)

POLICY = HelpDeskPolicy(SEED_HELP_DESK_TIERS, SEED_HELP_DESK_CUTOFF)
UTC = UTC


def _types(decision):
    return [ev.type for ev in decision.events]


def _create(**fields):
    base = {"command_id": "cmd-create", "account_id": "acme", "conversation_id": "conv-1"}
    base.update(fields)
    return c.CreateTicket(**base)


def _assert_nothing_applied(d):
    assert d.tickets == ()
    assert d.events == ()


ESCALATIONS = Pipeline(
    id="escalations",
    label="Escalations",
    statuses=(
        PipelineStatus(id="triage", label="Triage", state=StatusState.OPEN),
        PipelineStatus(id="resolved", label="Resolved", state=StatusState.CLOSED),
        PipelineStatus(id="wont_fix", label="Won't fix", state=StatusState.CLOSED),
    ),
)

CUSTOM_PROPS = (
    CustomProperty(name="order_number", type=PropertyType.STRING),
    CustomProperty(name="refund_amount", type=PropertyType.NUMBER),
    CustomProperty(name="vip", type=PropertyType.BOOL),
    CustomProperty(name="region", type=PropertyType.ENUMERATION, options=("eu", "us")),
)


# --- T1: defaults ---------------------------------------------------------------------------


def test_t1_create_ticket_takes_defaults_from_conversation(make_account, make_ref, now):
    conv = make_ref(channel=Channel.CHAT, subject="Printer on fire", owner_id="agent-1")

    d = create_ticket(_create(), make_account(), conv, None, POLICY, "tkt-9", now)

    assert not d.rejected
    (ticket,) = d.tickets
    assert ticket.id == "tkt-9"
    assert ticket.account_id == "acme"
    assert ticket.subject == "Printer on fire"
    assert ticket.pipeline == "support"
    assert ticket.status == "new"
    assert ticket.state is StatusState.OPEN
    assert ticket.owner_id == "agent-1"
    assert ticket.source_channel is Channel.CHAT
    assert ticket.workspace is Workspace.INBOX
    assert ticket.conversation_ids == ("conv-1",)
    assert ticket.create_date == now
    assert ticket.close_date is None
    assert ticket.version == 1
    assert _types(d) == ["ticket.created"]
    created = d.events[0]
    assert isinstance(created, e.TicketCreated)
    assert created.ticket_id == "tkt-9"
    assert created.version == 1
    assert created.conversation_ids == ("conv-1",)
    assert (created.subject, created.pipeline, created.status, created.state) == ("Printer on fire", "support", "new", StatusState.OPEN)
    assert created.owner_id == "agent-1"
    assert created.source_channel is Channel.CHAT
    assert created.workspace is Workspace.INBOX
    assert created.create_date == now and created.close_date is None


def test_t1_without_owner_creates_an_unowned_ticket(make_account, make_ref, now):
    conv = make_ref(owner_id="agent-1")
    d = create_ticket(_create(without_owner=True), make_account(), conv, None, POLICY, "tkt-9", now)
    assert d.tickets[0].owner_id is None
    assert d.events[0].owner_id is None


def test_t1_null_owner_survives_a_json_round_trip_as_the_conversation_owner(make_account, make_ref, now):
    """Senders serialise every field; null must mean 'default', or the default could never be asked for."""
    sent = c.CreateTicket(command_id="c1", account_id="acme", conversation_id="conv-1")
    cmd = c.ticket_command_adapter.validate_json(sent.model_dump_json())
    d = create_ticket(cmd, make_account(), make_ref(owner_id="agent-1"), None, POLICY, "tkt-9", now)
    assert d.tickets[0].owner_id == "agent-1"


def test_t1_owner_omitted_in_json_takes_conversation_owner(make_account, make_ref, now):
    cmd = c.ticket_command_adapter.validate_json(
        '{"type": "create_ticket", "command_id": "c1", "account_id": "acme", "conversation_id": "conv-1"}'
    )
    d = create_ticket(cmd, make_account(), make_ref(owner_id="agent-1"), None, POLICY, "tkt-9", now)
    assert d.tickets[0].owner_id == "agent-1"


def test_t1_explicit_fields_override_defaults(make_account, make_ref, now):
    account = make_account(custom_properties=CUSTOM_PROPS)
    cmd = _create(subject="Paper jam", description="Tray 2", status="waiting_on_us", priority="high",
                  owner_id="agent-2", category="hardware", properties={"order_number": "A-1"})
    d = create_ticket(cmd, account, make_ref(owner_id="agent-1"), None, POLICY, "tkt-9", now)
    (t,) = d.tickets
    assert (t.subject, t.description, t.pipeline, t.status, t.state) == ("Paper jam", "Tray 2", "support", "waiting_on_us", StatusState.OPEN)
    assert (t.priority, t.owner_id, t.category) == ("high", "agent-2", "hardware")
    assert t.properties == {"order_number": "A-1"}
    assert d.events[0].properties == {"order_number": "A-1"}


def test_t1_subject_falls_back_when_conversation_has_none(make_account, make_ref, now):
    d = create_ticket(_create(), make_account(), make_ref(subject=None, channel=Channel.CHAT), None, POLICY, "tkt-9", now)
    assert d.tickets[0].subject  # never empty
    assert "conv-1" in d.tickets[0].subject


def test_t1_unknown_pipeline_or_status_is_rejected(make_account, make_ref, now):
    d = create_ticket(_create(pipeline="nope"), make_account(), make_ref(), None, POLICY, "tkt-9", now)
    assert d.rejection.reason is Reason.UNKNOWN_PIPELINE
    _assert_nothing_applied(d)
    d = create_ticket(_create(status="nope"), make_account(), make_ref(), None, POLICY, "tkt-9", now)
    assert d.rejection.reason is Reason.UNKNOWN_STATUS
    _assert_nothing_applied(d)


def test_t1_missing_conversation_is_not_found_and_awaits_projection(make_account, now):
    d = create_ticket(_create(), make_account(), None, None, POLICY, "tkt-9", now)
    assert d.rejection.reason is Reason.NOT_FOUND
    assert d.rejection.unresolved == Missing(CONVERSATIONS_PROJECTION, "conv-1")


def test_t1_trashed_conversation_gets_no_ticket(make_account, make_ref, now):
    d = create_ticket(_create(), make_account(), make_ref(deleted=True), None, POLICY, "tkt-9", now)
    assert d.rejection.reason is Reason.CONVERSATION_DELETED
    _assert_nothing_applied(d)


# --- T2: one ticket per conversation --------------------------------------------------------


def test_t2_second_ticket_for_a_conversation_is_rejected(make_account, make_ref, make_ticket, now):
    existing = make_ticket(id="tkt-1", conversation_ids=("conv-1",))
    d = create_ticket(_create(command_id="cmd-second"), make_account(), make_ref(), existing, POLICY, "tkt-2", now)
    assert d.rejected
    assert d.rejection.reason is Reason.CONVERSATION_HAS_TICKET
    assert d.rejection.reason.value == "conversation_already_has_ticket"
    assert "tkt-1" in d.rejection.detail
    _assert_nothing_applied(d)


# --- T3: association is immutable -----------------------------------------------------------


def test_t3_unlink_is_rejected(make_account, make_ticket, now):
    cmd = c.RemoveConversationAssociation(command_id="cmd-1", account_id="acme", ticket_id="tkt-1", conversation_id="conv-1")
    d = refuse_unlink(cmd, make_account())
    assert d.rejection.reason is Reason.ASSOCIATION_IMMUTABLE
    assert "conversation_id" in d.rejection.names
    _assert_nothing_applied(d)


@pytest.mark.parametrize("name", ["conversation_id", "conversation_ids", "conversations", "associations"])
def test_t3_association_names_in_property_update_are_rejected(make_account, make_ticket, now, name):
    cmd = c.UpdateTicketProperties(command_id="cmd-1", account_id="acme", ticket_id="tkt-1",
                                   properties={name: None, "subject": "ok"})
    d = decide_ticket_command(cmd, make_account(), make_ticket(), POLICY, now)
    assert d.rejection.reason is Reason.ASSOCIATION_IMMUTABLE
    assert d.rejection.names == (name,)
    _assert_nothing_applied(d)


# --- T4: property edits ---------------------------------------------------------------------


def test_t4_valid_properties_are_applied_with_old_and_new(make_account, make_ticket, now):
    account = make_account(custom_properties=CUSTOM_PROPS)
    t = make_ticket(subject="Old", priority="low", properties={"vip": False}, version=3)
    cmd = c.UpdateTicketProperties(command_id="cmd-1", account_id="acme", ticket_id="tkt-1",
                                   properties={"subject": "New", "priority": "urgent", "vip": True, "region": "eu",
                                               "refund_amount": 12.5, "category": None})
    d = decide_ticket_command(cmd, account, t, POLICY, now)
    assert not d.rejected
    (new,) = d.tickets
    assert (new.subject, new.priority, new.version) == ("New", "urgent", 4)
    assert new.properties == {"vip": True, "region": "eu", "refund_amount": 12.5}
    assert _types(d) == ["ticket.properties_changed"]
    changes = d.events[0].changes
    assert set(changes) == {"subject", "priority", "vip", "region", "refund_amount"}  # category None -> None: no change
    assert (changes["subject"].old, changes["subject"].new) == ("Old", "New")
    assert (changes["vip"].old, changes["vip"].new) == (False, True)
    assert (changes["region"].old, changes["region"].new) == (None, "eu")
    assert d.events[0].version == 4


def test_t4_unknown_properties_are_named_and_nothing_applied(make_account, make_ticket, now):
    cmd = c.UpdateTicketProperties(command_id="cmd-1", account_id="acme", ticket_id="tkt-1",
                                   properties={"subject": "New", "colour": "red", "status": "closed"})
    t = make_ticket(subject="Old")
    d = decide_ticket_command(cmd, make_account(), t, POLICY, now)
    assert d.rejection.reason is Reason.UNKNOWN_PROPERTY
    assert d.rejection.names == ("colour", "status")
    assert "colour" in d.rejection.detail and "status" in d.rejection.detail
    _assert_nothing_applied(d)
    assert t.subject == "Old"


def test_t4_invalid_values_are_named_and_nothing_applied(make_account, make_ticket, now):
    account = make_account(custom_properties=CUSTOM_PROPS)
    cmd = c.UpdateTicketProperties(command_id="cmd-1", account_id="acme", ticket_id="tkt-1",
                                   properties={"subject": "Fine", "priority": "asap", "region": "mars",
                                               "refund_amount": "ten", "vip": "yes"})
    d = decide_ticket_command(cmd, account, make_ticket(), POLICY, now)
    assert d.rejection.reason is Reason.INVALID_PROPERTY_VALUE
    assert d.rejection.names == ("priority", "refund_amount", "region", "vip")
    for name in ("priority", "refund_amount", "region", "vip"):
        assert name in d.rejection.detail
    _assert_nothing_applied(d)


def test_t4_unknown_and_invalid_together_name_every_offender(make_account, make_ticket, now):
    """RULES T4: unknown properties AND invalid values are rejected with a reason that names them;
    validate_properties promises "every offending name at once, so the sender can fix them all"."""
    cmd = c.UpdateTicketProperties(command_id="cmd-1", account_id="acme", ticket_id="tkt-1",
                                   properties={"colour": "red", "priority": "asap"})
    d = decide_ticket_command(cmd, make_account(), make_ticket(), POLICY, now)
    assert d.rejected
    _assert_nothing_applied(d)
    assert set(d.rejection.names) == {"colour", "priority"}


def test_t4_bool_is_not_a_number(make_account, make_ticket, now):
    account = make_account(custom_properties=CUSTOM_PROPS)
    cmd = c.UpdateTicketProperties(command_id="cmd-1", account_id="acme", ticket_id="tkt-1", properties={"refund_amount": True})
    d = decide_ticket_command(cmd, account, make_ticket(), POLICY, now)
    assert d.rejection.reason is Reason.INVALID_PROPERTY_VALUE
    assert d.rejection.names == ("refund_amount",)


def test_t4_create_with_invalid_properties_is_rejected_and_creates_nothing(make_account, make_ref, now):
    account = make_account(custom_properties=CUSTOM_PROPS)
    d = create_ticket(_create(priority="asap"), account, make_ref(), None, POLICY, "tkt-9", now)
    assert d.rejection.reason is Reason.INVALID_PROPERTY_VALUE
    assert d.rejection.names == ("priority",)
    _assert_nothing_applied(d)
    d = create_ticket(_create(properties={"shoe_size": 44}), account, make_ref(), None, POLICY, "tkt-9", now)
    assert d.rejection.reason is Reason.UNKNOWN_PROPERTY
    assert d.rejection.names == ("shoe_size",)
    _assert_nothing_applied(d)


def test_t4_unchanged_values_change_nothing(make_account, make_ticket, now):
    cmd = c.UpdateTicketProperties(command_id="cmd-1", account_id="acme", ticket_id="tkt-1", properties={"subject": "Same"})
    d = decide_ticket_command(cmd, make_account(), make_ticket(subject="Same"), POLICY, now)
    assert d.noop


# --- T5: close date -------------------------------------------------------------------------


def test_t5_moving_to_closed_status_sets_close_date(make_account, make_ticket, now):
    t = make_ticket(status="waiting_on_us", version=2)
    cmd = c.ChangeTicketStatus(command_id="cmd-1", account_id="acme", ticket_id="tkt-1", status="closed")
    d = decide_ticket_command(cmd, make_account(), t, POLICY, now)
    (new,) = d.tickets
    assert (new.status, new.state, new.close_date) == ("closed", StatusState.CLOSED, now)
    assert _types(d) == ["ticket.status_changed", "ticket.closed"]
    changed, closed = d.events
    assert (changed.previous_status, changed.status, changed.state, changed.close_date) == ("waiting_on_us", "closed", StatusState.CLOSED, now)
    assert changed.version == 3
    assert closed.version == 4
    assert closed.close_date == now
    assert closed.conversation_ids == ("conv-1",)
    assert new.version == 4


def test_t5_moving_back_to_open_status_clears_close_date(make_account, make_ticket, now):
    t = make_ticket(status="closed", state=StatusState.CLOSED, close_date=datetime(2024, 5, 2, tzinfo=UTC), version=4)
    cmd = c.ChangeTicketStatus(command_id="cmd-1", account_id="acme", ticket_id="tkt-1", status="waiting_on_us")
    d = decide_ticket_command(cmd, make_account(), t, POLICY, now)
    (new,) = d.tickets
    assert (new.status, new.state, new.close_date) == ("waiting_on_us", StatusState.OPEN, None)
    assert _types(d) == ["ticket.status_changed", "ticket.reopened"]
    assert d.events[0].close_date is None
    assert [ev.version for ev in d.events] == [5, 6]


def test_t5_closed_state_status_not_named_closed_sets_close_date_in_custom_pipeline(make_account, make_ticket, now):
    account = make_account(pipelines=(DEFAULT_PIPELINE, ESCALATIONS))
    t = make_ticket(pipeline="escalations", status="triage")
    cmd = c.ChangeTicketStatus(command_id="cmd-1", account_id="acme", ticket_id="tkt-1", status="resolved")
    d = decide_ticket_command(cmd, account, t, POLICY, now)
    (new,) = d.tickets
    assert (new.pipeline, new.status, new.state, new.close_date) == ("escalations", "resolved", StatusState.CLOSED, now)
    assert "ticket.closed" in _types(d)

    back = decide_ticket_command(
        c.ChangeTicketStatus(command_id="cmd-2", account_id="acme", ticket_id="tkt-1", status="triage"), account, new, POLICY, now
    )
    (reopened,) = back.tickets
    assert (reopened.state, reopened.close_date) == (StatusState.OPEN, None)
    assert "ticket.reopened" in _types(back)


def test_t5_moving_between_pipelines_uses_target_status_state(make_account, make_ticket, now):
    account = make_account(pipelines=(DEFAULT_PIPELINE, ESCALATIONS))
    cmd = c.ChangeTicketStatus(command_id="cmd-1", account_id="acme", ticket_id="tkt-1", pipeline="escalations", status="wont_fix")
    d = decide_ticket_command(cmd, account, make_ticket(), POLICY, now)
    (new,) = d.tickets
    assert (new.pipeline, new.status, new.state, new.close_date) == ("escalations", "wont_fix", StatusState.CLOSED, now)
    assert d.events[0].previous_pipeline == "support"


def test_t5_closed_to_other_closed_status_keeps_close_date(make_account, make_ticket, now):
    account = make_account(pipelines=(DEFAULT_PIPELINE, ESCALATIONS))
    closed_at = datetime(2024, 5, 2, tzinfo=UTC)
    t = make_ticket(pipeline="escalations", status="resolved", state=StatusState.CLOSED, close_date=closed_at)
    cmd = c.ChangeTicketStatus(command_id="cmd-1", account_id="acme", ticket_id="tkt-1", status="wont_fix")
    d = decide_ticket_command(cmd, account, t, POLICY, now)
    assert d.tickets[0].close_date == closed_at
    assert _types(d) == ["ticket.status_changed"]


def test_t5_creating_in_closed_status_sets_close_date(make_account, make_ref, now):
    d = create_ticket(_create(status="closed"), make_account(), make_ref(), None, POLICY, "tkt-9", now)
    assert d.tickets[0].state is StatusState.CLOSED
    assert d.tickets[0].close_date == now
    assert d.events[0].close_date == now


def test_t5_unknown_status_is_rejected(make_account, make_ticket, now):
    cmd = c.ChangeTicketStatus(command_id="cmd-1", account_id="acme", ticket_id="tkt-1", status="resolved")
    d = decide_ticket_command(cmd, make_account(), make_ticket(), POLICY, now)
    assert d.rejection.reason is Reason.UNKNOWN_STATUS
    _assert_nothing_applied(d)


# --- T6: ticket owner -----------------------------------------------------------------------


def test_t6_owner_change_emits_only_ticket_owner_changed(make_account, make_ticket, now):
    t = make_ticket(owner_id="agent-1", conversation_ids=("conv-1", "conv-2"), version=2)
    cmd = c.ChangeTicketOwner(command_id="cmd-1", account_id="acme", ticket_id="tkt-1", owner_id="agent-2")
    d = decide_ticket_command(cmd, make_account(), t, POLICY, now)
    (new,) = d.tickets
    assert new.owner_id == "agent-2"
    assert new.version == 3
    assert _types(d) == ["ticket.owner_changed"]
    ev = d.events[0]
    assert (ev.owner_id, ev.previous_owner_id, ev.version, ev.conversation_ids) == ("agent-2", "agent-1", 3, ("conv-1", "conv-2"))
    assert not any(isinstance(x, (e.ConversationEvent, c.Command)) for x in d.events)


# --- T7: delete -----------------------------------------------------------------------------


def test_t7_delete_emits_ticket_deleted_with_conversation_ids(make_account, make_ticket, now):
    t = make_ticket(conversation_ids=("conv-1", "conv-2"), version=5)
    cmd = c.DeleteTicket(command_id="cmd-1", account_id="acme", ticket_id="tkt-1")
    d = decide_ticket_command(cmd, make_account(), t, POLICY, now)
    (new,) = d.tickets
    assert new.deleted is True
    assert new.version == 6
    assert _types(d) == ["ticket.deleted"]
    assert d.events[0].conversation_ids == ("conv-1", "conv-2")
    assert d.events[0].version == 6


def test_t7_deleting_a_deleted_ticket_changes_nothing(make_account, make_ticket, now):
    cmd = c.DeleteTicket(command_id="cmd-2", account_id="acme", ticket_id="tkt-1")
    d = decide_ticket_command(cmd, make_account(), make_ticket(deleted=True), POLICY, now)
    assert d.noop


def test_t7_other_commands_on_deleted_ticket_are_rejected(make_account, make_ticket, now):
    cmd = c.ChangeTicketOwner(command_id="cmd-1", account_id="acme", ticket_id="tkt-1", owner_id="a")
    d = decide_ticket_command(cmd, make_account(), make_ticket(deleted=True), POLICY, now)
    assert d.rejection.reason is Reason.TICKET_DELETED


# --- T8: help-desk policy -------------------------------------------------------------------


def test_t8_professional_created_on_cutoff_creates_ticket_in_help_desk(make_account, make_ref, now):
    account = make_account(tier=Tier.PROFESSIONAL, created_at=datetime(2024, 4, 1, tzinfo=UTC))
    d = create_ticket(_create(), account, make_ref(workspace=Workspace.INBOX), None, POLICY, "tkt-9", now)
    assert not d.rejected
    assert d.tickets[0].workspace is Workspace.HELP_DESK
    assert d.events[0].workspace is Workspace.HELP_DESK


def test_t8_enterprise_created_after_cutoff_creates_ticket_in_help_desk(make_account, make_ref, now):
    account = make_account(tier=Tier.ENTERPRISE, created_at=datetime(2024, 9, 1, tzinfo=UTC))
    d = create_ticket(_create(), account, make_ref(), None, POLICY, "tkt-9", now)
    assert d.tickets[0].workspace is Workspace.HELP_DESK


def test_t8_professional_created_before_cutoff_creates_ticket_in_inbox(make_account, make_ref, now):
    account = make_account(tier=Tier.PROFESSIONAL, created_at=datetime(2024, 3, 31, tzinfo=UTC))
    d = create_ticket(_create(), account, make_ref(), None, POLICY, "tkt-9", now)
    assert d.tickets[0].workspace is Workspace.INBOX
    assert d.events[0].workspace is Workspace.INBOX


@pytest.mark.parametrize("tier", [Tier.FREE, Tier.STARTER])
def test_t8_lower_tier_created_after_cutoff_creates_ticket_in_inbox(make_account, make_ref, now, tier):
    account = make_account(tier=tier, created_at=datetime(2024, 4, 1, tzinfo=UTC))
    d = create_ticket(_create(), account, make_ref(), None, POLICY, "tkt-9", now)
    assert d.tickets[0].workspace is Workspace.INBOX


def test_t8_conversation_already_in_help_desk_gets_help_desk_ticket(make_account, make_ref, now):
    d = create_ticket(_create(), make_account(), make_ref(workspace=Workspace.HELP_DESK), None, POLICY, "tkt-9", now)
    assert d.tickets[0].workspace is Workspace.HELP_DESK


def test_t8_custom_policy_tiers_and_cutoff(make_account, make_ref, now):
    policy = HelpDeskPolicy(tiers=frozenset({Tier.STARTER}), cutoff=datetime(2025, 1, 1, tzinfo=UTC))
    starter_new = make_account(tier=Tier.STARTER, created_at=datetime(2025, 1, 1, tzinfo=UTC))
    starter_old = make_account(tier=Tier.STARTER, created_at=datetime(2024, 12, 31, 23, 59, tzinfo=UTC))
    pro_new = make_account(tier=Tier.PROFESSIONAL, created_at=datetime(2025, 6, 1, tzinfo=UTC))
    assert policy.applies_to(starter_new)
    assert not policy.applies_to(starter_old)
    assert not policy.applies_to(pro_new)
    assert create_ticket(_create(), starter_new, make_ref(), None, policy, "t", now).tickets[0].workspace is Workspace.HELP_DESK
    assert create_ticket(_create(), pro_new, make_ref(), None, policy, "t", now).tickets[0].workspace is Workspace.INBOX


def test_t8_default_policy_is_the_seeds(make_account):
    assert POLICY.tiers == frozenset({Tier.PROFESSIONAL, Tier.ENTERPRISE})
    assert POLICY.cutoff == datetime(2024, 4, 1, tzinfo=UTC)
    assert POLICY.applies_to(make_account(tier=Tier.PROFESSIONAL, created_at=datetime(2024, 4, 1, tzinfo=UTC)))
    assert not POLICY.applies_to(make_account(tier=Tier.PROFESSIONAL, created_at=datetime(2024, 3, 31, 23, 59, 59, tzinfo=UTC)))


_MANAGEMENT = [
    lambda **kw: c.ChangeTicketStatus(ticket_id="tkt-1", status="closed", **kw),
    lambda **kw: c.ChangeTicketOwner(ticket_id="tkt-1", owner_id="agent-2", **kw),
    lambda **kw: c.UpdateTicketProperties(ticket_id="tkt-1", properties={"subject": "x"}, **kw),
    lambda **kw: c.DeleteTicket(ticket_id="tkt-1", **kw),
]


@pytest.mark.parametrize("build", _MANAGEMENT)
def test_t8_other_management_from_inbox_is_rejected_help_desk_required(make_account, make_ticket, now, build):
    account = make_account(tier=Tier.PROFESSIONAL, created_at=datetime(2024, 4, 1, tzinfo=UTC))
    cmd = build(command_id="cmd-1", account_id="acme", actor_id="agent-1")
    assert cmd.from_workspace is Workspace.INBOX
    d = decide_ticket_command(cmd, account, make_ticket(workspace=Workspace.HELP_DESK), POLICY, now)
    assert d.rejection.reason is Reason.HELP_DESK_REQUIRED
    _assert_nothing_applied(d)


@pytest.mark.parametrize("build", _MANAGEMENT)
def test_t8_management_from_help_desk_is_allowed(make_account, make_ticket, now, build):
    account = make_account(tier=Tier.PROFESSIONAL, created_at=datetime(2024, 4, 1, tzinfo=UTC))
    cmd = build(command_id="cmd-1", account_id="acme", actor_id="agent-1", from_workspace=Workspace.HELP_DESK)
    d = decide_ticket_command(cmd, account, make_ticket(workspace=Workspace.HELP_DESK), POLICY, now)
    assert not d.rejected
    assert d.tickets is not None and d.events


@pytest.mark.parametrize("build", _MANAGEMENT)
def test_t8_management_by_sync_actor_is_allowed(make_account, make_ticket, now, build):
    account = make_account(tier=Tier.PROFESSIONAL, created_at=datetime(2024, 4, 1, tzinfo=UTC))
    cmd = build(command_id="cmd-1", account_id="acme", actor_id=SYNC_ACTOR)
    d = decide_ticket_command(cmd, account, make_ticket(workspace=Workspace.HELP_DESK), POLICY, now)
    assert not d.rejected
    assert d.tickets is not None and d.events


@pytest.mark.parametrize("build", _MANAGEMENT)
def test_t8_management_from_inbox_is_allowed_for_accounts_outside_policy(make_account, make_ticket, now, build):
    account = make_account(tier=Tier.PROFESSIONAL, created_at=datetime(2024, 3, 31, tzinfo=UTC))
    cmd = build(command_id="cmd-1", account_id="acme", actor_id="agent-1")
    d = decide_ticket_command(cmd, account, make_ticket(), POLICY, now)
    assert not d.rejected
    assert d.events


def test_t8_merge_and_associate_from_inbox_are_rejected_help_desk_required(make_account):
    account = make_account(tier=Tier.ENTERPRISE, created_at=datetime(2024, 5, 1, tzinfo=UTC))
    for cmd in (
        c.MergeTickets(command_id="cmd-1", account_id="acme", ticket_id="tkt-1", merged_ticket_id="tkt-2"),
        c.AssociateConversation(command_id="cmd-2", account_id="acme", ticket_id="tkt-1", conversation_id="conv-2"),
    ):
        d = manages_in_help_desk_only(cmd, account, POLICY)
        assert d is not None and d.rejection.reason is Reason.HELP_DESK_REQUIRED
        assert manages_in_help_desk_only(cmd.model_copy(update={"from_workspace": Workspace.HELP_DESK}), account, POLICY) is None


# --- T9: merge ------------------------------------------------------------------------------


def test_t9_merge_moves_conversations_and_marks_b_merged(make_ticket, now):
    a = make_ticket(id="tkt-a", conversation_ids=("conv-1",), version=2)
    b = make_ticket(id="tkt-b", conversation_ids=("conv-2", "conv-3"), version=4)
    cmd = c.MergeTickets(command_id="cmd-1", account_id="acme", ticket_id="tkt-a", merged_ticket_id="tkt-b")

    d = merge(cmd, a, b, now)

    assert not d.rejected
    new_a, new_b = d.tickets
    assert new_a.id == "tkt-a"
    assert new_a.conversation_ids == ("conv-1", "conv-2", "conv-3")
    assert new_a.merged_into is None
    assert new_b.id == "tkt-b"
    assert new_b.merged_into == "tkt-a"
    assert new_b.conversation_ids == ()
    assert new_b.version == 5
    assert _types(d) == ["ticket.merged", "ticket.conversation_associated", "ticket.conversation_associated"]
    merged = d.events[0]
    assert (merged.ticket_id, merged.into_ticket_id, merged.moved_conversation_ids, merged.version) == ("tkt-b", "tkt-a", ("conv-2", "conv-3"), 5)
    assert merged.conversation_ids == ()
    assoc = d.events[1:]
    assert [(ev.ticket_id, ev.conversation_id, ev.version) for ev in assoc] == [("tkt-a", "conv-2", 3), ("tkt-a", "conv-3", 4)]
    assert assoc[-1].conversation_ids == ("conv-1", "conv-2", "conv-3")
    assert new_a.version == 4


def test_t9_merging_into_itself_is_rejected(make_ticket, now):
    a = make_ticket(id="tkt-a")
    cmd = c.MergeTickets(command_id="cmd-1", account_id="acme", ticket_id="tkt-a", merged_ticket_id="tkt-a")
    d = merge(cmd, a, a, now)
    assert d.rejection.reason is Reason.INVALID_MERGE
    _assert_nothing_applied(d)


def test_t9_acting_on_merged_ticket_is_rejected(make_account, make_ticket, now):
    b = make_ticket(id="tkt-b", conversation_ids=(), merged_into="tkt-a")
    for cmd in (
        c.ChangeTicketOwner(command_id="cmd-1", account_id="acme", ticket_id="tkt-b", owner_id="agent-1"),
        c.ChangeTicketStatus(command_id="cmd-2", account_id="acme", ticket_id="tkt-b", status="closed"),
        c.DeleteTicket(command_id="cmd-3", account_id="acme", ticket_id="tkt-b"),
        c.UpdateTicketProperties(command_id="cmd-4", account_id="acme", ticket_id="tkt-b", properties={"subject": "x"}),
    ):
        d = decide_ticket_command(cmd, make_account(), b, POLICY, now)
        assert d.rejection.reason is Reason.TICKET_MERGED, cmd.type
        assert "tkt-a" in d.rejection.detail
        _assert_nothing_applied(d)


def test_t9_merging_an_already_merged_ticket_is_rejected(make_ticket, now):
    a = make_ticket(id="tkt-a")
    b = make_ticket(id="tkt-b", conversation_ids=(), merged_into="tkt-c")
    cmd = c.MergeTickets(command_id="cmd-1", account_id="acme", ticket_id="tkt-a", merged_ticket_id="tkt-b")
    assert merge(cmd, a, b, now).rejection.reason is Reason.TICKET_MERGED
    cmd_into_merged = c.MergeTickets(command_id="cmd-2", account_id="acme", ticket_id="tkt-b", merged_ticket_id="tkt-a")
    assert merge(cmd_into_merged, b, a, now).rejection.reason is Reason.TICKET_MERGED


# --- T10: associate -------------------------------------------------------------------------


def test_t10_conversation_without_ticket_is_associated(make_ticket, make_ref, now):
    t = make_ticket(conversation_ids=("conv-1",), version=3)
    cmd = c.AssociateConversation(command_id="cmd-1", account_id="acme", ticket_id="tkt-1", conversation_id="conv-2")
    d = associate(cmd, t, make_ref(id="conv-2"), None, now)
    (new,) = d.tickets
    assert new.conversation_ids == ("conv-1", "conv-2")
    assert new.version == 4
    assert _types(d) == ["ticket.conversation_associated"]
    ev = d.events[0]
    assert (ev.conversation_id, ev.conversation_ids, ev.version) == ("conv-2", ("conv-1", "conv-2"), 4)


def test_t10_conversation_with_another_ticket_is_rejected(make_ticket, make_ref, now):
    cmd = c.AssociateConversation(command_id="cmd-1", account_id="acme", ticket_id="tkt-1", conversation_id="conv-2")
    other = make_ticket(id="tkt-2", conversation_ids=("conv-2",))
    d = associate(cmd, make_ticket(), make_ref(id="conv-2"), other, now)
    assert d.rejection.reason is Reason.CONVERSATION_HAS_TICKET
    _assert_nothing_applied(d)


def test_t10_associating_again_with_same_ticket_changes_nothing(make_ticket, make_ref, now):
    t = make_ticket(conversation_ids=("conv-1", "conv-2"))
    cmd = c.AssociateConversation(command_id="cmd-1", account_id="acme", ticket_id="tkt-1", conversation_id="conv-2")
    assert associate(cmd, t, make_ref(id="conv-2"), t, now).noop


def test_t10_trashed_conversation_cannot_be_associated(make_ticket, make_ref, now):
    cmd = c.AssociateConversation(command_id="cmd-1", account_id="acme", ticket_id="tkt-1", conversation_id="conv-2")
    d = associate(cmd, make_ticket(), make_ref(id="conv-2", deleted=True), None, now)
    assert d.rejection.reason is Reason.CONVERSATION_DELETED


# --- X1: tenant isolation -------------------------------------------------------------------


def test_x1_other_accounts_ticket_is_not_found(make_account, make_ticket, now):
    t = make_ticket(account_id="globex")
    for cmd in (
        c.ChangeTicketOwner(command_id="cmd-1", account_id="acme", ticket_id="tkt-1", owner_id="a"),
        c.ChangeTicketStatus(command_id="cmd-2", account_id="acme", ticket_id="tkt-1", status="closed"),
        c.DeleteTicket(command_id="cmd-3", account_id="acme", ticket_id="tkt-1"),
        c.UpdateTicketProperties(command_id="cmd-4", account_id="acme", ticket_id="tkt-1", properties={"subject": "x"}),
    ):
        d = decide_ticket_command(cmd, make_account(), t, POLICY, now)
        assert d.rejection.reason is Reason.NOT_FOUND, cmd.type
        _assert_nothing_applied(d)


def test_x1_deleting_other_accounts_deleted_ticket_is_not_found(make_account, make_ticket, now):
    cmd = c.DeleteTicket(command_id="cmd-1", account_id="acme", ticket_id="tkt-1")
    d = decide_ticket_command(cmd, make_account(), make_ticket(account_id="globex", deleted=True), POLICY, now)
    assert d.rejection.reason is Reason.NOT_FOUND


def test_x1_other_accounts_conversation_gets_no_ticket(make_account, make_ref, now):
    d = create_ticket(_create(), make_account(), make_ref(account_id="globex"), None, POLICY, "tkt-9", now)
    assert d.rejection.reason is Reason.NOT_FOUND
    assert d.rejection.unresolved is None
    _assert_nothing_applied(d)


def test_x1_other_accounts_conversation_cannot_be_associated(make_ticket, make_ref, now):
    cmd = c.AssociateConversation(command_id="cmd-1", account_id="acme", ticket_id="tkt-1", conversation_id="conv-2")
    d = associate(cmd, make_ticket(), make_ref(id="conv-2", account_id="globex"), None, now)
    assert d.rejection.reason is Reason.NOT_FOUND
    _assert_nothing_applied(d)


def test_x1_merge_with_other_accounts_ticket_is_not_found(make_ticket, now):
    a = make_ticket(id="tkt-a")
    b = make_ticket(id="tkt-b", account_id="globex", conversation_ids=("conv-9",))
    cmd = c.MergeTickets(command_id="cmd-1", account_id="acme", ticket_id="tkt-a", merged_ticket_id="tkt-b")
    d = merge(cmd, a, b, now)
    assert d.rejection.reason is Reason.NOT_FOUND
    _assert_nothing_applied(d)


# --- S3 / S5: ticket side -------------------------------------------------------------------


def test_s3_ticket_follows_conversation_owner(make_ticket, now):
    d = follow_conversation_owner(make_ticket(owner_id="agent-1"), "agent-2", now)
    assert d.tickets[0].owner_id == "agent-2"
    assert _types(d) == ["ticket.owner_changed"]
    assert (d.events[0].owner_id, d.events[0].previous_owner_id) == ("agent-2", "agent-1")


def test_s3_owner_removed_on_conversation_is_removed_on_ticket(make_ticket, now):
    d = follow_conversation_owner(make_ticket(owner_id="agent-1"), None, now)
    assert d.tickets[0].owner_id is None


def test_s3_no_live_ticket_means_nothing(make_ticket, now):
    assert follow_conversation_owner(None, "agent-2", now).noop
    assert follow_conversation_owner(make_ticket(deleted=True), "agent-2", now).noop
    assert follow_conversation_owner(make_ticket(owner_id="agent-2"), "agent-2", now).noop


def test_s5_trashed_conversation_deletes_its_ticket_once(make_ticket, now):
    d = delete_with_conversation(make_ticket(conversation_ids=("conv-1",)), now)
    (deleted,) = d.tickets
    assert deleted.deleted is True
    assert _types(d) == ["ticket.deleted"]
    assert d.events[0].conversation_ids == ("conv-1",)
    assert delete_with_conversation(deleted, now).noop
    assert delete_with_conversation(None, now).noop


# --- S7: projection of conversation events -------------------------------------------------


def _owner_changed(version, owner_id="agent-1", account_id="acme"):
    return e.ConversationOwnerChanged(conversation_id="conv-1", account_id=account_id, version=version,
                                      occurred_at=datetime(2024, 6, 1, tzinfo=UTC), owner_id=owner_id, previous_owner_id=None)


def test_s7_projection_ignores_stale_and_duplicate_versions(make_ref):
    ref = make_ref(owner_id="agent-9", version=3)
    assert project_conversation_event(ref, _owner_changed(3)) is None
    assert project_conversation_event(ref, _owner_changed(2)) is None


def test_s7_projection_applies_newer_versions(make_ref):
    ref = make_ref(owner_id=None, version=3)
    new = project_conversation_event(ref, _owner_changed(4, owner_id="agent-1"))
    assert new.owner_id == "agent-1"
    assert new.version == 4
    moved = project_conversation_event(new, e.ConversationMovedToHelpDesk(
        conversation_id="conv-1", account_id="acme", version=5, occurred_at=datetime(2024, 6, 1, tzinfo=UTC)))
    assert moved.workspace is Workspace.HELP_DESK
    trashed = project_conversation_event(moved, e.ConversationDeleted(
        conversation_id="conv-1", account_id="acme", version=6, occurred_at=datetime(2024, 6, 1, tzinfo=UTC)))
    assert trashed.deleted is True and trashed.version == 6
    # the late owner change at version 4 arriving again leaves the trashed view as it is
    assert project_conversation_event(trashed, _owner_changed(4, owner_id="agent-7")) is None


def test_s7_projection_of_created_builds_the_ref():
    ev = e.ConversationCreated(conversation_id="conv-1", account_id="acme", version=1, occurred_at=datetime(2024, 6, 1, tzinfo=UTC),
                               contact_id="contact-1", channel=Channel.FORM, channel_thread_key="k", subject="Hi", owner_id=None)
    ref = project_conversation_event(None, ev)
    assert (ref.id, ref.account_id, ref.channel, ref.subject, ref.owner_id, ref.workspace, ref.deleted, ref.version) == (
        "conv-1", "acme", Channel.FORM, "Hi", None, Workspace.INBOX, False, 1)
    assert project_conversation_event(ref, ev) is None


def test_t8_t9_merge_from_the_inbox_is_rejected_for_help_desk_accounts(make_account, make_ticket, now):
    from contracts.common import Tier
    from workers.ticketing.domain import decide_merge

    account = make_account(tier=Tier.PROFESSIONAL, created_at=datetime(2024, 5, 1, tzinfo=UTC))
    a, b = make_ticket(id="tkt-a", conversation_ids=("conv-1",)), make_ticket(id="tkt-b", conversation_ids=("conv-2",))
    cmd = c.MergeTickets(command_id="m1", account_id=a.account_id, ticket_id="tkt-a", merged_ticket_id="tkt-b")
    assert decide_merge(cmd, a, b, account, POLICY, now).rejection.reason is Reason.HELP_DESK_REQUIRED
    from_help_desk = cmd.model_copy(update={"from_workspace": Workspace.HELP_DESK})
    assert decide_merge(from_help_desk, a, b, account, POLICY, now).tickets[1].merged_into == "tkt-a"


def test_x1_t10_association_with_another_accounts_ticket_is_not_found(make_account, make_ticket, make_ref, now):
    from workers.ticketing.domain import decide_association

    theirs = make_ticket(account_id="globex")
    cmd = c.AssociateConversation(command_id="a1", account_id="acme", ticket_id=theirs.id, conversation_id="conv-2")
    d = decide_association(cmd, theirs, make_ref(id="conv-2"), None, make_account(), POLICY, now)
    assert d.rejection.reason is Reason.NOT_FOUND


def test_x1_s3_sync_command_for_another_accounts_ticket_is_not_found(make_ticket, now):
    from workers.ticketing.domain import decide_for_conversation

    cmd = c.ApplyConversationOwnerToTicket(command_id="s1", account_id="acme", conversation_id="conv-1", owner_id="x")
    account = build_account()
    assert decide_for_conversation(cmd, account, make_ticket(account_id="globex"), now).rejection.reason is Reason.NOT_FOUND
    assert decide_for_conversation(cmd, account, make_ticket(owner_id="y"), now).tickets[0].owner_id == "x"


# --- S3 against T6 when the news arrives late (S7) -------------------------------------------------


def test_s3_s7_a_conversation_owner_change_older_than_the_agents_ticket_owner_change_is_not_applied(make_ticket, now):
    from datetime import timedelta

    from workers.ticketing.domain import follow_conversation_owner

    agent_set = make_ticket(owner_id="agent-bob", owner_set_at=now)
    late = follow_conversation_owner(agent_set, "agent-ann", now + timedelta(seconds=1), changed_at=now - timedelta(seconds=5))
    assert late.noop
    newer = follow_conversation_owner(agent_set, "agent-ann", now + timedelta(seconds=1), changed_at=now + timedelta(seconds=1))
    assert newer.tickets[0].owner_id == "agent-ann" and newer.tickets[0].owner_set_at == now + timedelta(seconds=1)


def test_t1_s3_a_ticket_takes_its_conversations_owner_with_the_time_it_was_set(make_account, make_ref, now):
    from datetime import timedelta

    set_earlier = now - timedelta(minutes=3)
    d = create_ticket(_create(), make_account(), make_ref(owner_id="agent-ann", owner_changed_at=set_earlier), None,
                      POLICY, "tkt-9", now)
    assert (d.tickets[0].owner_id, d.tickets[0].owner_set_at) == ("agent-ann", set_earlier)
    explicit = create_ticket(_create(owner_id="agent-bob"), make_account(), make_ref(owner_id="agent-ann"), None,
                             POLICY, "tkt-9", now)
    assert (explicit.tickets[0].owner_id, explicit.tickets[0].owner_set_at) == ("agent-bob", now)


def test_t1_t10_creating_or_associating_needs_the_conversation_view_as_of_the_command():
    from workers.ticketing.domain import current_view_needed

    create = c.CreateTicket(command_id="c", account_id="acme", conversation_id="conv-1")
    status = c.ChangeTicketStatus(command_id="c", account_id="acme", ticket_id="t", status="closed")
    assert current_view_needed(create) == Missing(CONVERSATIONS_PROJECTION, "conv-1")
    assert current_view_needed(status) is None


def test_s3_the_view_of_a_conversation_remembers_when_its_owner_changed(make_ref, now):
    from workers.ticketing.domain import project_conversation_event

    ev = e.ConversationOwnerChanged(conversation_id="conv-1", account_id="acme", version=5, occurred_at=now,
                                    owner_id="agent-ann", previous_owner_id=None)
    ref = project_conversation_event(make_ref(version=4), ev)
    assert (ref.owner_id, ref.owner_changed_at) == ("agent-ann", now)


def test_s7_the_projection_applies_only_the_events_that_change_its_view(make_ref):
    """The ticketing worker applies conversation events that change its view (created, owner changed,
    moved to the help desk, deleted) and passes over the rest: each of those would only have moved the
    stored version on, a write (and a read) per inbound message for nothing. Staleness holds without
    them: a late event is compared with the version of the last event that changed the view."""
    from dataclasses import replace as with_

    from workers.ticketing.handlers import PROJECTION

    projected = {e.ConversationCreated, e.ConversationOwnerChanged, e.ConversationMovedToHelpDesk, e.ConversationDeleted}
    assert set(PROJECTION) == projected
    ref = make_ref(owner_id="agent-9", version=3)
    for event_type in set(e.CONVERSATION_EVENT_CLASSES) - projected:
        event = event_type.model_construct(conversation_id=ref.id, account_id=ref.account_id, version=4,
                                           occurred_at=datetime(2024, 6, 1, tzinfo=UTC))
        assert project_conversation_event(ref, event) == with_(ref, version=4), event_type.__name__
