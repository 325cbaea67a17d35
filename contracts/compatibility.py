"""Backward compatibility of a message's JSON Schema: pure functions over two pydantic-generated schemas.

`schema_changes(old, new)` lists every difference that matters to a reader or a sender (a field
removed, a type narrowed, an enum value added, ...) as neutral `Change`s; `breaking_changes` keeps the
ones that break the message's flow:

- `Flow.PUBLISHED` (Ticketflow publishes, others read: events, rejections, outbound messages): what the
  new version writes must still be readable by the old readers, which ignore unknown fields. A field
  removed, a required field becoming optional or nullable, a type changed or widened, an enum value
  removed or added, a constraint loosened, a message type removed are breaking; new fields are not.
- `Flow.CONSUMED` (others publish, Ticketflow reads: inbound messages, commands, accounts): what old
  senders send must still be accepted, and they may still send every field they used to. A new
  required field, a field removed, a type changed or narrowed, null no longer accepted, an enum value
  removed, a constraint tightened, unknown fields now rejected, a message type removed are breaking;
  new optional fields and new enum values are not.

Schemas are read as pydantic writes them: `$defs`/`$ref`, nullable fields as `anyOf` with
`{"type": "null"}`, discriminated unions as `oneOf` (or `anyOf`) of objects whose `type` is a `const`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

Schema = Mapping[str, Any]


class Flow(str, Enum):
    """Who writes a message and who reads it, which decides what breaks it."""

    PUBLISHED = "published"
    """Ticketflow writes it, other services read it."""
    CONSUMED = "consumed"
    """Other services write it, Ticketflow reads it."""


class Kind(str, Enum):
    """What changed between two versions of a message's schema."""

    MESSAGE_REMOVED = "message removed"
    MEMBER_REMOVED = "message type removed"
    MEMBER_ADDED = "message type added"
    FIELD_REMOVED = "field removed"
    FIELD_ADDED_REQUIRED = "required field added"
    FIELD_ADDED_OPTIONAL = "optional field added"
    BECAME_OPTIONAL = "required field became optional"
    BECAME_REQUIRED = "optional field became required"
    BECAME_NULLABLE = "became nullable"
    NO_LONGER_NULLABLE = "null no longer accepted"
    TYPE_CHANGED = "type changed"
    TYPE_WIDENED = "type widened"
    TYPE_NARROWED = "type narrowed"
    ENUM_VALUE_REMOVED = "enum value removed"
    ENUM_VALUE_ADDED = "enum value added"
    CONSTRAINT_TIGHTENED = "constraint tightened"
    CONSTRAINT_LOOSENED = "constraint loosened"
    CONSTRAINT_CHANGED = "constraint changed"
    UNKNOWN_FIELDS_REJECTED = "unknown fields now rejected"
    UNKNOWN_FIELDS_ALLOWED = "unknown fields now allowed"


_BREAKING_BOTH = {Kind.MESSAGE_REMOVED, Kind.MEMBER_REMOVED, Kind.FIELD_REMOVED, Kind.TYPE_CHANGED,
                  Kind.ENUM_VALUE_REMOVED, Kind.CONSTRAINT_CHANGED}

BREAKING: dict[Flow, frozenset[Kind]] = {
    Flow.PUBLISHED: frozenset(_BREAKING_BOTH | {
        Kind.BECAME_OPTIONAL, Kind.BECAME_NULLABLE, Kind.TYPE_WIDENED, Kind.ENUM_VALUE_ADDED,
        Kind.CONSTRAINT_LOOSENED,
    }),
    Flow.CONSUMED: frozenset(_BREAKING_BOTH | {
        Kind.FIELD_ADDED_REQUIRED, Kind.BECAME_REQUIRED, Kind.NO_LONGER_NULLABLE, Kind.TYPE_NARROWED,
        Kind.CONSTRAINT_TIGHTENED, Kind.UNKNOWN_FIELDS_REJECTED,
    }),
}
"""The kinds of change that break a message of each flow; every other kind is compatible."""


@dataclass(frozen=True)
class Change:
    """One difference between two versions of a message: `path` is the message type then the field
    path (`ticket.created.subject`, `account.settings.pipelines[].label`, `create_ticket.properties.*`)."""

    message: str
    path: str
    kind: Kind
    detail: str = ""

    def __str__(self) -> str:
        what = f"{self.kind.value}: {self.detail}" if self.detail else self.kind.value
        return f"{self.message}: {self.path or '(root)'}: {what}"


_LOWER_BOUNDS = ("minLength", "minItems", "minProperties", "minimum", "exclusiveMinimum")
_UPPER_BOUNDS = ("maxLength", "maxItems", "maxProperties", "maximum", "exclusiveMaximum")
_EXACT = ("pattern", "format", "uniqueItems")


