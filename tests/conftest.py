"""Session fixtures: a real Kafka broker and a real PostgreSQL (see tests/support/services.py),
topics provisioned under a prefix unique to this run, and the three workers running in-process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from workers.settings import Settings


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    from tests.support.services import kafka_bootstrap

    with kafka_bootstrap() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    from tests.support.services import postgres_url

    with postgres_url() as url:
        yield url


@pytest.fixture(scope="session")
def run_prefix() -> str:
    """Every topic and consumer group of this test run lives under this prefix (isolation between runs)."""
    return f"test-{uuid.uuid4().hex[:8]}."


@pytest.fixture(scope="session")
async def session_database(postgres: str) -> AsyncIterator[str]:
    """This session's own database on the test PostgreSQL server (see tests.support.services.fresh_database)."""
    from tests.support.services import fresh_database

    async with fresh_database(postgres) as url:
        yield url


@pytest.fixture(scope="session")
async def settings(kafka: str, session_database: str, run_prefix: str) -> AsyncIterator[Settings]:
    from ticketflow.provisioning import apply_topics, delete_topics_under

    s = Settings(bootstrap_servers=kafka, database_url=session_database, topic_prefix=run_prefix,
                 consumers_per_input=2)
    report = await apply_topics(s)
    assert report.ok, report.lines()
    yield s
    await delete_topics_under(kafka, run_prefix)


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


@pytest.fixture(autouse=True)
def no_valid_record_dead_lettered_as_a_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """A safety net under every test that runs the workers (X4, X5): whatever a test asserts, no record
    may be dead-lettered as `processing_failed` while it runs. That reason means the delivery core met
    an error it could not classify, which a valid record, a replay or an outage must never cause; bad
    input has reasons of its own. (A replayed command dead-lettered this way once passed every test that
    only counted effects.)"""
    if "system" not in request.fixturenames:
        yield
        return
    probe = request.getfixturevalue("system").probe
    failed = lambda r: r.headers.get("dlq_reason") == "processing_failed"  # noqa: E731
    before = len(probe.matching(failed))
    yield
    new = probe.matching(failed)[before:]
    assert new == [], "dead-lettered as processing_failed: " + "; ".join(
        f"{r.headers.get('dlq_original_topic')}[{r.headers.get('dlq_original_partition')}]"
        f"@{r.headers.get('dlq_original_offset')}: {r.headers.get('dlq_detail', '')[:300]}" for r in new)
