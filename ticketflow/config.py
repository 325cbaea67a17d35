"""Settings, from the environment. One place that names every knob an operator can turn."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from contracts.common import Tier
from workers.ticketing.model import SEED_HELP_DESK_CUTOFF, SEED_HELP_DESK_TIERS, HelpDeskPolicy

REPO_ROOT = Path(__file__).resolve().parent.parent


def _run_dir() -> Path:
    return Path(os.environ.get("TICKETFLOW_RUN_DIR", REPO_ROOT / "var"))


def default_database_url() -> str:
    return f"sqlite+aiosqlite:///{_run_dir() / 'ticketflow.db'}"


def _policy_from_env() -> HelpDeskPolicy:
    tiers_env = os.environ.get("TICKETFLOW_HELPDESK_TIERS")
    cutoff_env = os.environ.get("TICKETFLOW_HELPDESK_CUTOFF")
    tiers = frozenset(Tier(t.strip()) for t in tiers_env.split(",") if t.strip()) if tiers_env is not None else SEED_HELP_DESK_TIERS
    cutoff = datetime.fromisoformat(cutoff_env) if cutoff_env else SEED_HELP_DESK_CUTOFF
    if cutoff.tzinfo is None:
        raise ValueError("TICKETFLOW_HELPDESK_CUTOFF needs a timezone, e.g. 2024-04-01T00:00:00+00:00")
    return HelpDeskPolicy(tiers=tiers, cutoff=cutoff)


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str = "127.0.0.1:9092"
    database_url: str = field(default_factory=default_database_url)
    topic_prefix: str = ""
    replication_factor: int = 1
    help_desk_policy: HelpDeskPolicy = field(default_factory=HelpDeskPolicy)
    relay_interval_seconds: float = 0.05
    consumers_per_input: int = 1

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        return cls(
            bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            database_url=env.get("DATABASE_URL") or default_database_url(),
            topic_prefix=env.get("TICKETFLOW_TOPIC_PREFIX", ""),
            replication_factor=int(env.get("TICKETFLOW_REPLICATION_FACTOR", "1")),
            help_desk_policy=_policy_from_env(),
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
