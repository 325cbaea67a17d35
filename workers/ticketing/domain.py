"""The ticketing worker's slice, pure: its aggregates (tickets, its view of conversations), the T8
policy, and its rules: T1-T10 and the ticket side of S3 and S5.

Every rule returns a `TicketDecision` naming the tickets it changed. X1: a ticket or conversation of
another account is reported as not found. The handlers (`workers.ticketing.handlers`) load what a
rule needs and save what it decides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, cast

from contracts import commands as c
from contracts import events as e
from contracts.accounts import Account
from contracts.commands import SYNC_ACTOR
from contracts.common import Channel, StatusState, Tier, Workspace
from contracts.rejections import Reason
from workers.decision import ACCOUNTS_PROJECTION, Decision, Missing
from workers.ticketing.properties import validate_properties

CONVERSATIONS_PROJECTION = "conversations"
"""The ticketing worker's view of conversations, fed by conversation events (ADR 5)."""


@dataclass(frozen=True)
class ConversationRef:
    """What the ticketing worker knows of a conversation, projected from conversation events."""

    id: str
    account_id: str
    channel: Channel
    subject: str | None
    owner_id: str | None
    workspace: Workspace
    deleted: bool
    version: int
    owner_changed_at: datetime | None = None


@dataclass(frozen=True)
class Ticket:
    id: str
    account_id: str
    subject: str
    description: str | None
    pipeline: str
    status: str
    state: StatusState
    priority: str | None
    owner_id: str | None
    source_channel: Channel
    category: str | None
    workspace: Workspace
    properties: dict[str, Any]
    create_date: datetime
    close_date: datetime | None
    conversation_ids: tuple[str, ...]
    deleted: bool = False
    merged_into: str | None = None
    version: int = 1
    owner_set_at: datetime | None = None
    """When the information the owner came from is from: the conversation's owner change it was taken
    from (T1, S3), or the agent's change (T6). An older conversation owner change is not applied (S7)."""


@dataclass(frozen=True)
class HelpDeskPolicy:
    """T8: which accounts manage tickets in the help desk instead of the inbox (settings: tiers, cut-off)."""

    tiers: frozenset[Tier]
    cutoff: datetime

    def applies_to(self, account: Account) -> bool:
        return account.tier in self.tiers and account.created_at >= self.cutoff


@dataclass(frozen=True)
class TicketDecision(Decision):
    """The tickets the rule changed, in the order to save them."""

    tickets: tuple[Ticket, ...] = field(default=())

    @property
    def noop(self) -> bool:
        return not self.tickets and not self.events and self.rejection is None


NOTHING = TicketDecision()


def _conversation_unknown(conversation_id: str, account_id: str) -> TicketDecision:
    """Not found, but perhaps only not yet projected: the delivery core waits for the projection first."""
    return TicketDecision.refuse(Reason.NOT_FOUND, f"no conversation {conversation_id} in account {account_id}",
                                 unresolved=Missing(CONVERSATIONS_PROJECTION, conversation_id))


def _account_unknown(cmd: c.Command) -> TicketDecision:
    return TicketDecision.refuse(Reason.UNKNOWN_ACCOUNT, f"account {cmd.account_id!r} is unknown",
                                 unresolved=Missing(ACCOUNTS_PROJECTION, cmd.account_id))


def _check_conversation(conv: ConversationRef | None, conversation_id: str, account_id: str) -> TicketDecision | None:
    if conv is None:
        return _conversation_unknown(conversation_id, account_id)
    if conv.account_id != account_id:
        return TicketDecision.refuse(Reason.NOT_FOUND, f"no conversation {conversation_id} in account {account_id}")
    if conv.deleted:
        return TicketDecision.refuse(Reason.CONVERSATION_DELETED, f"conversation {conversation_id} is in the trash")
    return None


def _check_ticket(ticket: Ticket | None, ticket_id: str, account_id: str) -> TicketDecision | None:
    if ticket is None or ticket.account_id != account_id:
        return TicketDecision.refuse(Reason.NOT_FOUND, f"no ticket {ticket_id} in account {account_id}")
    if ticket.merged_into:
        return TicketDecision.refuse(Reason.TICKET_MERGED, f"ticket {ticket_id} was merged into {ticket.merged_into}")
    if ticket.deleted:
        return TicketDecision.refuse(Reason.TICKET_DELETED, f"ticket {ticket_id} was deleted")
    return None