@dataclass
class _Walk:
    """The two schemas' `$defs`, and the pairs of definitions being compared further up (so that a
    recursive schema ends)."""

    old_defs: Schema
    new_defs: Schema
    active: set[tuple[str, str]] = field(default_factory=set)


Found = Iterator[tuple[str, Kind, str]]


def schema_changes(old: Schema, new: Schema, message: str = "") -> list[Change]:
    """Every difference between two versions of one message's JSON Schema that can matter to a reader
    or a sender (titles, descriptions and defaults do not), in a stable order."""
    walk = _Walk(old.get("$defs", {}), new.get("$defs", {}))
    return [Change(message, path, kind, detail) for path, kind, detail in _value(old, new, "", walk)]


def breaking_changes(old: Schema, new: Schema, flow: Flow, message: str = "") -> list[Change]:
    """The changes from `old` to `new` that break a message of this flow (see `BREAKING`)."""
    return [change for change in schema_changes(old, new, message) if change.kind in BREAKING[flow]]


def catalogue_breaking_changes(released: Mapping[str, Schema], current: Mapping[str, Schema],
                               flows: Mapping[str, Flow]) -> list[Change]:
    """The breaking changes from the released schemas to the current ones, message by message (by
    name); a released message that is no longer in `current` is removed, which breaks it."""
    changes: list[Change] = []
    for name in sorted(released):
        if name not in current:
            changes.append(Change(name, "", Kind.MESSAGE_REMOVED, "no current schema for a released message"))
        else:
            changes.extend(breaking_changes(released[name], current[name], flows[name], name))
    return changes


