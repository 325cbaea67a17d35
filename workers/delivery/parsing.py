"""Turning a raw Kafka record into a contract, or a BadMessage that says exactly what is wrong (X4).

Subscribers hand records over undecoded (see `workers.delivery.raw`), so every byte is read here,
where a failure becomes a dead letter with a reason instead of a record skipped before our code runs.

Limits, each with its own dead-letter reason:
- `too_large`: a value over MAX_VALUE_BYTES;
- `not_json`, `not_an_object`, `too_deep` (JSON nested deeper than MAX_JSON_DEPTH);
- `not_utf8_header`: a header Ticketflow reads (`ce_*`, `content-type`, `traceparent`, `tracestate`)
  that is not UTF-8. Other headers are carried as bytes and never decoded;
- `invalid_header`: a header Ticketflow reads that is longer than its limit or holds control
  characters. These values are copied into every event the record causes, so an unbounded one would
  make events the broker cannot take.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from contracts.commands import SYNC_ACTOR, SYNC_ONLY
from contracts.envelope import Envelope
from workers.delivery.errors import BadMessage

MAX_VALUE_BYTES = 1_000_000
MAX_JSON_DEPTH = 32
HEADER_LIMITS = {"ce_subject": 600, "ce_accountid": 64, "ce_type": 128, "ce_time": 64, "content-type": 128,
                 "traceparent": 128, "tracestate": 512}
"""Longest accepted value per header Ticketflow reads (characters); any other `ce_*` header: CE_DEFAULT_LIMIT."""
CE_DEFAULT_LIMIT = 256
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
"""Control characters (C0, DEL, C1): never in a header value Ticketflow copies."""


def _reads(key: str) -> bool:
    return key.startswith("ce_") or key in HEADER_LIMITS


def headers_of(record: Any) -> dict[str, str]:
    """The headers Ticketflow reads, decoded and checked; raises BadMessage for a bad one."""
    out: dict[str, str] = {}
    for key, raw in record.headers or ():
        if not (key.startswith("ce_") or key in HEADER_LIMITS):  # _reads(key), inlined: per header
            continue
        try:
            value = raw.decode() if isinstance(raw, bytes) else str(raw)
        except UnicodeDecodeError as exc:
            raise BadMessage("not_utf8_header", f"header {key!r} is not UTF-8: {exc}") from exc
        limit = HEADER_LIMITS.get(key, CE_DEFAULT_LIMIT)
        if len(value) > limit:
            raise BadMessage("invalid_header", f"header {key!r} is {len(value)} characters long; the limit is {limit}")
        if not value.isprintable() and CONTROL.search(value):  # printable text holds no control character
            raise BadMessage("invalid_header", f"header {key!r} contains control characters")
        out[key] = value
    return out


def envelope_of(record: Any) -> Envelope | None:
    """The CloudEvents envelope the record's headers carry (None without one); raises BadMessage."""
    return Envelope.from_headers(headers_of(record))


def json_of(record: Any, what: str) -> dict[str, Any]:
    """The record's value as a JSON object, within the size and depth limits."""
    value = record.value
    if not value:
        raise BadMessage("empty_message", f"the record has no value; expected {what}")
    if len(value) > MAX_VALUE_BYTES:
        raise BadMessage("too_large", f"the value is {len(value)} bytes; the limit is {MAX_VALUE_BYTES}")
    try:
        data = json.loads(value)
    except RecursionError as exc:
        raise BadMessage("too_deep", f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadMessage("not_json", f"the value is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadMessage("not_an_object", f"expected a JSON object ({what}), got {type(data).__name__}")
    if depth_exceeds(data, MAX_JSON_DEPTH):
        raise BadMessage("too_deep", f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    return data


def depth_exceeds(data: Any, limit: int) -> bool:
    """Whether objects and arrays nest deeper than `limit` (iterative: no recursion on hostile input)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def parse(record: Any, adapter: TypeAdapter[Any], what: str) -> Any:
    """The contract the record carries; every header it reads is checked first."""
    return parse_with(record, adapter.validate_python, what)


Read = Callable[[dict[str, Any]], Any]
"""Validates a decoded JSON object into a contract (None: a type the reader passes over)."""


def public(read: Read) -> Read:
    """`read` for a public command topic: the sync worker's commands (a sync-only type, or `actor_id`
    `system:sync`) are refused there as `internal_command`: only the internal topics carry them (ADR 10)."""
    def read_public(data: dict[str, Any]) -> Any:
        cmd = read(data)
        if isinstance(cmd, SYNC_ONLY) or getattr(cmd, "actor_id", None) == SYNC_ACTOR:
            raise BadMessage("internal_command", f"{cmd.type} as {cmd.actor_id!r} may only come from the sync worker "
                                                 "on the internal command topics")
        return cmd
    return read_public


def parse_with(record: Any, validate: Read, what: str) -> Any:
    """`validate` applied to the record's JSON object (headers checked first); schema errors become BadMessage.

    For consumed event topics `validate` may return None: an event type this worker does not know
    (a newer producer added it) is not for it, and is acknowledged without effect (ADR 7)."""
    return read_record(record, validate, what)[0]


def read_record(record: Any, validate: Read, what: str) -> tuple[Any, dict[str, str]]:
    """`parse_with`'s contract and the headers it checked (`headers_of`), read once for both."""
    headers = headers_of(record)
    data = json_of(record, what)
    kind = data.get("type")
    try:
        return validate(data), headers
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:10])
        raise BadMessage(_reason(exc), f"not a valid {what} (type={str(kind)[:100]!r}): {errors[:1500]}") from exc


def _reason(exc: ValidationError) -> str:
    """unknown_type / missing_type when the `type` field is the problem, else invalid_schema."""
    for err in exc.errors():
        if err["type"] == "union_tag_not_found":
            return "missing_type"
        if err["type"] == "union_tag_invalid" or (err["loc"] == ("type",) and err["type"] == "literal_error"):
            return "unknown_type"
    return "invalid_schema"
