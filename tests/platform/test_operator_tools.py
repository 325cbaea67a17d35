"""X4 operator tools on the real broker, run as the operator runs them (`python -m ticketflow.cli ...`):
dead letters listed newest first and filtered, replayed to their original partition (one, or every match
of a filter), records that do not exist failing in one line, a wedged group skipped past one record
without losing it, and one clear line with a distinct exit code when Kafka or the database is down.
Every test works under a topic prefix of its own and deletes its topics afterwards."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.admin.records_to_delete import RecordsToDelete
from aiokafka.partitioner import DefaultPartitioner
from sqlalchemy.engine import make_url

from contracts.topics import (
    CATALOGUE,
    CONVERSATION_COMMANDS,
    DEADLETTER,
    INBOUND_MESSAGES,
)
from tests.platform.kafka_admin import (
    admin_client,
    create_topics,
    delete_topics_with_prefix,
)
from tests.support.services import REPO
from tests.support.services_private import free_port
from ticketflow.cli import parser
from ticketflow.running import worker_groups
from ticketflow.topology import partitions_of
from workers.kafka import make_producer
from workers.settings import Settings

pytestmark = pytest.mark.kafka

CLI_TIMEOUT = 180  # a guard against a hang, not a timing check
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m ticketflow.cli ARGS` with `env` on top of this process's environment."""
    return await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "ticketflow.cli", *args],
                                   env={**os.environ, **env}, cwd=REPO, capture_output=True, text=True,
                                   timeout=CLI_TIMEOUT)


def one_line(stderr: str) -> str:
    """The single line a failing command printed on stderr (asserting it is exactly one)."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def letter_headers(original_topic: str, partition: int, offset: int, reason: str, when: datetime,
                   consumer: str = "inbound.messages", **extra: str) -> list[tuple[str, bytes]]:
    """The dlq_* headers a worker writes (workers/delivery/deadletter.py), with a chosen dlq_time."""
    headers = {"dlq_original_topic": original_topic, "dlq_original_partition": str(partition),
               "dlq_original_offset": str(offset), "dlq_consumer": consumer, "dlq_error_class": "ValueError",
               "dlq_reason": reason, "dlq_detail": f"{reason} at {offset}", "dlq_time": when.isoformat(), **extra}
    return [(k, v.encode()) for k, v in headers.items()]


@dataclass
class Ops:
    """One test's own topics (the dead-letter and inbound topics of the catalogue) and its CLI environment."""

    settings: Settings

    @property
    def env(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": self.settings.bootstrap_servers,
                "TICKETFLOW_TOPIC_PREFIX": self.settings.topic_prefix}

    @property
    def dlq(self) -> str:
        return self.settings.topic(DEADLETTER)

    @property
    def inbound(self) -> str:
        return self.settings.topic(INBOUND_MESSAGES)

    async def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return await run_cli(self.env, *args)

    async def produce(self, topic: str, partition: int, key: bytes | None, value: bytes,
                      headers: list[tuple[str, bytes]] | None = None) -> int:
        producer = make_producer(self.settings.bootstrap_servers, "operator-tools-test")
        await producer.start()
        try:
            sent = await producer.send_and_wait(topic, value=value, key=key, partition=partition, headers=headers or [])
            return sent.offset
        finally:
            await producer.stop()

    async def dead_letter(self, partition: int, reason: str, when: datetime, original_partition: int = 0,
                          original_offset: int = 0, original_topic: str | None = None, key: bytes = b"k",
                          value: bytes = b"{}", **extra: str) -> int:
        headers = [("origin", b"gateway-7"),
                   *letter_headers(original_topic or self.inbound, original_partition, original_offset, reason,
                                   when, **extra)]
        return await self.produce(self.dlq, partition, key, value, headers)

    async def read_all(self, topic: str) -> list[Any]:
        """Every record on `topic` now, in partition then offset order."""
        parts = await partitions_of(self.settings.bootstrap_servers, [topic])
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap_servers, enable_auto_commit=False)
        await consumer.start()
        try:
            ends = await consumer.end_offsets(parts)
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            records: list[Any] = []
            while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
                for recs in (await consumer.getmany(timeout_ms=1000)).values():
                    records += recs
            return sorted(records, key=lambda r: (r.partition, r.offset))
        finally:
            await consumer.stop()

    async def committed(self, group: str, tp: TopicPartition) -> int:
        async with admin_client(self.settings.bootstrap_servers) as admin:
            return (await admin.list_consumer_group_offsets(group, partitions=[tp]))[tp].offset

    async def commit(self, group: str, tp: TopicPartition, offset: int) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap_servers, group_id=group,
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([tp])
            await consumer.commit({tp: offset})
        finally:
            await consumer.stop()


