"""The verdict, from the outside: the input topics as the broker accepted them, the output topics read
from the beginning, and the tables.

- lost: an accepted input with no effect, no rejection, no dead letter (and, for a command that
  changed nothing, no processed id either); a sync reaction an event calls for that never reached its
  command topic; a table row without its event; the ticketing worker's view of a conversation behind
  the last event that changes it (created, owner changed, moved to the help desk, deleted: the others
  only move the conversation's version on, and the view passes them over).
- duplicated: one input causing the same event (type, aggregate, conversation) twice under different
  `ce_id`s, or a rejection twice, or both effects and a rejection; a row counted twice.
- version gaps: per conversation and per ticket, the versions on the topic (deduplicated by `ce_id`;
  a repeat of the same `ce_id` is `republished`, allowed) are not 1..n in order, or the table holds a
  newer version than the topic.
- dead letters vs poison: every poison record dead-lettered, with the reason it was made for; a
  valid record dead-lettered, or any `processing_failed`, is a transient failure dead-lettered.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer

from contracts.topics import (
    CONVERSATION_COMMANDS,
    CONVERSATION_COMMANDS_INTERNAL,
    CONVERSATION_EVENTS,
    DEADLETTER,
    INBOUND_MESSAGES,
    OUTBOUND_MESSAGES,
    REJECTIONS,
    TICKET_COMMANDS,
    TICKET_COMMANDS_INTERNAL,
    TICKET_EVENTS,
)
from tests.chaos.names import Run, partitions_of
from tests.chaos.records import KIND, POISON

Coords = tuple[str, int, int]


VIEWED = frozenset({"conversation.created", "conversation.owner_changed", "conversation.moved_to_help_desk",
                    "conversation.deleted"})
"""The conversation events the ticketing worker's view applies (`workers.ticketing.domain.PROJECTED_EVENTS`)."""


