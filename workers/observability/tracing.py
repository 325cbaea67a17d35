"""OpenTelemetry traces across Kafka: one span per record, parented on the `traceparent` the record
carries, and the current span's context written into every record a worker publishes, so one trace
runs from an inbound message through the outbox into its events and the sync worker's commands.

    with record_span(record, "inbound", group):              # the delivery core, per record
        ...                                                    # the handler runs inside the span
    headers = inject_context(envelope.to_headers())            # building an outgoing record

Only W3C Trace Context (`traceparent`, `tracestate`) is carried: the headers the delivery core reads
and limits (workers.delivery.parsing); baggage is not propagated.

Export is off unless configured with the standard variables: `OTEL_TRACES_EXPORTER` (`otlp`,
`console`, `none`) or an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`,
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`). The exporter itself reads the rest (`OTEL_EXPORTER_OTLP_*`,
`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`). Without export the context
still passes through: a record's `traceparent` reaches the records it causes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

Headers = Sequence[tuple[str, bytes]]
TRACE_HEADERS = ("traceparent", "tracestate")
PROPAGATOR = TraceContextTextMapPropagator()
INSTRUMENTATION = "ticketflow"
_exporting = False
"""Whether `configure_tracing` installed an exporting provider (otherwise spans would record nothing)."""


class _HeaderGetter(Getter[Headers]):
    """Reads Kafka headers (str, bytes); a value that is not UTF-8 is ignored (the record is
    dead-lettered for it by the delivery core)."""

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        values = []
        for name, raw in carrier:
            if name == key:
                try:
                    values.append(raw.decode() if isinstance(raw, bytes) else str(raw))
                except UnicodeDecodeError:
                    continue
        return values or None

    def keys(self, carrier: Headers) -> list[str]:
        return [name for name, _ in carrier]


def extract_context(headers: Headers | None) -> Context:
    """The trace context a record's headers carry (an empty context when they carry none)."""
    return PROPAGATOR.extract(list(headers or ()), context=Context(), getter=_HeaderGetter())


def trace_pairs(context: Context | None = None) -> list[tuple[str, str]]:
    """`traceparent`/`tracestate` of the current span (or of `context`) as text pairs; [] without one."""
    if context is None:
        context = context_api.get_current()
        if not context:  # nothing attached (no span, no incoming trace): nothing to inject, per event
            return []
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier, context=context)
    return list(carrier.items())


def inject_context(headers: Headers, context: Context | None = None) -> list[tuple[str, bytes]]:
    """`headers` with `traceparent`/`tracestate` of the current span (or of `context`) in place of any
    they had; unchanged but for those when there is no span."""
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier, context=context)
    kept = [(name, value) for name, value in headers if name not in TRACE_HEADERS]
    return kept + [(name, value.encode()) for name, value in carrier.items()]


@contextmanager
def record_span(record: Any, worker: str, group: str, tracer: Tracer | None = None) -> Iterator[Span]:
    """A CONSUMER span `process <topic>` for one Kafka record (anything with topic, partition, offset,
    key, headers), child of the context its headers carry, current for the block's duration. An
    exception leaving the block is recorded on the span."""
    headers = list(record.headers or ())
    if tracer is None and not _exporting:
        # Nothing records spans: only carry an incoming trace context through (cheap; per record).
        if not any(name == "traceparent" for name, _v in headers):
            yield trace.INVALID_SPAN
            return
        token = context_api.attach(extract_context(headers))
        try:
            yield trace.get_current_span()
        finally:
            context_api.detach(token)
        return
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": record.topic,
        "messaging.destination.partition.id": str(record.partition),
        "messaging.kafka.offset": int(record.offset),
        "messaging.consumer.group.name": group,
        "ticketflow.worker": worker,
    }
    ce_id = _HeaderGetter().get(headers, "ce_id")
    if ce_id:
        attributes["messaging.message.id"] = ce_id[0][:256]
    if isinstance(record.key, bytes):
        attributes["messaging.kafka.message.key"] = record.key[:256].decode(errors="replace")
    tracer = tracer or trace.get_tracer(INSTRUMENTATION)
    with tracer.start_as_current_span(f"process {record.topic}", context=extract_context(headers),
                                      kind=SpanKind.CONSUMER, attributes=attributes) as span:
        yield span


def note_outcome(outcome: str, reason: str | None = None) -> None:
    """Mark the current record span with its outcome ("processed", "rejected", "dead_lettered",
    "retrying") and reason (a rejection or `dlq_reason`)."""
    span = trace.get_current_span()
    span.set_attribute("ticketflow.outcome", outcome)
    if reason:
        span.set_attribute("ticketflow.reason", reason)


def exporter_name(env: Mapping[str, str] = os.environ) -> str | None:
    """Which exporter the OTEL_* variables ask for: "otlp", "console", or None (tracing not exported)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    chosen = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    if chosen:
        wanted = [n for n in chosen if n != "none"]
        if not wanted:
            return None
        if wanted[0] not in ("otlp", "console"):
            raise ValueError(f"OTEL_TRACES_EXPORTER={wanted[0]!r}: Ticketflow exports with otlp or console")
        return wanted[0]
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return "otlp"
    return None


def _exporter(name: str, env: Mapping[str, str]) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    if protocol != "http/protobuf":
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: Ticketflow ships the http/protobuf exporter")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def configure_tracing(service_name: str, env: Mapping[str, str] = os.environ) -> TracerProvider | None:
    """Install the global tracer provider exporting spans as the OTEL_* variables say, named
    `service_name` unless `OTEL_SERVICE_NAME` names it; None (and nothing installed) when export is off.
    Call once per process, before the workers start; `provider.shutdown()` flushes at exit."""
    name = exporter_name(env)
    if name is None:
        return None
    attributes = {} if env.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(_exporter(name, env)))
    trace.set_tracer_provider(provider)
    global _exporting
    _exporting = True
    return provider
