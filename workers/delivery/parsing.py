"""Turning a Kafka record into a contract, or a BadMessage that says exactly what is wrong."""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter, ValidationError

from contracts.envelope import Envelope
from workers.delivery.errors import BadMessage


def headers_of(record: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in record.headers or ():
        try:
            out[key] = value.decode() if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError:
            continue
    return out


def envelope_of(record: Any) -> Envelope | None:
    return Envelope.from_headers(headers_of(record))


def parse(record: Any, adapter: TypeAdapter[Any], what: str) -> Any:
    if not record.value:
        raise BadMessage("empty_message", f"the record has no value; expected {what}")
    try:
        data = json.loads(record.value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadMessage("not_json", f"the value is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadMessage("not_an_object", f"expected a JSON object ({what}), got {type(data).__name__}")
    kind = data.get("type")
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:10])
        raise BadMessage(_reason(exc), f"not a valid {what} (type={kind!r}): {errors}") from exc


def _reason(exc: ValidationError) -> str:
    """unknown_type / missing_type when the `type` field is the problem, else invalid_schema."""
    for err in exc.errors():
        if err["type"] == "union_tag_not_found":
            return "missing_type"
        if err["type"] == "union_tag_invalid" or (err["loc"] == ("type",) and err["type"] == "literal_error"):
            return "unknown_type"
    return "invalid_schema"
