"""Where the outbox relay runs (ADR 17), and what a worker tells its relay process (workers.delivery.relay_process)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
from pydantic import SecretStr

from workers.delivery.relay_process import Commands, Forwarded, config_line, message, read_config
from workers.settings import Settings

PG = "postgresql+asyncpg://u:p@h/db"


def test_x3_the_relay_runs_apart_on_postgresql_and_in_the_worker_on_sqlite_by_default():
    assert Settings(database_url=PG).relay_apart
    assert not Settings(database_url="sqlite+aiosqlite:///x.db").relay_apart
    assert not Settings(database_url=PG, relay="inline").relay_apart
    assert Settings(database_url=PG, relay="process").relay_apart


def test_x3_a_relay_process_on_sqlite_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="TICKETFLOW_RELAY=process needs PostgreSQL"):
        Settings(database_url="sqlite+aiosqlite:///x.db", relay="process")


def test_x3_the_relay_process_gets_the_worker_s_settings_secrets_included():
    settings = Settings(database_url=PG, topic_prefix="p.", kafka_security_protocol="SASL_SSL",
                        kafka_sasl_mechanism="SCRAM-SHA-512", kafka_username="inbound",
                        kafka_password=SecretStr("s3cret"), relay_interval_seconds=0.2)
    config = json.loads(config_line(settings, "inbound", hooked=True, log_level=20, log_format="json"))
    assert Settings(**config["settings"]) == settings
    assert config["settings"]["kafka_password"] == "s3cret"
    assert (config["owner"], config["hooked"], config["log"]) == ("inbound", True, {"level": 20, "format": "json"})


def test_x3_the_config_line_is_read_without_taking_the_wakes_behind_it():
    read, write = os.pipe()
    try:
        os.write(write, b'{"owner": "inbound"}\nwwg')
        assert read_config(read) == {"owner": "inbound"}
        assert os.read(read, 10) == b"wwg"
    finally:
        os.close(read)
        os.close(write)


def test_x3_what_a_relay_process_reports_reaches_its_worker_as_the_same_calls():
    lines: list[bytes] = []
    report = Forwarded(lines.append)
    report.relay_published(3)
    report.relay_failed("parked")
    report.relay_delays([0.0123456789, 1.5])
    report.waiting("kafka")
    report.processed("messages")  # not a relay's: not sent
    assert [json.loads(line) for line in lines] == [
        {"report": ["relay_published", [3]]}, {"report": ["relay_failed", ["parked", 1]]},
        {"report": ["relay_delays", [[0.012346, 1.5]]]}, {"report": ["waiting", ["kafka", True]]}]
    assert message("ready", 7) == b'{"ready":7}\n'


async def test_x3_a_relay_process_wakes_on_its_worker_s_byte_and_ends_with_its_input():
    import asyncio

    read, write = os.pipe()
    commands = Commands(asyncio.get_running_loop(), read)
    woken = asyncio.Event()
    commands.wake = woken.set
    commands.start()
    try:
        os.write(write, b"w")
        await asyncio.wait_for(woken.wait(), 10)
        os.write(write, b"g")
        assert await asyncio.to_thread(commands.answers.get, True, 10) is True
    finally:
        os.close(write)
    await asyncio.wait_for(commands.ended.wait(), 10)
    assert await asyncio.to_thread(commands.answers.get, True, 10) is False  # a waiting checkpoint is let go
    os.close(read)


async def test_x3_a_line_the_relay_process_should_not_have_written_is_logged_and_passed_over(caplog):
    import asyncio

    from workers.delivery.relay_process import RelayProcess

    class Counted:
        published = 0

        def relay_published(self, count: int) -> None:
            self.published += count

    class Child:
        stdout = asyncio.StreamReader()

    child = Child()
    for line in (b"hello from a library\n", b"[1, 2]\n", b'{"report": ["relay_published", [4]]}\n',
                 b'{"report": ["processed", ["x"]]}\n'):  # not a relay's count: ignored
        child.stdout.feed_data(line)
    child.stdout.feed_eof()
    report = Counted()
    relay = RelayProcess(Settings(database_url=PG), "inbound", report=report)  # type: ignore[arg-type]
    await relay._follow(child)  # type: ignore[arg-type]
    assert report.published == 4
    assert sum("wrote a line it should not have" in r.getMessage() for r in caplog.records) == 2


def test_x3_each_line_a_relay_process_logs_names_its_worker_and_itself(tmp_path):
    """The child's lines share its worker's stderr: they say whose relay process wrote them. Started with a
    broker nobody listens on, it logs that it waits for Kafka; its closed input stops it (exit 0)."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", kafka_bootstrap_servers="127.0.0.1:9",
                        relay="inline")
    child = subprocess.Popen([sys.executable, "-m", "workers.delivery.relay_process", "inbound"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdin is not None and child.stderr is not None
    try:
        child.stdin.write(config_line(settings, "inbound", hooked=False, log_level=logging.WARNING, log_format="json"))
        child.stdin.flush()
        lines = []
        while not lines or "Kafka unavailable" not in lines[-1]["message"]:
            lines.append(json.loads(child.stderr.readline()))
        child.stdin.close()
        assert child.wait(30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert [(logged["worker"], logged["process"]) for logged in lines] == [("inbound", "relay")] * len(lines)


def test_x3_a_relay_process_whose_producer_is_refused_for_good_says_why_and_exits_3(tmp_path):
    """Not a wait but a refusal for good (here a CA file that is not there; a bad credential alike): the
    child tells its worker why (a `fatal` line) and exits FATAL_EXIT, which stops the worker rather than
    restarting the child. Its worker's own producer, made with the same settings, meets the same refusal
    first in a real worker, so this is the child on its own."""
    from workers.delivery.relay_process import FATAL_EXIT

    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", kafka_bootstrap_servers="127.0.0.1:9",
                        kafka_security_protocol="SSL", kafka_ca_file=str(tmp_path / "missing-ca.pem"), relay="inline")
    child = subprocess.Popen([sys.executable, "-m", "workers.delivery.relay_process", "inbound"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        out, _ = child.communicate(config_line(settings, "inbound", hooked=False, log_level=logging.WARNING,
                                               log_format="json"), timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == FATAL_EXIT
    lines = [json.loads(line) for line in out.splitlines()]
    fatal = [line["fatal"] for line in lines if "fatal" in line]
    assert len(fatal) == 1
    assert "could not start its producer" in fatal[0]
    assert f"KAFKA_SSL_CA_FILE='{tmp_path / 'missing-ca.pem'}' cannot be read as the brokers' CA" in fatal[0]
    assert not any("ready" in line for line in lines)
