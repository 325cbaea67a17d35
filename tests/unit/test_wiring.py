"""Wiring, without a broker: every worker subscribes to the catalogue's topics with the groups that
operators and `ticketflow lag` expect, with an ack policy that never commits before the work is
done, and the JSON Schemas in docs/schemas are the ones the models generate today."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, get_args

import pytest
from faststream import AckPolicy

from contracts.schema import SCHEMAS, json_schemas
from contracts.topics import (
    ACCOUNTS,
    CATALOGUE,
    CONVERSATION_COMMANDS,
    CONVERSATION_COMMANDS_INTERNAL,
    CONVERSATION_EVENTS,
    INBOUND_MESSAGES,
    OUTBOUND_MESSAGES,
    REJECTIONS,
    TICKET_COMMANDS,
    TICKET_COMMANDS_INTERNAL,
    TICKET_EVENTS,
)
from ticketflow.running import WORKERS, build_worker, worker_groups
from workers.settings import Settings

REPO = Path(__file__).resolve().parents[2]

OPERATORS_GROUPS = (
    ("inbound", "messages", INBOUND_MESSAGES), ("inbound", "commands", CONVERSATION_COMMANDS),
    ("inbound", "accounts", ACCOUNTS), ("inbound", "sync-commands", CONVERSATION_COMMANDS_INTERNAL),
    ("ticketing", "commands", TICKET_COMMANDS), ("ticketing", "sync-commands", TICKET_COMMANDS_INTERNAL),
    ("ticketing", "conversations", CONVERSATION_EVENTS), ("ticketing", "accounts", ACCOUNTS),
    ("sync", "ticket-events", TICKET_EVENTS), ("sync", "conversation-events", CONVERSATION_EVENTS),
)
"""(worker, input, topic) of every consumer group, as the README and operators' dashboards name them."""


def test_x5_every_worker_group_reads_its_catalogue_topic_with_a_manual_ack_policy():
    settings = Settings(topic_prefix="wiring.")
    seen = set()
    for name in WORKERS:
        worker = build_worker(name, settings)
        for sub in worker.broker.subscribers:
            (topic,) = [t.name for t in sub.topics]
            seen.add((sub.group_id, topic))
            assert sub.ack_policy is AckPolicy.MANUAL
    expected = {(settings.group(w, p), settings.topic(t)) for w, p, t in OPERATORS_GROUPS}
    assert seen == expected
    assert set(worker_groups(settings)) == expected  # what `ticketflow lag` measures
    catalogued = {settings.topic(spec.name) for spec in CATALOGUE}
    assert {t for _g, t in seen} <= catalogued


def _members(model: object) -> list[type]:
    args = get_args(model)
    if not args:
        return [model]  # type: ignore[list-item]
    return [m for a in args for m in _members(a) if isinstance(m, type)]


def test_x3_every_message_type_routes_to_the_catalogue_topic_that_carries_it():
    expected = {
        "conversation-command": CONVERSATION_COMMANDS, "ticket-command": TICKET_COMMANDS,
        "conversation-event": CONVERSATION_EVENTS, "ticket-event": TICKET_EVENTS, "command.rejected": REJECTIONS,
        "outbound.message": OUTBOUND_MESSAGES, "inbound.message": INBOUND_MESSAGES, "account": ACCOUNTS,
    }
    for schema_name, model in SCHEMAS.items():
        for cls in _members(model):
            assert expected[schema_name] == cls.TOPIC, (schema_name, cls.__name__)


def test_json_schemas_in_docs_are_generated_from_the_models():
    for name, schema in json_schemas().items():
        path = REPO / "docs" / "schemas" / f"{name}.schema.json"
        assert path.exists(), f"run `ticketflow schemas` to write {path}"
        assert json.loads(path.read_text()) == schema, f"{path} is stale: run `ticketflow schemas`"


async def test_x5_a_worker_starts_all_its_consumers_together_so_a_restart_is_one_rebalance_per_group(monkeypatch):
    """Each consumer's start returns only once its group has assigned it partitions; started one after
    another, every later consumer of a group waits out a rebalance (see workers.broker). Here every
    start waits until all of them have begun: started in turn, the first would wait forever."""
    worker = build_worker("inbound", Settings(topic_prefix="wiring.", consumers_per_input=2))
    subs = list(worker.broker.subscribers)
    assert len(subs) == 8, "four inputs, two consumers each"
    everyone = asyncio.Barrier(len(subs))
    started: list[object] = []

    def fake_start(sub: object) -> Any:
        async def start() -> None:
            await everyone.wait()
            started.append(sub)
        return start

    for sub in subs:
        monkeypatch.setattr(sub, "start", fake_start(sub))
    monkeypatch.setattr(worker.broker, "connect", _nothing)
    await asyncio.wait_for(worker.broker.start(), 10)
    assert len(started) == len(subs) and worker.broker.running


