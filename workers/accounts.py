"""Each worker's own copy of the accounts topic (compacted, keyed by account id): the repository its
handlers read, and the projection that keeps it (one row per owner and account)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Text, bindparam, cast, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.accounts import Account
from storage.queries import any_of, built, keys
from storage.tables import account_views
from storage.unit_of_work import now_utc
from workers.delivery.errors import BadMessage
from workers.delivery.parsing import parse

account_adapter: TypeAdapter[Account] = TypeAdapter(Account)


class Accounts:
    """The accounts one worker (`owner`) has seen, read inside its transaction (once per unit)."""

    def __init__(self, conn: AsyncConnection, owner: str) -> None:
        self.conn = conn
        self.owner = owner
        self._known: dict[str, Account | None] = {}

    async def load(self, account_ids: Iterable[str]) -> None:
        """Load these accounts in one query."""
        wanted = sorted({i for i in account_ids if i not in self._known})
        if not wanted:
            return
        pg = self.conn.dialect.name == "postgresql"
        query = built(("accounts by id", pg), lambda: select(account_views.c.account_id, cast(account_views.c.body, Text))
                      .where(account_views.c.owner == bindparam("owner"), any_of(account_views.c.account_id, "ids", pg)))
        rows = (await self.conn.execute(query, {"owner": self.owner, **keys("ids", wanted)})).all()
        found = {account_id: _account(body) for account_id, body in rows}
        self._known.update({a: found.get(a) for a in wanted})

    async def get(self, account_id: str) -> Account | None:
        await self.load([account_id])
        return self._known[account_id]


_PARSED: dict[str, Account] = {}
REMEMBERED_ACCOUNTS = 10_000


def _account(body: str) -> Account:
    """The account a stored body holds, validated once per distinct body in the process (accounts are
    read by every batch and rarely change; `Account` is frozen, so one instance may be shared)."""
    account = _PARSED.get(body)
    if account is None:
        if len(_PARSED) >= REMEMBERED_ACCOUNTS:
            _PARSED.clear()
        account = _PARSED[body] = Account.model_validate(json.loads(body))
    return account


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
