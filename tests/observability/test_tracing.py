"""Trace context across Kafka headers: a record's `traceparent` parents the span of its processing, and
what the span's code publishes carries that span on. Spans recorded by the real OpenTelemetry SDK into
its in-memory exporter; export configuration tried in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode

from workers.observability import tracing
from workers.observability.tracing import (
    exporter_name,
    extract_context,
    inject_context,
    note_outcome,
    record_span,
    trace_pairs,
)

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


@dataclass
class Record:
    """The fields of an aiokafka ConsumerRecord that the span reads."""

    topic: str = "ticketflow.inbound.messages.v1"
    partition: int = 3
    offset: int = 42
    key: bytes | None = b"acme:email:thread-1"
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def test_the_span_of_a_record_is_a_child_of_its_traceparent_and_outgoing_headers_carry_the_span(spans):
    tracer, exporter = spans
    record = Record(headers=[("ce_id", b"msg-1"), ("traceparent", PARENT.encode()), ("tracestate", b"vendor=x")])
    with record_span(record, "inbound", "ticketflow.inbound.messages", tracer=tracer) as span:
        outgoing = inject_context([("ce_id", b"evt-1"), ("traceparent", b"00-stale-stale-00")])
        mine = span.get_span_context()
    (finished,) = exporter.get_finished_spans()
    assert finished.name == "process ticketflow.inbound.messages.v1" and finished.kind == SpanKind.CONSUMER
    assert format(finished.context.trace_id, "032x") == TRACE_ID
    assert finished.parent is not None and format(finished.parent.span_id, "016x") == "b7ad6b7169203331"
    assert finished.attributes is not None
    assert dict(finished.attributes) == {
        "messaging.system": "kafka", "messaging.operation.type": "process", "messaging.operation.name": "process",
        "messaging.destination.name": "ticketflow.inbound.messages.v1", "messaging.destination.partition.id": "3",
        "messaging.kafka.offset": 42, "messaging.consumer.group.name": "ticketflow.inbound.messages",
        "ticketflow.worker": "inbound", "messaging.message.id": "msg-1",
        "messaging.kafka.message.key": "acme:email:thread-1"}
    headers = dict(outgoing)
    assert [k for k, _v in outgoing].count("traceparent") == 1
    assert headers["ce_id"] == b"evt-1"
    assert headers["traceparent"].decode() == f"00-{TRACE_ID}-{mine.span_id:016x}-01"
    assert headers["tracestate"] == b"vendor=x"


def test_one_trace_runs_from_an_inbound_message_through_an_event_into_a_command(spans):
    tracer, exporter = spans
    inbound = Record(headers=[("traceparent", PARENT.encode())])
    with record_span(inbound, "inbound", "g1", tracer=tracer):
        event_headers = inject_context([("ce_id", b"evt-1")])  # stored with the outbox row, published as is
    with record_span(Record(topic="ticketflow.conversation.events.v1", headers=event_headers), "sync", "g2",
                     tracer=tracer):
        command_headers = inject_context([])
    with record_span(Record(topic="ticketflow.ticket.commands.v1", headers=command_headers), "ticketing", "g3",
                     tracer=tracer):
        pass
    first, second, third = exporter.get_finished_spans()
    assert {format(s.context.trace_id, "032x") for s in (first, second, third)} == {TRACE_ID}
    assert second.parent is not None and second.parent.span_id == first.context.span_id
    assert third.parent is not None and third.parent.span_id == second.context.span_id


def test_a_record_without_trace_context_starts_a_new_trace(spans):
    tracer, exporter = spans
    with record_span(Record(key=None), "inbound", "g", tracer=tracer):
        pass
    (finished,) = exporter.get_finished_spans()
    assert finished.parent is None and finished.context.trace_id != 0
    assert finished.attributes is not None and "messaging.kafka.message.key" not in finished.attributes


def test_an_exception_is_recorded_and_outcomes_noted(spans):
    tracer, exporter = spans
    with pytest.raises(RuntimeError), record_span(Record(), "inbound", "g", tracer=tracer):
        note_outcome("dead_lettered", "not_json")
        raise RuntimeError("boom")
    (finished,) = exporter.get_finished_spans()
    assert finished.status.status_code == StatusCode.ERROR
    assert finished.attributes is not None
    assert (finished.attributes["ticketflow.outcome"], finished.attributes["ticketflow.reason"]) == ("dead_lettered",
                                                                                                     "not_json")


def test_without_export_the_context_still_passes_through():
    tracer = NoOpTracerProvider().get_tracer("test")
    with record_span(Record(headers=[("traceparent", PARENT.encode())]), "inbound", "g", tracer=tracer):
        outgoing = dict(inject_context([]))
    assert outgoing["traceparent"].decode() == PARENT


def test_events_made_without_export_carry_the_incoming_trace_and_nothing_without_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The pairs each outgoing event gets (`trace_pairs`): the handled record's trace context when it came
    with one, none when it came without and nothing records spans."""
    monkeypatch.setattr(tracing, "_exporting", False)
    with record_span(Record(headers=[("traceparent", PARENT.encode())]), "inbound", "g"):
        assert dict(trace_pairs())["traceparent"] == PARENT
    with record_span(Record(headers=[("ce_id", b"x")]), "inbound", "g"):
        assert trace_pairs() == []
    assert trace_pairs() == []


@pytest.mark.parametrize("headers", [
    [], [("traceparent", b"\xff\xfe")], [("traceparent", b"not-a-traceparent")], [("other", b"x")],
])
def test_unreadable_or_missing_context_extracts_as_none(headers):
    assert inject_context([], context=extract_context(headers)) == []


@pytest.mark.parametrize(("env", "expected"), [
    ({}, None),
    ({"OTEL_TRACES_EXPORTER": "none"}, None),
    ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
    ({"OTEL_TRACES_EXPORTER": "none,otlp"}, "otlp"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "otlp"),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, "otlp"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, None),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, None),
])
def test_export_is_off_unless_the_standard_variables_ask_for_it(env, expected):
    assert exporter_name(env) == expected


def test_an_unsupported_exporter_is_refused():
    with pytest.raises(ValueError, match="zipkin"):
        exporter_name({"OTEL_TRACES_EXPORTER": "zipkin"})


SCRIPT = """
from workers.observability.tracing import configure_tracing, record_span
from tests.observability.test_tracing import Record
provider = configure_tracing("ticketflow-inbound")
print("provider", provider is not None, flush=True)
if provider is not None:
    with record_span(Record(), "inbound", "g"):
        pass
    provider.shutdown()
"""


def _run(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env={**clean, **env}, capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout


def test_configured_console_export_writes_the_span_with_the_service_name():
    out = _run({"OTEL_TRACES_EXPORTER": "console"})
    assert out.startswith("provider True\n")
    span = json.loads(out.split("\n", 1)[1])
    assert span["name"] == "process ticketflow.inbound.messages.v1"
    assert span["resource"]["attributes"]["service.name"] == "ticketflow-inbound"


def test_otel_service_name_wins():
    out = _run({"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "tf-in"})
    assert json.loads(out.split("\n", 1)[1])["resource"]["attributes"]["service.name"] == "tf-in"


def test_unconfigured_installs_nothing():
    assert _run({}) == "provider False\n"
