"""The steps every command handler shares, around its own rule: find the account (waiting a grace
period for one not heard of yet), then record the outcome: the events, or the rejection (X2), and
the command id as processed (X5), in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from contracts.accounts import Account
from contracts.envelope import Envelope
from contracts.rejections import Reason
from storage.unit_of_work import UnitOfWork
from workers.accounts import load_account
from workers.decision import Decision, reject, rejection_event
from workers.delivery.emit import emit
from workers.delivery.errors import NotYetKnown


async def account_for(uow: UnitOfWork, owner: str, cmd: Any, patience_expired: bool) -> Account | Decision[Any]:
    """The command's account, or (once patience expired) the `unknown_account` rejection."""
    account = await load_account(uow.conn, owner, cmd.account_id)
    if account is not None:
        return account
    if not patience_expired:
        raise NotYetKnown(cmd.account_id)
    return reject(Reason.UNKNOWN_ACCOUNT, f"account {cmd.account_id!r} is unknown")


async def record_outcome(uow: UnitOfWork, topic_prefix: str, source: str, cmd: Any, decision: Decision[Any],
                         now: datetime, subject_id: str | None, cause: Envelope | None) -> None:
    events = (rejection_event(cmd, decision, now, subject_id),) if decision.rejected else decision.events
    await emit(uow, topic_prefix, source, events, cause)
    await uow.mark_processed(cmd.command_id)
