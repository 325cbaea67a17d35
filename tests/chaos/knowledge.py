"""What the chaos run's agents know: the conversations and tickets they have seen on the event topics,
as another service would (read from the beginning, in the background). Commands are aimed at these;
when the knowledge is a little behind, a command is rejected or changes nothing, which is a valid outcome."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer

from contracts.topics import CONVERSATION_EVENTS, TICKET_EVENTS
from tests.chaos.infra import cancel
from tests.chaos.names import Run, partitions_of

T = TypeVar("T")


@dataclass
class Conv:
    id: str
    account: str
    open: bool = True
    deleted: bool = False
    ticket: str | None = None


@dataclass
class Tkt:
    id: str
    account: str
    conversations: list[str] = field(default_factory=list)
    closed: bool = False
    gone: bool = False
    """Deleted or merged into another ticket."""


class Knowledge:
    def __init__(self) -> None:
        self.conversations: dict[str, Conv] = {}
        self.tickets: dict[str, Tkt] = {}
        self._live_convs: list[str] = []
        self._live_tickets: list[str] = []

    def apply(self, body: dict[str, Any]) -> None:
        kind = body.get("type", "")
        if kind.startswith("conversation."):
            self._conversation(kind, body)
        elif kind.startswith("ticket."):
            self._ticket(kind, body)

    def _conversation(self, kind: str, body: dict[str, Any]) -> None:
        cid = body["conversation_id"]
        if kind == "conversation.created":
            self.conversations[cid] = Conv(cid, body["account_id"])
            self._live_convs.append(cid)
            return
        conv = self.conversations.get(cid)
        if conv is None:
            return
        if kind == "conversation.closed":
            conv.open = False
        elif kind == "conversation.reopened":
            conv.open = True
        elif kind == "conversation.deleted":
            conv.deleted = True

    def _ticket(self, kind: str, body: dict[str, Any]) -> None:
        tid = body["ticket_id"]
        if kind == "ticket.created":
            self.tickets[tid] = Tkt(tid, body["account_id"], list(body["conversation_ids"]))
            self._live_tickets.append(tid)
        ticket = self.tickets.get(tid)
        if ticket is None:
            return
        ticket.conversations = list(body.get("conversation_ids", ticket.conversations))
        for cid in ticket.conversations:
            if cid in self.conversations:
                self.conversations[cid].ticket = tid
        if kind == "ticket.closed":
            ticket.closed = True
        elif kind == "ticket.reopened":
            ticket.closed = False
        elif kind in ("ticket.deleted", "ticket.merged"):
            ticket.gone = True

    @staticmethod
    def _pick(pool: list[str], table: dict[str, T], rng: random.Random, ok: Callable[[T], bool]) -> T | None:
        """A random live item of `pool` passing `ok`; dead ones are dropped from the pool on the way."""
        for _ in range(12):
            if not pool:
                return None
            i = rng.randrange(len(pool))
            item = table[pool[i]]
            if getattr(item, "deleted", False) or getattr(item, "gone", False):
                pool[i] = pool[-1]
                pool.pop()
                continue
            if ok(item):
                return item
        return None

    def conversation(self, rng: random.Random, **want: object) -> Conv | None:
        return self._pick(self._live_convs, self.conversations, rng,
                          lambda c: all(getattr(c, k) == v for k, v in want.items()))

    def ticket(self, rng: random.Random, account: str | None = None, closed: bool | None = None) -> Tkt | None:
        return self._pick(self._live_tickets, self.tickets, rng,
                          lambda t: (account is None or t.account == account) and (closed is None or t.closed == closed))


class Observer:
    """Feeds a Knowledge from the event topics, from their beginning, until stopped."""

    def __init__(self, run: Run, knowledge: Knowledge) -> None:
        self.run = run
        self.knowledge = knowledge
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        topics = [self.run.topic(CONVERSATION_EVENTS), self.run.topic(TICKET_EVENTS)]
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.run.bootstrap, enable_auto_commit=False)
        await self._consumer.start()
        parts = await partitions_of(self.run.bootstrap, topics)
        self._consumer.assign(parts)
        await self._consumer.seek_to_beginning(*parts)
        self._task = asyncio.create_task(self._run(), name="chaos-observer")

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=200, max_records=2000)
            except asyncio.CancelledError:
                raise
            except Exception:  # broker away: the consumer reconnects
                await asyncio.sleep(0.5)
                continue
            for records in batch.values():
                for record in records:
                    try:
                        self.knowledge.apply(json.loads(record.value))
                    except (ValueError, KeyError, TypeError):
                        pass

    async def stop(self) -> None:
        await cancel(self._task)
        if self._consumer is not None:
            await self._consumer.stop()
