"""A database of its own for the secured run, owned by a role of its own that may create roles (as
`ticketflow migrate --roles` needs), all made by the PostgreSQL superuser and dropped afterwards.

The superuser is `postgres` on the test server's host and port (the project's launcher trusts it on
127.0.0.1), or `TICKETFLOW_TEST_PG_SUPERUSER_URL`.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg
from sqlalchemy.engine import make_url

from storage.roles import READER, scram_verifier
from tests.security.exposure import Exposure

WHO = ("inbound", "ticketing", READER)


def superuser_dsn(server_url: str) -> str:
    """asyncpg's DSN of the superuser on the server of `server_url`."""
    if os.environ.get("TICKETFLOW_TEST_PG_SUPERUSER_URL"):
        return os.environ["TICKETFLOW_TEST_PG_SUPERUSER_URL"]
    url = make_url(server_url).set(drivername="postgresql", username="postgres", password=None, database="postgres")
    return url.render_as_string(hide_password=False)


@dataclass
class RoleDatabase:
    """The owner's URL, the role name prefix and each role's password (secrets of the run)."""

    owner_url: str
    prefix: str
    passwords: dict[str, str] = field(default_factory=dict)

    def url(self, who: str) -> str:
        """The URL role `who` (inbound, ticketing, reader) connects with."""
        return make_url(self.owner_url).set(username=f"{self.prefix}{who}", password=self.passwords[who]) \
            .render_as_string(hide_password=False)

    def role_env(self) -> dict[str, str]:
        """What `ticketflow migrate --roles` reads."""
        return {"DATABASE_URL": self.owner_url, "TICKETFLOW_DB_ROLE_PREFIX": self.prefix,
                **{f"TICKETFLOW_DB_{who.upper()}_PASSWORD": pw for who, pw in self.passwords.items()}}


@asynccontextmanager
async def role_database(server_url: str, exposure: Exposure) -> AsyncIterator[RoleDatabase]:
    """A fresh database owned by a fresh CREATEROLE owner; the roles `migrate --roles` makes in it are
    dropped with it."""
    tag = uuid.uuid4().hex[:8]
    prefix, name = f"tfsec_{tag}_", f"tfsec_{tag}"
    owner = f"{prefix}owner"
    owner_password = exposure.secret("database owner's password", secrets.token_hex(16))
    passwords = {who: exposure.secret(f"database password of {who}", secrets.token_hex(16)) for who in WHO}
    await as_superuser(server_url, f"CREATE ROLE {owner} LOGIN CREATEROLE PASSWORD '{scram_verifier(owner_password)}'",
                       f'CREATE DATABASE "{name}" OWNER {owner}')
    owner_url = make_url(server_url).set(username=owner, password=owner_password, database=name) \
        .render_as_string(hide_password=False)
    try:
        yield RoleDatabase(owner_url, prefix, passwords)
    finally:
        await as_superuser(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
                           *[f"DROP ROLE IF EXISTS {prefix}{who}" for who in (*WHO, "owner")])


async def as_superuser(server_url: str, *statements: str) -> None:
    """Run `statements` as the superuser of the server of `server_url`, in order."""
    admin = await asyncpg.connect(superuser_dsn(server_url))
    try:
        for statement in statements:
            await admin.execute(statement)
    finally:
        await admin.close()
