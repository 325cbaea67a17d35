"""The settings table in docs/operations.md is generated from the settings classes and is current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from workers.observability.config import ObservabilitySettings
from workers.settings import Settings

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("settings_table", REPO / "scripts" / "settings_table.py")
assert _spec is not None and _spec.loader is not None
settings_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(settings_table)


def test_the_table_in_operations_md_is_current():
    assert settings_table.main(["--check"]) == 0, "run .venv/bin/python scripts/settings_table.py"


def test_every_setting_is_a_row_with_its_variable_and_description():
    table = settings_table.table()
    for cls in (Settings, ObservabilitySettings):
        for name, field in cls.model_fields.items():
            env = field.validation_alias.choices[0]
            assert f"| `{env}` |" in table, name
            assert field.description, f"{cls.__name__}.{name} has no description for the table"


def test_a_stale_table_is_reported_and_rewritten(tmp_path):
    doc = tmp_path / "ops.md"
    doc.write_text(f"intro\n{settings_table.START}\n| old |\n{settings_table.END}\noutro\n")
    assert settings_table.main(["--check", "--doc", str(doc)]) == 1
    assert settings_table.main(["--doc", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "`TICKETFLOW_HTTP_PORT`" in text
    assert settings_table.main(["--check", "--doc", str(doc)]) == 0
