"""Health for Kubernetes probes, served over real HTTP on a free port: facts the worker sets, checks run
per probe (database, outbox age), `/metrics` in the Prometheus text format."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from storage.tables import outbox
from storage.unit_of_work import now_utc
from workers.observability.config import ObservabilitySettings
from workers.observability.health import Health, database_check, outbox_check
from workers.observability.metrics import Metrics
from workers.observability.process import Observability
from workers.observability.server import ObservabilityServer


async def get(port: int, path: str, method: str = "GET") -> tuple[int, str, bytes]:
    """One HTTP/1.1 request on a real socket: (status, content type, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: probe\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert int(headers["Content-Length"]) == len(body)
    return int(lines[0].split()[1]), headers["Content-Type"], body


@pytest.fixture
async def served():
    metrics, health = Metrics(), Health(check_timeout=1.0)
    server = ObservabilityServer(metrics, health, host="127.0.0.1", port=0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_live_answers_while_the_loop_runs_and_fails_once_a_worker_failed(served):
    assert (await get(served.port, "/health/live"))[0] == 200
    served.health.fail("cannot process or dead-letter t[0]@4")
    status, content_type, body = await get(served.port, "/health/live")
    assert (status, content_type) == (503, "application/json")
    assert json.loads(body)["checks"]["worker"]["detail"] == "cannot process or dead-letter t[0]@4"


async def test_ready_waits_for_every_required_fact(served):
    served.health.require("inbound.broker")
    served.health.set("inbound.consumers", True)
    status, _type, body = await get(served.port, "/health/ready")
    assert status == 503
    assert json.loads(body) == {"status": "fail", "checks": {"inbound.broker": {"ok": False, "detail": "not yet"},
                                                             "inbound.consumers": {"ok": True}}}
    served.health.set("inbound.broker", True)
    assert (await get(served.port, "/health/ready"))[0] == 200


async def test_a_failing_raising_or_hanging_check_makes_it_unready(served):
    async def slow() -> str | None:
        await asyncio.sleep(30)
        return None

    async def broken() -> str | None:
        raise ConnectionRefusedError("connection refused")

    async def fine() -> str | None:
        return None

    for name, check in (("slow", slow), ("broken", broken), ("fine", fine)):
        served.health.add_check(name, check)
    status, _type, body = await get(served.port, "/health/ready")
    checks = json.loads(body)["checks"]
    assert status == 503
    assert checks["slow"] == {"ok": False, "detail": "no answer within 1s"}
    assert checks["broken"] == {"ok": False, "detail": "ConnectionRefusedError: connection refused"}
    assert checks["fine"] == {"ok": True}


async def test_metrics_route_serves_the_registry(served):
    served.metrics.worker("inbound").processed("messages")
    status, content_type, body = await get(served.port, "/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=")
    assert b'ticketflow_records_processed_total{input="messages",worker="inbound"} 1.0' in body


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/", 404), ("GET", "/health", 404), ("POST", "/metrics", 405), ("GET", "/metrics?x=1", 200),
])
async def test_other_requests(served, method, path, status):
    assert (await get(served.port, path, method))[0] == status


async def test_a_garbled_request_gets_400(served):
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(b"HELLO\r\n\r\n")
    await writer.drain()
    assert (await reader.read()).startswith(b"HTTP/1.1 400 ")
    writer.close()


async def test_database_and_outbox_checks(engine):
    health = Health()
    health.add_check("db", database_check(engine))
    health.add_check("outbox", outbox_check(engine, "inbound", max_age_seconds=60))
    assert (await health.ready()).ok
    async with engine.begin() as conn:
        await conn.execute(insert(outbox).values(producer="inbound", topic="t", key="k", headers=[], value=b"{}",
                                                 created_at=now_utc() - timedelta(minutes=5)))
    report = await health.ready()
    assert not report.ok and report.items["db"].ok
    assert report.items["outbox"].detail.startswith("oldest unsent outbox row is 300s old (limit 60s; 1 unsent")


async def test_an_unreachable_database_fails_its_check():
    engine = create_async_engine("postgresql+asyncpg://nobody:x@127.0.0.1:9/none")
    health = Health()
    health.add_check("db", database_check(engine))
    try:
        report = await health.ready()
    finally:
        await engine.dispose()
    assert not report.ok and report.items["db"].detail


async def test_observability_of_a_process_serves_what_its_workers_register(engine, kafka, topic):
    obs = Observability(ObservabilitySettings(http_host="127.0.0.1", http_port=0, sample_interval_seconds=3600),
                        kafka_options={"bootstrap_servers": kafka})
    inbound = obs.worker("inbound", engine=engine, groups=[(f"{topic}.g", topic)])
    obs.worker("sync")
    await obs.start()
    try:
        assert obs.server is not None
        status, _type, body = await get(obs.server.port, "/health/ready")
        checks = json.loads(body)["checks"]
        assert status == 503 and set(checks) == {"inbound.broker", "inbound.consumers", "inbound.database",
                                                 "inbound.outbox", "sync.broker", "sync.consumers"}
        for fact in ("inbound.broker", "inbound.consumers", "sync.broker", "sync.consumers"):
            obs.health.set(fact, True)
        assert (await get(obs.server.port, "/health/ready"))[0] == 200
        inbound.processed("messages")
        assert await obs.sampler.sample() == {}
        body = (await get(obs.server.port, "/metrics"))[2].decode()
        assert f'ticketflow_consumer_lag{{group="{topic}.g",partition="0",topic="{topic}",worker="inbound"}} 0.0' in body
        assert 'ticketflow_outbox_unsent_rows{worker="inbound"} 0.0' in body
        assert obs.middleware("inbound") is not None
    finally:
        await obs.stop()


def test_without_a_port_there_is_no_server():
    assert Observability(ObservabilitySettings()).server is None


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("TICKETFLOW_HTTP_PORT", "8080")
    monkeypatch.setenv("TICKETFLOW_LOG_FORMAT", "json")
    monkeypatch.setenv("TICKETFLOW_OUTBOX_MAX_AGE_SECONDS", "120")
    s = ObservabilitySettings.from_env()
    assert (s.http_port, s.log_format, s.outbox_max_age_seconds) == (8080, "json", 120.0)
    monkeypatch.setenv("TICKETFLOW_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="TICKETFLOW_LOG_FORMAT"):
        ObservabilitySettings.from_env()
