"""`alembic` works from the repository root on the database DATABASE_URL names (alembic.ini)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def alembic(*args: str, database_url: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "-m", "alembic", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


def test_alembic_upgrades_the_database_url_from_the_repository_root(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'alembic.db'}"
    assert alembic("upgrade", "head", database_url=url).returncode == 0
    current = alembic("current", database_url=url)
    assert current.returncode == 0 and "(head)" in current.stdout
    assert (tmp_path / "alembic.db").exists()


def test_without_a_database_url_alembic_says_what_to_set():
    done = alembic("current", database_url=None)
    assert done.returncode != 0 and "set DATABASE_URL" in done.stderr
