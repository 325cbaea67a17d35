"""Each worker's own copy of the accounts topic (compacted, keyed by account id): the repository its
handlers read, and the projection that keeps it (one row per owner and account)."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.accounts import Account
from storage.tables import account_views
from storage.unit_of_work import now_utc
from workers.delivery.errors import BadMessage
from workers.delivery.parsing import parse

account_adapter: TypeAdapter[Account] = TypeAdapter(Account)


class Accounts:
    """The accounts one worker (`owner`) has seen, read inside its transaction."""

    def __init__(self, conn: AsyncConnection, owner: str) -> None:
        self.conn = conn
        self.owner = owner

    async def get(self, account_id: str) -> Account | None:
        row = (await self.conn.execute(select(account_views.c.body).where(
            account_views.c.owner == self.owner, account_views.c.account_id == account_id))).first()
        return Account.model_validate(row.body) if row else None


async def apply_account_record(engine: AsyncEngine, owner: str, record: Any) -> None:
    """Upsert the account (or delete it on a tombstone). Idempotent: replays write the same row."""
    if record.value is None:
        if not record.key:
            raise BadMessage("missing_key", "an account tombstone needs the account id as key")
        async with engine.begin() as conn:
            await conn.execute(delete(account_views).where(
                account_views.c.owner == owner, account_views.c.account_id == record.key.decode()))
        return
    account: Account = parse(record, account_adapter, "account")
    body = account.model_dump(mode="json")
    async with engine.begin() as conn:
        exists = (await conn.execute(select(account_views.c.account_id).where(
            account_views.c.owner == owner, account_views.c.account_id == account.account_id))).first()
        if exists:
            await conn.execute(account_views.update().where(
                account_views.c.owner == owner, account_views.c.account_id == account.account_id
            ).values(body=body, updated_at=now_utc()))
        else:
            await conn.execute(account_views.insert().values(
                owner=owner, account_id=account.account_id, body=body, updated_at=now_utc()))