def reactions(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(command type, conversation id) the sync worker must send for an event (RULES.md S1, S2, S3, S5,
    T7, T8): the commands it sends carry the event's `ce_id` as their `ce_causationid`."""
    kind, convs = body["type"], body.get("conversation_ids", [])
    if kind == "ticket.closed":
        return [("close_conversation", cid) for cid in convs]
    if kind == "ticket.reopened":
        return [("reopen_conversation", convs[0])] if len(convs) == 1 else []
    if kind == "ticket.deleted":
        return [("trash_conversation", cid) for cid in convs]
    if kind == "ticket.created" and body.get("workspace") == "help_desk":
        return [("move_conversation_to_help_desk", cid) for cid in convs]
    if kind == "conversation.owner_changed":
        return [("apply_conversation_owner_to_ticket", body["conversation_id"])]
    if kind == "conversation.deleted":
        return [("delete_ticket_of_conversation", body["conversation_id"])]
    return []


async def scan(bootstrap: str, topic: str, handle: Any) -> int:
    """Call `handle(record)` for every record of `topic`, from the beginning to the end it has now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=8 << 20)
    await consumer.start()
    count = 0
    try:
        parts = await partitions_of(bootstrap, [topic])
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        todo = {tp for tp in parts if ends[tp] > 0}
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < ends[tp]:
                        handle(record)
                        count += 1
            for tp in list(todo):
                if await consumer.position(tp) >= ends[tp]:
                    todo.discard(tp)
    finally:
        await consumer.stop()
    return count


def _headers(record: Any) -> dict[str, str]:
    return {k: v.decode(errors="replace") for k, v in record.headers or ()}


@dataclass
class Findings:
    """Counts, and up to a few examples of each problem (for the report and for reproducing it)."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, what: str, example: str = "", n: int = 1) -> None:
        self.counts[what] += n
        if example and len(self.examples[what]) < 5:
            self.examples[what].append(example)


class Checker:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.f = Findings()
        self.poison: dict[Coords, str] = {}
        self.valid: set[Coords] = set()
        self.inbound: dict[tuple[str, str], list[Coords]] = defaultdict(list)
        self.inbound_cause: dict[tuple[str, str], str] = {}
        self.commands: dict[tuple[str, str], dict[str, Any]] = {}
        self.event_ids: dict[str, tuple[str, int]] = {}
        self.effects: dict[str, Counter[tuple[str, str, str]]] = defaultdict(Counter)
        self.received: Counter[tuple[str, str]] = Counter()
        self.versions: dict[str, list[int]] = defaultdict(list)
        self.viewed: dict[str, int] = {}
        """Per conversation, the version of the last event the ticketing worker's view applies."""
        self.created: dict[str, set[str]] = {"conversation": set(), "ticket": set()}
        self.message_ids: set[str] = set()
        self.expected_reactions: dict[tuple[str, str, str], str] = {}
        self.sent_reactions: set[tuple[str, str, str]] = set()
        self.rejected: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.dead: dict[Coords, list[tuple[str, str]]] = defaultdict(list)

    # --- reading ------------------------------------------------------------------------
    async def read(self) -> None:
        t = self.run.topic
        boot = self.run.bootstrap
        self.f.counts["records_inbound"] = await scan(boot, t(INBOUND_MESSAGES), self._inbound)
        self.f.counts["records_commands"] = sum([
            await scan(boot, t(topic), self._command)  # agents' commands, and the sync worker's (ADR 10)
            for topic in (CONVERSATION_COMMANDS, TICKET_COMMANDS, CONVERSATION_COMMANDS_INTERNAL,
                          TICKET_COMMANDS_INTERNAL)])
        self.f.counts["records_events"] = (await scan(boot, t(CONVERSATION_EVENTS), self._event)
                                           + await scan(boot, t(TICKET_EVENTS), self._event))
        await scan(boot, t(OUTBOUND_MESSAGES), self._outbound)
        await scan(boot, t(REJECTIONS), self._rejection)
        await scan(boot, t(DEADLETTER), self._dead_letter)

    def _valid(self, record: Any) -> tuple[Coords, dict[str, str], dict[str, Any]] | None:
        """A valid input's coordinates, headers and body; a poison record is filed and None returned."""
        coords = (record.topic, record.partition, record.offset)
        headers = _headers(record)
        kind = headers.get(KIND, "")
        if kind.startswith(POISON):
            self.poison[coords] = kind[len(POISON):]
            return None
        self.valid.add(coords)
        return coords, headers, json.loads(record.value)

    def _inbound(self, record: Any) -> None:
        if (valid := self._valid(record)) is None:
            return
        coords, headers, body = valid
        key = (body["account_id"], body["channel_message_id"])
        self.inbound[key].append(coords)
        self.inbound_cause[key] = headers.get("ce_id", "")

    def _command(self, record: Any) -> None:
        if (valid := self._valid(record)) is None:
            return
        coords, headers, body = valid
        key = (body["account_id"], body["command_id"])
        seen = self.commands.setdefault(key, {"type": body["type"], "copies": 0, "coords": [],
                                              "source": headers.get("ce_source", "")})
        seen["copies"] += 1
        seen["coords"].append(coords)
        if not seen["source"].startswith("/chaos"):
            self.sent_reactions.add((headers.get("ce_causationid", ""), body["type"], body.get("conversation_id", "")))

    def _event(self, record: Any) -> None:
        headers = _headers(record)
        ce_id = headers.get("ce_id", "")
        if ce_id in self.event_ids:
            self.f.add("republished")
            if self.event_ids[ce_id] != (record.key.decode(), json.loads(record.value)["version"]):
                self.f.add("republished_changed", f"{ce_id} republished with another key or version")
            return
        body = json.loads(record.value)
        kind, key, version = body["type"], record.key.decode(), body["version"]
        self.event_ids[ce_id] = (key, version)
        self.f.counts["events_distinct"] += 1
        self.versions[key].append(version)
        if kind in VIEWED:
            self.viewed[key] = max(version, self.viewed.get(key, 0))
        self.effects[headers.get("ce_causationid", "")][(kind, key, body.get("conversation_id", ""))] += 1
        if kind == "conversation.message_received":
            self.received[(body["account_id"], body["channel_message_id"])] += 1
        if kind in ("conversation.message_received", "conversation.message_sent"):
            self.message_ids.add(body["message_id"])
        if kind in ("conversation.created", "ticket.created"):
            self.created[kind.split(".")[0]].add(key)
        for command, conversation in reactions(body):
            self.expected_reactions[(ce_id, command, conversation)] = f"{kind} {ce_id} on {key}"

    def _outbound(self, record: Any) -> None:
        headers = _headers(record)
        ce_id = headers.get("ce_id", "")
        if ce_id in self.event_ids:
            self.f.add("republished")
            return
        self.event_ids[ce_id] = (record.key.decode(), 0)
        self.effects[headers.get("ce_causationid", "")][("outbound.message", record.key.decode(), "")] += 1

    def _rejection(self, record: Any) -> None:
        body = json.loads(record.value)
        self.rejected[(body["account_id"], body["command_id"])].add(_headers(record).get("ce_id", ""))

    def _dead_letter(self, record: Any) -> None:
        h = _headers(record)
        coords = (h.get("dlq_original_topic", "?"), int(h.get("dlq_original_partition", -1)),
                  int(h.get("dlq_original_offset", -1)))
        self.dead[coords].append((h.get("dlq_reason", "?"), h.get("dlq_consumer", "?")))

    # --- judging ------------------------------------------------------------------------
    def judge_inputs(self) -> None:
        f = self.f
        for key, coords in self.inbound.items():
            f.counts["inbound_accepted"] += 1
            f.counts["inbound_redeliveries"] += len(coords) - 1
            if any(c in self.dead for c in coords):
                continue  # a valid record dead-lettered: counted with the dead letters
            if self.received[key] == 0:
                f.add("lost_inbound", f"channel message {key} at {coords}: no conversation.message_received")
            self._duplicates(self.inbound_cause[key], f"channel message {key}")
        for (account, command_id), seen in self.commands.items():
            sync = not seen["source"].startswith("/chaos")
            f.counts["sync_commands" if sync else "agent_commands"] += 1
            f.counts["sync_command_repeats" if sync else "command_redeliveries"] += seen["copies"] - 1
            if any(c in self.dead for c in seen["coords"]):
                continue
            effects = self.effects.get(command_id)
            rejections = self.rejected.get((account, command_id), set())
            if effects and rejections:
                f.add("duplicated_commands", f"{seen['type']} {command_id}: both events and a rejection")
            elif len(rejections) > 1:
                f.add("duplicated_commands", f"{seen['type']} {command_id}: {len(rejections)} rejections")
            elif effects:
                f.counts["commands_with_events"] += 1
                self._duplicates(command_id, f"{seen['type']} {command_id}")
            elif rejections:
                f.counts["commands_rejected"] += 1
            else:
                self._unfinished.append((account, command_id, seen))
        for (event_id, command, conversation), cause in self.expected_reactions.items():
            if (event_id, command, conversation) not in self.sent_reactions:
                f.add("lost_reactions", f"{cause} should have caused {command} for {conversation}: "
                                        "not on its command topic")

    _unfinished: list[tuple[str, str, dict[str, Any]]]

    def _duplicates(self, cause: str, what: str) -> None:
        for (kind, key, conv), n in self.effects.get(cause, Counter()).items():
            if n > 1:
                self.f.add("duplicated_effects", f"{what}: {n} x {kind} on {key} {conv}".strip())

    def judge_versions(self) -> None:
        for key, versions in self.versions.items():
            if versions != list(range(1, len(versions) + 1)):
                gaps = sorted(set(range(1, max(versions) + 1)) - set(versions))
                disorder = any(b <= a for a, b in zip(versions, versions[1:], strict=False))
                self.f.add("version_gaps", f"{key}: versions {versions[:12]}{'...' if len(versions) > 12 else ''} "
                           f"(missing {gaps[:6]}, disorder={disorder})")

    def judge_dead_letters(self) -> None:
        f = self.f
        f.counts["poison_sent"] = len(self.poison)
        for coords, reason in self.poison.items():
            letters = self.dead.get(coords, [])
            if not letters:
                f.add("poison_not_dead_lettered", f"{coords} ({reason}): no dead letter")
                continue
            f.counts["dead_letters"] += 1
            f.counts["dead_letter_repeats"] += len(letters) - 1
            if len(letters) > 1:
                f.add("dead_letter_repeated", f"{coords}: {len(letters)} dead letters {letters}", 0)
            if any(got != reason for got, _consumer in letters):
                f.add("dead_letter_wrong_reason", f"{coords}: expected {reason}, got {letters}")
        for coords, letters in self.dead.items():
            if coords in self.poison:
                if any(reason == "processing_failed" for reason, _consumer in letters):
                    f.add("transient_dead_lettered", f"poison {coords} dead-lettered as processing_failed: {letters}")
                continue
            # a channel message or command the run sent as valid, or an event or account Ticketflow published
            f.add("transient_dead_lettered", f"valid record {coords}: {letters}")

    async def judge_tables(self) -> None:
        f = self.f
        conn = await asyncpg.connect(self.run.dsn)
        try:
            processed = {(r["account_id"], r["message_id"]) for r in await conn.fetch(
                "SELECT account_id, message_id FROM processed_messages")}
            stuck = {dict(json.loads(r["headers"]) if isinstance(r["headers"], str) else r["headers"]).get(
                "ce_causationid", "") for r in await conn.fetch("SELECT headers FROM outbox WHERE sent_at IS NULL")}
            conv_versions = {r["id"]: r["version"] for r in await conn.fetch("SELECT id, version FROM conversations")}
            ticket_versions = {r["id"]: r["version"] for r in await conn.fetch("SELECT id, version FROM tickets")}
            ref_versions = {r["id"]: r["version"] for r in await conn.fetch("SELECT id, version FROM conversation_refs")}
            stored_messages = {r["id"] for r in await conn.fetch("SELECT id FROM messages")}
            f.counts["outbox_unsent"] = await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            f.counts["outbox_parked"] = await conn.fetchval("SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL")
        finally:
            await conn.close()
        for account, command_id, seen in self._unfinished:
            if command_id in stuck:
                f.add("lost_commands", f"{seen['source']} {seen['type']} {command_id}: processed, but its "
                                       "events or rejection never left the outbox")
            elif (account, command_id) in processed or ("", command_id) in processed:
                f.counts["commands_without_change"] += 1
            else:
                f.add("lost_commands", f"{seen['source']} {seen['type']} {command_id} at {seen['coords']}: "
                                       "no event, no rejection, no dead letter, not processed")
        f.counts["conversations"] = len(conv_versions)
        f.counts["tickets"] = len(ticket_versions)
        f.counts["messages"] = len(stored_messages)
        for kind, stored in (("conversation", conv_versions), ("ticket", ticket_versions)):
            for aggregate, version in stored.items():
                on_topic = self.versions.get(aggregate, [])
                if aggregate not in self.created[kind]:
                    f.add("lost_events", f"{kind} {aggregate} is stored but its {kind}.created is not on the topic")
                elif version > len(on_topic):
                    f.add("version_gaps", f"{kind} {aggregate}: stored at version {version}, "
                                          f"the topic ends at {len(on_topic)}")
            for aggregate in sorted(self.created[kind] - stored.keys()):
                f.add("events_without_rows", f"{kind}.created {aggregate} published but no row")
        for missing in sorted(self.message_ids - stored_messages):
            f.add("events_without_rows", f"message {missing} published but not stored")
        for missing in sorted(stored_messages - self.message_ids):
            f.add("lost_events", f"message {missing} stored but no event")
        for conv, version in conv_versions.items():
            if ref_versions.get(conv, 0) != self.viewed.get(conv, 0):
                f.add("lost_projection", f"conversation {conv}: version {version}, its last viewed event "
                                         f"{self.viewed.get(conv)}, ticketing's view {ref_versions.get(conv)}")

    async def check(self) -> Findings:
        started = time.monotonic()
        self._unfinished = []
        await self.read()
        self.judge_inputs()
        self.judge_versions()
        self.judge_dead_letters()
        await self.judge_tables()
        self.f.counts["check_seconds"] = round(time.monotonic() - started)
        return self.f
