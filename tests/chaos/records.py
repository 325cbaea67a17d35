"""The records the chaos traffic sends: channel messages, agents' commands and poison, each with a
`chaos_kind` header saying what it is (`inbound`, `command`, `poison:<expected dead-letter reason>`).
Ticketflow reads only `ce_*` and a few named headers, so this one travels untouched (and stays on the
dead letter, which keeps the original headers)."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts import commands as c
from contracts.accounts import Account, AccountSettings
from contracts.common import Channel, ReplyToClosedPolicy, Tier, Workspace
from contracts.inbound import InboundMessage
from contracts.topics import ACCOUNTS, CONVERSATION_COMMANDS, INBOUND_MESSAGES, TICKET_COMMANDS
from tests.chaos.names import cloudevents

KIND = "chaos_kind"
POISON = "poison:"


@dataclass
class Record:
    topic: str
    """The catalogue name (without the run's prefix)."""
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    kind: str


def accounts(run: str) -> list[Account]:
    """Two starter accounts that reopen on a reply, one that starts a new conversation instead (C3), and
    one Professional account created after the help-desk cut-off (T8: its tickets live in the help desk)."""
    old = datetime(2022, 3, 1, tzinfo=UTC)
    return [
        Account(account_id=f"{run}-a", tier=Tier.STARTER, created_at=old),
        Account(account_id=f"{run}-b", tier=Tier.STARTER, created_at=old),
        Account(account_id=f"{run}-c", tier=Tier.ENTERPRISE, created_at=old,
                settings=AccountSettings(reply_to_closed=ReplyToClosedPolicy.NEW_CONVERSATION)),
        Account(account_id=f"{run}-d", tier=Tier.PROFESSIONAL, created_at=datetime(2025, 1, 1, tzinfo=UTC)),
    ]


HELP_DESK_ACCOUNT = "-d"
"""The suffix of the account whose tickets live in the help desk (T8 with the seed's policy)."""


def _now() -> datetime:
    return datetime.now(UTC)


def topic_of(body: Any) -> str:
    """README "Topics": channel messages, conversation commands, ticket commands (and accounts)."""
    if body.type == "inbound.message":
        return INBOUND_MESSAGES
    if body.type == "account":
        return ACCOUNTS
    return TICKET_COMMANDS if isinstance(body, (c.TicketCommand, c.CreateTicket)) else CONVERSATION_COMMANDS


def key_of(body: Any) -> str:
    """README "Topics": the key of each kind of record."""
    if body.type == "inbound.message":
        return f"{body.account_id}:{body.channel.value}:{body.channel_thread_key}"
    if body.type == "account":
        return str(body.account_id)
    return str(getattr(body, "ticket_id", None) or body.conversation_id)


def contract_record(body: Any, kind: str, source: str) -> Record:
    key = key_of(body)
    message_id = getattr(body, "command_id", None) or str(uuid.uuid4())
    headers = cloudevents(message_id, body.type, source, key, body.account_id)
    return Record(topic_of(body), key.encode(), body.model_dump_json().encode(), headers + [(KIND, kind.encode())],
                  kind)


class Threads:
    """The channels' threads: each account's thread keys, with the contact that writes on each."""

    def __init__(self, rng: random.Random, run: str, account_ids: list[str]) -> None:
        self.rng = rng
        self.run = run
        self.account_ids = account_ids
        self.threads: dict[str, list[tuple[Channel, str, str]]] = {a: [] for a in account_ids}
        self.count = 0

    def new(self, account: str) -> tuple[Channel, str, str]:
        self.count += 1
        channel = self.rng.choice([Channel.EMAIL, Channel.EMAIL, Channel.CHAT, Channel.WHATSAPP])
        contact = f"{self.rng.randrange(400)}"
        thread = (channel, f"{self.run}-t{self.count}", contact)
        self.threads[account].append(thread)
        return thread

    def existing(self, account: str) -> tuple[Channel, str, str]:
        pool = self.threads[account]
        return self.rng.choice(pool) if pool else self.new(account)

    def message(self, account: str, new_thread: bool) -> Record:
        channel, thread, contact = self.new(account) if new_thread else self.existing(account)
        email = f"contact{contact}@{account}.example" if channel is not Channel.WHATSAPP else None
        phone = f"+4420{int(contact):07d}" if channel is Channel.WHATSAPP else None
        msg = InboundMessage(
            account_id=account, channel=channel, channel_message_id=f"<{uuid.uuid4().hex}@{self.run}>",
            channel_thread_key=thread, sender_email=email, sender_phone=phone, sender_name=f"Contact {contact}",
            subject="Order question" if channel is Channel.EMAIL else None,
            text=self.rng.choice(["Where is my order?", "It arrived broken.", "Thanks!", "Any news?"]),
            sent_at=_now() - timedelta(seconds=1))
        return contract_record(msg, "inbound", "/chaos/channel")


def command(cls: type, account: str, help_desk: bool, **fields: Any) -> Record:
    body = cls(command_id=f"cmd-{uuid.uuid4().hex}", account_id=account, actor_id="agent-7",
               from_workspace=Workspace.HELP_DESK if help_desk else Workspace.INBOX, **fields)
    return contract_record(body, "command", "/chaos/agent")


def poison(rng: random.Random, topic: str, account: str, key: bytes) -> Record:
    """A record that must be dead-lettered, with the reason it must carry."""
    if topic == INBOUND_MESSAGES:
        good = {"type": "inbound.message", "account_id": account, "channel": "email",
                "channel_message_id": f"<{uuid.uuid4().hex}@poison>", "channel_thread_key": key.decode(),
                "sender_email": "poison@example.com", "text": "x", "sent_at": _now().isoformat()}
        kinds: list[tuple[str, bytes]] = [
            ("not_json", json.dumps(good).encode()[:-7]),
            ("not_json", b"\xff\xfe" + rng.randbytes(24)),
            ("not_an_object", b"[1, 2, 3]"),
            ("empty_message", b""),
            ("unknown_type", json.dumps({**good, "type": "inbound.fax"}).encode()),
            ("invalid_schema", json.dumps({**good, "text": 42}).encode()),
            ("invalid_schema", json.dumps({**good, "sender_email": None}).encode()),
            ("unknown_account", json.dumps({**good, "account_id": f"{account}-never-published"}).encode()),
        ]
    else:
        good = {"type": "close_conversation" if topic == CONVERSATION_COMMANDS else "delete_ticket",
                "command_id": f"cmd-{uuid.uuid4().hex}", "account_id": account, "conversation_id": key.decode(),
                "ticket_id": key.decode()}
        if topic == CONVERSATION_COMMANDS:
            del good["ticket_id"]
        else:
            del good["conversation_id"]
        kinds = [
            ("not_json", b"{\"type\": \"close_conv"),
            ("not_an_object", b"\"just a string\""),
            ("missing_type", json.dumps({k: v for k, v in good.items() if k != "type"}).encode()),
            ("unknown_type", json.dumps({**good, "type": "explode_everything"}).encode()),
            ("invalid_schema", json.dumps({k: v for k, v in good.items() if k != "command_id"}).encode()),
        ]
    reason, value = rng.choice(kinds)
    kind = f"{POISON}{reason}"
    return Record(topic, key, value, [(KIND, kind.encode())], kind)


POISON_TOPICS = (INBOUND_MESSAGES, INBOUND_MESSAGES, INBOUND_MESSAGES, CONVERSATION_COMMANDS, TICKET_COMMANDS)
COMMAND_TOPICS = (CONVERSATION_COMMANDS, TICKET_COMMANDS)
