"""AsyncAPI 3.0 documents of the three workers: every channel each one receives and sends, with the real
payload schemas (generated from the pydantic contracts, as docs/schemas/ is), the CloudEvents headers,
the record key and the Kafka bindings (partitions, configs, consumer groups).

    .venv/bin/python scripts/asyncapi.py            write docs/asyncapi/<worker>.yaml
    .venv/bin/python scripts/asyncapi.py --check    exit 1 if a committed document is stale

The workers take records raw (ADR 3), so FastStream's own generator sees `bytes` everywhere; the
documents are built here instead, from the catalogue (contracts/topics.py), the contracts
(contracts/schema.py) and the workers' own wiring: their inputs, consumer groups and declared
publications (`Worker.inputs`, `Worker.outputs`).
`scripts/validate_deploy.sh` validates the documents with the AsyncAPI parser.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts import topics as t
from contracts.schema import SCHEMAS
from contracts.topics import CATALOGUE, TopicSpec

OUT = Path(__file__).resolve().parents[1] / "docs" / "asyncapi"
WORKERS = ("inbound", "ticketing", "sync")
PAYLOADS = {
    t.INBOUND_MESSAGES: "inbound.message", t.ACCOUNTS: "account", t.CONVERSATION_COMMANDS: "conversation-command",
    t.TICKET_COMMANDS: "ticket-command", t.CONVERSATION_COMMANDS_INTERNAL: "conversation-command",
    t.TICKET_COMMANDS_INTERNAL: "ticket-command", t.CONVERSATION_EVENTS: "conversation-event",
    t.TICKET_EVENTS: "ticket-event", t.REJECTIONS: "command.rejected", t.OUTBOUND_MESSAGES: "outbound.message",
}
"""The contract (contracts.schema.SCHEMAS) each topic carries; the dead-letter topic carries any bytes."""
BINDING = "0.5.0"
REF = "#/components/schemas/{model}"
CE_HEADERS = {
    "ce_specversion": "CloudEvents version, `1.0`",
    "ce_id": "unique message id (a command keeps its `command_id`); repeats of one message share it",
    "ce_type": "the body's `type`",
    "ce_source": "`/ticketflow/inbound`, `/ticketflow/ticketing` or `/ticketflow/sync` (or the sender's)",
    "ce_time": "when it was published, ISO 8601 with zone",
    "ce_subject": "the conversation or ticket id (= the record key)",
    "content-type": "`application/json`",
    "ce_accountid": "the account",
    "ce_correlationid": "id shared by everything one input caused",
    "ce_causationid": "`ce_id` of the message that caused this one",
    "traceparent": "W3C Trace Context of the span that published it",
    "tracestate": "W3C Trace Context vendor state",
}
DLQ_HEADERS = {
    "dlq_original_topic": "where the record came from", "dlq_original_partition": "its partition",
    "dlq_original_offset": "its offset", "dlq_consumer": "the worker input that gave up (`worker.input`)",
    "dlq_error_class": "the error's class", "dlq_reason": "why (README: dead-letter reasons)",
    "dlq_detail": "what exactly", "dlq_time": "when, ISO 8601",
    "dlq_truncated": "`true` when the value was cut to a 64 KiB prefix (then not replayable)",
    "dlq_replayed_from": "set on a record `ticketflow deadletters replay` republished",
}


def _camel(topic: str) -> str:
    words = topic.removeprefix("ticketflow.").removesuffix(".v1").replace("-", ".").split(".")
    return words[0] + "".join(w.capitalize() for w in words[1:])


def _header_schema(names: dict[str, str], required: list[str], title: str) -> dict[str, Any]:
    return {"type": "object", "title": title, "required": required,
            "properties": {k: {"type": "string", "description": v} for k, v in names.items()}}


def _contract_schemas(name: str) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """(message type, schema name) of each message `name` covers, and every schema it needs."""
    schema = TypeAdapter(SCHEMAS[name]).json_schema(ref_template=REF)
    defs = schema.pop("$defs", {})
    if "oneOf" in schema:  # a union: one message per variant, by its `type`
        variants = [ref["$ref"].rsplit("/", 1)[1] for ref in schema["oneOf"]]
    else:
        variants = [schema["title"]]
        defs[schema["title"]] = schema
    messages = [(defs[v]["properties"]["type"]["const"], v) for v in variants]
    return messages, defs


def _channel(spec: TopicSpec, messages: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {"cleanup.policy": [spec.cleanup_policy]}
    if spec.retention_ms is not None:
        config["retention.ms"] = spec.retention_ms
    if "max.message.bytes" in spec.extra_config:
        config["max.message.bytes"] = int(spec.extra_config["max.message.bytes"])
    return {
        "address": spec.name,
        "title": spec.name,
        "description": f"Carries {spec.carries}. Key: {spec.key}. Producers: {spec.producers}; "
                       f"consumers: {spec.consumers}. A deployment may prefix the name (TICKETFLOW_TOPIC_PREFIX).",
        "messages": {key: {"$ref": f"#/components/messages/{key}"} for key in messages},
        "bindings": {"kafka": {"topic": spec.name, "partitions": spec.partitions, "topicConfiguration": config,
                               "bindingVersion": BINDING}},
    }


def _messages(spec: TopicSpec, sent: bool, schemas: dict[str, Any]) -> dict[str, Any]:
    """The channel's messages (component name -> message), adding the schemas they use to `schemas`."""
    headers = {"$ref": "#/components/schemas/EnvelopeHeaders" if sent else "#/components/schemas/InputHeaders"}
    key = {"type": "string", "description": spec.key}
    if spec.name == t.DEADLETTER:
        return {"deadLetter": {
            "name": "dead letter", "title": "A record a worker could not process",
            "summary": "The original key, value and headers, plus dlq_* headers saying where it came from and why.",
            "contentType": "application/octet-stream",
            "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
            "payload": {"description": "the original value, bytes intact (or its 64 KiB prefix when dlq_truncated)"},
            "bindings": {"kafka": {"key": key, "bindingVersion": BINDING}}}}
    variants, defs = _contract_schemas(PAYLOADS[spec.name])
    for def_name, schema in defs.items():
        if schemas.setdefault(def_name, schema) != schema:
            raise ValueError(f"two contracts define {def_name} differently")
    return {kind: {
        "name": kind, "title": schemas[model].get("title", kind), "summary": schemas[model].get("description", kind),
        "contentType": "application/json", "headers": headers, "payload": {"$ref": REF.format(model=model)},
        "bindings": {"kafka": {"key": key, "bindingVersion": BINDING}}} for kind, model in variants}