@pytest.fixture
async def ops(kafka: str, run_prefix: str) -> AsyncIterator[Ops]:
    prefix = f"{run_prefix}ops-{uuid.uuid4().hex[:8]}."
    settings = Settings(bootstrap_servers=kafka, topic_prefix=prefix)
    specs = {spec.name: spec for spec in CATALOGUE}
    async with admin_client(kafka) as admin:
        await create_topics(admin, [
            NewTopic(settings.topic(name), num_partitions=specs[name].partitions, replication_factor=1,
                     topic_configs=specs[name].configs(1))
            for name in (DEADLETTER, INBOUND_MESSAGES)
        ])
    try:
        yield Ops(settings)
    finally:
        await delete_topics_with_prefix(kafka, prefix)


def _json_lines(out: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


# --- deadletters list -------------------------------------------------------------------------------


async def test_x4_deadletters_list_is_newest_first_and_filters_by_reason_topic_and_since(ops: Ops) -> None:
    other = ops.settings.topic(CONVERSATION_COMMANDS)
    # Written in an order that is neither time order nor partition order.
    b = await ops.dead_letter(1, "unknown_account", T0 + timedelta(hours=3), original_partition=4, original_offset=40,
                              key=b"key-b", value=b'{"b": 1}')
    c = await ops.dead_letter(2, "not_json", T0 + timedelta(hours=2), original_topic=other, original_offset=7)
    a = await ops.dead_letter(0, "not_json", T0 + timedelta(hours=1), original_offset=1)
    d = await ops.dead_letter(0, "not_json", T0 + timedelta(hours=4), original_offset=9)

    everything = _json_lines(await ops.cli("deadletters", "list", "--json"))
    assert [(x["partition"], x["offset"]) for x in everything] == [(0, d), (1, b), (2, c), (0, a)]
    second = everything[1]
    assert second == {
        "partition": 1, "offset": b, "original_topic": ops.inbound, "original_partition": 4, "original_offset": 40,
        "consumer": "inbound.messages", "reason": "unknown_account", "error_class": "ValueError",
        "detail": "unknown_account at 40", "time": (T0 + timedelta(hours=3)).isoformat(), "truncated": False,
        "key": "key-b", "value_prefix": '{"b": 1}',
    }

    def order(out: subprocess.CompletedProcess[str]) -> list[tuple[int, int]]:
        return [(x["partition"], x["offset"]) for x in _json_lines(out)]

    assert order(await ops.cli("deadletters", "list", "--json", "--reason", "not_json")) == [(0, d), (2, c), (0, a)]
    assert order(await ops.cli("deadletters", "list", "--json", "--topic", INBOUND_MESSAGES)) == [(0, d), (1, b), (0, a)]
    assert order(await ops.cli("deadletters", "list", "--json", "--topic", other)) == [(2, c)]
    since = (T0 + timedelta(hours=2)).isoformat()
    assert order(await ops.cli("deadletters", "list", "--json", "--since", since)) == [(0, d), (1, b), (2, c)]
    assert order(await ops.cli("deadletters", "list", "--json", "--reason", "not_json", "--topic", INBOUND_MESSAGES,
                               "--since", since)) == [(0, d)]
    assert order(await ops.cli("deadletters", "list", "--json", "--limit", "2")) == [(0, d), (1, b)]

    text = await ops.cli("deadletters", "list")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith(f"p0@{d} ") and "not_json" in lines[0]
    assert lines[1].startswith(f"p1@{b} ") and f"from {ops.inbound}[4]@40" in lines[1] and "unknown_account" in lines[1]


async def test_x4_deadletters_list_of_an_empty_dead_letter_topic_returns_and_says_so(ops: Ops) -> None:
    text = await ops.cli("deadletters", "list")
    assert text.returncode == 0, text.stderr
    assert text.stdout.strip() == "(no dead letters)"
    as_json = await ops.cli("deadletters", "list", "--json")
    assert (as_json.returncode, as_json.stdout) == (0, "")


async def test_x4_deadletters_list_rejects_a_since_without_a_zone(ops: Ops) -> None:
    out = await ops.cli("deadletters", "list", "--since", "2026-03-01T09:00:00")
    assert out.returncode == 2
    assert "has no zone" in out.stderr


# --- deadletters replay -----------------------------------------------------------------------------


@pytest.mark.parametrize("args", [[], ["--partition", "0"], ["--offset", "0"]])
async def test_x4_replay_requires_both_partition_and_offset(ops: Ops, args: list[str]) -> None:
    await ops.dead_letter(0, "not_json", T0)
    out = await ops.cli("deadletters", "replay", *args)
    assert out.returncode == 2
    assert "--partition and --offset are both required" in out.stderr
    assert await ops.read_all(ops.inbound) == []  # nothing replayed by default


async def test_x4_replay_of_a_record_that_does_not_exist_fails_in_one_line(ops: Ops) -> None:
    empty = await ops.cli("deadletters", "replay", "--partition", "2", "--offset", "0")
    assert empty.returncode == 1
    assert one_line(empty.stderr) == f"ticketflow: no record at {ops.dlq}[2]@0: the partition holds no records " \
                                     "(next offset 0)"

    for _ in range(3):
        await ops.dead_letter(0, "not_json", T0)
    beyond = await ops.cli("deadletters", "replay", "--partition", "0", "--offset", "7")
    assert beyond.returncode == 1
    assert one_line(beyond.stderr) == f"ticketflow: no record at {ops.dlq}[0]@7: the partition's last offset is 2"

    no_partition = await ops.cli("deadletters", "replay", "--partition", "9", "--offset", "0")
    assert no_partition.returncode == 1
    assert one_line(no_partition.stderr) == f"ticketflow: {ops.dlq} has no partition 9 (it has partitions 0-2)"

    async with admin_client(ops.settings.bootstrap_servers) as admin:
        await admin.delete_records({TopicPartition(ops.dlq, 0): RecordsToDelete(2)})
    below = await ops.cli("deadletters", "replay", "--partition", "0", "--offset", "0")
    assert below.returncode == 1
    assert "now starts at offset 2" in one_line(below.stderr)

    assert await ops.read_all(ops.inbound) == []


async def test_x4_replay_lands_on_the_original_partition_even_when_the_key_hashes_elsewhere(ops: Ops) -> None:
    key = b"acct-1:email:thread-9"
    hashed = DefaultPartitioner()(key, list(range(6)), list(range(6)))
    original = (hashed + 1) % 6  # e.g. a record the producer placed by hand, or a topic since re-partitioned
    offset = await ops.dead_letter(1, "unknown_account", T0, original_partition=original, original_offset=12,
                                   key=key, value=b'{"type": "inbound.message"}')

    out = await ops.cli("deadletters", "replay", "--partition", "1", "--offset", str(offset))

    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"replayed {ops.dlq}[1]@{offset} to {ops.inbound}[{original}]@0"
    [replayed] = await ops.read_all(ops.inbound)
    assert (replayed.partition, replayed.key, replayed.value) == (original, key, b'{"type": "inbound.message"}')
    assert list(replayed.headers) == [("origin", b"gateway-7"), ("dlq_replayed_from", f"{ops.dlq}:1:{offset}".encode())]


async def test_x4_replay_refuses_a_truncated_dead_letter(ops: Ops) -> None:
    offset = await ops.dead_letter(0, "too_large", T0, value=b"the first 64 KiB", dlq_truncated="true")

    out = await ops.cli("deadletters", "replay", "--partition", "0", "--offset", str(offset))

    assert out.returncode == 1
    line = one_line(out.stderr)
    assert f"{ops.dlq}[0]@{offset} was truncated" in line and "cannot be replayed" in line
    assert await ops.read_all(ops.inbound) == []


async def test_x4_bulk_replay_by_reason_dry_runs_then_replays_each_match_to_its_partition_with_progress(
        ops: Ops) -> None:
    since = T0 + timedelta(hours=1)
    await ops.dead_letter(0, "unknown_account", since + timedelta(minutes=3), original_partition=5,
                          original_offset=2, key=b"k-3", value=b"third")
    await ops.dead_letter(1, "unknown_account", since + timedelta(minutes=1), original_partition=5,
                          original_offset=1, key=b"k-1", value=b"first")
    await ops.dead_letter(2, "unknown_account", since + timedelta(minutes=2), original_partition=3,
                          original_offset=8, key=b"k-2", value=b"second")
    await ops.dead_letter(0, "not_json", since + timedelta(minutes=4), key=b"other-reason")
    await ops.dead_letter(1, "unknown_account", T0, key=b"too-old")
    await ops.dead_letter(2, "unknown_account", since, original_topic="somewhere.else", key=b"other-topic")
    select = ["--reason", "unknown_account", "--topic", INBOUND_MESSAGES, "--since", since.isoformat()]

    dry = await ops.cli("deadletters", "replay", *select, "--dry-run")

    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert [line.split(" ")[0] for line in lines[:3]] == ["[1/3]", "[2/3]", "[3/3]"]
    assert all("would replay" in line for line in lines[:3])
    assert f"to {ops.inbound}[3]" in lines[0] and f"to {ops.inbound}[5]" in lines[1]  # by original position
    assert lines[3] == "would replay 3 of 3 matching dead letters; 0 refused"
    assert await ops.read_all(ops.inbound) == []

    real = await ops.cli("deadletters", "replay", *select)

    assert real.returncode == 0, real.stderr
    lines = real.stdout.splitlines()
    assert [line.split(" ")[:2] for line in lines[:3]] == [["[1/3]", "replayed"], ["[2/3]", "replayed"],
                                                          ["[3/3]", "replayed"]]
    assert lines[3] == "replayed 3 of 3 matching dead letters; 0 refused"
    replayed = await ops.read_all(ops.inbound)
    assert [(r.partition, r.key, r.value) for r in replayed] == [
        (3, b"k-2", b"second"), (5, b"k-1", b"first"), (5, b"k-3", b"third")]  # original order kept on partition 5


async def test_x4_bulk_replay_refuses_truncated_matches_and_exits_non_zero(ops: Ops) -> None:
    await ops.dead_letter(0, "unknown_account", T0, key=b"whole", value=b"whole")
    await ops.dead_letter(1, "unknown_account", T0, key=b"cut", value=b"cu", dlq_truncated="true")

    out = await ops.cli("deadletters", "replay", "--reason", "unknown_account")

    assert out.returncode == 1
    assert any(line.startswith("[") and "refused:" in line and "truncated" in line for line in out.stdout.splitlines())
    assert "replayed 1 of 2 matching dead letters; 1 refused" in out.stdout
    assert one_line(out.stderr) == "ticketflow: 1 matching dead letters were refused (see above)"
    assert [r.key for r in await ops.read_all(ops.inbound)] == [b"whole"]


# --- skip -------------------------------------------------------------------------------------------


async def _stuck_group(ops: Ops, partition: int = 2) -> tuple[str, TopicPartition, list[int]]:
    """Three records on one inbound partition and a group whose committed offset points at the second."""
    offsets = [await ops.produce(ops.inbound, partition, f"key-{i}".encode(), f"record {i}".encode(),
                                 [("origin", b"gateway-7")]) for i in range(3)]
    group = ops.settings.group("inbound", "messages")
    tp = TopicPartition(ops.inbound, partition)
    await ops.commit(group, tp, offsets[1])
    return group, tp, offsets


async def test_x4_skip_dead_letters_the_record_then_commits_the_next_offset(ops: Ops) -> None:
    group, tp, offsets = await _stuck_group(ops)

    out = await ops.cli("skip", "--group", group, "--topic", INBOUND_MESSAGES, "--partition", "2",
                        "--offset", str(offsets[1]), "--note", "poison record, see incident 42")

    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"skipped {ops.inbound}[2]@{offsets[1]} (key='key-1', 8 bytes) for group {group}")
    assert f"the group resumes at offset {offsets[2]}" in out.stdout
    assert await ops.committed(group, tp) == offsets[2]
    [letter] = await ops.read_all(ops.dlq)
    headers = {k: v.decode() for k, v in letter.headers}
    assert (letter.key, letter.value) == (b"key-1", b"record 1")
    assert headers["origin"] == "gateway-7"
    assert headers["dlq_reason"] == "skipped_by_operator"
    assert headers["dlq_consumer"] == group
    assert (headers["dlq_original_topic"], headers["dlq_original_partition"], headers["dlq_original_offset"]) == (
        ops.inbound, "2", str(offsets[1]))
    assert headers["dlq_detail"] == "poison record, see incident 42"
    assert headers["dlq_error_class"] and datetime.fromisoformat(headers["dlq_time"]).tzinfo is not None


