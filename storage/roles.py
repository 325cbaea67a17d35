"""Least privilege in PostgreSQL: one login role per worker and a read-only role (`ticketflow migrate --roles`).

| role (default names)   | writes (and reads)                                  | reads only                  |
|------------------------|-----------------------------------------------------|-----------------------------|
| `ticketflow_inbound`   | contacts, conversations, messages; its own rows of the shared tables | -        |
| `ticketflow_ticketing` | tickets, ticket_conversations, conversation_refs; its own rows of the shared tables | - |
| `ticketflow_reader`    | -                                                   | the read model's tables     |

The shared tables hold rows of several workers keyed by a column (`processed_messages.consumer` like
'inbound.%', `outbox.producer`, `account_views.owner`): row-level security policies, one per role, let a
worker's role see and write only the rows keyed by its worker's name, so each row set keeps one writer
(ADR 1) in the database itself. The schema's owner is not subject to them (workers connecting as the owner
keep working). The sync worker has no database and no role.

Run by the schema's owner, which needs CREATEROLE. The passwords come from the environment and reach the
server only as SCRAM-SHA-256 verifiers computed here: neither the server nor its statement log sees them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Table, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.database import create_engine
from storage.tables import (
    account_views,
    contacts,
    conversation_refs,
    conversations,
    messages,
    outbox,
    processed_messages,
    ticket_conversations,
    tickets,
)

OWNED: dict[str, tuple[Table, ...]] = {
    "inbound": (contacts, conversations, messages),
    "ticketing": (tickets, ticket_conversations, conversation_refs),
}
"""The tables each worker owns: the only ones its role may write (storage/tables.py, ADR 1)."""

SHARED: dict[Table, str] = {
    processed_messages: "consumer LIKE '{worker}.%'",
    outbox: "producer = '{worker}'",
    account_views: "owner = '{worker}'",
}
"""Tables every worker writes, each worker its own rows: which rows are the worker's (a policy's condition)."""

READ_MODEL: tuple[Table, ...] = (account_views, contacts, conversations, ticket_conversations, tickets)
"""What the read model (readmodel/context.py, Q1/Q2) reads: the reader role's SELECT grants."""

READER = "reader"
LOCK_TIMEOUT_SECONDS = 15
"""How long `apply_roles` waits for a table lock (only a changed row policy takes one) before giving up."""
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


class RoleError(Exception):
    """The roles could not be set up; the message says why in one line (never with a password)."""


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class RoleSettings(BaseSettings):
    """Names and passwords of the roles, from the environment."""

    model_config = SettingsConfigDict(frozen=True, populate_by_name=True, extra="ignore", env_ignore_empty=True)

    prefix: str = Field("ticketflow_", pattern=_ROLE_NAME.pattern, validation_alias=_env("TICKETFLOW_DB_ROLE_PREFIX"),
                        description="Role names are PREFIX + inbound, ticketing, reader.")
    inbound_password: SecretStr = Field(validation_alias=_env("TICKETFLOW_DB_INBOUND_PASSWORD"),
                                        description="Password of the inbound worker's role (never printed).")
    ticketing_password: SecretStr = Field(validation_alias=_env("TICKETFLOW_DB_TICKETING_PASSWORD"),
                                          description="Password of the ticketing worker's role (never printed).")
    reader_password: SecretStr = Field(validation_alias=_env("TICKETFLOW_DB_READER_PASSWORD"),
                                       description="Password of the read-only role (never printed).")

    @classmethod
    def from_env(cls) -> RoleSettings:
        """The role settings the environment gives; RoleError naming each missing or bad variable."""
        try:
            return cls()  # the passwords come from the environment
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                name = str(err["loc"][0]) if err["loc"] else "?"
                field = cls.model_fields.get(name)  # pydantic names the variable, or the field
                alias = field.validation_alias if field is not None else None
                problems.append(f"{alias.choices[0] if isinstance(alias, AliasChoices) else name}: {err['msg']}")
            raise RoleError("; ".join(problems)) from None

    def role(self, who: str) -> str:
        """The role name of worker `who` (or of the reader)."""
        return f"{self.prefix}{who}"

    def password(self, who: str) -> SecretStr:
        """The password of worker `who`'s role (or of the reader's)."""
        passwords = {"inbound": self.inbound_password, "ticketing": self.ticketing_password, READER: self.reader_password}
        return passwords[who]


@dataclass(frozen=True)
class Grants:
    """What one role may do: write (and read) `writes`, read `reads`, and its rows of the shared tables."""

    who: str
    writes: tuple[Table, ...] = ()
    reads: tuple[Table, ...] = ()
    rows: dict[Table, str] = field(default_factory=dict)
    """Shared table -> the policy's condition on its rows."""
    read_only_rows: bool = False


