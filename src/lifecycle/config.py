"""Settings: the only reader of the environment (prefix ``LIFECYCLE_``).

Nothing is built at import time; call :func:`get_settings` (cached) or build
``Settings(...)`` explicitly in tests.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER_KEYS = {"dev-write-key", "dev-admin-key", "dev-link-secret"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIFECYCLE_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///lifecycle.db"
    # "stub": in-process dramatiq broker and worker (embedded default); "redis": real broker.
    broker: Literal["stub", "redis"] = "stub"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_namespace: str = "lifecycle"
    worker_threads: int = 2

    write_keys: list[str] = Field(default_factory=lambda: ["dev-write-key"])
    admin_keys: list[str] = Field(default_factory=lambda: ["dev-admin-key"])

    campaigns_dir: str = "campaigns"
    templates_dir: str = "templates"

    # Events older than this (by their own timestamp) are stored but start no journeys.
    event_max_age_hours: float = 72.0
    max_batch_items: int = 2500
    max_body_bytes: int = 4 * 1024 * 1024
    default_phone_region: str = "US"
    # Known renumberings that make two forms one line, e.g. "BR mobile ninth digit".
    phone_equivalence_rules: list[str] = Field(default_factory=list)
    # Values never used as identifiers, besides the built-in null-like ones (case-folded).
    junk_identifiers: list[str] = Field(default_factory=list)
    # Identifiers a profile may hold, per kind; one more is left off and reported.
    identity_limits: dict[str, int] = Field(
        default_factory=lambda: {"id": 1, "email": 5, "phone": 3}
    )
    # Whether an empty string in an API call clears an attribute (null always clears).
    api_empty_clears: bool = True

    # Delivery
    email_provider: Literal["outbox", "ses", "smtp"] = "outbox"
    sms_provider: Literal["outbox", "twilio"] = "outbox"
    push_provider: Literal["outbox"] = "outbox"
    outbox_path: str = "outbox.jsonl"
    email_from: str = "Shop <hello@example.com>"
    sms_from: str = "+15005550006"
    max_attempts: int = 5
    retry_delays_seconds: list[float] = Field(default_factory=lambda: [60, 300, 1800, 7200])
    # A message that has been "sending" this long was possibly handed to the provider
    # by a worker that then died: it is marked uncertain, never sent again blindly.
    sending_timeout_seconds: float = 600
    ses_region: str = "us-east-1"
    ses_endpoint_url: str | None = None
    ses_configuration_set: str | None = None
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_base_url: str | None = None  # for a local fake endpoint in tests
    public_base_url: str = "http://127.0.0.1:8000"
    # Signs unsubscribe links; refused as a placeholder in production.
    link_secret: str = "dev-link-secret"

    scheduler_interval_seconds: float = 5.0
    # "today", birthdays and local dates in segments, for profiles without a valid
    # `timezone` attribute of their own (an IANA name such as America/New_York).
    workspace_timezone: str = "UTC"
    # Segments that depend on time ("within the last 7 days", "today") are recomputed
    # by the scheduler at least this often, and at every local midnight of the workspace.
    segment_refresh_minutes: float = 15.0
    tick_batch_size: int = 500

    @model_validator(mode="after")
    def _find_project_dirs(self) -> Settings:
        # Relative directories are looked up in the working directory first, then in
        # the project itself, so `lifecycle demo` works from anywhere.
        for name in ("campaigns_dir", "templates_dir"):
            value = Path(getattr(self, name))
            if not value.is_absolute() and not value.exists() and (PROJECT_ROOT / value).is_dir():
                setattr(self, name, str(PROJECT_ROOT / value))
        return self

    @field_validator("workspace_timezone")
    @classmethod
    def _real_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, OSError, KeyError):
            raise ValueError(f"{value!r} is not a time zone name such as Europe/Berlin") from None
        return value

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.environment == "production":
            bad = PLACEHOLDER_KEYS & set([*self.write_keys, *self.admin_keys, self.link_secret])
            if bad:
                raise ValueError(f"placeholder keys are refused in production: {sorted(bad)}")
        return self

    @property
    def retry_delays(self) -> list[float]:
        return self.retry_delays_seconds or [60.0]


@lru_cache
def get_settings() -> Settings:
    return Settings()
