"""Bring a database to the newest schema with Alembic (the only way the schema changes).

A worker migrates on start. When the database is already at HEAD (every start but the first after
an upgrade) one query says so, and Alembic is never imported: Alembic, Mako and Pygments are about
11 MB of a worker's memory for the rest of its life (docs/benchmarks.md, "sixth pass")."""

from __future__ import annotations

import asyncio
import fcntl
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.database import create_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HEAD = "0007"
"""The newest revision in `migrations/versions` (a test checks it against Alembic's own head)."""


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(url: str) -> None:
    """Run every pending migration (blocking; call from a thread inside an event loop).

    Processes starting together take turns: on PostgreSQL an advisory lock (migrations/env.py), on
    SQLite an exclusive lock on a file beside the database."""
    from alembic import command

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        lock_path = Path(parsed.database).with_suffix(".migrate.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            command.upgrade(alembic_config(url), "head")
        return
    command.upgrade(alembic_config(url), "head")


async def upgrade_async(url: str) -> None:
    """`upgrade`, unless the database is already at HEAD."""
    if not await at_head(url):
        await asyncio.to_thread(upgrade, url)


async def at_head(url: str) -> bool:
    """Whether the database's schema is at HEAD, in one query. False when it cannot tell: no schema
    yet, an older or newer one, or a database that does not answer (`upgrade` then says which)."""
    engine = create_engine(url, writer=False)
    try:
        async with engine.connect() as conn:
            revisions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        return list(revisions) == [HEAD]
    except Exception:  # any failure: the full upgrade runs and raises what it finds, as before
        return False
    finally:
        await engine.dispose()
