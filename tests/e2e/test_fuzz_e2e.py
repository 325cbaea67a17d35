"""X4/X5 under a seeded fuzz of hostile records on the inbound topic and both command topics, end to
end on the real broker and database: every record sent is either processed (its effect, or its
rejection, seen exactly once) or dead-lettered with the expected reason, never both and never
neither; the consumer groups end with lag 0 and the workers still process good records.

`TICKETFLOW_FUZZ_RECORDS` (default 3,700: about 2,000 of them hostile) and `TICKETFLOW_FUZZ_SEED` (default 20261125) size and
reproduce a run; the seed is in every failure message.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts.envelope import Envelope
from contracts.topics import (
    CONVERSATION_COMMANDS,
    DEADLETTER,
    INBOUND_MESSAGES,
    TICKET_COMMANDS,
)
from tests.support.system import new_id
from workers.delivery.parsing import MAX_JSON_DEPTH
from workers.kafka import make_producer

RECORDS = int(os.environ.get("TICKETFLOW_FUZZ_RECORDS", "3700"))
SEED = int(os.environ.get("TICKETFLOW_FUZZ_SEED", "20261125"))
JSON_CT = ("content-type", b"application/json")


@dataclass
class Sent:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    expect: str
    """"dead:<reason>" or "effect:<channel message id or command id>" or "repeat:<channel message id>"."""
    partition: int = -1
    offset: int = -1


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Fuzzer:
    """Makes good and hostile records; each knows what must become of it."""

    def __init__(self, rng: random.Random, account: str, conversations: list[str], ticket: str) -> None:
        self.rng = rng
        self.account = account
        self.conversations = conversations
        self.ticket = ticket
        self.good_inbound: list[Sent] = []

    # --- inbound messages -------------------------------------------------------------------
    def inbound_body(self, **overrides: Any) -> dict[str, Any]:
        body = {"type": "inbound.message", "account_id": self.account, "channel": "email",
                "channel_message_id": new_id("fz-"), "channel_thread_key": f"thread-{self.rng.randrange(40)}",
                "sender_email": f"c{self.rng.randrange(30)}@fuzz.example", "text": "fuzz " * self.rng.randrange(1, 9),
                "sent_at": _now()}
        body.update(overrides)
        return body

    def inbound(self, body: dict[str, Any], headers: list[tuple[str, bytes]] | None, expect: str,
                value: bytes | None = None) -> Sent:
        key = f"{self.account}:email:{body.get('channel_thread_key', 'x')}".encode()
        data = value if value is not None else json.dumps(body).encode()
        return Sent(INBOUND_MESSAGES, key, data, headers if headers is not None else [JSON_CT], expect)

    def good(self) -> Sent:
        body = self.inbound_body()
        sent = self.inbound(body, None, f"effect:{body['channel_message_id']}")
        self.good_inbound.append(sent)
        return sent

    def repeat(self) -> Sent:
        if not self.good_inbound:
            return self.good()
        first = self.rng.choice(self.good_inbound)
        return Sent(first.topic, first.key, first.value, first.headers, "repeat:" + first.expect.split(":", 1)[1])

    def hostile_inbound(self) -> Sent:
        rng = self.rng
        body = self.inbound_body()
        good = json.dumps(body).encode()
        kinds: list[tuple[str, Any]] = [
            ("not_json", lambda: self.inbound(body, None, "", good[: rng.randrange(1, len(good) - 1)])),
            ("not_json", lambda: self.inbound(body, None, "", b"\xff" + rng.randbytes(rng.randrange(1, 200)))),
            ("empty_message", lambda: self.inbound(body, None, "", b"")),
            ("not_an_object", lambda: self.inbound(body, None, "", rng.choice([b"[]", b"42", b'"text"', b"null"]))),
            ("too_deep", lambda: self.inbound(body, None, "", b"[" * 50_000 + b"]" * 50_000)),
            ("too_deep", lambda: self.inbound(body, None, "", _nested(rng.randrange(MAX_JSON_DEPTH + 1, 3000)))),
            ("not_utf8_header", lambda: self.inbound(body, [("ce_id", b"\xff\xfe"), JSON_CT], "")),
            ("not_utf8_header", lambda: self.inbound(body, [("content-type", b"application/\xc3")], "")),
            ("invalid_header", lambda: self.inbound(body, [("ce_id", b"e"), ("ce_type", b"t"),
                                                           ("ce_correlationid", b"c" * rng.randrange(300, 60_000))],
                                                    "")),
            ("invalid_header", lambda: self.inbound(body, [("ce_causationid", b"a\r\nb")], "")),
            ("unknown_type", lambda: self.inbound({**body, "type": "inbound.fax"}, None, "")),
            ("invalid_schema", lambda: self.inbound({**body, "text": "nul\x00here"}, None, "")),
            ("invalid_schema", lambda: self.inbound({**body, "text": rng.randrange(10**6)}, None, "")),
            ("invalid_schema", lambda: self.inbound({**body, "sender_email": None}, None, "")),
            ("invalid_schema", lambda: self.inbound({**body, "sent_at": "2026-01-01T00:00:00"}, None, "")),
            ("invalid_schema", lambda: self.inbound({**body, "surprise": True}, None, "")),
            ("invalid_schema", lambda: self.inbound({**body, "channel": "carrier-pigeon"}, None, "")),
            ("invalid_schema", lambda: self.inbound({**body, "account_id": ""}, None, "")),
        ]
        reason, make = rng.choice(kinds)
        sent = make()
        sent.expect = f"dead:{reason}"
        return sent

    # --- commands ---------------------------------------------------------------------------
    def command(self, topic: str, body: dict[str, Any], expect: str, key: str,
                headers: list[tuple[str, bytes]] | None = None, value: bytes | None = None) -> Sent:
        if headers is None:
            env = Envelope(id=body.get("command_id", new_id()), type=str(body.get("type")), source="/fuzz",
                           time=datetime.now(UTC), subject=key, account_id=self.account)
            headers = env.to_headers()
        return Sent(topic, key.encode(), value if value is not None else json.dumps(body).encode(), headers, expect)

    def good_command(self) -> Sent:
        conv = self.rng.choice(self.conversations)
        cid = new_id("fzc-")
        if self.rng.random() < 0.5:
            body = {"type": "reply_to_conversation", "command_id": cid, "account_id": self.account,
                    "conversation_id": conv, "text": "on it"}
            return self.command(CONVERSATION_COMMANDS, body, f"effect:{cid}", conv)
        if self.rng.random() < 0.5:
            body = {"type": "change_ticket_owner", "command_id": cid, "account_id": self.account,
                    "ticket_id": self.ticket, "owner_id": new_id("agent-")}
        else:  # T4: rejected, naming the unknown property
            body = {"type": "update_ticket_properties", "command_id": cid, "account_id": self.account,
                    "ticket_id": self.ticket, "properties": {new_id("nope_"): 1}}
        return self.command(TICKET_COMMANDS, body, f"effect:{cid}", self.ticket)

    def hostile_command(self) -> Sent:
        rng = self.rng
        topic = rng.choice([CONVERSATION_COMMANDS, TICKET_COMMANDS])
        conv = rng.choice(self.conversations)
        body = ({"type": "close_conversation", "command_id": new_id(), "account_id": self.account,
                 "conversation_id": conv} if topic == CONVERSATION_COMMANDS else
                {"type": "change_ticket_owner", "command_id": new_id(), "account_id": self.account,
                 "ticket_id": self.ticket, "owner_id": "x"})
        key = conv if topic == CONVERSATION_COMMANDS else self.ticket
        raw = json.dumps(body).encode()
        kinds: list[tuple[str, Any]] = [
            ("not_json", lambda: self.command(topic, body, "", key, value=raw[: rng.randrange(1, len(raw) - 1)])),
            ("not_json", lambda: self.command(topic, body, "", key, value=b"\xfe" + rng.randbytes(50))),
            ("too_deep", lambda: self.command(topic, body, "", key, value=b"[" * 20_000 + b"]" * 20_000)),
            ("not_utf8_header", lambda: self.command(topic, body, "", key, headers=[("ce_id", b"\xff")])),
            ("invalid_header", lambda: self.command(topic, body, "", key, headers=[("ce_id", b"i" * 5000)])),
            ("unknown_type", lambda: self.command(topic, {**body, "type": "explode"}, "", key)),
            ("missing_type", lambda: self.command(topic, {k: v for k, v in body.items() if k != "type"}, "", key)),
            ("invalid_schema", lambda: self.command(topic, {k: v for k, v in body.items() if k != "command_id"},
                                                    "", key, headers=[])),
            ("invalid_schema", lambda: self.command(topic, {**body, "account_id": "a\x00b"}, "", key, headers=[])),
            ("invalid_schema", lambda: self.command(topic, {**body, "command_id": "c" * 500}, "", key, headers=[])),
            ("not_an_object", lambda: self.command(topic, body, "", key, value=b"[1, 2]")),
        ]
        reason, make = rng.choice(kinds)
        sent = make()
        sent.expect = f"dead:{reason}"
        return sent

    def next(self) -> Sent:
        roll = self.rng.random()
        if roll < 0.30:
            return self.hostile_inbound()
        if roll < 0.55:
            return self.hostile_command()
        if roll < 0.75:
            return self.good()
        if roll < 0.80:
            return self.repeat()
        return self.good_command()


async def _send_all(bootstrap: str, prefix: str, records: list[Sent]) -> None:
    producer = make_producer(bootstrap, "fuzz")
    await producer.start()
    try:
        futures = [await producer.send(prefix + r.topic, key=r.key, value=r.value, headers=r.headers)
                   for r in records]
        for record, meta in zip(records, await asyncio.gather(*futures), strict=True):
            record.partition, record.offset = meta.partition, meta.offset
    finally:
        await producer.stop()


async def test_x4_x5_fuzz_every_record_is_processed_or_dead_lettered_exactly_once(system):
    rng = random.Random(SEED)
    account = await system.account()
    conversations = [await system.new_conversation(account, thread=f"thread-{i}") for i in range(3)]
    ticket = await system.new_ticket(account, conversations[0])
    await system.settle()
    fuzz = Fuzzer(rng, account, conversations, ticket)
    records = [fuzz.next() for _ in range(RECORDS)]
    await _send_all(system.settings.bootstrap_servers, system.settings.topic_prefix, records)
    await system.settle(timeout=max(60.0, RECORDS / 10))  # a generous bound: this is no speed test
    sentinel = system.inbound(account)
    await system.receive(sentinel)  # the workers still take good records after all of it
    await system.settle()

    prefix = system.settings.topic_prefix
    mine = {(prefix + r.topic, r.partition, r.offset) for r in records}
    dead: Counter[tuple[str, int, int]] = Counter()
    dead_reason: dict[tuple[str, int, int], str] = {}
    for r in system.probe.matching(lambda r: r.topic.endswith(DEADLETTER)):
        coords = (r.headers["dlq_original_topic"], int(r.headers["dlq_original_partition"]),
                  int(r.headers["dlq_original_offset"]))
        if coords not in mine:
            continue
        dead[coords] += 1
        dead_reason[coords] = r.headers["dlq_reason"]
    received = Counter(r.body["channel_message_id"] for r in system.probe.matching(
        lambda r: r.type == "conversation.message_received" and r.body["account_id"] == account))
    caused = Counter(r.headers.get("ce_causationid") for r in system.probe.matching(
        lambda r: r.topic.endswith(("conversation.events.v1", "ticket.events.v1")) and r.body["account_id"] == account))
    rejected = Counter(r.body["command_id"] for r in system.probe.matching(lambda r: r.type == "command.rejected"))

    problems: list[str] = []
    processed = dead_lettered = 0
    for r in records:
        coords = (prefix + r.topic, r.partition, r.offset)
        kind, what = r.expect.split(":", 1)
        if kind == "dead":
            if dead[coords] != 1 or dead_reason.get(coords) != what:
                problems.append(f"{coords}: expected one dead letter {what}, saw {dead[coords]} "
                                f"({dead_reason.get(coords)})")
            dead_lettered += dead[coords] == 1
            continue
        if dead[coords]:
            problems.append(f"{coords}: a good record was dead-lettered ({dead_reason[coords]})")
            continue
        outcomes = received[what] if r.topic == INBOUND_MESSAGES else caused[what] + rejected[what]
        if outcomes != 1:
            problems.append(f"{coords}: {r.expect} has {outcomes} effects, expected exactly 1")
            continue
        processed += 1
    summary = (f"seed {SEED}: sent {len(records)}, processed {processed}, dead-lettered {dead_lettered}, "
               f"hostile {sum(r.expect.startswith('dead') for r in records)}")
    print(summary, "; by reason:", dict(Counter(dead_reason.values())))
    assert problems == [], f"{summary}; {len(problems)} problems, first: {problems[:10]}"
    assert processed + dead_lettered == len(records), summary
    assert sum(dead.values()) == dead_lettered, f"{summary}: a record was dead-lettered twice"
    assert RECORDS < 3700 or sum(r.expect.startswith("dead") for r in records) >= 2000, summary
