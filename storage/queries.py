"""Lookups by many keys at once, as statements built once per process and executed with parameters.

    stmt = built(("contacts by id", pg), lambda: select(contacts).where(any_of(contacts.c.id, "ids", pg)))
    rows = (await conn.execute(stmt, keys("ids", wanted))).all()

Building a SQLAlchemy statement and computing its cache key cost more CPU than running it, for the one
or two records a batch holds at a light load; a statement object built once skips both.

On PostgreSQL the keys travel as one array parameter per column, `column = ANY(:array)` and
`(a, b, ...) IN (SELECT * FROM unnest(:xs, :ys, ...))`: one statement text whatever their number
(prepared once per connection), and a plan that probes the index. Arrays are of text (`numbers`: of
bigint), never of varchar(n), which would cut a longer value to fit. On SQLite the keys travel as one
JSON array read with `json_each` (composite keys: an array of arrays): one statement text too. An
expanding `IN (?, ?, ...)` was a new text for every number of keys, prepared again and kept in every
connection's statement cache; `(a, b) IN (VALUES (?, ?), ...)` made SQLite scan the whole table
instead of probing the index."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Text, any_, bindparam, func, literal_column, select, tuple_
from sqlalchemy.types import ARRAY, TypeDecorator

T = TypeVar("T")
TEXTS = ARRAY(Text())
BIGINTS = ARRAY(BigInteger())
_BUILT: dict[Hashable, Any] = {}
MOST_BUILT = 1000
"""Statements kept at the most (the flush's texts vary with its columns); past it, the memo starts over."""


def built(key: Hashable, make: Callable[[], T]) -> T:
    """The statement `make()` built the first time `key` was asked for (keys name a statement and
    whatever changes its shape, e.g. the dialect)."""
    found = _BUILT.get(key)
    if found is None:
        if len(_BUILT) >= MOST_BUILT:
            _BUILT.clear()
        found = _BUILT[key] = make()
    return found


class JsonList(TypeDecorator[list[Any]]):
    """SQLite: a list parameter (of keys, or of key tuples) bound as its JSON text, read with `json_each`."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else json.dumps(list(value))


def any_of(column: Any, name: str, postgres: bool, numbers: bool = False) -> Any:
    """`column` is one of the values of parameter `name` (give them with `keys`)."""
    if not postgres:
        each = func.json_each(bindparam(name, type_=JsonList())).table_valued("value", name=f"{name}_each")
        return column.in_(select(each.c.value))
    return column == any_(bindparam(name, type_=BIGINTS if numbers else TEXTS))


def any_pair(columns: tuple[Any, ...], name: str, postgres: bool) -> Any:
    """`(a, b, ...)` is one of the tuples of parameter `name` (give them with `key_tuples`), for composite
    keys, in the order of an index on them."""
    if not postgres:
        each = func.json_each(bindparam(name, type_=JsonList())).table_valued("value", name=f"{name}_each")
        parts = [func.json_extract(each.c.value, literal_column(f"'$[{i}]'")) for i in range(len(columns))]
        return tuple_(*columns).in_(select(*parts))
    arrays = [bindparam(f"{name}_{i}", type_=TEXTS) for i in range(len(columns))]
    keys = func.unnest(*arrays).table_valued(*(f"k{i}" for i in range(len(columns)))).render_derived()
    return tuple_(*columns).in_(select(*keys.c))


def keys(name: str, values: Iterable[Any]) -> dict[str, list[Any]]:
    """The parameter of an `any_of` (sorted: one statement's locks are taken in one order)."""
    return {name: sorted(values)}


def key_tuples(name: str, tuples: Iterable[tuple[Any, ...]], width: int, postgres: bool) -> dict[str, Any]:
    """The parameters of an `any_pair` of `width` columns."""
    ordered = sorted(tuples)
    if not postgres:
        return {name: ordered}  # one JSON array of arrays (JsonList)
    return {f"{name}_{i}": [t[i] for t in ordered] for i in range(width)}
