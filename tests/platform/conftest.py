"""Fixtures for the platform tests: a brand-new database on each backend."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.database import create_engine
from storage.migrate import upgrade_async


def _plain_dsn(url: str) -> str:
    """asyncpg's own DSN for a SQLAlchemy `postgresql+asyncpg://` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(params=["postgresql", "sqlite"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A brand-new, empty database on each backend (PostgreSQL: a database of its own, dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'ticketflow.db'}"
        return
    postgres: str = request.getfixturevalue("postgres")
    name = f"tf_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_plain_dsn(postgres))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield make_url(postgres).set(database=name).render_as_string(hide_password=False)
    finally:
        from tests.support.services import drop_database

        await drop_database(_plain_dsn(postgres), name)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_async(db_url)
    eng = create_engine(db_url)
    try:
        yield eng
    finally:
        await eng.dispose()


