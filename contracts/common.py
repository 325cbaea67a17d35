"""Value types shared by every contract."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict


class Contract(BaseModel):
    """Base of every message model: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


class Channel(str, Enum):
    """The channel a conversation lives in."""

    EMAIL = "email"
    CHAT = "chat"
    FORM = "form"
    WHATSAPP = "whatsapp"
    MESSENGER = "messenger"
    CALLING = "calling"


class Tier(str, Enum):
    """An account's subscription tier."""

    FREE = "free"
    STARTER = "starter"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"


class Workspace(str, Enum):
    """Where agents work a conversation or ticket."""

    INBOX = "inbox"
    HELP_DESK = "help_desk"


class ConversationStatus(str, Enum):
    OPEN = "open"
    CLOSED = "closed"


class Priority(str, Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


class StatusState(str, Enum):
    """Every pipeline status is either OPEN or CLOSED; a ticket is closed when its status is CLOSED."""

    OPEN = "OPEN"
    CLOSED = "CLOSED"


class ReplyToClosedPolicy(str, Enum):
    """C3: what a contact's new message on a closed conversation does."""

    REOPEN = "reopen"
    NEW_CONVERSATION = "new_conversation"


class Direction(str, Enum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"