def _state_of(account: Account, pipeline_id: str, status_id: str) -> StatusState | TicketDecision:
    pipeline = account.pipeline(pipeline_id)
    if pipeline is None:
        return TicketDecision.refuse(Reason.UNKNOWN_PIPELINE, f"account {account.account_id} has no pipeline {pipeline_id!r}")
    status = next((s for s in pipeline.statuses if s.id == status_id), None)
    if status is None:
        return TicketDecision.refuse(Reason.UNKNOWN_STATUS, f"pipeline {pipeline_id!r} has no status {status_id!r}")
    return status.state


def _ev(cls: type, t: Ticket, now: datetime, **fields: Any) -> Any:
    return cls(ticket_id=t.id, account_id=t.account_id, version=t.version, occurred_at=now,
               conversation_ids=t.conversation_ids, **fields)


def create_ticket(
    cmd: c.CreateTicket,
    account: Account | None,
    conv: ConversationRef | None,
    ticket_of_conversation: Ticket | None,
    policy: HelpDeskPolicy,
    new_ticket_id: str,
    now: datetime,
) -> TicketDecision:
    """T1 defaults, T2 one ticket per conversation, T8 help-desk routing."""
    if account is None:
        return _account_unknown(cmd)
    if (bad := _check_conversation(conv, cmd.conversation_id, cmd.account_id)) is not None:
        return bad
    assert conv is not None
    if ticket_of_conversation is not None:
        return TicketDecision.refuse(Reason.CONVERSATION_HAS_TICKET,
                      f"conversation {conv.id} already has ticket {ticket_of_conversation.id}")
    pipeline = account.pipeline(cmd.pipeline) if cmd.pipeline else account.settings.pipelines[0]
    if pipeline is None:
        return TicketDecision.refuse(Reason.UNKNOWN_PIPELINE, f"account {account.account_id} has no pipeline {cmd.pipeline!r}")
    status_id = cmd.status or pipeline.statuses[0].id
    state = _state_of(account, pipeline.id, status_id)
    if isinstance(state, Decision):
        return state
    values: dict[str, Any] = {k: v for k, v in {"priority": cmd.priority, "category": cmd.category}.items() if v is not None}
    if cmd.subject is not None:
        values["subject"] = cmd.subject
    if (bad_props := validate_properties(account, values)) is not None:
        return TicketDecision(rejection=bad_props)
    if (bad_custom := validate_properties(account, dict(cmd.properties), custom_only=True)) is not None:
        return TicketDecision(rejection=bad_custom)
    owner = None if cmd.without_owner else (cmd.owner_id or conv.owner_id)
    from_conversation = not cmd.without_owner and not cmd.owner_id
    owner_set_at = (conv.owner_changed_at or now) if from_conversation else now
    to_help_desk = policy.applies_to(account) or conv.workspace is Workspace.HELP_DESK
    ticket = Ticket(
        id=new_ticket_id, account_id=account.account_id,
        subject=cmd.subject or conv.subject or f"{conv.channel.value} conversation {conv.id}",
        description=cmd.description, pipeline=pipeline.id, status=status_id, state=state,
        priority=cmd.priority, owner_id=owner, source_channel=conv.channel, category=cmd.category,
        workspace=Workspace.HELP_DESK if to_help_desk else Workspace.INBOX,
        properties=dict(cmd.properties), create_date=now,
        close_date=now if state is StatusState.CLOSED else None,
        conversation_ids=(conv.id,), owner_set_at=owner_set_at,
    )
    created = _ev(
        e.TicketCreated, ticket, now, subject=ticket.subject, description=ticket.description,
        pipeline=ticket.pipeline, status=ticket.status, state=ticket.state, priority=ticket.priority,
        owner_id=ticket.owner_id, source_channel=ticket.source_channel, category=ticket.category,
        workspace=ticket.workspace, properties=ticket.properties, create_date=ticket.create_date,
        close_date=ticket.close_date,
    )
    return TicketDecision(tickets=(ticket,), events=(created,))


