"""The steps every command handler shares, around its own rule: find the account (waiting, for one
not heard of yet, until the accounts projection has caught up), then record the outcome: the events, or the rejection (X2), and
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

ACCOUNTS_PROJECTION = "accounts"
"""Every worker with a database keeps its copy of the accounts topic under this projection name."""


async def account_for(uow: UnitOfWork, owner: str, cmd: Any, caught_up: frozenset[str]) -> Account | Decision[Any]:
    """The command's account, or (once the accounts projection has caught up) the `unknown_account` rejection."""
    account = await load_account(uow.conn, owner, cmd.account_id)
    if account is not None:
        return account
    if ACCOUNTS_PROJECTION not in caught_up:
        raise NotYetKnown(ACCOUNTS_PROJECTION, cmd.account_id)
    return reject(Reason.UNKNOWN_ACCOUNT, f"account {cmd.account_id!r} is unknown")


async def record_outcome(uow: UnitOfWork, topic_prefix: str, source: str, cmd: Any, decision: Decision[Any],
                         now: datetime, subject_id: str | None, cause: Envelope | None) -> None:
    events = (rejection_event(cmd, decision, now, subject_id),) if decision.rejected else decision.events
    await emit(uow, topic_prefix, source, events, cause)
    await uow.mark_processed(cmd.account_id, cmd.command_id)