def document(worker: str, inputs: list[tuple[str, str]], outputs: list[str], group: Any) -> dict[str, Any]:
    """The AsyncAPI document of `worker`: `inputs` are its (purpose, topic) pairs, `outputs` the topics it
    writes, `group(purpose)` the consumer group of an input."""
    specs = {spec.name: spec for spec in CATALOGUE}
    schemas: dict[str, Any] = {
        "EnvelopeHeaders": _header_schema(CE_HEADERS, ["ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time",
                                                       "content-type"], "CloudEvents headers (binary mode)"),
        "InputHeaders": _header_schema(CE_HEADERS, [], "CloudEvents headers, optional on inputs from outside "
                                                       "(the body is authoritative)"),
        "DeadLetterHeaders": _header_schema(DLQ_HEADERS, ["dlq_original_topic", "dlq_original_partition",
                                                          "dlq_original_offset", "dlq_reason"], "Dead-letter headers"),
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    flows = [(topic, False, purpose) for purpose, topic in inputs] + [(topic, True, None) for topic in outputs]
    for topic, sent, purpose in flows:
        spec, channel = specs[topic], _camel(topic)
        found = _messages(spec, sent, schemas)
        messages.update(found)
        channels.setdefault(channel, _channel(spec, {}))["messages"].update(
            {key: {"$ref": f"#/components/messages/{key}"} for key in found})
        operation: dict[str, Any] = {
            "action": "send" if sent else "receive", "channel": {"$ref": f"#/channels/{channel}"},
            "summary": (f"{worker} publishes" if sent else f"{worker} consumes ({purpose})") + f" {spec.carries}",
            "messages": [{"$ref": f"#/channels/{channel}/messages/{key}"} for key in found]}
        if purpose is not None:
            operation["bindings"] = {"kafka": {"groupId": {"type": "string", "enum": [group(purpose)]},
                                               "bindingVersion": BINDING}}
        operations[("send" if sent else "receive") + channel[0].upper() + channel[1:]] = operation
    return {
        "asyncapi": "3.0.0",
        "info": {"title": f"Ticketflow {worker} worker", "version": "1.0.0",
                 "description": f"What the {worker} worker consumes and publishes on Kafka. Generated by "
                                "scripts/asyncapi.py from contracts/; do not edit. Delivery is at least once: "
                                "deduplicate on `ce_id`. Events of one key are in order on one partition."},
        "defaultContentType": "application/json",
        "servers": {"kafka": {"host": "kafka:9092", "protocol": "kafka",
                              "description": "KAFKA_BOOTSTRAP_SERVERS of the deployment"}},
        "channels": channels, "operations": operations,
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }


def documents() -> dict[str, str]:
    """Every worker's document as YAML, by worker name (inputs and groups read from the workers' wiring)."""
    from ticketflow.running import build_worker
    from workers.settings import Settings

    settings = Settings(topic_prefix="")
    out = {}
    for name in WORKERS:
        worker = build_worker(name, settings)
        doc = document(name, list(worker.inputs), list(worker.outputs),
                       lambda purpose, n=name: settings.group(n, purpose))
        out[name] = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed document differs")
    parser.add_argument("--out", type=Path, default=OUT, help="folder (default docs/asyncapi)")
    args = parser.parse_args(argv)
    stale = []
    for name, text in documents().items():
        path = args.out / f"{name}.yaml"
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(path)
    if stale:
        print(f"stale: {', '.join(stale)} (run .venv/bin/python scripts/asyncapi.py)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
