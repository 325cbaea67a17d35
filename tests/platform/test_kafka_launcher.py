"""The project's Kafka launcher, `deploy/kafka/kafka.sh`, run for real: clear failures on a taken port
or a bad setting, `status` exit codes, and a three-node cluster that keeps accepting acks=all writes
(RF 3, min.insync.replicas 2) after one node crashes."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic

from tests.platform.kafka_admin import admin_client, create_topics
from tests.support.services import REPO
from tests.support.services_private import free_cluster_base, free_port

pytestmark = pytest.mark.kafka

KAFKA_SH = REPO / "deploy/kafka/kafka.sh"
FAST_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
WAIT_SECONDS = 120.0


@contextmanager
def _held_port() -> Iterator[int]:
    """A port something else is listening on."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


def _run(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KAFKA_SH), *args], env={**os.environ, **env}, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def test_start_refuses_a_port_that_is_already_in_use(tmp_path: Path) -> None:
    with _held_port() as port:
        controller = free_port()
        out = _run(["start"], {"KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(controller),
                               "TICKETFLOW_RUN_DIR": str(tmp_path)}, timeout=60)
    assert out.returncode != 0
    assert f"port 127.0.0.1:{port} is already in use" in out.stderr
    assert "KAFKA_PORT" in out.stderr  # says what to change
    assert not (tmp_path / f"kafka-{port}" / "kafka.pid").exists()  # nothing was launched


def test_start_refuses_a_bad_heap_setting_with_a_clear_message(tmp_path: Path) -> None:
    port, controller = free_port(), free_port()
    out = _run(["start"], {"KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(controller),
                           "KAFKA_HEAP": "bogus", "TICKETFLOW_RUN_DIR": str(tmp_path)}, timeout=60)
    assert out.returncode != 0
    assert "KAFKA_HEAP='bogus' is not a JVM heap size" in out.stderr
    assert not (tmp_path / f"kafka-{port}" / "kafka.pid").exists()


def test_start_refuses_a_port_that_is_not_a_port(tmp_path: Path) -> None:
    out = _run(["start"], {"KAFKA_PORT": "70000", "TICKETFLOW_RUN_DIR": str(tmp_path)}, timeout=60)
    assert out.returncode != 0
    assert "KAFKA_PORT='70000' is not a port" in out.stderr


def test_status_of_a_never_started_node_exits_3(tmp_path: Path) -> None:
    port = free_port()
    out = _run(["status"], {"KAFKA_PORT": str(port), "TICKETFLOW_RUN_DIR": str(tmp_path)}, timeout=60)
    assert out.returncode == 3
    assert "stopped" in out.stdout


async def _produce(bootstrap: str, topic: str, value: bytes) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                request_timeout_ms=90_000, retry_backoff_ms=500)
    await producer.start()
    try:
        record = await asyncio.wait_for(producer.send_and_wait(topic, value, key=b"k"), timeout=WAIT_SECONDS)
        return record.offset
    finally:
        await producer.stop()


async def _wait_partition(bootstrap: str, topic: str, isr: int, leaders: set[int]) -> None:
    """Until partition 0 has `isr` in-sync replicas and one of `leaders` leads it."""
    async with admin_client(bootstrap) as admin:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            [described] = await admin.describe_topics([topic])
            if described["error_code"] == 0 and all(len(p["isr"]) == isr and p["leader"] in leaders
                                                    for p in described["partitions"]):
                return
            assert time.monotonic() < deadline, f"partition never had ISR {isr}, leader in {leaders}: {described}"
            await asyncio.sleep(0.5)


async def _read_all(bootstrap: str, topic: str, count: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=60_000)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        values: list[bytes] = []
        deadline = time.monotonic() + WAIT_SECONDS
        while len(values) < count:
            assert time.monotonic() < deadline, f"read {len(values)} of {count} records"
            batch = await consumer.getmany(tp, timeout_ms=1000)
            values += [r.value for r in batch.get(tp, []) if r.value is not None]
        return values
    finally:
        await consumer.stop()


async def test_three_node_cluster_keeps_accepting_acks_all_writes_with_one_node_down(tmp_path: Path) -> None:
    base = free_cluster_base(39092, 30000, 37)
    env = {"TICKETFLOW_RUN_DIR": str(tmp_path), "KAFKA_CLUSTER_BASE_PORT": str(base),
           "KAFKA_JVM_OPTS": FAST_JVM, "KAFKA_START_TIMEOUT": "180"}
    bootstrap = f"127.0.0.1:{base},127.0.0.1:{base + 1},127.0.0.1:{base + 2}"
    topic = f"cluster-{uuid.uuid4().hex[:8]}"
    try:
        started = await asyncio.to_thread(_run, ["cluster-start"], env, 300)
        assert started.returncode == 0, started.stderr
        assert bootstrap in started.stdout
        status = await asyncio.to_thread(_run, ["cluster-status"], env, 60)
        assert status.returncode == 0, status.stdout

        async with admin_client(bootstrap, request_timeout_ms=60_000) as admin:
            # One partition whose preferred leader is node 3: killing node 3 forces a leader election.
            await create_topics(admin, [NewTopic(topic, num_partitions=-1, replication_factor=-1,
                                                 replica_assignments={0: [3, 1, 2]},
                                                 topic_configs={"min.insync.replicas": "2"})])
            [described] = await admin.describe_topics([topic])
            assert [len(p["replicas"]) for p in described["partitions"]] == [3]
        await _wait_partition(bootstrap, topic, isr=3, leaders={3})

        first = await _produce(bootstrap, topic, b"before the crash")

        killed = await asyncio.to_thread(_run, ["cluster-kill-node", "3"], env, 60)
        assert killed.returncode == 0 and "killed" in killed.stdout, (killed.stdout, killed.stderr)
        status = await asyncio.to_thread(_run, ["cluster-status"], env, 60)
        assert status.returncode == 4, status.stdout  # some nodes up, not all

        second = await _produce(bootstrap, topic, b"after the crash")  # 2 in-sync replicas remain: accepted
        assert second == first + 1
        await _wait_partition(bootstrap, topic, isr=2, leaders={1, 2})  # a surviving replica took over

        assert await _read_all(bootstrap, topic, 2) == [b"before the crash", b"after the crash"]
    finally:
        stopped = await asyncio.to_thread(_run, ["cluster-stop"], env, 300)  # always: no JVM outlives the test
    assert stopped.returncode == 0, stopped.stderr
    final = await asyncio.to_thread(_run, ["cluster-status"], env, 60)
    assert final.returncode == 3, final.stdout
