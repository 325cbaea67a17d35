"""Commands: imperative requests to one owner, which may reject them (X2).

Conversation commands go to the inbound worker on the conversation-commands topic, keyed by
conversation id. Ticket commands go to the ticketing worker on the ticket-commands topic, keyed by
ticket id (or by conversation id when the command names no ticket). Every command carries its own
`command_id`: replaying the same id is a no-op (T2, X5), and a rejection event names it (X2).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, JsonValue, TypeAdapter

from contracts.common import Contract, Workspace
from contracts.topics import CONVERSATION_COMMANDS, TICKET_COMMANDS


class Command(Contract):
    TOPIC: ClassVar[str]
    """The catalogue topic this command travels on (keyed by `partition_key()`)."""
    type: str = Field(description="The command's type; each command fixes it.")
    command_id: str = Field(min_length=1, max_length=128,
                            description="Unique id chosen by the sender; replays with the same id are no-ops.")
    account_id: str = Field(min_length=1, max_length=64, description="The account the sender acts for (X1).")
    actor_id: str | None = Field(default=None, max_length=128, description="The agent (or `system:sync`) issuing the command.")
    from_workspace: Workspace = Field(default=Workspace.INBOX, description="Where the agent issued it from (T8).")

    def partition_key(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def natural_id(self) -> str:
        """The command's identity whatever the headers say: its `command_id`."""
        return self.command_id


class ConversationCommand(Command):
    TOPIC: ClassVar[str] = CONVERSATION_COMMANDS
    conversation_id: str = Field(min_length=1, max_length=64, description="The conversation acted on.")

    def partition_key(self) -> str:
        return self.conversation_id


class ReplyToConversation(ConversationCommand):
    """C4: an agent's reply; stored as an outgoing message and published for the channel to deliver."""

    type: Literal["reply_to_conversation"] = "reply_to_conversation"
    text: str = Field(min_length=1, max_length=100_000, description="Reply body, plain text.")


class AssignConversationOwner(ConversationCommand):
    """C5: assign, change (`owner_id` set) or remove (`owner_id` null) the conversation's owner."""

    type: Literal["assign_conversation_owner"] = "assign_conversation_owner"
    owner_id: str | None = Field(description="The new owner, or null to unassign.")


class CloseConversation(ConversationCommand):
    """C6: closes only this conversation; never its ticket (S6)."""

    type: Literal["close_conversation"] = "close_conversation"


class ReopenConversation(ConversationCommand):
    """C7: reopen a closed conversation."""

    type: Literal["reopen_conversation"] = "reopen_conversation"


class TrashConversation(ConversationCommand):
    """Move the conversation to the trash (soft delete); S5 then deletes its ticket."""

    type: Literal["trash_conversation"] = "trash_conversation"


class MoveConversationToHelpDesk(ConversationCommand):
    """T8: sent by the sync worker when the conversation's ticket was created in the help desk."""

    type: Literal["move_conversation_to_help_desk"] = "move_conversation_to_help_desk"


ConversationCommandUnion = Annotated[
    ReplyToConversation
    | AssignConversationOwner
    | CloseConversation
    | ReopenConversation
    | TrashConversation
    | MoveConversationToHelpDesk,
    Field(discriminator="type"),
]


class TicketCommand(Command):
    TOPIC: ClassVar[str] = TICKET_COMMANDS
    ticket_id: str = Field(min_length=1, max_length=64, description="The ticket acted on.")

    def partition_key(self) -> str:
        return self.ticket_id


class CreateTicket(Command):
    """T1/T2/T8: create the ticket for a conversation. Omitted fields take T1's defaults."""

    TOPIC: ClassVar[str] = TICKET_COMMANDS

    type: Literal["create_ticket"] = "create_ticket"
    conversation_id: str = Field(min_length=1, max_length=64, description="The conversation the ticket is for.")
    subject: str | None = Field(default=None, max_length=500, description="Default: the conversation's subject.")
    description: str | None = Field(default=None, max_length=100_000, description="Free text.")
    pipeline: str | None = Field(default=None, description="Default: `support`.")
    status: str | None = Field(default=None, description="Default: the pipeline's first status (`new`).")
    priority: str | None = Field(default=None, description="`low`, `medium`, `high` or `urgent`.")
    owner_id: str | None = Field(default=None, description="Default (null or omitted): the conversation's owner.")
    without_owner: bool = Field(default=False, description="true: create the ticket with no owner, whatever the conversation's.")
    category: str | None = Field(default=None, max_length=200, description="Ticket category.")
    properties: dict[str, JsonValue] = Field(default_factory=dict, description="Values of the account's custom properties.")

    def partition_key(self) -> str:
        return self.conversation_id


