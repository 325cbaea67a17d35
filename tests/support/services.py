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
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
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


@asynccontextmanager
async def fresh_database(server_url: str) -> AsyncIterator[str]:
    """A brand-new database on the PostgreSQL server of `server_url`, dropped afterwards. Each test
    session's workers get their own: a worker's outbox relay publishes every unsent row of its
    worker name, so sessions sharing a database would relay each other's rows to topics long gone."""
    import asyncpg
    from sqlalchemy.engine import make_url

    name = f"tf_{uuid.uuid4().hex[:12]}"
    plain = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(plain)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await drop_database(plain, name)


async def drop_database(plain_dsn: str, name: str) -> None:
    """DROP DATABASE ... WITH (FORCE), as the test role. FORCE may only end sessions of roles the test
    role is a member of: a session it may not end (an autovacuum worker that just started on the
    database) is waited out, for up to 15 s, instead of failing the test's teardown."""
    import asyncio

    import asyncpg

    admin = await asyncpg.connect(plain_dsn)
    try:
        for _ in range(30):
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except asyncpg.InsufficientPrivilegeError:
                await asyncio.sleep(0.5)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
