"""The chaos load: a seeded mix of channel messages (new and existing threads), redeliveries of records
already sent, poison, and agents' commands that create, associate, close, reopen, merge and delete
tickets (plus replies, owners, properties and trash), paced over the run and held back while the
workers' backlog is too deep. Sends go through one idempotent `acks=all` producer; a send the broker
refused is counted, and the check reads the input topics back to know what was accepted."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, deque
from collections.abc import Callable

from aiokafka import AIOKafkaProducer

from contracts import commands as c
from contracts.topics import INBOUND_MESSAGES
from tests.chaos import records as r
from tests.chaos.knowledge import Knowledge
from tests.chaos.names import Run, producer

MIX: tuple[tuple[str, float], ...] = (
    ("inbound_new_thread", 18), ("inbound_existing_thread", 22), ("redelivery", 6), ("poison", 5),
    ("create_ticket", 8), ("associate_conversation", 3), ("close_ticket", 5), ("reopen_ticket", 4),
    ("close_conversation", 3), ("reopen_conversation", 3), ("reply", 6), ("assign_owner", 4),
    ("change_ticket_owner", 3), ("update_properties", 3), ("merge_tickets", 2), ("delete_ticket", 1),
    ("trash_conversation", 1), ("remove_association", 0.5), ("command_redelivery", 3),
)

CONVERSATION_KINDS = frozenset({"create_ticket", "associate_conversation", "close_conversation", "reopen_conversation",
                                "reply", "assign_owner", "trash_conversation"})
"""Kinds aimed at a conversation (create and associate name one too); the rest at a ticket."""


class Traffic:
    def __init__(self, run: Run, knowledge: Knowledge, rng: random.Random, account_ids: list[str],
                 help_desk_accounts: set[str]) -> None:
        self.deploy = run
        self.knowledge = knowledge
        self.rng = rng
        self.accounts = account_ids
        self.help_desk_accounts = help_desk_accounts
        self.threads = r.Threads(rng, run.prefix.strip("."), account_ids)
        self.sent: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self._inbound: deque[r.Record] = deque(maxlen=500)
        self._commands: deque[r.Record] = deque(maxlen=500)
        self._producer: AIOKafkaProducer | None = None
        self._pending: deque[tuple[str, asyncio.Future[object]]] = deque()
        self._names = [name for name, _w in MIX]
        self._weights = [w for _n, w in MIX]

    async def start(self) -> None:
        self._producer = producer(self.deploy.bootstrap, "chaos-traffic")
        await self._producer.start()

    async def stop(self) -> None:
        await self._settle_sends(wait=True)
        if self._producer is not None:
            await self._producer.stop()

    async def send(self, record: r.Record, what: str) -> None:
        assert self._producer is not None
        try:
            future = await self._producer.send(self.deploy.topic(record.topic), key=record.key,
                                               value=record.value, headers=record.headers)
        except Exception:  # not accepted (broker away for longer than the request timeout)
            self.failed[what] += 1
            return
        self.sent[what] += 1
        self._pending.append((what, future))
        await self._settle_sends(wait=False)

    async def _settle_sends(self, wait: bool) -> None:
        while self._pending and (wait or self._pending[0][1].done()):
            what, future = self._pending.popleft()
            try:
                await future
            except Exception:  # refused or timed out: perhaps written, the check reads the topic
                self.failed[what] += 1
                self.sent[what] -= 1  # counted as sent when the producer took it

    async def run(self, messages: int, seconds: float, backlog: Callable[[], int], max_backlog: int,
                  stop: asyncio.Event) -> None:
        """Send `messages` records spread over `seconds` (sooner if the workers keep up), until `stop`."""
        interval = seconds / max(messages, 1)
        next_at = time.monotonic()
        for _ in range(messages):
            if stop.is_set():
                return
            while backlog() > max_backlog and not stop.is_set():
                await asyncio.sleep(0.2)
                next_at = max(next_at, time.monotonic())
            now = time.monotonic()
            if next_at > now:
                await asyncio.sleep(next_at - now)
            next_at = max(next_at + interval, time.monotonic() - 2.0)
            await self.step()

    async def step(self) -> None:
        what = self.rng.choices(self._names, self._weights)[0]
        record = self._make(what)
        if record is None:
            what, record = "inbound_new_thread", self.threads.message(self.rng.choice(self.accounts), True)
        if record.kind == "inbound":
            self._inbound.append(record)
        elif record.kind == "command":
            self._commands.append(record)
        await self.send(record, what)

    async def poison_now(self, topic: str) -> None:
        """One poison record on `topic`, now (a dead-letter checkpoint needs one to reach)."""
        await self.send(self._poison(topic), "poison")

    def _poison(self, topic: str) -> r.Record:
        account = self.rng.choice(self.accounts)
        if topic == INBOUND_MESSAGES:
            channel, thread, _contact = self.threads.existing(account)
            key = f"{account}:{channel.value}:{thread}".encode()
        else:
            conv = self.knowledge.conversation(self.rng)
            key = (conv.id if conv else f"nothing-{self.rng.randrange(10**6)}").encode()
        return r.poison(self.rng, topic, account, key)

    def _make(self, what: str) -> r.Record | None:
        rng = self.rng
        if what in ("inbound_new_thread", "inbound_existing_thread"):
            return self.threads.message(rng.choice(self.accounts), what == "inbound_new_thread")
        if what == "redelivery":
            return rng.choice(self._inbound) if self._inbound else None
        if what == "command_redelivery":
            return rng.choice(self._commands) if self._commands else None
        if what == "poison":
            return self._poison(rng.choice(r.POISON_TOPICS))
        return self._conversation_command(what) if what in CONVERSATION_KINDS else self._ticket_command(what)

    def _conversation_command(self, what: str) -> r.Record | None:
        rng, k = self.rng, self.knowledge
        if what == "create_ticket":
            conv = k.conversation(rng, ticket=None)
            return None if conv is None else self._cmd(c.CreateTicket, conv.account, conversation_id=conv.id,
                                                       priority=rng.choice([None, "low", "high"]))
        if what == "associate_conversation":
            conv = k.conversation(rng, ticket=None)
            target = None if conv is None else k.ticket(rng, account=conv.account)
            if conv is None or target is None:
                return None
            return self._cmd(c.AssociateConversation, conv.account, ticket_id=target.id, conversation_id=conv.id)
        conv = k.conversation(rng, open=what != "reopen_conversation") if what in ("close_conversation",
                                                                                   "reopen_conversation") else \
            k.conversation(rng)
        if conv is None:
            return None
        if what == "close_conversation":
            return self._cmd(c.CloseConversation, conv.account, conversation_id=conv.id)
        if what == "reopen_conversation":
            return self._cmd(c.ReopenConversation, conv.account, conversation_id=conv.id)
        if what == "reply":
            return self._cmd(c.ReplyToConversation, conv.account, conversation_id=conv.id, text="On it.")
        if what == "assign_owner":
            return self._cmd(c.AssignConversationOwner, conv.account, conversation_id=conv.id,
                             owner_id=rng.choice([None, "agent-1", "agent-2", "agent-3"]))
        return self._cmd(c.TrashConversation, conv.account, conversation_id=conv.id)

    def _ticket_command(self, what: str) -> r.Record | None:
        rng, k = self.rng, self.knowledge
        closed = {"close_ticket": False, "reopen_ticket": True}.get(what)
        ticket = k.ticket(rng, closed=closed)
        if ticket is None:
            return None
        if what in ("close_ticket", "reopen_ticket"):
            status = "closed" if what == "close_ticket" else rng.choice(["new", "waiting_on_us"])
            return self._cmd(c.ChangeTicketStatus, ticket.account, ticket_id=ticket.id, status=status)
        if what == "change_ticket_owner":
            return self._cmd(c.ChangeTicketOwner, ticket.account, ticket_id=ticket.id,
                             owner_id=rng.choice(["agent-1", "agent-2", None]))
        if what == "update_properties":
            return self._cmd(c.UpdateTicketProperties, ticket.account, ticket_id=ticket.id,
                             properties={"priority": rng.choice(["low", "medium", "high", "urgent"])})
        if what == "merge_tickets":
            other = k.ticket(rng, account=ticket.account)
            return None if other is None else self._cmd(c.MergeTickets, ticket.account, ticket_id=ticket.id,
                                                        merged_ticket_id=other.id)
        if what == "delete_ticket":
            return self._cmd(c.DeleteTicket, ticket.account, ticket_id=ticket.id)
        if what == "remove_association" and ticket.conversations:
            return self._cmd(c.RemoveConversationAssociation, ticket.account, ticket_id=ticket.id,
                             conversation_id=ticket.conversations[0])
        return None

    def _cmd(self, cls: type, account: str, **fields: object) -> r.Record:
        help_desk = account in self.help_desk_accounts and self.rng.random() < 0.8
        return r.command(cls, account, help_desk, **fields)
