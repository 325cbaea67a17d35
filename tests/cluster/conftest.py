"""The three-node cluster (replication factor 3, min.insync.replicas 2) started by the project's
launcher, with the three workers running against it. Fixtures named like the single-broker ones
(`settings`, `system`), so end-to-end tests imported into this folder run here unchanged."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from tests.support.services import REPO
from tests.support.services_private import free_cluster_base
from workers.settings import Settings

KAFKA_SH = REPO / "deploy/kafka/kafka.sh"
FAST_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


@dataclass
class Cluster:
    bootstrap: str
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(KAFKA_SH), *args], env=self.env, capture_output=True, text=True, timeout=300)

    async def kill_node(self, node: int) -> None:
        done = await asyncio.to_thread(self.run, "cluster-kill-node", str(node))
        assert done.returncode == 0, done.stderr

    async def start_node(self, node: int) -> None:
        done = await asyncio.to_thread(self.run, "cluster-start-node", str(node))
        assert done.returncode == 0, done.stderr


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = free_cluster_base(29092, 31000, 41)
    env = {**os.environ, "TICKETFLOW_RUN_DIR": str(tmp_path_factory.mktemp("cluster")),
           "KAFKA_CLUSTER_BASE_PORT": str(base), "KAFKA_JVM_OPTS": FAST_JVM, "KAFKA_START_TIMEOUT": "180"}
    cluster = Cluster(f"127.0.0.1:{base},127.0.0.1:{base + 1},127.0.0.1:{base + 2}", env)
    started = cluster.run("cluster-start")
    assert started.returncode == 0, started.stderr
    try:
        yield cluster
    finally:
        cluster.run("cluster-stop")


@pytest.fixture(scope="session")
async def settings(cluster: Cluster, postgres: str) -> AsyncIterator[Settings]:
    from tests.support.services import fresh_database
    from ticketflow.provisioning import apply_topics, delete_topics_under

    prefix = f"cluster-{uuid.uuid4().hex[:8]}."
    async with fresh_database(postgres) as database_url:
        s = Settings(bootstrap_servers=cluster.bootstrap, database_url=database_url, topic_prefix=prefix,
                     replication_factor=3, consumers_per_input=2)
        report = await apply_topics(s)
        assert report.ok, report.lines()
        yield s
        await delete_topics_under(cluster.bootstrap, prefix)


@pytest.fixture(scope="session")
async def system(settings: Settings) -> AsyncIterator[object]:
    from storage.database import create_engine
    from tests.support.kafka import Probe
    from tests.support.system import WATCHED, System
    from ticketflow.running import start_workers, stop_workers

    workers = await start_workers(settings)
    probe = Probe(settings.bootstrap_servers, [settings.topic(t) for t in WATCHED])
    await probe.start()
    engine = create_engine(settings.database_url, writer=False)
    try:
        yield System(settings, engine, probe)
    finally:
        await probe.stop()
        await stop_workers(workers)
        await engine.dispose()
