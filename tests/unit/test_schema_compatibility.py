"""Published contracts stay backward compatible (X3 for what Ticketflow publishes, X4 for what it
accepts): the current models against the released snapshot, and the checker itself, rule by rule, on
small hand-written schemas shaped like pydantic's ($defs, $ref, discriminated oneOf, nullable anyOf)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union

import pytest
from pydantic import Field, TypeAdapter

from contracts.common import Contract, TolerantContract
from contracts.compatibility import (
    Flow,
    Kind,
    breaking_changes,
    catalogue_breaking_changes,
    schema_changes,
)
from contracts.schema import (
    FLOWS,
    RELEASED,
    SCHEMAS,
    breaking_changes_since_release,
    json_schemas,
    main,
    read_schemas,
)

Schema = dict[str, Any]

# --- the real contracts against the released snapshot -------------------------------------------


def test_x3_current_contracts_do_not_break_any_released_schema():
    changes = breaking_changes_since_release()
    assert not changes, (
        "breaking changes to released contracts (docs/adr/0007-contract-evolution.md: add a new message "
        "type or a versioned topic instead):\n" + "\n".join(str(change) for change in changes)
    )


def test_x3_every_message_has_a_flow_and_a_released_snapshot():
    assert FLOWS.keys() == SCHEMAS.keys()
    missing = SCHEMAS.keys() - read_schemas(RELEASED).keys()
    assert not missing, f"release the new messages' schemas: `python -m contracts.schema --release` ({sorted(missing)})"


def test_x3_events_read_tolerantly_is_a_compatible_change_of_the_released_events():
    released = read_schemas(RELEASED)["ticket-event"]
    current = json_schemas()["ticket-event"]
    kinds = {change.kind for change in schema_changes(released, current, "ticket-event")}
    assert Kind.UNKNOWN_FIELDS_ALLOWED in kinds
    assert breaking_changes(released, current, Flow.PUBLISHED) == []


def test_x3_release_writes_a_snapshot_the_models_are_compatible_with(tmp_path):
    (tmp_path / "retired.schema.json").write_text("{}")
    assert main(["--release", "--folder", str(tmp_path)]) == 1  # a released message disappeared
    assert (tmp_path / "retired.schema.json").exists()
    assert main(["--release", "--force", "--folder", str(tmp_path)]) == 0
    assert read_schemas(tmp_path) == json_schemas()
    assert main(["--check", "--folder", str(tmp_path)]) == 0


# --- hand-written schemas -----------------------------------------------------------------------

NULLABLE_STRING = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}


def _member(type_: str, fields: Schema, required: tuple[str, ...], forbid: bool = True) -> Schema:
    props = {"type": {"const": type_, "default": type_, "type": "string"}, **fields}
    out: Schema = {"properties": props, "required": list(required), "title": type_, "type": "object"}
    if forbid:
        out["additionalProperties"] = False
    return out


def _union(members: list[Schema], enums: dict[str, list[str]]) -> Schema:
    defs = {m["title"]: m for m in members}
    defs.update({name: {"enum": values, "title": name, "type": "string"} for name, values in enums.items()})
    return {
        "$defs": defs,
        "oneOf": [{"$ref": f"#/$defs/{m['title']}"} for m in members],
        "discriminator": {"propertyName": "type",
                          "mapping": {m["title"]: f"#/$defs/{m['title']}" for m in members}},
    }


def _event() -> Schema:
    created = _member("thing.created", {
        "thing_id": {"type": "string"},
        "note": {"type": "string"},
        "owner_id": NULLABLE_STRING,
        "status": {"$ref": "#/$defs/Status"},
        "version": {"minimum": 1, "type": "integer"},
        "details": {"additionalProperties": {"$ref": "#/$defs/Detail"}, "type": "object"},
    }, ("thing_id", "note", "status", "version", "details"))
    detail = {"properties": {"label": {"type": "string"}}, "required": ["label"], "title": "Detail",
              "type": "object", "additionalProperties": False}
    deleted = _member("thing.deleted", {"thing_id": {"type": "string"}}, ("thing_id",))
    schema = _union([created, deleted], {"Status": ["open", "closed"]})
    schema["$defs"]["Detail"] = detail
    return schema


def _command() -> Schema:
    do_it = _member("do_it", {
        "command_id": {"maxLength": 64, "minLength": 1, "type": "string"},
        "text": {"maxLength": 100, "type": "string"},
        "channel": {"$ref": "#/$defs/Channel"},
        "priority": {"anyOf": [{"maxLength": 10, "type": "string"}, {"type": "null"}], "default": None},
        "count": {"default": 1, "maximum": 10, "minimum": 1, "type": "integer"},
        "code": {"default": "x", "type": "string"},
        "amount": {"anyOf": [{"type": "string"}, {"type": "integer"}], "default": 0},
    }, ("command_id", "text", "channel"))
    undo_it = _member("undo_it", {"command_id": {"type": "string"}}, ("command_id",))
    return _union([do_it, undo_it], {"Channel": ["email", "chat"]})


def _changed(base: Callable[[], Schema], edit: Callable[[Schema], None]) -> tuple[Schema, Schema]:
    """`base()` and a copy with `edit` applied to its $defs (a member whose definition it deleted leaves the union)."""
    old = base()
    new = copy.deepcopy(old)
    edit(new["$defs"])
    new["oneOf"] = [ref for ref in new["oneOf"] if ref["$ref"].rsplit("/", 1)[-1] in new["$defs"]]
    return old, new


def _drop_member(type_: str) -> Callable[[Schema], None]:
    def edit(defs: Schema) -> None:
        del defs[type_]
    return edit


def _breaking(base: Callable[[], Schema], edit: Callable[[Schema], None], flow: Flow) -> list[tuple[str, Kind]]:
    old, new = _changed(base, edit)
    return [(change.path, change.kind) for change in breaking_changes(old, new, flow, "test")]


def _created(defs: Schema) -> Schema:
    return defs["thing.created"]


def _do(defs: Schema) -> Schema:
    return defs["do_it"]


PUBLISHED_BREAKING: dict[str, tuple[Callable[[Schema], None], str, Kind]] = {
    "field_removed": (lambda d: _created(d)["properties"].pop("note"), "thing.created.note", Kind.FIELD_REMOVED),
    "optional_field_removed": (lambda d: _created(d)["properties"].pop("owner_id"), "thing.created.owner_id",
                               Kind.FIELD_REMOVED),
    "required_became_optional": (lambda d: _created(d)["required"].remove("note"), "thing.created.note",
                                 Kind.BECAME_OPTIONAL),
    "became_nullable": (lambda d: _created(d)["properties"].update(note=NULLABLE_STRING), "thing.created.note",
                        Kind.BECAME_NULLABLE),
    "type_changed": (lambda d: _created(d)["properties"].update(note={"type": "integer"}), "thing.created.note",
                     Kind.TYPE_CHANGED),
    "type_widened": (lambda d: _created(d)["properties"].update(note={"anyOf": [{"type": "string"}, {"type": "integer"}]}),
                     "thing.created.note", Kind.TYPE_WIDENED),
    "enum_value_removed": (lambda d: d["Status"]["enum"].remove("closed"), "thing.created.status",
                           Kind.ENUM_VALUE_REMOVED),
    "enum_value_added": (lambda d: d["Status"]["enum"].append("snoozed"), "thing.created.status",
                         Kind.ENUM_VALUE_ADDED),
    "member_removed": (_drop_member("thing.deleted"), "thing.deleted", Kind.MEMBER_REMOVED),
    "constraint_loosened": (lambda d: _created(d)["properties"]["version"].pop("minimum"), "thing.created.version",
                            Kind.CONSTRAINT_LOOSENED),
    "nested_field_removed": (lambda d: d["Detail"]["properties"].pop("label"), "thing.created.details.*.label",
                             Kind.FIELD_REMOVED),
}


@pytest.mark.parametrize("rule", PUBLISHED_BREAKING)
def test_x3_published_breaking_change_is_caught(rule):
    edit, path, kind = PUBLISHED_BREAKING[rule]
    assert (path, kind) in _breaking(_event, edit, Flow.PUBLISHED)


PUBLISHED_COMPATIBLE: dict[str, Callable[[Schema], None]] = {
    "optional_field_added": lambda d: _created(d)["properties"].update(tag=NULLABLE_STRING),
    "required_field_added": lambda d: (_created(d)["properties"].update(tag={"type": "string"}),
                                       _created(d)["required"].append("tag")),
    "unknown_fields_allowed": lambda d: [m.pop("additionalProperties") for m in (d["thing.created"], d["thing.deleted"], d["Detail"])],
    "optional_became_required": lambda d: _created(d)["required"].append("owner_id"),
    "no_longer_nullable": lambda d: _created(d)["properties"].update(owner_id={"type": "string"}),
    "constraint_tightened": lambda d: _created(d)["properties"]["version"].update(maximum=99),
    "description_changed": lambda d: _created(d)["properties"]["note"].update(description="Free text."),
}


@pytest.mark.parametrize("rule", PUBLISHED_COMPATIBLE)
def test_x3_published_compatible_change_passes(rule):
    assert _breaking(_event, PUBLISHED_COMPATIBLE[rule], Flow.PUBLISHED) == []


def test_x3_a_new_event_type_is_compatible():
    old = _event()
    new = _union([_created(copy.deepcopy(old["$defs"])), old["$defs"]["thing.deleted"],
                  _member("thing.archived", {"thing_id": {"type": "string"}}, ("thing_id",))], {"Status": ["open", "closed"]})
    new["$defs"]["Detail"] = old["$defs"]["Detail"]
    assert breaking_changes(old, new, Flow.PUBLISHED) == []
    assert ("thing.archived", Kind.MEMBER_ADDED) in [(c.path, c.kind) for c in schema_changes(old, new)]


CONSUMED_BREAKING: dict[str, tuple[Callable[[Schema], None], str, Kind]] = {
    "required_field_added": (lambda d: (_do(d)["properties"].update(tag={"type": "string"}), _do(d)["required"].append("tag")),
                             "do_it.tag", Kind.FIELD_ADDED_REQUIRED),
    "optional_became_required": (lambda d: _do(d)["required"].append("count"), "do_it.count", Kind.BECAME_REQUIRED),
    "field_removed": (lambda d: _do(d)["properties"].pop("code"), "do_it.code", Kind.FIELD_REMOVED),
    "type_changed": (lambda d: _do(d)["properties"].update(text={"type": "integer"}), "do_it.text", Kind.TYPE_CHANGED),
    "type_narrowed": (lambda d: _do(d)["properties"].update(amount={"default": 0, "type": "integer"}), "do_it.amount",
                      Kind.TYPE_NARROWED),
    "null_no_longer_accepted": (lambda d: _do(d)["properties"].update(priority={"maxLength": 10, "type": "string"}),
                                "do_it.priority", Kind.NO_LONGER_NULLABLE),
    "enum_value_removed": (lambda d: d["Channel"]["enum"].remove("chat"), "do_it.channel", Kind.ENUM_VALUE_REMOVED),
    "max_length_lowered": (lambda d: _do(d)["properties"]["text"].update(maxLength=50), "do_it.text",
                           Kind.CONSTRAINT_TIGHTENED),
    "max_length_lowered_in_nullable": (lambda d: _do(d)["properties"]["priority"]["anyOf"][0].update(maxLength=5),
                                       "do_it.priority", Kind.CONSTRAINT_TIGHTENED),
    "min_length_raised": (lambda d: _do(d)["properties"]["command_id"].update(minLength=8), "do_it.command_id",
                          Kind.CONSTRAINT_TIGHTENED),
    "ge_raised": (lambda d: _do(d)["properties"]["count"].update(minimum=2), "do_it.count", Kind.CONSTRAINT_TIGHTENED),
    "le_lowered": (lambda d: _do(d)["properties"]["count"].update(maximum=5), "do_it.count", Kind.CONSTRAINT_TIGHTENED),
    "max_length_added": (lambda d: _do(d)["properties"]["code"].update(maxLength=3), "do_it.code",
                         Kind.CONSTRAINT_TIGHTENED),
    "pattern_added": (lambda d: _do(d)["properties"]["code"].update(pattern="^[a-z]+$"), "do_it.code",
                      Kind.CONSTRAINT_TIGHTENED),
    "member_removed": (_drop_member("undo_it"), "undo_it", Kind.MEMBER_REMOVED),
    "unknown_fields_rejected": (lambda d: d["undo_it"].update(additionalProperties=False), "undo_it",
                                Kind.UNKNOWN_FIELDS_REJECTED),
}


def _tolerant_command() -> Schema:
    schema = _command()
    del schema["$defs"]["undo_it"]["additionalProperties"]
    return schema


@pytest.mark.parametrize("rule", CONSUMED_BREAKING)
def test_x4_consumed_breaking_change_is_caught(rule):
    edit, path, kind = CONSUMED_BREAKING[rule]
    base = _tolerant_command if rule == "unknown_fields_rejected" else _command
    assert (path, kind) in _breaking(base, edit, Flow.CONSUMED)


CONSUMED_COMPATIBLE: dict[str, Callable[[Schema], None]] = {
    "optional_field_added": lambda d: _do(d)["properties"].update(tag=NULLABLE_STRING),
    "enum_value_added": lambda d: d["Channel"]["enum"].append("whatsapp"),
    "max_length_raised": lambda d: _do(d)["properties"]["text"].update(maxLength=1000),
    "required_became_optional": lambda d: _do(d)["required"].remove("text"),
    "became_nullable": lambda d: _do(d)["properties"].update(text={"anyOf": [{"maxLength": 100, "type": "string"}, {"type": "null"}]}),
    "type_widened": lambda d: _do(d)["properties"].update(code={"default": "x", "type": ["string", "integer"]}),
    "unknown_fields_allowed": lambda d: _do(d).pop("additionalProperties"),
}


@pytest.mark.parametrize("rule", CONSUMED_COMPATIBLE)
def test_x4_consumed_compatible_change_passes(rule):
    assert _breaking(_command, CONSUMED_COMPATIBLE[rule], Flow.CONSUMED) == []


def test_x3_a_released_message_no_longer_generated_is_breaking():
    changes = catalogue_breaking_changes({"a": _event(), "b": _command()}, {"b": _command()},
                                         {"a": Flow.PUBLISHED, "b": Flow.CONSUMED})
    assert [(c.message, c.kind) for c in changes] == [("a", Kind.MESSAGE_REMOVED)]


def test_x3_a_breaking_change_names_the_message_the_field_and_what_changed():
    old, new = _changed(_command, lambda d: _do(d)["properties"]["text"].update(maxLength=50))
    (change,) = breaking_changes(old, new, Flow.CONSUMED, "ticket-command")
    assert str(change) == "ticket-command: do_it.text: constraint tightened: maxLength 100 -> 50"


# --- schemas as pydantic writes them ------------------------------------------------------------


class _OwnerV1(TolerantContract):
    type: Literal["owner.changed"] = "owner.changed"
    owner_id: str


class _OwnerV2(TolerantContract):
    type: Literal["owner.changed"] = "owner.changed"
    owner_id: str | None


class _NoteV1(Contract):
    type: Literal["add_note"] = "add_note"
    text: str = Field(max_length=500)


class _NoteV2(Contract):
    type: Literal["add_note"] = "add_note"
    text: str = Field(max_length=500)
    author_id: str


class _Other(Contract):
    type: Literal["other"] = "other"


def _pydantic(*members: type) -> Schema:
    return TypeAdapter(Annotated[Union[members], Field(discriminator="type")]).json_schema()  # noqa: UP007


def test_x3_pydantic_field_made_nullable_in_an_event_is_caught():
    changes = breaking_changes(_pydantic(_OwnerV1, _Other), _pydantic(_OwnerV2, _Other), Flow.PUBLISHED)
    assert [(c.path, c.kind) for c in changes] == [("owner.changed.owner_id", Kind.BECAME_NULLABLE)]


def test_x4_pydantic_required_field_added_to_a_command_is_caught():
    changes = breaking_changes(_pydantic(_NoteV1, _Other), _pydantic(_NoteV2, _Other), Flow.CONSUMED)
    assert [(c.path, c.kind) for c in changes] == [("add_note.author_id", Kind.FIELD_ADDED_REQUIRED)]
    assert breaking_changes(_pydantic(_NoteV1, _Other), _pydantic(_NoteV2, _Other), Flow.PUBLISHED) == []


def test_x3_a_recursive_schema_is_compared_to_the_end():
    node: Schema = {"$defs": {"Node": {"properties": {"child": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]},
                                                      "name": {"type": "string"}},
                                       "required": ["name"], "type": "object"}},
                    "$ref": "#/$defs/Node"}
    renamed = copy.deepcopy(node)
    renamed["$defs"]["Node"]["properties"]["name"] = {"type": "integer"}
    assert [(c.path, c.kind) for c in schema_changes(node, renamed)] == [("name", Kind.TYPE_CHANGED)]
    assert schema_changes(node, node) == []
