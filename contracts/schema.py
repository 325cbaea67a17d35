"""JSON Schema for every message, generated from the models (`ticketflow schemas --out DIR`), and the
released snapshot they must stay backward compatible with (ADR 7).

    python -m contracts.schema --check              list the breaking changes since the release (exit 1 if any)
    python -m contracts.schema --release            refresh the snapshot from the models (refused if breaking)
    python -m contracts.schema --release --force    refresh it even so (a reviewed, deliberate break)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from contracts.accounts import Account
from contracts.commands import ConversationCommandUnion, TicketCommandUnion
from contracts.compatibility import Change, Flow, catalogue_breaking_changes
from contracts.events import (
    CommandRejected,
    ConversationEventUnion,
    OutboundMessage,
    TicketEventUnion,
)
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

FLOWS: dict[str, Flow] = {
    "inbound.message": Flow.CONSUMED,
    "account": Flow.CONSUMED,
    "conversation-command": Flow.CONSUMED,
    "ticket-command": Flow.CONSUMED,
    "conversation-event": Flow.PUBLISHED,
    "ticket-event": Flow.PUBLISHED,
    "command.rejected": Flow.PUBLISHED,
    "outbound.message": Flow.PUBLISHED,
}
"""Who writes each message: published ones must stay readable, consumed ones must keep accepting."""

RELEASED = Path(__file__).resolve().parent / "released" / "v1"
"""The schemas as released: what readers and senders of the `.v1` topics rely on."""

SUFFIX = ".schema.json"


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every message, by name, as the current models generate it."""
    return {name: TypeAdapter(model).json_schema() for name, model in SCHEMAS.items()}


def write_schemas(out: Path, schemas: dict[str, dict[str, Any]] | None = None) -> list[Path]:
    """Write `schemas` (default: the current ones) to `out` as NAME.schema.json; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in (json_schemas() if schemas is None else schemas).items():
        path = out / f"{name}{SUFFIX}"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def read_schemas(folder: Path) -> dict[str, dict[str, Any]]:
    """The schemas written in `folder`, by name."""
    return {path.name.removesuffix(SUFFIX): json.loads(path.read_text()) for path in sorted(folder.glob(f"*{SUFFIX}"))}


def breaking_changes_since_release(released: Path = RELEASED) -> list[Change]:
    """The changes of the current models that break a released schema (empty: compatible)."""
    return catalogue_breaking_changes(read_schemas(released), json_schemas(), FLOWS)


def release(folder: Path = RELEASED) -> list[Path]:
    """Make the current schemas the released snapshot: write them and remove the ones no longer
    generated. Returns the paths written."""
    current = json_schemas()
    for path in folder.glob(f"*{SUFFIX}"):
        if path.name.removesuffix(SUFFIX) not in current:
            path.unlink()
    return write_schemas(folder, current)


def main(argv: list[str] | None = None) -> int:
    """`python -m contracts.schema --check | --release [--force]`; exit 1 when breaking changes stop it."""
    parser = argparse.ArgumentParser(prog="python -m contracts.schema", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="list breaking changes since the released snapshot")
    action.add_argument("--release", action="store_true", help="refresh the released snapshot from the models")
    parser.add_argument("--force", action="store_true", help="with --release: release even breaking changes")
    parser.add_argument("--folder", type=Path, default=RELEASED, help="the snapshot folder (default: %(default)s)")
    args = parser.parse_args(argv)
    changes = breaking_changes_since_release(args.folder)
    for change in changes:
        print(change, file=sys.stderr)
    if args.check or (changes and not args.force):
        if changes and args.release:
            print("not released: breaking changes (see docs/adr/0007-contract-evolution.md; --force to accept)",
                  file=sys.stderr)
        return 1 if changes else 0
    for path in release(args.folder):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
