"""X2: why a command was rejected. Machine-readable codes; the README explains each."""

from __future__ import annotations

from enum import Enum


class Reason(str, Enum):
    UNKNOWN_ACCOUNT = "unknown_account"
    """No account with this id has been published on the accounts topic."""
    NOT_FOUND = "not_found"
    """No such conversation or ticket in the command's account (also for another account's ids: X1)."""
    CONVERSATION_DELETED = "conversation_deleted"
    """The conversation is in the trash."""
    TICKET_DELETED = "ticket_deleted"
    """The ticket was deleted."""
    TICKET_MERGED = "ticket_merged"
    """The ticket was merged into another; act on that one."""
    CONVERSATION_HAS_TICKET = "conversation_already_has_ticket"
    """T2/T10: one ticket per conversation."""
    ASSOCIATION_IMMUTABLE = "association_immutable"
    """T3: a ticket cannot be unlinked from its conversation."""
    UNKNOWN_PROPERTY = "unknown_property"
    """T4: the named properties do not exist (or cannot be edited this way)."""
    INVALID_PROPERTY_VALUE = "invalid_property_value"
    """T4: the named properties got values of the wrong type or outside their options."""
    UNKNOWN_PIPELINE = "unknown_pipeline"
    UNKNOWN_STATUS = "unknown_status"
    HELP_DESK_REQUIRED = "help_desk_required"
    """T8: this account manages tickets in the help desk, not in the inbox."""
    INVALID_MERGE = "invalid_merge"
    """T9: a ticket cannot be merged into itself."""
