"""The ticketing worker's aggregates and the T8 policy, as plain immutable values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from contracts.accounts import Account
from contracts.common import Channel, StatusState, Tier, Workspace


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


SEED_HELP_DESK_TIERS = frozenset({Tier.PROFESSIONAL, Tier.ENTERPRISE})
SEED_HELP_DESK_CUTOFF = datetime(2024, 4, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class HelpDeskPolicy:
    """T8: which accounts manage tickets in the help desk instead of the inbox.

    HubSpot changed the tiers and the date twice, so both are settings; the defaults are the seed's.
    """

    tiers: frozenset[Tier] = field(default=SEED_HELP_DESK_TIERS)
    cutoff: datetime = SEED_HELP_DESK_CUTOFF

    def applies_to(self, account: Account) -> bool:
        return account.tier in self.tiers and account.created_at >= self.cutoff