def grants() -> list[Grants]:
    """Every role's grants: the workers' from OWNED and SHARED, the reader's from READ_MODEL."""
    found = [Grants(worker, writes=tables + tuple(SHARED),
                    rows={t: rows.format(worker=worker) for t, rows in SHARED.items()})
             for worker, tables in OWNED.items()]
    found.append(Grants(READER, reads=READ_MODEL, rows={t: "true" for t in READ_MODEL if t in SHARED},
                        read_only_rows=True))
    return found


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = 4096) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier of `password` (what `\\password` in psql sends): the server stores it
    as is and authenticates against it, without ever receiving the password."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored_key).decode()}:{b64(server_key).decode()}"


async def apply_roles(url: str, roles: RoleSettings) -> list[str]:
    """Create or update the roles, their grants and the row policies, in one transaction (idempotent: grants
    are reset to exactly these). Returns one line per role; RoleError when the database refuses."""
    if make_url(url).get_backend_name() != "postgresql":
        raise RoleError("roles need PostgreSQL (DATABASE_URL is not postgresql+asyncpg://...)")
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'")
            return [await _apply(conn, roles, g) for g in grants()]
    except DBAPIError as exc:
        if str(getattr(exc.orig, "sqlstate", "")) == "55P03":
            raise RoleError(f"the shared tables stayed locked for {LOCK_TIMEOUT_SECONDS}s (workers in the middle of "
                            "a transaction): a changed row policy needs a moment without them; try again") from None
        if str(getattr(exc.orig, "sqlstate", "")) == "42501":
            first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else "permission denied"
            raise RoleError(f"the database refused: {first} (the schema's owner needs CREATEROLE: "
                            "ALTER ROLE <owner> CREATEROLE, as a superuser)") from None
        raise
    finally:
        await engine.dispose()


def _q(conn: AsyncConnection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


async def _policy(conn: AsyncConnection, role: str, table: Table, condition: str, read_only: bool) -> None:
    """Row-level security on `table` and `role`'s policy there. The policy's name carries a hash of its
    definition, so an unchanged one is left alone: this DDL takes an exclusive lock on the table, which
    running workers would have to release first."""
    command = "SELECT" if read_only else "ALL"
    check = "" if read_only else f" WITH CHECK ({condition})"
    definition = f"FOR {command} TO {_q(conn, role)} USING ({condition}){check}"
    name = f"{role}_rows_{hashlib.sha256(definition.encode()).hexdigest()[:8]}"
    names = await conn.scalars(text("SELECT policyname FROM pg_policies WHERE schemaname = current_schema() "
                                    "AND tablename = :t"), {"t": table.name})
    existing = {n for n in names if n.startswith(f"{role}_rows")}
    if existing == {name}:
        return
    t = _q(conn, table.name)
    if not await conn.scalar(text("SELECT relrowsecurity FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": t}):
        await conn.execute(text(f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY"))
    for old in sorted(existing):
        await conn.execute(text(f"DROP POLICY {_q(conn, old)} ON {t}"))
    await conn.execute(text(f"CREATE POLICY {_q(conn, name)} ON {t} {definition}"))


async def _apply(conn: AsyncConnection, roles: RoleSettings, g: Grants) -> str:
    role = roles.role(g.who)
    if not _ROLE_NAME.match(role):
        raise RoleError(f"role name {role!r} is not a plain lower-case identifier")
    r = _q(conn, role)
    exists = await conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    if not exists:
        await conn.execute(text(f"CREATE ROLE {r} LOGIN NOINHERIT"))
    verifier = scram_verifier(roles.password(g.who).get_secret_value())
    await conn.exec_driver_sql(f"ALTER ROLE {r} LOGIN PASSWORD '{verifier}'")  # no bind-parameter parsing
    await conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {r}"))
    await conn.execute(text(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {r}"))
    database = str(await conn.scalar(text("SELECT current_database()")))
    await conn.execute(text(f"GRANT CONNECT ON DATABASE {_q(conn, database)} TO {r}"))
    await conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {r}"))
    for table in g.writes:
        await conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {_q(conn, table.name)} TO {r}"))
        for column in table.columns:
            sequence = await conn.scalar(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                         {"t": table.name, "c": column.name})
            if sequence:
                await conn.execute(text(f"GRANT USAGE ON SEQUENCE {sequence} TO {r}"))
    for table in g.reads:
        await conn.execute(text(f"GRANT SELECT ON {_q(conn, table.name)} TO {r}"))
    for table, condition in g.rows.items():
        await _policy(conn, role, table, condition, g.read_only_rows)
    verb = "updated" if exists else "created"  # (the password, and the grants, are set anew either way)
    writes = ", ".join(t.name for t in g.writes) or "nothing"
    reads = ", ".join(t.name for t in g.reads)
    return f"role {role}: {verb}; writes {writes}" + (f"; reads {reads}" if reads else "") + \
        (f"; rows of {', '.join(t.name for t in g.rows)} by policy" if g.rows else "")