def manages_in_help_desk_only(cmd: c.Command, account: Account, policy: HelpDeskPolicy) -> TicketDecision | None:
    """T8: such accounts cannot manage tickets from the inbox (the sync worker's commands are the system's own)."""
    if cmd.actor_id == SYNC_ACTOR or cmd.from_workspace is Workspace.HELP_DESK:
        return None
    if policy.applies_to(account):
        return TicketDecision.refuse(Reason.HELP_DESK_REQUIRED,
                      f"account {account.account_id} manages tickets in the help desk; send from_workspace=help_desk")
    return None


def update_properties(cmd: c.UpdateTicketProperties, account: Account, t: Ticket, now: datetime) -> TicketDecision:
    """T4: all values valid, or nothing applied."""
    if (bad := validate_properties(account, dict(cmd.properties))) is not None:
        return TicketDecision(rejection=bad)
    builtin = {k: v for k, v in cmd.properties.items() if k in ("subject", "description", "priority", "category")}
    custom = {k: v for k, v in cmd.properties.items() if k not in builtin}
    changes = {k: e.PropertyChange(old=getattr(t, k), new=v) for k, v in builtin.items() if getattr(t, k) != v}
    changes |= {k: e.PropertyChange(old=t.properties.get(k), new=v) for k, v in custom.items() if t.properties.get(k) != v}
    if not changes:
        return NOTHING
    new = replace(t, **cast(dict[str, Any], builtin), properties={**t.properties, **custom}, version=t.version + 1)
    return TicketDecision(tickets=(new,), events=(_ev(e.TicketPropertiesChanged, new, now, changes=changes),))


def change_status(cmd: c.ChangeTicketStatus, account: Account, t: Ticket, now: datetime) -> TicketDecision:
    """T5: entering a CLOSED-state status sets the close date, returning to OPEN clears it.

    Closing emits ticket.closed (S1) and reopening ticket.reopened (S2) after ticket.status_changed.
    """
    pipeline_id = cmd.pipeline or t.pipeline
    state = _state_of(account, pipeline_id, cmd.status)
    if isinstance(state, Decision):
        return state
    if (pipeline_id, cmd.status) == (t.pipeline, t.status):
        return NOTHING
    closing = state is StatusState.CLOSED and t.state is StatusState.OPEN
    reopening = state is StatusState.OPEN and t.state is StatusState.CLOSED
    close_date = now if closing else (None if state is StatusState.OPEN else t.close_date)
    new = replace(t, pipeline=pipeline_id, status=cmd.status, state=state, close_date=close_date, version=t.version + 1)
    events: list[Any] = [
        _ev(e.TicketStatusChanged, new, now, pipeline=new.pipeline, status=new.status, state=state,
            previous_pipeline=t.pipeline, previous_status=t.status, close_date=close_date)
    ]
    if closing:
        new = replace(new, version=new.version + 1)
        events.append(_ev(e.TicketClosed, new, now, close_date=now))
    elif reopening:
        new = replace(new, version=new.version + 1)
        events.append(_ev(e.TicketReopened, new, now))
    return TicketDecision(tickets=(new,), events=tuple(events))


def change_owner(t: Ticket, owner_id: str | None, now: datetime, set_at: datetime | None = None) -> TicketDecision:
    """T6/S4: only the ticket's owner changes; no conversation command follows."""
    if owner_id == t.owner_id:
        return NOTHING
    new = replace(t, owner_id=owner_id, version=t.version + 1, owner_set_at=set_at or now)
    changed = _ev(e.TicketOwnerChanged, new, now, owner_id=owner_id, previous_owner_id=t.owner_id)
    return TicketDecision(tickets=(new,), events=(changed,))


def delete(t: Ticket, now: datetime) -> TicketDecision:
    """T7: the ticket is deleted; ticket.deleted names its conversations for the sync worker to trash."""
    if t.deleted:
        return NOTHING
    new = replace(t, deleted=True, version=t.version + 1)
    return TicketDecision(tickets=(new,), events=(_ev(e.TicketDeleted, new, now),))


