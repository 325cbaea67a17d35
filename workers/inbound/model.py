"""The inbound worker's aggregates, as plain immutable values (no I/O, no ORM)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from contracts.common import Channel, ConversationStatus, Direction, Workspace


@dataclass(frozen=True)
class Contact:
    id: str
    account_id: str
    email: str | None
    phone: str | None
    name: str | None


@dataclass(frozen=True)
class Conversation:
    id: str
    account_id: str
    contact_id: str
    channel: Channel
    thread_key: str
    subject: str | None
    status: ConversationStatus
    owner_id: str | None
    workspace: Workspace
    deleted: bool
    version: int
    created_at: datetime


@dataclass(frozen=True)
class Message:
    id: str
    conversation_id: str
    account_id: str
    direction: Direction
    channel_message_id: str | None
    author_id: str | None
    text: str
    sent_at: datetime


@dataclass(frozen=True)
class NewIds:
    """Ids a rule may hand out; the adapter makes them so the rule stays pure."""

    conversation_id: str
    contact_id: str
    message_id: str
