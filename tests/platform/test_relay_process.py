"""The outbox relay in a process of its own (ADR 17), on a real PostgreSQL and a real broker: it publishes
what its worker commits, reports to its worker's metrics, is started again when it dies, publishes what is
committed when its worker stops, ends when its worker dies, and stops its worker on a permanent error (X3)."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from contracts.envelope import Envelope
from storage.database import create_engine
from storage.migrate import upgrade_async
from storage.tables import outbox
from storage.unit_of_work import UnitOfWork, now_utc
from tests.platform.test_outbox_relay import _read_all, _topic
from tests.support.processes import running
from tests.support.services import fresh_database
from workers.delivery.backoff import Backoff
from workers.delivery.outgoing import Outgoing
from workers.delivery.relay_process import FATAL_EXIT, RelayProcess
from workers.settings import Settings


class Recorded:
    """A `Report` that keeps what the relay process told its worker."""

    def __init__(self) -> None:
        self.published = 0
        self.delays: list[float] = []
        self.failures: list[str] = []
        self.states: list[tuple[bool, str]] = []

    def relay_published(self, count: int) -> None:
        self.published += count

    def relay_delays(self, delays: Any) -> None:
        self.delays.extend(delays)

    def relay_failed(self, kind: str, count: int = 1) -> None:
        self.failures += [kind] * count

    def __getattr__(self, name: str) -> Any:
        return lambda *args: None


@pytest.fixture
async def database(postgres: str) -> AsyncIterator[str]:
    async with fresh_database(postgres) as url:
        yield url


async def _commit(url: str, owner: str, topic: str, count: int, key: str = "k") -> list[str]:
    """`count` outbox rows of `owner`, committed as a worker's unit of work does; returns their ids."""
    engine = create_engine(url)
    ids = []
    try:
        for _ in range(count):
            async with UnitOfWork(engine, f"{owner}.test", owner) as uow:
                env = Envelope(id=f"evt-{uuid.uuid4().hex}", type="test.event", source="/test", time=now_utc())
                await uow.add_to_outbox(Outgoing(env.id, topic, key, b"{}", tuple(env.header_pairs())))
                ids.append(env.id)
    finally:
        await engine.dispose()
    return ids


async def _unsent(url: str, owner: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.producer == owner)))
    finally:
        await engine.dispose()


def _ids(records: list[Any]) -> list[str]:
    return [dict(r.headers)["ce_id"].decode() for r in records]


async def _started(kafka: str, database: str, prefix: str) -> tuple[str, str, Recorded, RelayProcess]:
    """A worker's relay process on a migrated database: (worker name, a topic of its own, its report, it);
    `report.states` has what readiness was told."""
    await upgrade_async(database)
    owner, topic = f"rp{uuid.uuid4().hex[:6]}", await _topic(kafka, prefix)
    report = Recorded()
    relay = RelayProcess(_settings(kafka, database), owner, report=report,
                         on_state=lambda up, detail: report.states.append((up, detail)))
    relay.start()
    return owner, topic, report, relay


def _settings(kafka: str, url: str, **changes: Any) -> Settings:
    return Settings(bootstrap_servers=kafka, database_url=url, **changes)


async def test_x3_a_relay_process_publishes_what_its_worker_commits_and_reports_it(kafka, database, run_prefix):
    owner, topic, report, relay = await _started(kafka, database, run_prefix)
    try:
        pid = await asyncio.wait_for(relay.ready(), 60)
        assert pid != os.getpid() and running(pid)
        assert "workers.delivery.relay_process" in Path(f"/proc/{pid}/cmdline").read_bytes().decode()
        ids = await _commit(database, owner, topic, 20)
        relay.notify()
        assert _ids(await _read_all(kafka, topic, 20)) == ids  # in order, once
        for _ in range(100):
            if report.published == 20 and await _unsent(database, owner) == 0:
                break
            await asyncio.sleep(0.1)
        assert report.published == 20 and len(report.delays) == 20 and await _unsent(database, owner) == 0
        assert report.failures == []
    finally:
        await relay.stop()