async def test_x4_skip_refuses_an_offset_other_than_the_groups_current_one(ops: Ops) -> None:
    group, tp, offsets = await _stuck_group(ops)

    out = await ops.cli("skip", "--group", group, "--topic", ops.inbound, "--partition", "2",
                        "--offset", str(offsets[2]))

    assert out.returncode == 1
    assert f"group {group} is at offset {offsets[1]}" in one_line(out.stderr)
    assert await ops.committed(group, tp) == offsets[1]
    assert await ops.read_all(ops.dlq) == []

    fresh = ops.settings.group("inbound", "never-committed")  # no commit yet: it starts at the log start
    refused = await ops.cli("skip", "--group", fresh, "--topic", ops.inbound, "--partition", "2", "--offset", "1")
    assert refused.returncode == 1
    assert f"group {fresh} is at offset 0" in one_line(refused.stderr)


async def test_x4_skip_refuses_while_the_group_has_active_consumers(ops: Ops) -> None:
    group, tp, offsets = await _stuck_group(ops)
    live = AIOKafkaConsumer(ops.inbound, bootstrap_servers=ops.settings.bootstrap_servers, group_id=group,
                            enable_auto_commit=False)
    await live.start()
    try:
        await live.getmany(timeout_ms=2000)  # joined: the group is active
        out = await ops.cli("skip", "--group", group, "--topic", ops.inbound, "--partition", "2",
                            "--offset", str(offsets[1]))
    finally:
        await live.stop()

    assert out.returncode == 1
    line = one_line(out.stderr)
    assert f"group {group} has 1 active consumer(s)" in line and "stop them" in line
    assert await ops.committed(group, tp) == offsets[1]
    assert await ops.read_all(ops.dlq) == []


