"""Value types shared by every contract, and the two bases every message model derives from."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

NUL = "\x00"


def nul_location(value: Any, where: str) -> str | None:
    """Where the first NUL (U+0000) sits in `value`, written from `where` (e.g. ``properties['note'][0]``,
    or ``a key of properties: 'a\\x00b'``), or None when no string in it holds one. Strings, dict keys
    and values, lists and tuples are searched at any depth; nested models check themselves."""
    if isinstance(value, str):
        return where if NUL in value else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and NUL in key:
                return f"a key of {where}: {key!r}"
            found = nul_location(item, f"{where}[{key!r}]")
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = nul_location(item, f"{where}[{index}]")
            if found:
                return found
    return None


class Contract(BaseModel):
    """Base of every message model: immutable, strict about unknown fields, and no string anywhere in
    it may contain NUL (U+0000), which PostgreSQL cannot store: the message is invalid on every
    backend alike (X4: dead-lettered as `invalid_schema`, the detail naming the field)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any, info: ValidationInfo) -> Any:
        where = nul_location(value, info.field_name or "value")
        if where is not None:
            raise PydanticCustomError(
                "string_nul", "the NUL character (U+0000) is not allowed, found in {where}", {"where": where}
            )
        return value


class TolerantContract(Contract):
    """Base of the messages Ticketflow publishes (events, rejections, outbound messages): read
    tolerantly, unknown fields ignored, so a producer that adds a field does not make its older readers
    dead-letter the event during a rolling upgrade. Inputs from outside stay strict (`Contract`)."""

    model_config = ConfigDict(extra="ignore")

    @classmethod
    def _no_nul(cls, value: Any, info: ValidationInfo) -> Any:
        """Not a validator here: Ticketflow builds these from inputs that were checked (speed: every
        event is built per record)."""
        return value


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


class Publishable(Protocol):
    """What goes on a topic: a contract with its catalogue topic, its key and its `type`."""

    TOPIC: ClassVar[str]

    @property
    def type(self) -> str: ...

    def partition_key(self) -> str: ...

    def model_dump_json(self) -> str: ...
