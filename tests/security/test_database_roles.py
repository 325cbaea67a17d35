"""Least privilege in PostgreSQL, on the roles `ticketflow migrate --roles` made for this run (the same ones
the workers of the secured end-to-end tests connect with): a worker's role cannot read or write another
worker's tables, nor another worker's rows of the shared tables (row-level security); the reader writes
nothing; no role changes the schema. The rows these tests add are harmless to running workers (sent outbox
rows, made-up consumers and accounts)."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import Table, text
from sqlalchemy.exc import DBAPIError

import readmodel.context
import storage.tables
from readmodel.context import conversation_context
from storage.database import create_engine
from storage.roles import OWNED, READ_MODEL, READER, SHARED, scram_verifier
from storage.tables import metadata
from tests.security.database import superuser_dsn
from tests.security.exposure import clean_env, run_cli
from tests.support.services import fresh_database

pytestmark = pytest.mark.db

NOW = datetime.now(UTC)
TAG = f"security-test-{uuid.uuid4().hex[:8]}"
OTHER = {"inbound": "ticketing", "ticketing": "inbound"}
PROCESSED = "INSERT INTO processed_messages (consumer, account_id, message_id, processed_at) VALUES "


async def execute(url: str, sql: str, **params: object) -> int:
    """Run `sql` in its own transaction as the URL's role; the number of rows it touched."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            return (await conn.execute(text(sql), params)).rowcount
    finally:
        await engine.dispose()


async def refusal(url: str, sql: str, **params: object) -> str:
    """The SQLSTATE PostgreSQL refuses `sql` with (42501: insufficient privilege, or a row-level security policy)."""
    with pytest.raises(DBAPIError) as refused:
        await execute(url, sql, **params)
    return str(refused.value.orig.sqlstate)  # type: ignore[union-attr]


async def scalar(url: str, sql: str, **params: object) -> object:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(text(sql), params)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
async def shared_rows(roles_db):
    """One row per worker in each shared table, written by the owner."""
    for worker in OWNED:
        await execute(roles_db.owner_url, PROCESSED + "(:c, 'acct', :m, :t)",
                      c=f"{worker}.{TAG}", m=TAG, t=NOW)
        await execute(roles_db.owner_url, "INSERT INTO outbox (producer, topic, key, headers, value, created_at, sent_at) "
                      "VALUES (:p, 'security-test', :k, '[]', 'x', :t, :t)", p=worker, k=TAG, t=NOW)
        await execute(roles_db.owner_url, "INSERT INTO account_views (owner, account_id, body, updated_at) VALUES (:o, :a, '{}', :t)", o=worker, a=TAG, t=NOW)


@pytest.mark.parametrize("worker", list(OWNED))
async def test_a_worker_role_cannot_read_or_write_another_workers_tables(roles_db, worker):
    url = roles_db.url(worker)
    for table in OWNED[OTHER[worker]]:
        assert await refusal(url, f"SELECT count(*) FROM {table.name}") == "42501"
        assert await refusal(url, f"INSERT INTO {table.name} (id) VALUES ('x')" if "id" in table.c
                             else f"INSERT INTO {table.name} (conversation_id) VALUES ('x')") == "42501"
        assert await refusal(url, f"DELETE FROM {table.name}") == "42501"
    for table in OWNED[worker]:  # its own: yes
        assert await execute(url, f"DELETE FROM {table.name} WHERE account_id = :a", a=TAG) == 0


@pytest.mark.parametrize("worker", list(OWNED))
async def test_a_worker_role_writes_only_its_own_rows_of_the_shared_tables(roles_db, shared_rows, worker):
    url, other = roles_db.url(worker), OTHER[worker]
    # another worker's rows: invisible, so no update or delete reaches them, and none can be added
    assert await scalar(url, "SELECT count(*) FROM processed_messages WHERE consumer LIKE :o", o=f"{other}.%") == 0
    assert await execute(url, "UPDATE outbox SET failure = 'forged' WHERE producer = :o", o=other) == 0
    assert await execute(url, "DELETE FROM account_views WHERE owner = :o", o=other) == 0
    assert await scalar(roles_db.owner_url, "SELECT count(*) FROM account_views WHERE owner = :o AND account_id = :a",
                        o=other, a=TAG) == 1
    assert await refusal(url, PROCESSED + "(:c, 'acct', 'forged', :t)",
                         c=f"{other}.commands", t=NOW) == "42501"
    assert await refusal(url, "INSERT INTO outbox (producer, topic, key, headers, value, created_at, sent_at) "
                         "VALUES (:p, 't', 'k', '[]', 'x', :t, :t)", p=other, t=NOW) == "42501"
    # its own rows: read, written, but never handed to another worker
    assert await scalar(url, "SELECT count(*) FROM account_views WHERE account_id = :a", a=TAG) == 1
    assert await execute(url, "UPDATE account_views SET updated_at = :t WHERE account_id = :a", t=NOW, a=TAG) == 1
    assert await refusal(url, "UPDATE account_views SET owner = :o WHERE account_id = :a", o=other, a=TAG) == "42501"
    assert await execute(url, PROCESSED + "(:c, 'acct', 'own', :t)",
                         c=f"{worker}.{TAG}", t=NOW) == 1


