"""The settings of `workers.observability`, from the environment. Kept apart from `workers.settings`
until the core reads them; `scripts/settings_table.py` documents both classes in one table."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ObservabilitySettings(BaseSettings):
    """How a worker process reports on itself. The HTTP server is off unless `http_port` is set."""

    model_config = SettingsConfigDict(frozen=True, populate_by_name=True, extra="ignore", env_ignore_empty=True)

    http_host: str = Field("0.0.0.0", validation_alias=AliasChoices("TICKETFLOW_HTTP_HOST"),
                           description="Address the metrics and health server listens on.")
    http_port: int | None = Field(None, ge=0, le=65535, validation_alias=AliasChoices("TICKETFLOW_HTTP_PORT"),
                                  description="Port of `/metrics`, `/health/live` and `/health/ready` "
                                              "(unset: no server; the image sets 8080).")
    log_format: Literal["plain", "json"] = Field("plain", validation_alias=AliasChoices("TICKETFLOW_LOG_FORMAT"),
                                                 description="`json`: one JSON object per log line "
                                                             "(the image sets it); `plain` for terminals.")
    outbox_max_age_seconds: float = Field(300.0, gt=0, validation_alias=AliasChoices("TICKETFLOW_OUTBOX_MAX_AGE_SECONDS"),
                                          description="`/health/ready` fails while the oldest unsent outbox row "
                                                      "is older than this.")
    sample_interval_seconds: float = Field(15.0, gt=0,
                                           validation_alias=AliasChoices("TICKETFLOW_SAMPLE_INTERVAL_SECONDS"),
                                           description="How often consumer lag and the outbox backlog are measured.")

    @classmethod
    def from_env(cls) -> ObservabilitySettings:
        """The settings the environment gives (a bad value raises pydantic's ValidationError)."""
        return cls()
