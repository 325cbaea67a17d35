"""What the inbound worker's batch writes, on PostgreSQL and on SQLite (X5, C2).

An inbound channel message is deduplicated by its channel id: the unique (account, channel,
channel_message_id) of `messages` (ADR 2). It leaves no processed id, so `processed_messages` holds
commands only and does not grow with the inbound traffic, and a replay still changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.accounts import Account
from contracts.common import Tier
from storage.tables import messages, outbox, processed_messages
from ticketflow.running import build_worker
from workers.accounts import apply_account_record
from workers.settings import Settings

pytestmark = pytest.mark.db


def _record(offset: int, key: str, value: bytes) -> Any:
    return SimpleNamespace(key=key.encode(), value=value, headers=[], topic="t.inbound.messages", partition=0,
                           offset=offset, timestamp=0, timestamp_type=0)


def _inbound(offset: int, message_id: str) -> Any:
    body = {"type": "inbound.message", "account_id": "acc", "channel": "email", "channel_message_id": message_id,
            "channel_thread_key": "thread-1", "sender_email": "ann@example.com", "text": "hello",
            "sent_at": "2026-01-01T10:00:00+00:00"}
    return _record(offset, "acc:email:thread-1", json.dumps(body).encode())


async def _count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_x5_c2_inbound_messages_leave_no_processed_ids_and_a_replay_changes_nothing(
        engine: AsyncEngine, db_url: str) -> None:
    worker = build_worker("inbound", Settings(topic_prefix="t.", database_url=db_url))
    worker._engine = engine  # the batch path alone: no producer, no relay
    account = Account(account_id="acc", tier=Tier.STARTER, created_at=datetime(2022, 1, 1, tzinfo=UTC), name="Acc")
    await apply_account_record(engine, worker.name, _record(0, "acc", account.model_dump_json().encode()))
    runner = worker.batches["messages"]

    await runner.run([_inbound(1, "m-1"), _inbound(2, "m-2")])
    assert await _count(engine, messages) == 2
    assert await _count(engine, processed_messages) == 0
    events = await _count(engine, outbox)

    await runner.run([_inbound(1, "m-1"), _inbound(2, "m-2")])  # redelivered after a crash before the ack
    assert await _count(engine, messages) == 2
    assert await _count(engine, outbox) == events
    assert await _count(engine, processed_messages) == 0
