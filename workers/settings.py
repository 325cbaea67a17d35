"""Settings, from the environment: one place that names every knob an operator can turn.

Imports no worker: every worker, the command line and the tests read it, none of them is read by it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from contracts.common import Tier

SEED_HELP_DESK_TIERS = frozenset({Tier.PROFESSIONAL, Tier.ENTERPRISE})
SEED_HELP_DESK_CUTOFF = datetime(2024, 4, 1, tzinfo=UTC)
"""T8 as the source article states it; both are settings because HubSpot changed them twice since."""


def run_dir() -> Path:
    """Where local data lives: `TICKETFLOW_RUN_DIR`, else `./var` under the working directory."""
    return Path(os.environ.get("TICKETFLOW_RUN_DIR") or Path.cwd() / "var")


def default_database_url() -> str:
    """The embedded default: a SQLite file in the run directory (`./var/ticketflow.db`)."""
    return f"sqlite+aiosqlite:///{run_dir() / 'ticketflow.db'}"


def _tiers(env: str | None) -> frozenset[Tier]:
    if env is None:
        return SEED_HELP_DESK_TIERS
    return frozenset(Tier(t.strip()) for t in env.split(",") if t.strip())


def _cutoff(env: str | None) -> datetime:
    cutoff = datetime.fromisoformat(env) if env else SEED_HELP_DESK_CUTOFF
    if cutoff.tzinfo is None:
        raise ValueError("TICKETFLOW_HELPDESK_CUTOFF needs a timezone, e.g. 2024-04-01T00:00:00+00:00")
    return cutoff


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str = "127.0.0.1:9092"
    database_url: str = field(default_factory=default_database_url)
    topic_prefix: str = ""
    replication_factor: int = 1
    helpdesk_tiers: frozenset[Tier] = SEED_HELP_DESK_TIERS
    helpdesk_cutoff: datetime = SEED_HELP_DESK_CUTOFF
    relay_interval_seconds: float = 0.05
    consumers_per_input: int = 1

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            database_url=env.get("DATABASE_URL") or default_database_url(),
            topic_prefix=env.get("TICKETFLOW_TOPIC_PREFIX", ""),
            replication_factor=int(env.get("TICKETFLOW_REPLICATION_FACTOR", "1")),
            helpdesk_tiers=_tiers(env.get("TICKETFLOW_HELPDESK_TIERS")),
            helpdesk_cutoff=_cutoff(env.get("TICKETFLOW_HELPDESK_CUTOFF")),
            consumers_per_input=int(env.get("TICKETFLOW_CONSUMERS_PER_INPUT", "1")),
        )

    @property
    def bootstrap_list(self) -> list[str]:
        """`KAFKA_BOOTSTRAP_SERVERS` as a list of host:port (FastStream's broker takes one host per item)."""
        return [h.strip() for h in self.bootstrap_servers.split(",") if h.strip()]

    def topic(self, base: str) -> str:
        return f"{self.topic_prefix}{base}"

    def group(self, worker: str, purpose: str) -> str:
        """Stable consumer group per worker and input, so a restarted worker resumes where it stopped."""
        return f"{self.topic_prefix}ticketflow.{worker}.{purpose}"
