"""Logging for worker processes: plain lines for a terminal (the default) or one JSON object per line
(`TICKETFLOW_LOG_FORMAT=json`, `--log-format json`), each with the fields of the record being
processed: worker, topic, partition, offset, ce_id, correlation_id (and trace_id/span_id in a span).
A worker's relay process (ADR 17) writes to the same stream; its lines carry `worker` and `process=relay`.

    configure_logging(level_for(args.verbose), "json")      # once, at process start
    with log_fields(**record_log_fields("inbound", record)): # the delivery core, per record
        log.warning("...")                                   # carries the record's fields
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

from opentelemetry import trace

FIELDS = ("worker", "process", "topic", "partition", "offset", "ce_id", "correlation_id")
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"

_format = "plain"
_fields: ContextVar[Mapping[str, Any]] = ContextVar("ticketflow_log_fields",
                                                     default=MappingProxyType({}))


@contextmanager
def log_fields(**fields: Any) -> Iterator[None]:
    """Attach `fields` (None values left out) to every log record emitted in this block, in this task
    and the tasks it starts."""
    token = _fields.set({**_fields.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _fields.reset(token)


def current_fields() -> Mapping[str, Any]:
    """The fields `log_fields` attached here."""
    return _fields.get()


def _header(headers: Any, name: str) -> str | None:
    for key, raw in headers or ():
        if key == name:
            try:
                return str(raw.decode()[:256]) if isinstance(raw, bytes) else str(raw)[:256]
            except UnicodeDecodeError:
                return None
    return None


def record_log_fields(worker: str, record: Any) -> dict[str, Any]:
    """The log fields of a Kafka record (topic, partition, offset, headers): `ce_id`, and the
    correlation id (`ce_correlationid`, else the record's own `ce_id`)."""
    ce_id = _header(record.headers, "ce_id")
    return {"worker": worker, "topic": record.topic, "partition": record.partition, "offset": record.offset,
            "ce_id": ce_id, "correlation_id": _header(record.headers, "ce_correlationid") or ce_id}


class ContextFilter(logging.Filter):
    """Copies the current record fields and trace ids onto each log record (`record.fields`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = dict(_fields.get())
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            fields["trace_id"] = format(span.trace_id, "032x")
            fields["span_id"] = format(span.span_id, "016x")
        record.fields = fields
        shown = [f"{k}={fields[k]}" for k in FIELDS if k in fields]
        record.context = f" [{' '.join(shown)}]" if shown else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the record fields and,
    for an exception, its traceback as `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def level_for(verbosity: int) -> int:
    """`-v` count to a level: none WARNING, -v INFO, -vv DEBUG."""
    return {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)


def configure_logging(level: int, fmt: str = "plain", stream: TextIO | None = None,
                      force: bool = False) -> logging.Handler | None:
    """Give the root logger one handler writing to `stream` (default stderr) in `fmt` ("plain" or
    "json") at `level`, replacing the one an earlier call installed. Like `logging.basicConfig`, it
    leaves a root logger that already has other handlers (a test runner's) alone unless `force`;
    returns the handler, or None when it left things alone."""
    if fmt not in ("plain", "json"):
        raise ValueError(f"log format {fmt!r}; choose plain or json")
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "ticketflow", False)]
    if len(ours) < len(root.handlers) and not force:
        return None
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.ticketflow = True  # type: ignore[attr-defined]
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(PLAIN_FORMAT))
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    global _format
    _format = fmt
    return handler


def current_format() -> str:
    """The format `configure_logging` last installed ("plain" if it never ran): a worker's relay process logs alike."""
    return _format