# --- broker or database down: one line, a distinct exit code -------------------------------------------


@pytest.mark.parametrize("args", [
    ["topics", "apply"], ["topics", "apply", "--check"], ["topics", "list"], ["lag"],
    ["deadletters", "list"], ["deadletters", "replay", "--partition", "0", "--offset", "0"],
    ["deadletters", "replay", "--reason", "not_json", "--dry-run"],
    ["skip", "--group", "g", "--topic", "t", "--partition", "0", "--offset", "0"],
    ["accounts", "put", "--id", "a", "--tier", "free", "--created-at", "2023-05-01T00:00:00+00:00"],
])
async def test_cli_with_kafka_unreachable_prints_one_line_and_exits_3(args: list[str]) -> None:
    out = await run_cli({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, *args)
    assert out.returncode == 3, out.stderr
    assert one_line(out.stderr).startswith("ticketflow: Kafka unreachable at 127.0.0.1:1 (KAFKA_BOOTSTRAP_SERVERS): ")
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("args", [["migrate"], ["context", "conv-1"]])
async def test_cli_with_the_database_unreachable_prints_one_masked_line_and_exits_4(args: list[str]) -> None:
    out = await run_cli({"DATABASE_URL": "postgresql+asyncpg://ticketflow:s3cret-pw@127.0.0.1:1/ticketflow"}, *args)
    assert out.returncode == 4, out.stderr
    line = one_line(out.stderr)
    assert line.startswith("ticketflow: database unreachable at postgresql+asyncpg://ticketflow:***@127.0.0.1:1/")
    assert "s3cret-pw" not in out.stdout + out.stderr


# --- secrets --------------------------------------------------------------------------------------------


def assert_no_password(url: str, output: str) -> None:
    """Neither the URL with its password nor the password in URL form (`:password@`) appears in `output`."""
    password = make_url(url).password
    assert password, "the test database URL has a password that could leak"
    assert make_url(url).render_as_string(hide_password=False) not in output
    assert f":{password}@" not in output


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # a brand-new database of its own
async def test_migrate_never_prints_the_database_password(db_url: str) -> None:
    out = await run_cli({"DATABASE_URL": db_url}, "migrate")

    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"database at head: {make_url(db_url).render_as_string(hide_password=True)}"
    assert_no_password(db_url, out.stdout + out.stderr)


async def test_the_test_script_never_prints_the_database_password(kafka: str, postgres: str) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka, "DATABASE_URL": postgres}
    out = await asyncio.to_thread(subprocess.run, [str(REPO / "scripts/test.sh"), "--version"], env=env,
                                  cwd=REPO, capture_output=True, text=True, timeout=CLI_TIMEOUT)
    assert out.returncode == 0, out.stdout + out.stderr
    masked = make_url(postgres).render_as_string(hide_password=True)
    assert f"tests: kafka at {kafka}, database at {masked}" in out.stdout
    assert_no_password(postgres, out.stdout + out.stderr)


