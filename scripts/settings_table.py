"""The table of settings in docs/operations.md, generated from the settings classes: every field of
`workers.settings.Settings` and `workers.observability.config.ObservabilitySettings`, with the
environment variable that sets it, its default and its description.

    .venv/bin/python scripts/settings_table.py           rewrite the table in docs/operations.md
    .venv/bin/python scripts/settings_table.py --check   exit 1 if the table there is stale
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic_core import PydanticUndefined

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DOC = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def _default(field: Any) -> str:
    if field.default_factory is not None:
        return "(computed, see meaning)"
    value = field.default
    if value is PydanticUndefined or value is None:
        return "(unset)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (frozenset, set, list, tuple)):
        value = ",".join(sorted(v.value if isinstance(v, Enum) else str(v) for v in value))
    elif isinstance(value, Enum):
        value = value.value
    elif isinstance(value, datetime):
        value = value.isoformat()
    return f"`{value}`" if str(value) != "" else '`""`'


def rows(settings_class: Any) -> list[str]:
    """One Markdown row per field: variable, default, meaning."""
    out = []
    for name, field in settings_class.model_fields.items():
        alias = field.validation_alias
        env = alias.choices[0] if isinstance(alias, AliasChoices) else name.upper()
        meaning = (field.description or "").replace("|", "\\|")
        out.append(f"| `{env}` | {_default(field)} | {meaning} |")
    return out


def table() -> str:
    """The whole table, from both settings classes."""
    from workers.observability.config import ObservabilitySettings
    from workers.settings import Settings

    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    lines += rows(Settings) + rows(ObservabilitySettings)
    return "\n".join(lines) + "\n"


def render(document: str) -> str:
    """`document` with the text between the markers replaced by the current table."""
    head, rest = document.split(START, 1)
    _old, tail = rest.split(END, 1)
    return f"{head}{START}\n{table()}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if the table in the document is stale")
    parser.add_argument("--doc", type=Path, default=DOC, help="the document holding the markers")
    args = parser.parse_args(argv)
    current = args.doc.read_text()
    wanted = render(current)
    if args.check:
        if wanted != current:
            print(f"{args.doc}: the settings table is stale (run scripts/settings_table.py)", file=sys.stderr)
            return 1
        return 0
    args.doc.write_text(wanted)
    print(args.doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