# --- walking two schemas side by side -------------------------------------------------------------


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _resolve(schema: Schema, defs: Schema) -> tuple[Schema, str]:
    """The schema a `$ref` points to (its sibling keywords kept), and the last definition's name."""
    name = ""
    for _hop in range(64):
        if "$ref" not in schema:
            break
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = {**defs[name], **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema, name


def _branches(schema: Schema, defs: Schema, name: str = "") -> dict[str, tuple[Schema, str]]:
    """The alternatives a value schema accepts, keyed by what they are: `null`, `any`, a JSON type
    (`string`, `integer`, `object`, ...), or `message:<type>` for an object whose `type` is a const;
    each with the name of the definition it came from ("" for none)."""
    schema, ref = _resolve(schema, defs)
    name = ref or name
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        out: dict[str, tuple[Schema, str]] = {}
        for alternative in alternatives:
            out.update(_branches(alternative, defs))
        return out
    kinds = schema.get("type")
    if isinstance(kinds, list):
        return {kind: ({**schema, "type": kind}, name) for kind in kinds}
    return {_key(schema): (schema, name)}


def _key(schema: Schema) -> str:
    tag = schema.get("properties", {}).get("type", {})
    if "const" in tag:
        return f"message:{tag['const']}"
    if "type" in schema:
        return str(schema["type"])
    if "properties" in schema:
        return "object"
    if "enum" in schema or "const" in schema:
        return "enum"
    return "any"


def _value(old: Schema, new: Schema, path: str, walk: _Walk) -> Found:
    old_b, new_b = _branches(old, walk.old_defs), _branches(new, walk.new_defs)
    yield from _nullability(old_b.keys(), new_b.keys(), path)
    yield from _members(old_b.keys(), new_b.keys(), path)
    yield from _types(old_b.keys(), new_b.keys(), path)
    for key in sorted(old_b.keys() & new_b.keys() - {"null"}):
        (old_s, old_ref), (new_s, new_ref) = old_b[key], new_b[key]
        here = _join(path, key.removeprefix("message:")) if key.startswith("message:") else path
        pair = (old_ref, new_ref)
        if pair in walk.active:
            continue
        if old_ref and new_ref:
            walk.active.add(pair)
        yield from _branch(old_s, new_s, here, walk)
        walk.active.discard(pair)


def _nullability(old: Any, new: Any, path: str) -> Found:
    if "null" in old and "null" not in new and "any" not in new:
        yield path, Kind.NO_LONGER_NULLABLE, ""
    if "null" in new and "null" not in old and "any" not in old:
        yield path, Kind.BECAME_NULLABLE, ""


def _members(old: Any, new: Any, path: str) -> Found:
    for key in sorted(k for k in old - new if k.startswith("message:")):
        yield _join(path, key.removeprefix("message:")), Kind.MEMBER_REMOVED, ""
    for key in sorted(k for k in new - old if k.startswith("message:")):
        yield _join(path, key.removeprefix("message:")), Kind.MEMBER_ADDED, ""


def _types(old: Any, new: Any, path: str) -> Found:
    def plain(keys: Any) -> set[str]:
        return {k for k in keys if k != "null" and not k.startswith("message:")}

    old_t, new_t = plain(old), plain(new)
    if old_t == new_t or not old_t or not new_t:
        return
    described = f"{'|'.join(sorted(old_t))} -> {'|'.join(sorted(new_t))}"
    if "any" in new_t or new_t > old_t:
        yield path, Kind.TYPE_WIDENED, described
    elif "any" in old_t or new_t < old_t:
        yield path, Kind.TYPE_NARROWED, described
    else:
        yield path, Kind.TYPE_CHANGED, described


def _branch(old: Schema, new: Schema, path: str, walk: _Walk) -> Found:
    yield from _enum(old, new, path)
    yield from _bounds(old, new, path)
    if "properties" in old or "properties" in new:
        yield from _object(old, new, path, walk)
    yield from _extra(old, new, path, walk)
    if "items" in old or "items" in new:
        yield from _value(old.get("items", {}), new.get("items", {}), f"{path}[]", walk)


def _allowed(schema: Schema) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    return list(schema["enum"]) if "enum" in schema else None


def _enum(old: Schema, new: Schema, path: str) -> Found:
    old_v, new_v = _allowed(old), _allowed(new)
    if old_v is None and new_v is None:
        return
    if old_v is None:
        yield path, Kind.CONSTRAINT_TIGHTENED, f"now limited to {new_v!r}"
    elif new_v is None:
        yield path, Kind.CONSTRAINT_LOOSENED, f"no longer limited to {old_v!r}"
    else:
        for value in (v for v in old_v if v not in new_v):
            yield path, Kind.ENUM_VALUE_REMOVED, repr(value)
        for value in (v for v in new_v if v not in old_v):
            yield path, Kind.ENUM_VALUE_ADDED, repr(value)


def _bounds(old: Schema, new: Schema, path: str) -> Found:
    for keyword in _LOWER_BOUNDS + _UPPER_BOUNDS:
        before, after = old.get(keyword), new.get(keyword)
        if before == after:
            continue
        detail = _moved(keyword, before, after)
        if before is None:
            yield path, Kind.CONSTRAINT_TIGHTENED, detail
        elif after is None:
            yield path, Kind.CONSTRAINT_LOOSENED, detail
        elif (after > before) == (keyword in _LOWER_BOUNDS):
            yield path, Kind.CONSTRAINT_TIGHTENED, detail
        else:
            yield path, Kind.CONSTRAINT_LOOSENED, detail
    for keyword in _EXACT:
        before, after = old.get(keyword), new.get(keyword)
        if before == after:
            continue
        kind = (Kind.CONSTRAINT_TIGHTENED if before is None
                else Kind.CONSTRAINT_LOOSENED if after is None else Kind.CONSTRAINT_CHANGED)
        yield path, kind, _moved(keyword, before, after)


def _moved(keyword: str, before: Any, after: Any) -> str:
    return f"{keyword} {'(none)' if before is None else repr(before)} -> {'(none)' if after is None else repr(after)}"


def _object(old: Schema, new: Schema, path: str, walk: _Walk) -> Found:
    old_p, new_p = old.get("properties", {}), new.get("properties", {})
    old_r, new_r = set(old.get("required", ())), set(new.get("required", ()))
    for name in sorted(old_p.keys() - new_p.keys()):
        yield _join(path, name), Kind.FIELD_REMOVED, ""
    for name in sorted(new_p.keys() - old_p.keys()):
        yield _join(path, name), Kind.FIELD_ADDED_REQUIRED if name in new_r else Kind.FIELD_ADDED_OPTIONAL, ""
    for name in sorted(old_p.keys() & new_p.keys()):
        if name in old_r and name not in new_r:
            yield _join(path, name), Kind.BECAME_OPTIONAL, ""
        if name in new_r and name not in old_r:
            yield _join(path, name), Kind.BECAME_REQUIRED, ""
        yield from _value(old_p[name], new_p[name], _join(path, name), walk)


def _extra(old: Schema, new: Schema, path: str, walk: _Walk) -> Found:
    """`additionalProperties`: absent or true accepts any extra field, false none, a schema the values
    of a map (`dict[str, X]`)."""
    before, after = old.get("additionalProperties", True), new.get("additionalProperties", True)
    if before is False and after is not False:
        yield path, Kind.UNKNOWN_FIELDS_ALLOWED, ""
    elif after is False and before is not False:
        yield path, Kind.UNKNOWN_FIELDS_REJECTED, ""
    elif isinstance(before, Mapping) or isinstance(after, Mapping):
        yield from _value(before if isinstance(before, Mapping) else {}, after if isinstance(after, Mapping) else {},
                          _join(path, "*"), walk)
