"""What a pure rule returns: events to publish, or a rejection. Each worker's decision type adds the
state it changed (`workers.inbound.domain.ConversationDecision`, `workers.ticketing.domain.TicketDecision`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from contracts.commands import Command
from contracts.common import Publishable
from contracts.events import CommandRejected
from contracts.rejections import Reason

ACCOUNTS_PROJECTION = "accounts"
"""Every worker with a database keeps its copy of the accounts topic under this projection name."""


@dataclass(frozen=True)
class Missing:
    """An id absent from one of the worker's projections (`accounts`, `conversations`): perhaps only
    not applied yet (ADR 5). `key` is the id, the projection topic's key."""

    projection: str
    key: str


@dataclass(frozen=True)
class Rejection:
    """Why a message is refused. With `unresolved`, the refusal stands only once that projection has
    caught up; before, the message waits."""

    reason: Reason
    detail: str
    names: tuple[str, ...] = ()
    unresolved: Missing | None = None


D = TypeVar("D", bound="Decision")


@dataclass(frozen=True)
class Decision:
    """`events` to publish, or `rejection`; nothing at all is a no-op (an idempotent repeat)."""

    events: tuple[Publishable, ...] = ()
    rejection: Rejection | None = None

    @property
    def rejected(self) -> bool:
        return self.rejection is not None

    @classmethod
    def refuse(cls: type[D], reason: Reason, detail: str, names: tuple[str, ...] = (),
               unresolved: Missing | None = None) -> D:
        return cls(rejection=Rejection(reason, detail, names, unresolved))


def rejection_event(cmd: Command, rejection: Rejection, now: datetime) -> CommandRejected:
    """X2: the event that tells the sender why; keyed by the command id, naming what it acted on."""
    return CommandRejected(
        command_id=cmd.command_id, command_type=cmd.type, account_id=cmd.account_id,
        reason=rejection.reason, detail=rejection.detail, names=rejection.names,
        subject_id=cmd.partition_key(), occurred_at=now,
    )
