"""Settings, from the environment: one typed class that names every knob an operator can turn.

Read with `Settings.from_env()` (pydantic-settings: a bad value fails with an error naming the
variable); built directly in tests and tools; changed with `settings.model_copy(update={...})`.
Imports no worker: every worker, the command line and the tests read it, none of them is read by it.
`scripts/settings_table.py` writes the table of variables in docs/operations.md from this class.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from contracts.common import Tier
from workers.kafka import KafkaAccess

SEED_HELP_DESK_TIERS = frozenset({Tier.PROFESSIONAL, Tier.ENTERPRISE})
SEED_HELP_DESK_CUTOFF = datetime(2024, 4, 1, tzinfo=UTC)
"""T8 as the source article states it; both are settings because HubSpot changed them twice since."""


@functools.cache
def asyncpg_url_parameters() -> frozenset[str]:
    """The query parameters a `postgresql+asyncpg://` URL may carry: keyword arguments of `asyncpg.connect`
    (e.g. `ssl=verify-full`, `command_timeout=30`), and the two SQLAlchemy's asyncpg dialect takes itself."""
    import asyncpg

    taken = frozenset(inspect.signature(asyncpg.connect).parameters) - {"dsn", "loop", "connection_class", "record_class"}
    return taken | {"prepared_statement_cache_size"}


def run_dir() -> Path:
    """Where local data lives: `TICKETFLOW_RUN_DIR`, else `./var` under the working directory."""
    return Path(os.environ.get("TICKETFLOW_RUN_DIR") or Path.cwd() / "var")