async def test_x3_a_relay_process_that_dies_is_started_again_and_its_rows_wait_for_it(kafka, database, run_prefix):
    owner, topic, report, relay = await _started(kafka, database, run_prefix)
    try:
        first = await asyncio.wait_for(relay.ready(), 60)
        os.kill(first, signal.SIGKILL)
        ids = await _commit(database, owner, topic, 5)  # committed while no relay runs
        relay.notify()  # to nobody, or to the new child: either way they must leave
        second = await asyncio.wait_for(relay.ready(), 60)
        assert second != first
        assert _ids(await _read_all(kafka, topic, 5)) == ids
        assert relay.restarts == 1 and report.failures == ["transient"]
        assert report.states == [(True, f"relay process {first}"), (False, "relay process exited with status -9"),
                                 (True, f"relay process {second}")]  # the worker's readiness
    finally:
        await relay.stop()


async def test_x3_a_stopping_worker_s_relay_process_publishes_what_is_committed_then_exits(kafka, database, run_prefix):
    await upgrade_async(database)
    owner, topic = f"rp{uuid.uuid4().hex[:6]}", await _topic(kafka, run_prefix)
    # an hour between looks: only a wake or the stop can publish the rows
    relay = RelayProcess(_settings(kafka, database, relay_interval_seconds=3600), owner)
    relay.start()
    pid = await asyncio.wait_for(relay.ready(), 60)
    ids = await _commit(database, owner, topic, 10)
    await relay.stop()
    assert not running(pid)
    assert relay._proc is not None and relay._proc.returncode == 0
    assert await _unsent(database, owner) == 0
    assert _ids(await _read_all(kafka, topic, 10)) == ids


async def test_x3_a_relay_process_stops_its_worker_on_a_permanent_error_and_is_not_restarted(kafka, database):
    # no schema: the relay's first read fails for good (no outbox table), as a revoked grant would
    owner = f"rp{uuid.uuid4().hex[:6]}"
    fatal: list[str] = []
    report = Recorded()
    relay = RelayProcess(_settings(kafka, database), owner, on_fatal=fatal.append, report=report)
    relay.start()
    try:
        for _ in range(600):
            if fatal and relay._proc is not None and relay._proc.returncode is not None:
                break
            await asyncio.sleep(0.1)
        assert len(fatal) == 1 and "outbox" in fatal[0]
        assert relay._proc is not None and relay._proc.returncode == FATAL_EXIT
        assert relay.restarts == 0 and report.failures == ["fatal"]
    finally:
        await relay.stop()


async def test_x3_a_relay_process_leaves_its_stop_to_its_worker(kafka, database, run_prefix):
    """A terminal's Ctrl-C and systemd's stop signal the whole process group: the child goes on relaying
    until its worker, done with its consumers, closes its input."""
    await upgrade_async(database)
    owner, topic = f"rp{uuid.uuid4().hex[:6]}", await _topic(kafka, run_prefix)
    relay = RelayProcess(_settings(kafka, database), owner)
    relay.start()
    try:
        pid = await asyncio.wait_for(relay.ready(), 60)
        os.kill(pid, signal.SIGINT)
        os.kill(pid, signal.SIGTERM)
        ids = await _commit(database, owner, topic, 3)
        relay.notify()
        assert _ids(await _read_all(kafka, topic, 3)) == ids
        assert running(pid) and relay.pid == pid and relay.restarts == 0
    finally:
        await relay.stop()
    assert relay._proc is not None and relay._proc.returncode == 0


async def test_x3_a_worker_stops_at_once_while_its_relay_process_waits_to_be_started_again(kafka, database):
    await upgrade_async(database)
    relay = RelayProcess(_settings(kafka, database), f"rp{uuid.uuid4().hex[:6]}", stop_seconds=600,
                         restarts=Backoff(600, 600))
    relay.start()
    pid = await asyncio.wait_for(relay.ready(), 60)
    os.kill(pid, signal.SIGKILL)
    while relay.restarts == 0:  # it died; the next child is ten minutes away
        await asyncio.sleep(0.05)
    await asyncio.wait_for(relay.stop(), 60)
    assert relay.pid is None and relay.restarts == 1
