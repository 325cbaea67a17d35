"""What a pure rule returns: the new state, the messages to publish, or a rejection."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from contracts.events import CommandRejected
from contracts.rejections import Reason

S = TypeVar("S")


@dataclass(frozen=True)
class Rejection:
    reason: Reason
    detail: str
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision(Generic[S]):
    """`state` is the aggregate after the rule (None: unchanged); `events` are contracts to publish."""

    state: S | None = None
    events: tuple[Any, ...] = ()
    rejection: Rejection | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rejected(self) -> bool:
        return self.rejection is not None

    @property
    def noop(self) -> bool:
        return self.state is None and not self.events and self.rejection is None


NOTHING: Decision[Any] = Decision()


def reject(reason: Reason, detail: str, names: tuple[str, ...] = ()) -> Decision[Any]:
    return Decision(rejection=Rejection(reason, detail, names))


def rejection_event(cmd: Any, decision: Decision[Any], now: datetime, subject_id: str | None) -> CommandRejected:
    assert decision.rejection is not None
    return CommandRejected(
        command_id=cmd.command_id, command_type=cmd.type, account_id=cmd.account_id,
        reason=decision.rejection.reason, detail=decision.rejection.detail, names=decision.rejection.names,
        subject_id=subject_id, occurred_at=now,
    )
