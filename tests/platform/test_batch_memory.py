"""A batch leaves nothing for the cyclic garbage collector, on PostgreSQL and on SQLite (X4).

A worker runs its collector rarely (`ticketflow.running.quiet_collector`: a batch allocates hundreds of
thousands of objects, nearly all freed by reference counting). Anything a batch leaves in a reference
cycle stays in memory until a full collection: a unit of work whose repositories pointed back at it
kept every batch's loaded rows and write buffers, and a worker's memory grew with the length of a drain.
Each test runs batches of every kind its worker's unit handles with the collector off, then asks the
collector what it finds: nothing."""

from __future__ import annotations

import gc
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.accounts import Account
from contracts.common import Tier
from contracts.events import ConversationCreated
from storage.tables import conversations, tickets
from ticketflow.running import build_worker
from workers.accounts import apply_account_record
from workers.runtime import Worker
from workers.settings import Settings

pytestmark = pytest.mark.db

NOW = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def _record(offset: int, key: str, body: dict[str, Any] | bytes) -> Any:
    value = body if isinstance(body, bytes) else json.dumps(body).encode()
    return SimpleNamespace(key=key.encode(), value=value, headers=[], topic="t.input", partition=0, offset=offset,
                           timestamp=0, timestamp_type=0)


async def _worker(name: str, engine: AsyncEngine, db_url: str) -> Worker:
    worker = build_worker(name, Settings(topic_prefix="t.", database_url=db_url))
    worker._engine = engine  # the batch path alone: no producer, no relay
    account = Account(account_id="acc", tier=Tier.PROFESSIONAL, created_at=datetime(2022, 1, 1, tzinfo=UTC), name="Acc")
    await apply_account_record(engine, worker.name, _record(0, "acc", account.model_dump_json().encode()))
    return worker


OURS = ("workers.", "storage.", "contracts.")


async def _left_in_cycles(batches: Callable[[], Awaitable[None]]) -> list[str]:
    """The types, from Ticketflow's own packages, of the objects that `batches` left for the cyclic
    collector. (Whatever else runs in the test process, e.g. asyncio's callbacks of an earlier test, may
    leave its own garbage meanwhile: only ours is the batch's.)"""
    gc.collect()
    gc.disable()
    try:
        await batches()
    finally:
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        found = sorted({f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage
                        if type(o).__module__.startswith(OURS)})
        gc.garbage.clear()
        gc.set_debug(0)
        gc.enable()
    return found


def _inbound(offset: int, thread: str, message_id: str) -> Any:
    return _record(offset, f"acc:email:{thread}", {
        "type": "inbound.message", "account_id": "acc", "channel": "email", "channel_message_id": message_id,
        "channel_thread_key": thread, "sender_email": f"{thread}@example.com", "text": "hello",
        "sent_at": NOW.isoformat()})


async def test_x4_inbound_batches_leave_no_reference_cycles(engine: AsyncEngine, db_url: str) -> None:
    worker = await _worker("inbound", engine, db_url)

    async def batches() -> None:
        await worker.batches["messages"].run([_inbound(i, f"thread-{i % 3}", f"m-{i}") for i in range(1, 10)])
        await worker.batches["messages"].run([_inbound(i, f"thread-{i % 4}", f"m-{i}") for i in range(5, 15)])
        async with engine.connect() as conn:
            ids = sorted((await conn.execute(select(conversations.c.id))).scalars())
        await worker.batches["commands"].run(
            [_record(i, cid, {"type": "assign_conversation_owner", "command_id": f"own-{cid}", "account_id": "acc",
                              "actor_id": "agent-1", "conversation_id": cid, "owner_id": "agent-2"})
             for i, cid in enumerate(ids)]
            + [_record(10 + i, cid, {"type": "close_conversation", "command_id": f"close-{cid}", "account_id": "acc",
                                     "actor_id": "agent-1", "conversation_id": cid})
               for i, cid in enumerate(ids)])

    assert await _left_in_cycles(batches) == []
    async with engine.connect() as conn:
        assert set((await conn.execute(select(conversations.c.status))).scalars()) == {"closed"}


def _created(conversation_id: str, version: int = 1) -> dict[str, Any]:
    event = ConversationCreated(conversation_id=conversation_id, account_id="acc", version=version, occurred_at=NOW,
                                contact_id="contact-1", channel="email", channel_thread_key=f"t-{conversation_id}",
                                subject="Help", owner_id="agent-1")
    return json.loads(event.model_dump_json())


async def test_x4_ticketing_batches_leave_no_reference_cycles(engine: AsyncEngine, db_url: str) -> None:
    worker = await _worker("ticketing", engine, db_url)
    conversation_ids = [f"conv-{i}" for i in range(6)]

    async def batches() -> None:
        await worker.batches["conversations"].run([_record(i, cid, _created(cid))
                                                   for i, cid in enumerate(conversation_ids)])
        await worker.batches["sync-commands"].run(
            [_record(i, cid, {"type": "create_ticket", "command_id": f"ticket-{cid}", "account_id": "acc",
                              "actor_id": "agent-1", "conversation_id": cid})
             for i, cid in enumerate(conversation_ids)])

    assert await _left_in_cycles(batches) == []
    async with engine.connect() as conn:
        assert len((await conn.execute(select(tickets.c.id))).all()) == len(conversation_ids)
