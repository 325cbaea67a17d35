"""JSON Schema for every message, generated from the models (`ticketflow schemas --out DIR`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from contracts.accounts import Account
from contracts.commands import ConversationCommandUnion, TicketCommandUnion
from contracts.events import CommandRejected, ConversationEventUnion, OutboundMessage, TicketEventUnion
from contracts.inbound import InboundMessage

SCHEMAS: dict[str, Any] = {
    "inbound.message": InboundMessage,
    "account": Account,
    "conversation-command": ConversationCommandUnion,
    "ticket-command": TicketCommandUnion,
    "conversation-event": ConversationEventUnion,
    "ticket-event": TicketEventUnion,
    "command.rejected": CommandRejected,
    "outbound.message": OutboundMessage,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    return {name: TypeAdapter(model).json_schema() for name, model in SCHEMAS.items()}


def write_schemas(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = out / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
