"""Domain values to column values: enums are stored as their value, everything else as it is."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from enum import Enum
from typing import Any


def plain(value: Any) -> Any:
    return value._value_ if isinstance(value, Enum) else value


def plain_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` with every enum replaced by its value (the row to insert or update)."""
    return {k: v._value_ if isinstance(v, Enum) else v for k, v in values.items()}


_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def row_of(value: Any) -> dict[str, Any]:
    """A dataclass instance's fields as a dict, shallow (`dataclasses.asdict` deep-copies every value)."""
    return {name: getattr(value, name) for name in _names(type(value))}
