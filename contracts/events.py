"""Events: past-tense facts, broadcast, never rejected (X3).

Conversation events are keyed by conversation id, ticket events by ticket id, so one aggregate's
events arrive in order. Each carries the aggregate's `version` (1, 2, ...): a consumer that sees a
version it already has can drop the event (S7).

Events are read tolerantly (`TolerantContract`): a field a newer producer added is ignored. A consumer
reads a topic with `read_conversation_event` / `read_ticket_event`, which also answer None for an event
type this version does not know yet (a newer producer's), so that it is skipped, not dead-lettered.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import Field, JsonValue, TypeAdapter

from contracts.common import (
    Channel,
    ConversationStatus,
    Direction,
    StatusState,
    TolerantContract,
    Workspace,
)
from contracts.rejections import Reason
from contracts.topics import (
    CONVERSATION_EVENTS,
    OUTBOUND_MESSAGES,
    REJECTIONS,
    TICKET_EVENTS,
)


class ConversationEvent(TolerantContract):
    TOPIC: ClassVar[str] = CONVERSATION_EVENTS
    conversation_id: str = Field(description="The conversation (the Kafka key).")
    account_id: str = Field(description="Its account.")
    version: int = Field(ge=1, description="The conversation's version after this event.")
    occurred_at: datetime = Field(description="When the change was applied.")

    def partition_key(self) -> str:
        return self.conversation_id

    def natural_id(self) -> str:
        """The event's identity whatever the headers say: its type, aggregate and version."""
        return f"{getattr(self, 'type', 'conversation')}:{self.conversation_id}:{self.version}"


class ConversationCreated(ConversationEvent):
    type: Literal["conversation.created"] = "conversation.created"
    contact_id: str = Field(description="The contact who wrote in.")
    channel: Channel
    channel_thread_key: str
    subject: str | None = None
    owner_id: str | None = None
    status: ConversationStatus = ConversationStatus.OPEN
    workspace: Workspace = Workspace.INBOX


class ConversationMessageReceived(ConversationEvent):
    type: Literal["conversation.message_received"] = "conversation.message_received"
    message_id: str
    channel_message_id: str
    contact_id: str
    text: str
    sent_at: datetime


class ConversationMessageSent(ConversationEvent):
    """C4: an agent's reply was stored; the outbound topic carries it to the channel."""

    type: Literal["conversation.message_sent"] = "conversation.message_sent"
    message_id: str
    author_id: str | None
    text: str


class ConversationOwnerChanged(ConversationEvent):
    type: Literal["conversation.owner_changed"] = "conversation.owner_changed"
    owner_id: str | None
    previous_owner_id: str | None


class ConversationClosed(ConversationEvent):
    type: Literal["conversation.closed"] = "conversation.closed"


class ConversationReopened(ConversationEvent):
    type: Literal["conversation.reopened"] = "conversation.reopened"
    cause: Literal["agent", "contact_message", "ticket_reopened"] = Field(description="Why it was reopened.")


class ConversationMovedToHelpDesk(ConversationEvent):
    type: Literal["conversation.moved_to_help_desk"] = "conversation.moved_to_help_desk"


class ConversationDeleted(ConversationEvent):
    type: Literal["conversation.deleted"] = "conversation.deleted"


ConversationEventUnion = Annotated[
    ConversationCreated
    | ConversationMessageReceived
    | ConversationMessageSent
    | ConversationOwnerChanged
    | ConversationClosed
    | ConversationReopened
    | ConversationMovedToHelpDesk
    | ConversationDeleted,
    Field(discriminator="type"),
]


class OutboundMessage(TolerantContract):
    """C4: a reply for the channel to deliver (outbound topic, keyed by conversation id)."""

    TOPIC: ClassVar[str] = OUTBOUND_MESSAGES
    type: Literal["outbound.message"] = "outbound.message"
    message_id: str
    conversation_id: str
    account_id: str
    channel: Channel
    channel_thread_key: str
    to_email: str | None
    to_phone: str | None
    subject: str | None
    text: str
    direction: Direction = Direction.OUTGOING

    def partition_key(self) -> str:
        return self.conversation_id


class TicketEvent(TolerantContract):
    TOPIC: ClassVar[str] = TICKET_EVENTS
    ticket_id: str = Field(description="The ticket (the Kafka key).")
    account_id: str
    version: int = Field(ge=1, description="The ticket's version after this event.")
    occurred_at: datetime
    conversation_ids: tuple[str, ...] = Field(description="The ticket's conversations after this event.")

    def partition_key(self) -> str:
        return self.ticket_id

    def natural_id(self) -> str:
        """The event's identity whatever the headers say: its type, aggregate and version."""
        return f"{getattr(self, 'type', 'ticket')}:{self.ticket_id}:{self.version}"


class TicketCreated(TicketEvent):
    type: Literal["ticket.created"] = "ticket.created"
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
    properties: dict[str, JsonValue]
    create_date: datetime
    close_date: datetime | None


