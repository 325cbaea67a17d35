"""T4: which ticket properties can be edited, and what values they take. Pure."""

from __future__ import annotations

from typing import Any

from contracts.accounts import Account, CustomProperty, PropertyType
from contracts.common import Priority
from contracts.rejections import Reason
from workers.decision import Rejection

BUILT_IN_EDITABLE = ("subject", "description", "priority", "category")
ASSOCIATION_NAMES = ("conversation_id", "conversation_ids", "conversations", "associations")
MANAGED_ELSEWHERE = {
    "pipeline": "change_ticket_status",
    "status": "change_ticket_status",
    "owner_id": "change_ticket_owner",
    "close_date": "change_ticket_status",
    "create_date": None,
    "source_channel": None,
    "workspace": None,
}


PRIORITIES = frozenset(p.value for p in Priority)


def _builtin_valid(name: str, value: Any) -> bool:
    if name == "subject":
        return isinstance(value, str) and 0 < len(value.strip()) <= 500
    if name == "priority":
        return value is None or value in PRIORITIES
    return value is None or (isinstance(value, str) and len(value) <= 100_000)


def _custom_valid(prop: CustomProperty, value: Any) -> bool:
    if value is None:
        return True
    if prop.type is PropertyType.STRING:
        return isinstance(value, str)
    if prop.type is PropertyType.NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if prop.type is PropertyType.BOOL:
        return isinstance(value, bool)
    return value in prop.options


def validate_properties(account: Account, values: dict[str, Any], *, custom_only: bool = False) -> Rejection | None:
    """Every offending name at once, so the sender can fix them all; None when all are valid."""
    custom = {p.name: p for p in account.settings.custom_properties}
    linked = sorted(n for n in values if n in ASSOCIATION_NAMES)
    if linked:
        return Rejection(Reason.ASSOCIATION_IMMUTABLE,
                         f"the ticket's conversation association cannot be edited: {', '.join(linked)}", tuple(linked))
    allowed = set(custom) if custom_only else set(custom) | set(BUILT_IN_EDITABLE)
    unknown = sorted(n for n in values if n not in allowed)
    invalid = sorted(
        n for n, v in values.items()
        if n in allowed and not (_custom_valid(custom[n], v) if n in custom else _builtin_valid(n, v))
    )
    if unknown:
        hints = [f"{n} (use {MANAGED_ELSEWHERE[n]})" if MANAGED_ELSEWHERE.get(n) else n for n in unknown]
        detail = f"unknown or non-editable properties: {', '.join(hints)}"
        if invalid:
            detail += f"; invalid values for: {', '.join(invalid)}"
        return Rejection(Reason.UNKNOWN_PROPERTY, detail, tuple(unknown + invalid))
    if invalid:
        return Rejection(Reason.INVALID_PROPERTY_VALUE, f"invalid values for: {', '.join(invalid)}", tuple(invalid))
    return None
