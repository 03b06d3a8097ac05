"""The process's wiring: settings, engine, sessions, templates, providers, policies.

Built once per process by an entrypoint (API, worker, scheduler, CLI), never at import.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from lifecycle.config import Settings
from lifecycle.db import make_engine, make_sessionmaker, session_scope
from lifecycle.delivery.providers.base import Provider
from lifecycle.delivery.service import DeliveryPolicy
from lifecycle.events.service import IngestOptions
from lifecycle.rendering.templates import Templates


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    templates: Templates
    providers: dict[str, Provider]
    policy: DeliveryPolicy
    ingest_options: IngestOptions
    extra: dict[str, object] = field(default_factory=dict)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.sessions) as session:
            yield session

    @property
    def settle_window(self) -> timedelta:
        """How long a journey holds at a send step before moving on regardless."""
        return (
            self.policy.retry_window()
            + timedelta(seconds=self.settings.sending_timeout_seconds)
            + timedelta(minutes=5)
        )

    @property
    def segment_refresh(self) -> timedelta:
        """How often the scheduler recomputes segments that depend on time."""
        return timedelta(minutes=self.settings.segment_refresh_minutes)

    @property
    def identifier_rules(self) -> dict[str, object]:
        """How identifiers are normalised here (region, junk list, phone rules), as keyword
        arguments for the functions that normalise outside ingestion (duplicate scans)."""
        o = self.ingest_options
        return {
            "default_region": o.default_region,
            "extra_junk": o.extra_junk,
            "phone_rules": o.phone_rules,
        }

    @property
    def max_age(self) -> timedelta:
        return timedelta(hours=self.settings.event_max_age_hours)


def build_runtime(
    settings: Settings,
    *,
    engine: Engine | None = None,
    providers: dict[str, Provider] | None = None,
) -> Runtime:
    from lifecycle.delivery.providers.registry import build_providers

    engine = engine or make_engine(settings.database_url)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        templates=Templates(settings.templates_dir),
        providers=providers if providers is not None else build_providers(settings),
        policy=DeliveryPolicy(
            max_attempts=settings.max_attempts,
            retry_delays=settings.retry_delays,
            email_from=settings.email_from,
            sms_from=settings.sms_from,
            public_base_url=settings.public_base_url,
            link_secret=settings.link_secret,
        ),
        ingest_options=IngestOptions(
            source="api",
            default_region=settings.default_phone_region,
            max_age=timedelta(hours=settings.event_max_age_hours),
            extra_junk=frozenset(v.strip().casefold() for v in settings.junk_identifiers),
            limits=dict(settings.identity_limits),
            phone_rules=frozenset(settings.phone_equivalence_rules),
            empty_clears=settings.api_empty_clears,
        ),
    )