class PropertyChange(TolerantContract):
    old: JsonValue
    new: JsonValue


class TicketPropertiesChanged(TicketEvent):
    type: Literal["ticket.properties_changed"] = "ticket.properties_changed"
    changes: dict[str, PropertyChange]


class TicketStatusChanged(TicketEvent):
    type: Literal["ticket.status_changed"] = "ticket.status_changed"
    pipeline: str
    status: str
    state: StatusState
    previous_pipeline: str
    previous_status: str
    close_date: datetime | None


class TicketClosed(TicketEvent):
    """S1: the sync worker closes every conversation in `conversation_ids`."""

    type: Literal["ticket.closed"] = "ticket.closed"
    close_date: datetime


class TicketReopened(TicketEvent):
    """S2: with exactly one conversation, the sync worker reopens it; with several, none."""

    type: Literal["ticket.reopened"] = "ticket.reopened"


class TicketOwnerChanged(TicketEvent):
    type: Literal["ticket.owner_changed"] = "ticket.owner_changed"
    owner_id: str | None
    previous_owner_id: str | None


class TicketDeleted(TicketEvent):
    """T7/S5: the sync worker trashes every conversation in `conversation_ids`."""

    type: Literal["ticket.deleted"] = "ticket.deleted"


class TicketMerged(TicketEvent):
    """T9: this ticket (B) was merged into `into_ticket_id` (A)."""

    type: Literal["ticket.merged"] = "ticket.merged"
    into_ticket_id: str
    moved_conversation_ids: tuple[str, ...]


class TicketConversationAssociated(TicketEvent):
    type: Literal["ticket.conversation_associated"] = "ticket.conversation_associated"
    conversation_id: str


TicketEventUnion = Annotated[
    TicketCreated
    | TicketPropertiesChanged
    | TicketStatusChanged
    | TicketClosed
    | TicketReopened
    | TicketOwnerChanged
    | TicketDeleted
    | TicketMerged
    | TicketConversationAssociated,
    Field(discriminator="type"),
]


class CommandRejected(TolerantContract):
    """X2: a command was rejected. Keyed by `command_id` on the rejections topic."""

    TOPIC: ClassVar[str] = REJECTIONS
    type: Literal["command.rejected"] = "command.rejected"
    command_id: str
    command_type: str
    account_id: str
    reason: Reason
    detail: str = Field(description="Human explanation, naming what was wrong.")
    subject_id: str | None = Field(default=None, description="The conversation or ticket the command named.")
    names: tuple[str, ...] = Field(default=(), description="T4: the offending property names.")
    occurred_at: datetime

    def partition_key(self) -> str:
        return self.command_id


conversation_event_adapter: TypeAdapter[Any] = TypeAdapter(ConversationEventUnion)
ticket_event_adapter: TypeAdapter[Any] = TypeAdapter(TicketEventUnion)


def members_of(union: Any) -> tuple[type[Any], ...]:
    """The classes of a discriminated union (`Annotated[Union[...], Field(discriminator=...)]`)."""
    return tuple(get_args(get_args(union)[0]))


def _types_of(union: Any) -> frozenset[str]:
    """The `type` values of a discriminated union's members."""
    return frozenset(member.model_fields["type"].default for member in members_of(union))


CONVERSATION_EVENT_TYPES = _types_of(ConversationEventUnion)
TICKET_EVENT_TYPES = _types_of(TicketEventUnion)
CONVERSATION_EVENT_CLASSES: tuple[type[ConversationEvent], ...] = members_of(ConversationEventUnion)
TICKET_EVENT_CLASSES: tuple[type[TicketEvent], ...] = members_of(TicketEventUnion)


def _read(adapter: TypeAdapter[Any], known: frozenset[str], namespace: str, data: Mapping[str, Any]) -> Any | None:
    kind = data.get("type")
    if isinstance(kind, str) and kind.startswith(namespace) and kind not in known:
        return None
    return adapter.validate_python(data)


def read_conversation_event(data: Mapping[str, Any]) -> ConversationEvent | None:
    """The conversation event in `data` (a decoded JSON object), or None when its `type` is a
    `conversation.*` type this version does not know (a newer producer added it: not for this reader).
    Unknown fields are ignored. Raises pydantic's ValidationError for a known type with an invalid body,
    a missing `type`, or a `type` outside `conversation.*` (not an event of this topic)."""
    return _read(conversation_event_adapter, CONVERSATION_EVENT_TYPES, "conversation.", data)


def read_ticket_event(data: Mapping[str, Any]) -> TicketEvent | None:
    """The ticket event in `data`, or None when its `type` is a `ticket.*` type this version does not
    know; otherwise as `read_conversation_event` (ValidationError for an invalid body)."""
    return _read(ticket_event_adapter, TICKET_EVENT_TYPES, "ticket.", data)