def merge(cmd: c.MergeTickets, a: Ticket | None, b: Ticket | None, now: datetime) -> TicketDecision:
    """T9: B's conversations move to A; B ends merged into A."""
    if cmd.ticket_id == cmd.merged_ticket_id:
        return TicketDecision.refuse(Reason.INVALID_MERGE, f"ticket {cmd.ticket_id} cannot be merged into itself")
    for ticket, tid in ((a, cmd.ticket_id), (b, cmd.merged_ticket_id)):
        if (bad := _check_ticket(ticket, tid, cmd.account_id)) is not None:
            return bad
    assert a is not None and b is not None
    moved = b.conversation_ids
    new_b = replace(b, conversation_ids=(), merged_into=a.id, version=b.version + 1)
    events: list[Any] = [_ev(e.TicketMerged, new_b, now, into_ticket_id=a.id, moved_conversation_ids=moved)]
    new_a = a
    for conv_id in moved:
        new_a = replace(new_a, conversation_ids=new_a.conversation_ids + (conv_id,), version=new_a.version + 1)
        events.append(_ev(e.TicketConversationAssociated, new_a, now, conversation_id=conv_id))
    return TicketDecision(tickets=(new_a, new_b), events=tuple(events))


def associate(
    cmd: c.AssociateConversation, t: Ticket, conv: ConversationRef | None, ticket_of_conversation: Ticket | None, now: datetime
) -> TicketDecision:
    """T10: a conversation without a ticket joins an existing ticket."""
    if (bad := _check_conversation(conv, cmd.conversation_id, cmd.account_id)) is not None:
        return bad
    if ticket_of_conversation is not None:
        if ticket_of_conversation.id == t.id:
            return NOTHING
        return TicketDecision.refuse(Reason.CONVERSATION_HAS_TICKET,
                      f"conversation {cmd.conversation_id} already has ticket {ticket_of_conversation.id}")
    new = replace(t, conversation_ids=t.conversation_ids + (cmd.conversation_id,), version=t.version + 1)
    associated = _ev(e.TicketConversationAssociated, new, now, conversation_id=cmd.conversation_id)
    return TicketDecision(tickets=(new,), events=(associated,))


def decide_merge(cmd: c.MergeTickets, a: Ticket | None, b: Ticket | None, account: Account | None,
                 policy: HelpDeskPolicy, now: datetime) -> TicketDecision:
    """T9 under T8: help-desk accounts merge from the help desk only."""
    if account is None:
        return _account_unknown(cmd)
    if (bad := manages_in_help_desk_only(cmd, account, policy)) is not None:
        return bad
    return merge(cmd, a, b, now)


def decide_association(cmd: c.AssociateConversation, t: Ticket | None, conv: ConversationRef | None,
                       ticket_of_conversation: Ticket | None, account: Account | None, policy: HelpDeskPolicy,
                       now: datetime) -> TicketDecision:
    """T10 under X1 and T8."""
    if account is None:
        return _account_unknown(cmd)
    if (bad := _check_ticket(t, cmd.ticket_id, cmd.account_id)) is not None:
        return bad
    assert t is not None
    if (bad := manages_in_help_desk_only(cmd, account, policy)) is not None:
        return bad
    return associate(cmd, t, conv, ticket_of_conversation, now)


def refuse_unlink(cmd: c.RemoveConversationAssociation, account: Account | None) -> TicketDecision:
    """T3: no message can remove a ticket's conversation association."""
    if account is None:
        return _account_unknown(cmd)
    return TicketDecision.refuse(Reason.ASSOCIATION_IMMUTABLE,
                  f"ticket {cmd.ticket_id} cannot be unlinked from conversation {cmd.conversation_id}",
                  ("conversation_id",))


def decide_ticket_command(
    cmd: c.TicketCommand, account: Account | None, t: Ticket | None, policy: HelpDeskPolicy, now: datetime
) -> TicketDecision:
    """The commands that name one ticket: T4, T5/S1/S2, T6, T7, under X1 and T8."""
    if account is None:
        return _account_unknown(cmd)
    if (bad := _check_ticket(t, cmd.ticket_id, cmd.account_id)) is not None:
        if isinstance(cmd, c.DeleteTicket) and t is not None and t.deleted and t.account_id == cmd.account_id:
            return NOTHING
        return bad
    assert t is not None
    if (bad := manages_in_help_desk_only(cmd, account, policy)) is not None:
        return bad
    return TICKET_RULES[type(cmd)](cmd, account, t, now)