class UpdateTicketProperties(TicketCommand):
    """T4: edit property values; all are applied or none (unknown or invalid ones are named)."""

    type: Literal["update_ticket_properties"] = "update_ticket_properties"
    properties: dict[str, JsonValue] = Field(min_length=1, description="Property name -> new value (null clears).")


class ChangeTicketStatus(TicketCommand):
    """T5/S1/S2: move the ticket to a status (closing or reopening it by the status's state)."""

    type: Literal["change_ticket_status"] = "change_ticket_status"
    status: str = Field(min_length=1, description="Target status id.")
    pipeline: str | None = Field(default=None, description="Target pipeline; default: the ticket's current one.")


class ChangeTicketOwner(TicketCommand):
    """T6/S4: change the ticket's owner; conversation owners are untouched."""

    type: Literal["change_ticket_owner"] = "change_ticket_owner"
    owner_id: str | None = Field(description="The new owner, or null for none.")


class DeleteTicket(TicketCommand):
    """T7: delete the ticket; its conversations are then trashed."""

    type: Literal["delete_ticket"] = "delete_ticket"


class MergeTickets(TicketCommand):
    """T9: merge `merged_ticket_id` (B) into `ticket_id` (A)."""

    type: Literal["merge_tickets"] = "merge_tickets"
    merged_ticket_id: str = Field(min_length=1, max_length=64, description="Ticket B, which ends merged into A.")


class AssociateConversation(TicketCommand):
    """T10: associate a conversation that has no ticket with this ticket."""

    type: Literal["associate_conversation"] = "associate_conversation"
    conversation_id: str = Field(min_length=1, max_length=64, description="The conversation to associate.")


class RemoveConversationAssociation(TicketCommand):
    """T3: always rejected (`association_immutable`): a ticket cannot be unlinked from its conversation."""

    type: Literal["remove_conversation_association"] = "remove_conversation_association"
    conversation_id: str = Field(min_length=1, max_length=64, description="The conversation to unlink.")


class ApplyConversationOwnerToTicket(Command):
    """S3, sent by the sync worker: the conversation's owner changed; its ticket follows."""

    TOPIC: ClassVar[str] = TICKET_COMMANDS

    type: Literal["apply_conversation_owner_to_ticket"] = "apply_conversation_owner_to_ticket"
    conversation_id: str = Field(min_length=1, max_length=64)
    owner_id: str | None = Field(description="The conversation's new owner.")
    changed_at: datetime | None = Field(
        default=None, description="When the conversation's owner changed (the event's time). A ticket whose owner "
                                  "was set later (an agent changed it since) keeps its owner.")

    def partition_key(self) -> str:
        return self.conversation_id


class DeleteTicketOfConversation(Command):
    """S5, sent by the sync worker: the conversation was trashed; its ticket is deleted."""

    TOPIC: ClassVar[str] = TICKET_COMMANDS

    type: Literal["delete_ticket_of_conversation"] = "delete_ticket_of_conversation"
    conversation_id: str = Field(min_length=1, max_length=64)

    def partition_key(self) -> str:
        return self.conversation_id


TicketCommandUnion = Annotated[
    CreateTicket
    | UpdateTicketProperties
    | ChangeTicketStatus
    | ChangeTicketOwner
    | DeleteTicket
    | MergeTickets
    | AssociateConversation
    | RemoveConversationAssociation
    | ApplyConversationOwnerToTicket
    | DeleteTicketOfConversation,
    Field(discriminator="type"),
]

conversation_command_adapter: TypeAdapter[Any] = TypeAdapter(ConversationCommandUnion)
ticket_command_adapter: TypeAdapter[Any] = TypeAdapter(TicketCommandUnion)

SYNC_ACTOR = "system:sync"
"""The actor of every command the sync worker derives from an event."""

SYNC_ONLY: tuple[type[Command], ...] = (ApplyConversationOwnerToTicket, DeleteTicketOfConversation, MoveConversationToHelpDesk)
"""Commands only the sync worker sends (on the internal command topics); refused on the public ones."""