# --- lag on a fresh broker ----------------------------------------------------------------------------


@asynccontextmanager
async def _fresh_broker(run_dir: Path) -> AsyncIterator[str]:
    """A brand-new single-node broker of this test's own (its offsets topic does not exist yet)."""
    port = free_port()
    env = {**os.environ, "TICKETFLOW_RUN_DIR": str(run_dir), "KAFKA_PORT": str(port),
           "KAFKA_CONTROLLER_PORT": str(free_port()), "KAFKA_HEAP": "256m",
           "KAFKA_JVM_OPTS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC", "KAFKA_START_TIMEOUT": "180"}

    async def kafka_sh(command: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(subprocess.run, [str(REPO / "deploy/kafka/kafka.sh"), command], env=env,
                                       capture_output=True, text=True, timeout=300)

    try:
        started = await kafka_sh("start")
        assert started.returncode == 0, started.stderr
        yield f"127.0.0.1:{port}"
    finally:
        stopped = await kafka_sh("stop")  # always: no JVM outlives the test
        assert stopped.returncode == 0, stopped.stderr


async def test_lag_on_a_fresh_broker_waits_for_the_group_coordinator_and_reports(tmp_path: Path) -> None:
    async with _fresh_broker(tmp_path) as bootstrap:
        out = await run_cli({"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "TICKETFLOW_TOPIC_PREFIX": ""}, "lag")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == len(worker_groups(Settings(topic_prefix=""))) == 10
    assert all(line.endswith("lag=0") for line in lines)
    assert lines[0].startswith("ticketflow.inbound.messages ")


# --- help -----------------------------------------------------------------------------------------------


def _parsers(p: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield p.prog, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _parsers(child)


def test_every_cli_command_and_option_has_help_text() -> None:
    missing = [f"{prog} {action.option_strings or action.dest}"
               for prog, p in _parsers(parser()) for action in p._actions
               if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) and not action.help]
    assert missing == []
    commands = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)][0]
    assert all(choice.help for choice in commands._choices_actions)
    assert [name for name, p in commands.choices.items() if not (p.epilog or "").startswith("examples:")] == []


@pytest.mark.parametrize("command", [["topics", "apply"], ["worker", "inbound"]])
async def test_x4_a_tls_file_that_cannot_be_read_is_named_in_one_line_with_its_setting(tmp_path, command) -> None:
    """Python's own error for a CA file that is not there names neither the file nor the setting
    (`FileNotFoundError: [Errno 2] No such file or directory`, at the end of a traceback); every command
    that reaches Kafka says which setting and which path instead, and exits as a configuration error."""
    missing = tmp_path / "brokers-ca.pem"
    env = {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_FILE": str(missing),
           "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"}
    out = await run_cli(env, *command)
    assert out.returncode == 2, out.stderr
    assert one_line(out.stderr).startswith(
        f"ticketflow: configuration: KAFKA_SSL_CA_FILE='{missing}' cannot be read as the brokers' CA: ")