def follow_conversation_owner(t: Ticket | None, owner_id: str | None, now: datetime,
                              changed_at: datetime | None = None) -> TicketDecision:
    """S3: the conversation's new owner becomes its ticket's owner (nothing when it has no live ticket).

    S7: a conversation owner change older than the ticket's owner (an agent changed the ticket's owner
    since, T6, or the ticket took a newer one) is late news and changes nothing."""
    if t is None or t.deleted or t.merged_into:
        return NOTHING
    if changed_at is not None and t.owner_set_at is not None and changed_at < t.owner_set_at:
        return NOTHING
    return change_owner(t, owner_id, now, set_at=changed_at)


def delete_with_conversation(t: Ticket | None, now: datetime) -> TicketDecision:
    """S5: a trashed conversation's ticket is deleted (once; nothing when already gone)."""
    if t is None or t.merged_into:
        return NOTHING
    return delete(t, now)


def decide_for_conversation(cmd: c.ApplyConversationOwnerToTicket | c.DeleteTicketOfConversation,
                            account: Account | None, t: Ticket | None, now: datetime) -> TicketDecision:
    """The sync worker's commands that name a conversation (S3, S5), under X1."""
    if account is None:
        return _account_unknown(cmd)
    if t is not None and t.account_id != cmd.account_id:
        return TicketDecision.refuse(Reason.NOT_FOUND, f"no conversation {cmd.conversation_id} in account {cmd.account_id}")
    return CONVERSATION_RULES[type(cmd)](cmd, t, now)


def current_view_needed(cmd: object) -> Missing | None:
    """Commands whose rule reads the ticketing worker's view of a conversation (T1's defaults, T2, T10) need
    that view as of the command's arrival: the delivery core waits until the conversations projection
    has applied everything published before it (ADR 5). Without that, a ticket created right after its
    conversation's owner changed would take the old owner."""
    if isinstance(cmd, (c.CreateTicket, c.AssociateConversation)):
        return Missing(CONVERSATIONS_PROJECTION, cmd.conversation_id)
    return None


PROJECTED_EVENTS: tuple[type[e.ConversationEvent], ...] = (
    e.ConversationCreated, e.ConversationOwnerChanged, e.ConversationMovedToHelpDesk, e.ConversationDeleted)
"""The conversation events that change a `ConversationRef` (every other one would only move its version
on). A late event is compared with the version of the last of these (S7), which orders them as before."""


def project_conversation_event(ref: ConversationRef | None, event: Any) -> ConversationRef | None:
    """The ticketing worker's view of a conversation after `event`; None when the event is stale (S7)."""
    if ref is not None and event.version <= ref.version:
        return None
    if isinstance(event, e.ConversationCreated):
        return ConversationRef(
            id=event.conversation_id, account_id=event.account_id, channel=event.channel, subject=event.subject,
            owner_id=event.owner_id, workspace=event.workspace, deleted=False, version=event.version,
            owner_changed_at=event.occurred_at,
        )
    if ref is None:
        return None
    changes: dict[str, Any] = {"version": event.version}
    if isinstance(event, e.ConversationOwnerChanged):
        changes |= {"owner_id": event.owner_id, "owner_changed_at": event.occurred_at}
    elif isinstance(event, e.ConversationMovedToHelpDesk):
        changes["workspace"] = Workspace.HELP_DESK
    elif isinstance(event, e.ConversationDeleted):
        changes["deleted"] = True
    return replace(ref, **changes)


TicketRule = Callable[[Any, Account, Ticket, datetime], TicketDecision]
"""rule(command, account, ticket, now) for the commands that name one live ticket of the account."""

TICKET_RULES: dict[type, TicketRule] = {
    c.UpdateTicketProperties: update_properties,
    c.ChangeTicketStatus: change_status,
    c.ChangeTicketOwner: lambda cmd, _account, t, now: change_owner(t, cmd.owner_id, now),
    c.DeleteTicket: lambda _cmd, _account, t, now: delete(t, now),
}

CONVERSATION_RULES: dict[type, Callable[[Any, Ticket | None, datetime], TicketDecision]] = {
    c.ApplyConversationOwnerToTicket: lambda cmd, t, now: follow_conversation_owner(t, cmd.owner_id, now,
                                                                                   cmd.changed_at),
    c.DeleteTicketOfConversation: lambda _cmd, t, now: delete_with_conversation(t, now),
}
"""The sync worker's commands that name a conversation, by type: its ticket (or none) follows."""
