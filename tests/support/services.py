"""Where the tests' Kafka and PostgreSQL come from, in this order:

1. `KAFKA_BOOTSTRAP_SERVERS` / `DATABASE_URL` when set (the README's test command sets both after
   starting the project's own launchers);
2. testcontainers (`apache/kafka:4.4.0`, `postgres:16`) where a Docker engine answers;
3. the project's launchers, `deploy/kafka/kafka.sh start` and `deploy/postgres/postgres.sh start`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextmanager
def kafka_bootstrap() -> Iterator[str]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        return
    if docker_answers():
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:4.4.0").with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    port = os.environ.get("KAFKA_PORT", "9092")
    subprocess.run([str(REPO / "deploy/kafka/kafka.sh"), "start"], check=True, env={**os.environ, "KAFKA_PORT": port})
    yield f"127.0.0.1:{port}"


@contextmanager
def postgres_url() -> Iterator[str]:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgresql"):
        yield url
        return
    if docker_answers():
        from testcontainers.community.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver="asyncpg") as pg:
            yield pg.get_connection_url()
        return
    out = subprocess.run([str(REPO / "deploy/postgres/postgres.sh"), "start"], check=True, capture_output=True, text=True)
    yield out.stdout.strip().splitlines()[-1]