async def test_the_reader_reads_the_read_model_and_writes_nothing(roles_db):
    conv, account = f"conv-{TAG}", f"{TAG}-reader"
    await execute(roles_db.owner_url, "INSERT INTO contacts (id, account_id, email, created_at) VALUES (:c, :a, 'r@x', :t)",
                  c=f"contact-{TAG}", a=account, t=NOW)
    await execute(roles_db.owner_url, "INSERT INTO conversations (id, account_id, contact_id, channel, thread_key, status, "
                  "workspace, deleted, version, created_at, updated_at) VALUES (:id, :a, :c, 'email', 'k', 'open', 'inbox', "
                  "false, 1, :t, :t)", id=conv, a=account, c=f"contact-{TAG}", t=NOW)
    reader = create_engine(roles_db.url(READER), writer=False)
    try:
        found = await conversation_context(reader, conv)
    finally:
        await reader.dispose()
    assert found is not None and found["contact"]["email"] == "r@x"
    url = roles_db.url(READER)
    assert await refusal(url, "UPDATE conversations SET status = 'closed' WHERE id = :id", id=conv) == "42501"
    assert await refusal(url, "DELETE FROM account_views") == "42501"
    for table in ("messages", "outbox", "processed_messages"):  # not part of the read model
        assert await refusal(url, f"SELECT count(*) FROM {table}") == "42501"


@pytest.mark.parametrize("who", [*OWNED, READER])
async def test_no_role_changes_the_schema(roles_db, who):
    """Hence workers with their own role run with TICKETFLOW_MIGRATE_ON_START=false (`ticketflow migrate` migrates)."""
    url = roles_db.url(who)
    assert await refusal(url, "CREATE TABLE rogue (id int)") == "42501"
    assert await refusal(url, "ALTER TABLE conversations ADD COLUMN rogue int") == "42501"
    assert await refusal(url, "UPDATE alembic_version SET version_num = 'x'") == "42501"


async def test_migrate_roles_again_changes_nothing_and_waits_for_no_running_worker(roles_db, exposure):
    """Unchanged policies are left alone, so a worker in the middle of a transaction on a shared table
    (here: one the test holds open) does not hold it up."""
    grants = ("SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants "
              "WHERE grantee LIKE :p ORDER BY 1, 2, 3")
    engine = create_engine(roles_db.owner_url)
    try:
        async with engine.connect() as conn:
            before = (await conn.execute(text(grants), {"p": f"{roles_db.prefix}%"})).all()
            policies = (await conn.execute(text("SELECT * FROM pg_policies ORDER BY policyname"))).all()
        async with engine.connect() as busy, busy.begin():
            await busy.execute(text("INSERT INTO account_views (owner, account_id, body, updated_at) "
                                    "VALUES ('inbound', :a, '{}', :t)"), {"a": f"{TAG}-busy", "t": NOW})
            again = run_cli(exposure, clean_env(**roles_db.role_env()), "migrate", "--roles")
            await busy.rollback()
        assert again.returncode == 0, again.stderr
        assert again.stdout.count(": updated;") == 3
        async with engine.connect() as conn:
            assert (await conn.execute(text(grants), {"p": f"{roles_db.prefix}%"})).all() == before
            assert (await conn.execute(text("SELECT * FROM pg_policies ORDER BY policyname"))).all() == policies
    finally:
        await engine.dispose()


async def test_migrate_roles_needs_the_passwords_and_an_owner_that_may_create_roles(postgres, roles_db, exposure):
    missing = run_cli(exposure, clean_env(DATABASE_URL=roles_db.owner_url), "migrate", "--roles")
    assert missing.returncode == 2
    for variable in ("TICKETFLOW_DB_INBOUND_PASSWORD", "TICKETFLOW_DB_TICKETING_PASSWORD", "TICKETFLOW_DB_READER_PASSWORD"):
        assert variable in missing.stderr
    async with fresh_database(postgres) as url:  # owned by the test server's role, which lacks CREATEROLE
        env = {**roles_db.role_env(), "DATABASE_URL": url, "TICKETFLOW_DB_ROLE_PREFIX": f"tfsec_{uuid.uuid4().hex[:6]}_"}
        refused = run_cli(exposure, clean_env(**env), "migrate", "--roles")
    assert refused.returncode == 1
    assert "CREATEROLE" in refused.stderr and "permission denied to create role" in refused.stderr


async def test_the_password_verifier_is_postgresqls_own(postgres):
    """What `migrate --roles` sends instead of a password is what PostgreSQL itself stores for it."""
    role, password = f"tfsec_{uuid.uuid4().hex[:8]}", "a throwaway password"
    admin = await asyncpg.connect(superuser_dsn(postgres))
    try:
        await admin.execute("SET password_encryption = 'scram-sha-256'")
        await admin.execute(f"CREATE ROLE {role} PASSWORD '{password}'")
        stored = await admin.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1", role)
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()
    iterations, salt = re.match(r"SCRAM-SHA-256\$(\d+):([^$]+)\$", stored).groups()
    assert scram_verifier(password, base64.b64decode(salt), int(iterations)) == stored


def test_every_table_has_its_writers_and_the_reader_reads_what_the_read_model_does():
    owned = [t for tables in OWNED.values() for t in tables]
    assert sorted(t.name for t in owned + list(SHARED)) == sorted(metadata.tables)
    imported = {v for v in vars(readmodel.context).values() if isinstance(v, Table)}
    assert imported == set(READ_MODEL)
    documented = dict(re.findall(r"^\| ([a-z_, ]+?)\s*\| (inbound|ticketing)\s*\|$", storage.tables.__doc__ or "", re.M))
    assert {worker: tuple(sorted(tables.split(", "))) for tables, worker in documented.items()} == \
        {worker: tuple(sorted(t.name for t in tables)) for worker, tables in OWNED.items()}
