"""The benchmark's input: accounts, inbound channel messages and ticket commands as Kafka records.

Bodies are written as plain JSON (fast enough for a million records) and a sample of each kind is
checked against the real contracts (`contracts.inbound`, `contracts.commands`), so a contract change
fails here, loudly, instead of dead-lettering a whole benchmark. Records carry the CloudEvents headers
of `contracts.envelope`, as a channel or an agent's tool that sets them would.

Sizes are those of a support inbox: subjects of 20-70 characters, bodies of 150-1,500 characters
(mostly short), 50 accounts, about one message in three starting a conversation.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from contracts.accounts import Account
from contracts.commands import ticket_command_adapter
from contracts.common import Tier
from contracts.envelope import Envelope
from contracts.inbound import InboundMessage

SOURCE = "/bench/channel"
WORDS = ("order", "delivery", "invoice", "refund", "broken", "late", "account", "password", "reset", "thanks",
         "please", "help", "package", "tracking", "number", "the", "a", "my", "is", "not", "arrived", "yet",
         "again", "still", "waiting", "since", "monday", "customer", "support", "replacement", "warranty",
         "subscription", "cancel", "upgrade", "plan", "billing", "charged", "twice", "card", "address")
CHANNELS = (("email", 0.6), ("chat", 0.25), ("whatsapp", 0.15))
STATUSES = ("waiting_on_contact", "waiting_on_us", "new")
"""Open statuses of the default pipeline, cycled through by change_ticket_status (never closing: no cascade)."""


@dataclass(frozen=True)
class Record:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass
class Thread:
    account_id: str
    channel: str
    key: str
    email: str | None
    phone: str | None
    name: str
    subject: str


@dataclass
class InboundSet:
    """N inbound records and what they should produce."""

    records: list[Record]
    message_ids: list[str]
    threads_started: int
    thread_keys: list[tuple[str, str, str]] = field(default_factory=list)
    """(account, channel, thread key) of each record, in order."""


def _text(rng: random.Random, lo: int, hi: int) -> str:
    target = int(min(hi, max(lo, rng.lognormvariate(5.8, 0.7))))
    words: list[str] = []
    length = 0
    while length < target:
        w = rng.choice(WORDS)
        words.append(w)
        length += len(w) + 1
    return " ".join(words)[:target].capitalize() + "."


def account_ids(run: str, count: int) -> list[str]:
    return [f"bench-{run}-a{i:03d}" for i in range(count)]


def account_records(ids: list[str]) -> list[Record]:
    """Starter accounts created in 2022: no help-desk routing (T8), the default pipeline."""
    out = []
    for account_id in ids:
        body = Account(account_id=account_id, tier=Tier.STARTER, created_at=datetime(2022, 1, 1, tzinfo=UTC),
                       name=f"Bench {account_id}")
        out.append(_record(account_id, body.model_dump_json().encode(), "account", account_id))
    return out


def _record(key: str, value: bytes, type_: str, account_id: str, message_id: str | None = None) -> Record:
    env = Envelope(id=message_id or str(uuid.uuid4()), type=type_, source=SOURCE, time=datetime.now(UTC),
                   subject=key[:600], account_id=account_id)
    return Record(key.encode(), value, env.to_headers())


def threads(run: str, accounts: list[str], count: int, seed: int, tag: str = "t") -> list[Thread]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        r = rng.random()
        channel = "email" if r < CHANNELS[0][1] else "chat" if r < CHANNELS[0][1] + CHANNELS[1][1] else "whatsapp"
        contact = rng.randrange(max(1, count * 2 // 3))  # some contacts write on several threads
        account = accounts[contact % len(accounts)]
        email = f"customer{contact}@example.com" if channel != "whatsapp" else None
        phone = f"+1555{contact:07d}" if channel != "email" else None
        out.append(Thread(account, channel, f"<{tag}{i}.{run}@mail.example.com>" if channel == "email"
                          else f"{channel}-{tag}{i}-{run}", email, phone, f"Customer {contact}",
                          _text(rng, 20, 70)))
    return out


def inbound_body(thread: Thread, message_id: str, text: str, sent_at: datetime) -> bytes:
    body = {"type": "inbound.message", "account_id": thread.account_id, "channel": thread.channel,
            "channel_message_id": message_id, "channel_thread_key": thread.key, "sender_email": thread.email,
            "sender_phone": thread.phone, "sender_name": thread.name, "subject": thread.subject, "text": text,
            "sent_at": sent_at.isoformat()}
    return json.dumps(body, separators=(",", ":")).encode()


def inbound_record(thread: Thread, message_id: str, text: str, sent_at: datetime) -> Record:
    key = f"{thread.account_id}:{thread.channel}:{thread.key}"
    return _record(key, inbound_body(thread, message_id, text, sent_at), "inbound.message", thread.account_id,
                   f"inbound:{thread.account_id}:{thread.channel}:{message_id}")


def inbound_set(run: str, accounts: list[str], messages: int, seed: int = 1, tag: str = "t",
                threads_per_message: float = 1 / 3, one_each: bool = False,
                thread_accounts: list[str] | None = None) -> InboundSet:
    """`messages` inbound records on about messages/3 threads (each thread's first message starts a
    conversation); `one_each`: one message per thread (every message starts a conversation);
    `thread_accounts`: the account of each thread, in order (else spread over `accounts`)."""
    rng = random.Random(seed + 1)
    count = messages if one_each else max(1, round(messages * threads_per_message))
    pool = threads(run, accounts, count, seed, tag)
    for thread, account in zip(pool, thread_accounts or (), strict=False):
        thread.account_id = account
    texts = [_text(rng, 150, 1500) for _ in range(min(messages, 512))]
    base = datetime.now(UTC) - timedelta(hours=1)
    records, ids, keys = [], [], []
    used: set[int] = set()
    for i in range(messages):
        index = i if one_each else (i if i < count // 2 else rng.randrange(count))  # half open a thread at once
        used.add(index)
        thread = pool[index]
        mid = f"<m{i}.{tag}.{run}@mail.example.com>" if thread.channel == "email" else f"{thread.channel}-m{i}-{tag}-{run}"
        records.append(inbound_record(thread, mid, texts[i % len(texts)], base + timedelta(milliseconds=i)))
        ids.append(mid)
        keys.append((thread.account_id, thread.channel, thread.key))
    check_inbound(records)
    return InboundSet(records, ids, len(used), keys)


def check_inbound(records: list[Record]) -> None:
    for r in records[:3] + records[-3:]:
        InboundMessage.model_validate_json(r.value)


def command_record(body: Mapping[str, object], key: str) -> Record:
    value = json.dumps(body, separators=(",", ":")).encode()
    return _record(key, value, str(body["type"]), str(body["account_id"]), str(body["command_id"]))


def create_ticket(run: str, i: int, account_id: str, conversation_id: str, subject: str) -> Record:
    body = {"type": "create_ticket", "command_id": f"bench-{run}-create-{i}", "account_id": account_id,
            "actor_id": f"agent-{i % 7}", "conversation_id": conversation_id, "subject": subject,
            "priority": ("low", "medium", "high")[i % 3], "description": "Opened from the inbox by the benchmark"}
    return command_record(body, conversation_id)


def ticket_updates(run: str, tickets: list[tuple[str, str]], count: int, seed: int = 3) -> list[Record]:
    """`count` commands on existing tickets ((ticket, account) pairs): status changes through the open
    statuses and owner changes, interleaved across tickets; each ticket's commands keep their order."""
    rng = random.Random(seed)
    step = {t: 0 for t, _a in tickets}
    out = []
    for i in range(count):
        ticket, account = tickets[i % len(tickets)] if i < len(tickets) else tickets[rng.randrange(len(tickets))]
        n = step[ticket]
        step[ticket] = n + 1
        if n % 2 == 0:
            body: dict[str, object] = {"type": "change_ticket_status", "status": STATUSES[(n // 2) % len(STATUSES)]}
        else:
            body = {"type": "change_ticket_owner", "owner_id": f"agent-{(n // 2) % 20}"}  # differs from the last one
        body |= {"command_id": f"bench-{run}-upd-{i}", "account_id": account, "actor_id": f"agent-{i % 7}",
                 "ticket_id": ticket}
        out.append(command_record(body, ticket))
    for r in out[:3]:
        ticket_command_adapter.validate_json(r.value)
    return out


def close_ticket(run: str, i: int, ticket_id: str, account_id: str) -> Record:
    body = {"type": "change_ticket_status", "command_id": f"bench-{run}-close-{i}", "account_id": account_id,
            "actor_id": "agent-close", "ticket_id": ticket_id, "status": "closed"}
    return command_record(body, ticket_id)


def associate(run: str, i: int, ticket_id: str, account_id: str, conversation_id: str) -> Record:
    body = {"type": "associate_conversation", "command_id": f"bench-{run}-assoc-{i}", "account_id": account_id,
            "actor_id": "agent-assoc", "ticket_id": ticket_id, "conversation_id": conversation_id}
    return command_record(body, ticket_id)


def chunks(items: list[Record], size: int) -> Iterator[list[Record]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