def default_database_url() -> str:
    """The embedded default: a SQLite file in the run directory (`./var/ticketflow.db`)."""
    return f"sqlite+aiosqlite:///{run_dir() / 'ticketflow.db'}"


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    """Every setting, with the environment variable that sets it."""

    model_config = SettingsConfigDict(frozen=True, populate_by_name=True, extra="ignore", env_ignore_empty=True)

    bootstrap_servers: str = Field("127.0.0.1:9092", validation_alias=_env("KAFKA_BOOTSTRAP_SERVERS"),
                                   description="Kafka brokers, comma-separated host:port.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", validation_alias=_env("KAFKA_SECURITY_PROTOCOL"), description="How clients talk to the brokers.")
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] | None = Field(
        None, validation_alias=_env("KAFKA_SASL_MECHANISM"), description="SASL mechanism with SASL_* protocols.")
    kafka_username: str | None = Field(None, validation_alias=_env("KAFKA_USERNAME"),
                                       description="SASL user (this worker's principal).")
    kafka_password: SecretStr | None = Field(None, validation_alias=_env("KAFKA_PASSWORD"),
                                             description="SASL password (never printed).")
    kafka_ca_file: str | None = Field(None, validation_alias=_env("KAFKA_SSL_CA_FILE"),
                                      description="CA certificate (PEM) that signed the brokers' certificates.")
    kafka_cert_file: str | None = Field(None, validation_alias=_env("KAFKA_SSL_CERT_FILE"),
                                        description="Client certificate (PEM) for mutual TLS.")
    kafka_key_file: str | None = Field(None, validation_alias=_env("KAFKA_SSL_KEY_FILE"),
                                       description="Client private key (PEM) for mutual TLS.")
    database_url: str = Field(default_factory=default_database_url, repr=False,
                              validation_alias=_env("DATABASE_URL"),
                              description="postgresql+asyncpg://... or sqlite+aiosqlite:///path (default ./var/ticketflow.db). "
                                          "A PostgreSQL URL's query parameters are asyncpg's (`?ssl=verify-full`), "
                                          "not libpq's (`sslmode`, `sslrootcert` are refused by name).")
    topic_prefix: str = Field("", validation_alias=_env("TICKETFLOW_TOPIC_PREFIX"),
                              description="Prefix of every topic and consumer group (one deployment's namespace).")
    replication_factor: int = Field(1, ge=1, validation_alias=_env("TICKETFLOW_REPLICATION_FACTOR"),
                                    description="Replication factor of the topics `topics apply` creates "
                                                "(3 adds min.insync.replicas=2).")
    helpdesk_tiers: Annotated[frozenset[Tier], NoDecode] = Field(
        SEED_HELP_DESK_TIERS, validation_alias=_env("TICKETFLOW_HELPDESK_TIERS"),
        description="T8: tiers that manage tickets in the help desk, comma-separated.")
    helpdesk_cutoff: datetime = Field(SEED_HELP_DESK_CUTOFF, validation_alias=_env("TICKETFLOW_HELPDESK_CUTOFF"),
                                      description="T8: accounts created at or after this instant (with zone).")
    relay_interval_seconds: float = Field(0.05, gt=0, validation_alias=_env("TICKETFLOW_RELAY_INTERVAL_SECONDS"),
                                          description="How often the outbox relay looks for rows when not woken.")
    relay: Literal["auto", "process", "inline"] = Field(
        "auto", validation_alias=_env("TICKETFLOW_RELAY"),
        description="Where a worker's outbox relay runs: `process` (a child process the worker supervises; "
                    "PostgreSQL only), `inline` (in the worker's event loop), `auto` (process on PostgreSQL, inline "
                    "on SQLite).")
    migrate_on_start: bool = Field(True, validation_alias=_env("TICKETFLOW_MIGRATE_ON_START"),
                                   description="Workers bring the schema to head when they start (false when they "
                                               "connect with a role that may not change it: run `ticketflow migrate`).")
    batch_max_records: int = Field(500, ge=1, validation_alias=_env("TICKETFLOW_BATCH_MAX_RECORDS"),
                                   description="Most records one poll hands a worker: they share one transaction "
                                               "and one offset commit.")
    consumers_per_input: int = Field(1, ge=1, validation_alias=_env("TICKETFLOW_CONSUMERS_PER_INPUT"),
                                     description="Consumers per input topic inside one worker process.")
    instance_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._-]{1,200}$", validation_alias=_env("TICKETFLOW_INSTANCE_ID"),
        description="Static group membership (KIP-345, ADR 13): a name unique among the running replicas of a "
                    "worker and kept across its restarts (e.g. the pod name). A replica that crashed and comes back "
                    "under it gets its partitions back at once, without waiting for the session timeout.")
    session_timeout_ms: int = Field(10_000, ge=6_000, le=300_000, validation_alias=_env("TICKETFLOW_SESSION_TIMEOUT_MS"),
                                    description="How long the group waits for a silent consumer (killed, paused) "
                                                "before giving its partitions to another.")

    @field_validator("helpdesk_tiers", mode="before")
    @classmethod
    def _tiers(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(Tier(t.strip()) for t in value.split(",") if t.strip())
        return value

    @field_validator("helpdesk_cutoff")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a timezone, e.g. 2024-04-01T00:00:00+00:00")
        return value

    @field_validator("database_url")
    @classmethod
    def _driver_takes_the_url_parameters(cls, value: str) -> str:
        """A PostgreSQL URL's query parameters become keyword arguments of `asyncpg.connect`: one it does not
        take (libpq's `sslrootcert`, `sslmode`, ...) failed at the first connection with a TypeError
        traceback. Named here, before anything starts; the URL itself (its password) is never shown."""
        if not value.startswith("postgresql+asyncpg") or importlib.util.find_spec("asyncpg") is None:
            return value  # SQLite, or no driver to check against (connecting will say so)
        unknown = sorted(set(make_url(value).query) - asyncpg_url_parameters())
        if unknown:
            raise ValueError(f"DATABASE_URL has parameters the asyncpg driver does not take: {', '.join(unknown)} "
                             f"(it takes: {', '.join(sorted(asyncpg_url_parameters()))})")
        return value

    @model_validator(mode="after")
    def _relay_apart_needs_postgresql(self) -> Settings:
        if self.relay == "process" and not self.on_postgresql:
            raise ValueError("TICKETFLOW_RELAY=process needs PostgreSQL (DATABASE_URL=postgresql+asyncpg://...); "
                             "on SQLite the relay runs in the worker's process")
        return self

    @property
    def on_postgresql(self) -> bool:
        return self.database_url.startswith("postgresql")

    @property
    def relay_apart(self) -> bool:
        """Whether each worker's outbox relay runs in a child process (ADR 17)."""
        return self.relay == "process" or (self.relay == "auto" and self.on_postgresql)

    @classmethod
    def from_env(cls) -> Settings:
        """The settings the environment gives (errors name the variable)."""
        return cls()

    @property
    def kafka(self) -> KafkaAccess:
        """How every Kafka client of this deployment reaches and authenticates to the brokers."""
        return KafkaAccess(
            bootstrap_servers=self.bootstrap_servers, security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism, username=self.kafka_username, password=self.kafka_password,
            ca_file=self.kafka_ca_file, cert_file=self.kafka_cert_file, key_file=self.kafka_key_file)

    @property
    def bootstrap_list(self) -> list[str]:
        """`KAFKA_BOOTSTRAP_SERVERS` as a list of host:port (FastStream's broker takes one host per item)."""
        return self.kafka.bootstrap_list

    def topic(self, base: str) -> str:
        return f"{self.topic_prefix}{base}"

    def group(self, worker: str, purpose: str) -> str:
        """Stable consumer group per worker and input, so a restarted worker resumes where it stopped."""
        return f"{self.topic_prefix}ticketflow.{worker}.{purpose}"


def settings_error(exc: ValidationError) -> str:
    """One line naming each bad environment variable, e.g. `TICKETFLOW_REPLICATION_FACTOR='abc': ...`."""
    parts = []
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "?"
        field = Settings.model_fields.get(name) or _field_of_variable(name)
        alias = field.validation_alias if field is not None else None
        env = alias.choices[0] if isinstance(alias, AliasChoices) else name
        parts.append(f"{env}={_shown(field, err.get('input'))!r}: {err['msg']}")
    return "; ".join(parts)


def _field_of_variable(variable: str) -> Any:
    """The settings field an environment variable sets (an error read from the environment names it so)."""
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices) and variable in alias.choices:
            return field
    return None


def masked_url(url: str) -> str:
    """`url` with its password replaced by `***`, safe to print or log."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<DATABASE_URL that is not a URL>"


def _shown(field: Any, value: object) -> object:
    """A bad value as an error may show it: a URL without its password, a secret not at all."""
    secret = field is not None and (field.annotation is SecretStr or SecretStr in get_args(field.annotation))
    if field is None or (field.repr and not secret):
        return value
    if isinstance(value, str) and "://" in value:
        return masked_url(value)
    return "***"
