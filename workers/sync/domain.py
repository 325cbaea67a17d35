"""The sync worker's slice, pure: S1-S6 and T7/T8 reactions, from an event to the commands it causes.

Each command id is derived from the event id and the target (uuid5), so a redelivered or duplicated
event yields the same commands, which their owners then drop as replays (S7). Reactions that the
rules forbid (S4: ticket owner -> conversation owner; S6: conversation closed -> ticket) are absent
on purpose: those events map to no command.
"""

from __future__ import annotations

import uuid
from typing import Any

from contracts import commands as c
from contracts import events as e
from contracts.commands import SYNC_ACTOR
from contracts.common import Workspace

NAMESPACE = uuid.UUID("6c1d2f5e-3b7a-4c0e-9a51-7d2b9f0c4e11")


def derived_id(event_id: str, kind: str, target: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{event_id}/{kind}/{target}"))


def _common(event_id: str, kind: str, target: str, account_id: str) -> dict[str, Any]:
    return {"command_id": derived_id(event_id, kind, target), "account_id": account_id, "actor_id": SYNC_ACTOR}


def when_ticket_closed_close_its_conversations(event_id: str, ev: e.TicketClosed) -> list[c.Command]:
    """S1."""
    return [c.CloseConversation(conversation_id=cid, **_common(event_id, "close", cid, ev.account_id))
            for cid in ev.conversation_ids]


def when_ticket_reopened_reopen_its_only_conversation(event_id: str, ev: e.TicketReopened) -> list[c.Command]:
    """S2: exactly one conversation is reopened; with several, none."""
    if len(ev.conversation_ids) != 1:
        return []
    cid = ev.conversation_ids[0]
    return [c.ReopenConversation(conversation_id=cid, **_common(event_id, "reopen", cid, ev.account_id))]


def when_ticket_deleted_trash_its_conversations(event_id: str, ev: e.TicketDeleted) -> list[c.Command]:
    """T7/S5."""
    return [c.TrashConversation(conversation_id=cid, **_common(event_id, "trash", cid, ev.account_id))
            for cid in ev.conversation_ids]


def when_ticket_created_in_help_desk_move_its_conversations(event_id: str, ev: e.TicketCreated) -> list[c.Command]:
    """T8."""
    if ev.workspace is not Workspace.HELP_DESK:
        return []
    return [c.MoveConversationToHelpDesk(conversation_id=cid, **_common(event_id, "help_desk", cid, ev.account_id))
            for cid in ev.conversation_ids]


def when_conversation_owner_changed_ticket_follows(event_id: str, ev: e.ConversationOwnerChanged) -> list[c.Command]:
    """S3."""
    return [c.ApplyConversationOwnerToTicket(
        conversation_id=ev.conversation_id, owner_id=ev.owner_id, changed_at=ev.occurred_at,
        **_common(event_id, "owner", ev.conversation_id, ev.account_id))]


def when_conversation_trashed_delete_its_ticket(event_id: str, ev: e.ConversationDeleted) -> list[c.Command]:
    """S5."""
    return [c.DeleteTicketOfConversation(
        conversation_id=ev.conversation_id, **_common(event_id, "delete_ticket", ev.conversation_id, ev.account_id))]


REACTIONS: dict[type, Any] = {
    e.TicketClosed: when_ticket_closed_close_its_conversations,
    e.TicketReopened: when_ticket_reopened_reopen_its_only_conversation,
    e.TicketDeleted: when_ticket_deleted_trash_its_conversations,
    e.TicketCreated: when_ticket_created_in_help_desk_move_its_conversations,
    e.ConversationOwnerChanged: when_conversation_owner_changed_ticket_follows,
    e.ConversationDeleted: when_conversation_trashed_delete_its_ticket,
}


def react(event_id: str, event: Any) -> list[c.Command]:
    """The commands `event` causes; [] for every event the sync slice leaves alone (S4, S6, ...)."""
    reaction = REACTIONS.get(type(event))
    return reaction(event_id, event) if reaction else []