async def test_x5_when_one_consumer_cannot_start_every_consumer_is_stopped_before_the_error_is_raised(monkeypatch):
    worker = build_worker("inbound", Settings(topic_prefix="wiring."))
    subs = list(worker.broker.subscribers)
    stopped: list[bool] = []

    async def refuse() -> None:
        raise ConnectionError("broker went away")

    async def stop(*_args: Any) -> None:
        stopped.append(True)

    for sub in subs:
        monkeypatch.setattr(sub, "start", _nothing)
    monkeypatch.setattr(subs[-1], "start", refuse)
    monkeypatch.setattr(worker.broker, "connect", _nothing)
    monkeypatch.setattr(worker.broker, "stop", stop)
    with pytest.raises(ConnectionError, match="went away"):
        await worker.broker.start()
    assert stopped == [True] and not worker.broker.running


async def _nothing(*_args: Any) -> None:
    return None


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Consumer:
    """getmany as aiokafka's: waits up to its timeout for records (on a fake clock), or returns at once."""

    def __init__(self, clock: _Clock, polls: list[dict[str, list[str]]], waits: bool, seen: list[str]) -> None:
        self.clock, self.polls, self.waits, self.seen = clock, polls, waits, seen

    async def getmany(self, timeout_ms: int, max_records: int | None = None) -> dict[str, list[str]]:
        records = self.polls.pop(0)
        if not records and self.waits:
            self.clock.now += timeout_ms / 1000
        self.seen.append(f"poll {sum(map(len, records.values()))}")
        return records


@pytest.mark.parametrize("waits", [True, False], ids=["poll-waited-its-timeout", "poll-returned-at-once"])
async def test_x4_an_idle_batch_input_polls_again_at_once_after_an_empty_poll(monkeypatch, waits):
    """FastStream's batch subscriber slept `batch_timeout_ms` after every empty poll, on top of the poll's
    own wait, so a record reaching an idle input waited up to 200 ms more (workers.faststream_fixes).
    After a poll that waited its timeout the next poll comes at once; a poll that came back empty at
    once (no partitions yet) waits out the rest of its timeout, so an idle loop never spins."""
    import anyio

    from workers import faststream_fixes
    worker = build_worker("inbound", Settings(topic_prefix="wiring."))
    sub = next(s for s in worker.broker.subscribers if getattr(s, "batch_timeout_ms", None))
    clock, seen = _Clock(), []

    async def sleep(seconds: float) -> None:
        seen.append(f"sleep {seconds:.3f}")
        clock.now += seconds

    monkeypatch.setattr(faststream_fixes, "monotonic", clock)
    monkeypatch.setattr(anyio, "sleep", sleep)
    consumer = _Consumer(clock, [{}, {"tp": ["a", "b"]}], waits, seen)
    assert await sub.get_msg(consumer) == ()
    assert await sub.get_msg(consumer) == ("a", "b")
    timeout = f"sleep {sub.batch_timeout_ms / 1000:.3f}"
    assert seen == (["poll 0", "poll 2"] if waits else ["poll 0", timeout, "poll 2"])


async def test_x4_every_input_hands_its_message_to_the_handler_without_a_thread(monkeypatch):
    """FastStream resolves a `message: KafkaMessage` parameter through a synchronous context lookup,
    which FastDepends runs in a worker thread: a thread hop (about 0.5 ms of CPU) for every batch, and
    for every record of the accounts inputs. Every input of every worker now takes its message without
    one, and still gets the records as they came."""
    import anyio.to_thread
    from faststream.kafka import TestKafkaBroker

    from workers.delivery.batch import BatchRunner
    from workers.delivery.reliable import ReliableHandler

    hops: list[object] = []
    real_run_sync = anyio.to_thread.run_sync

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(func)
        return await real_run_sync(func, *args, **kwargs)

    handled: list[bytes] = []

    async def batch_handle(self: BatchRunner, message: Any) -> None:
        handled.extend(record.value for record in message.raw_message)

    async def one_handle(self: ReliableHandler, message: Any, _process: Any) -> None:
        handled.append(message.raw_message.value)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    monkeypatch.setattr(BatchRunner, "handle", batch_handle)
    monkeypatch.setattr(ReliableHandler, "handle", one_handle)
    settings = Settings(topic_prefix="wiring.")
    published = []
    for name in WORKERS:
        worker = build_worker(name, settings)
        async with TestKafkaBroker(worker.broker) as broker:
            for sub in worker.broker.subscribers:
                (topic,) = [t.name for t in sub.topics]
                await broker.publish(f"{sub.group_id} {topic}".encode(), topic)
                published.append(f"{sub.group_id} {topic}".encode())
    assert hops == []
    assert sorted(handled) == sorted(published)
