"""The async engine for DATABASE_URL: PostgreSQL (asyncpg) in production, SQLite (aiosqlite) embedded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage.json_codec import dumps, loads


def create_engine(url: str, writer: bool = True) -> AsyncEngine:
    """The engine for `url`. On SQLite, a writer's transactions take the write lock at BEGIN
    (so two writers queue instead of deadlocking); a reader's (`writer=False`) do not, and with WAL
    they read the last committed state while a writer works."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, json_serializer=dumps,
                                     json_deserializer=loads)
        _sqlite_pragmas(engine, begin_immediate=writer)
        return engine
    # No pre-ping: it cost a round trip per checkout, one in ten of a small batch's. A connection that
    # died with its server fails its first statement instead; SQLAlchemy then drops every pooled
    # connection older than the failure, and the caller retries it as a transient failure (X5).
    return create_async_engine(url, pool_size=10, max_overflow=5, json_serializer=dumps, json_deserializer=loads)


def _sqlite_pragmas(engine: AsyncEngine, begin_immediate: bool) -> None:

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if begin_immediate else "BEGIN")
