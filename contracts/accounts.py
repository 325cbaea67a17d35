"""Accounts: published by the account service (or ``ticketflow accounts put``) to the compacted
accounts topic, keyed by account id. Workers keep their own copy; a message for an account they
have never seen is rejected, not guessed."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from contracts.common import Contract, ReplyToClosedPolicy, StatusState, Tier
from contracts.topics import ACCOUNTS


class PipelineStatus(Contract):
    id: str = Field(description="Status id, unique within its pipeline, e.g. `waiting_on_us`.")
    label: str = Field(description="Human label.")
    state: StatusState = Field(description="OPEN or CLOSED; a ticket is closed when its status is CLOSED.")


class Pipeline(Contract):
    id: str = Field(description="Pipeline id, e.g. `support`.")
    label: str = Field(description="Human label.")
    statuses: tuple[PipelineStatus, ...] = Field(description="Statuses in board order; the first is the default.")


DEFAULT_PIPELINE = Pipeline(
    id="support",
    label="Support pipeline",
    statuses=(
        PipelineStatus(id="new", label="New", state=StatusState.OPEN),
        PipelineStatus(id="waiting_on_contact", label="Waiting on contact", state=StatusState.OPEN),
        PipelineStatus(id="waiting_on_us", label="Waiting on us", state=StatusState.OPEN),
        PipelineStatus(id="closed", label="Closed", state=StatusState.CLOSED),
    ),
)


class PropertyType(str, Enum):
    STRING = "string"
    NUMBER = "number"
    BOOL = "bool"
    ENUMERATION = "enumeration"


class CustomProperty(Contract):
    name: str = Field(description="Property name as used in `update_ticket_properties`.", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    type: PropertyType = Field(description="Value type.")
    options: tuple[str, ...] = Field(default=(), description="Allowed values for an `enumeration`.")


DEFAULT_DETAIL_PROPERTIES: tuple[str, ...] = ("subject", "status", "priority", "owner_id", "category", "create_date")


class AccountSettings(Contract):
    reply_to_closed: ReplyToClosedPolicy = Field(
        default=ReplyToClosedPolicy.REOPEN,
        description="C3: a contact's message on a closed conversation reopens it, or starts a new one.",
    )
    ticket_detail_properties: tuple[str, ...] = Field(
        default=DEFAULT_DETAIL_PROPERTIES,
        description="Q2: the ticket properties shown in the conversation's ticket details panel, in order.",
    )
    custom_properties: tuple[CustomProperty, ...] = Field(
        default=(), description="T4: the account's own ticket properties."
    )
    pipelines: tuple[Pipeline, ...] = Field(
        default=(DEFAULT_PIPELINE,), description="Ticket pipelines; the first is the default (`support`)."
    )


class Account(Contract):
    TOPIC: ClassVar[str] = ACCOUNTS
    type: Literal["account"] = "account"
    account_id: str = Field(description="The account (HubSpot: portal) id.", min_length=1, max_length=64)
    tier: Tier = Field(description="Subscription tier; with `created_at` it decides T8's help-desk routing.")
    created_at: datetime = Field(description="When the account was created (timezone-aware).")
    name: str = Field(default="", description="Display name.")
    settings: AccountSettings = Field(default_factory=AccountSettings, description="Per-account settings.")

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("created_at must carry a timezone")
        return value

    def partition_key(self) -> str:
        return self.account_id

    def pipeline(self, pipeline_id: str) -> Pipeline | None:
        return next((p for p in self.settings.pipelines if p.id == pipeline_id), None)
