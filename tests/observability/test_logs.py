"""Logs: plain lines by default, one JSON object per line on request, each carrying the fields of the
record in hand (and the trace it belongs to)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from dataclasses import dataclass, field

import pytest
from opentelemetry.sdk.trace import TracerProvider

from workers.observability.logs import configure_logging, current_fields, level_for, log_fields, record_log_fields
from workers.observability.tracing import record_span


@dataclass
class Record:
    topic: str = "ticketflow.ticket.commands.v1"
    partition: int = 1
    offset: int = 7
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=lambda: [("ce_id", b"cmd-1"),
                                                                      ("ce_correlationid", b"corr-9")])


@pytest.fixture
def logged():
    """The root logger writing into a buffer for the test; pytest's own handlers put back afterwards."""
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    buffer = io.StringIO()
    yield buffer
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved:
        root.addHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_the_record_fields(logged):
    configure_logging(logging.INFO, "json", logged, force=True)
    log = logging.getLogger("ticketflow.delivery")
    with log_fields(**record_log_fields("ticketing", Record())):
        log.warning("transient failure, retrying in %.1fs", 0.2)
    log.info("outside")
    first, second = [json.loads(line) for line in logged.getvalue().splitlines()]
    assert {k: v for k, v in first.items() if k != "time"} == {
        "level": "WARNING", "logger": "ticketflow.delivery", "message": "transient failure, retrying in 0.2s",
        "worker": "ticketing", "topic": "ticketflow.ticket.commands.v1", "partition": 1, "offset": 7,
        "ce_id": "cmd-1", "correlation_id": "corr-9"}
    assert first["time"].endswith("+00:00")
    assert set(second) == {"time", "level", "logger", "message"}


def test_a_traceback_stays_inside_its_json_line(logged):
    configure_logging(logging.INFO, "json", logged, force=True)
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logging.getLogger("x").exception("processing failed")
    (line,) = logged.getvalue().splitlines()
    assert "ValueError: bad\nvalue" in json.loads(line)["exception"]


def test_json_lines_name_the_trace(logged):
    configure_logging(logging.INFO, "json", logged, force=True)
    tracer = TracerProvider().get_tracer("test")
    with record_span(Record(), "ticketing", "g", tracer=tracer) as span:
        logging.getLogger("x").warning("in a span")
    entry = json.loads(logged.getvalue())
    assert entry["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert entry["span_id"] == format(span.get_span_context().span_id, "016x")


def test_plain_is_the_default_and_shows_the_record_briefly(logged):
    configure_logging(logging.WARNING, stream=logged, force=True)
    with log_fields(worker="sync", topic="t", partition=0, offset=3):
        logging.getLogger("ticketflow.sync").warning("hello")
    logging.getLogger("ticketflow.sync").info("not shown at WARNING")
    (line,) = logged.getvalue().splitlines()
    assert line.endswith(" WARNING ticketflow.sync: hello [worker=sync topic=t partition=0 offset=3]")


def test_a_correlation_id_defaults_to_the_records_own_id():
    fields = record_log_fields("inbound", Record(headers=[("ce_id", b"m-1"), ("ce_type", b"\xff")]))
    assert (fields["ce_id"], fields["correlation_id"]) == ("m-1", "m-1")
    assert record_log_fields("inbound", Record(headers=[]))["ce_id"] is None


async def test_fields_belong_to_their_task():
    async def one(offset: int) -> dict:
        with log_fields(offset=offset):
            await asyncio.sleep(0)
            return dict(current_fields())

    assert await asyncio.gather(one(1), one(2)) == [{"offset": 1}, {"offset": 2}]
    assert dict(current_fields()) == {}


def test_a_root_logger_with_foreign_handlers_is_left_alone_unless_forced(logged):
    root = logging.getLogger()
    foreign = logging.StreamHandler(io.StringIO())
    root.addHandler(foreign)
    assert configure_logging(logging.DEBUG, "json", logged) is None and foreign in root.handlers
    mine = configure_logging(logging.DEBUG, "json", logged, force=True)
    assert root.handlers == [mine]
    again = configure_logging(logging.INFO, "plain", logged)  # replaces its own handler without force
    assert root.handlers == [again] and root.level == logging.INFO


def test_verbosity_levels_and_formats():
    assert [level_for(n) for n in (0, 1, 2, 3)] == [logging.WARNING, logging.INFO, logging.DEBUG, logging.DEBUG]
    with pytest.raises(ValueError, match="xml"):
        configure_logging(logging.INFO, "xml")
