"""Campaign, campaign version, journey and journey log tables (SQLAlchemy only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from lifecycle.db import Base, BigId, JSONType, UTCDateTime


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    current_version_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CampaignVersion(Base):
    """An immutable definition. A journey started under version N finishes under N."""

    __tablename__ = "campaign_versions"
    __table_args__ = (UniqueConstraint("campaign_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaigns.id"))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    checksum: Mapped[str] = mapped_column(String(64))
    source_file: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Journey(Base):
    """One run of a campaign for one profile: a durable row the scheduler wakes.

    ``waiting_on`` says what the journey waits for at ``step_id``: ``time`` (a wait
    step), ``event`` (wait-for-event, with its timeout in ``wake_at``) or ``message``
    (a send step whose message has not settled; ``wake_at`` is the safety net).
    ``anchor_at`` is when the current step began counting: a wait-for-event accepts
    events from that moment, even ones that arrived before the step started.
    """

    __tablename__ = "journeys"
    __table_args__ = (
        Index("ix_journeys_due", "status", "wake_at"),
        Index("ix_journeys_profile_status", "profile_id", "status"),
        # One active journey per campaign and profile.
        Index(
            "uq_journeys_active",
            "campaign_id",
            "profile_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
        # The same trigger event never starts the same campaign twice.
        UniqueConstraint("campaign_id", "trigger_event_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaigns.id"))
    version_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaign_versions.id"))
    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id"))
    trigger_event_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("events.id"))
    entered_via: Mapped[str] = mapped_column(String(32), default="event")
    status: Mapped[str] = mapped_column(String(16), default="active")
    step_index: Mapped[int] = mapped_column(Integer, default=0)
    waiting_on: Mapped[str | None] = mapped_column(String(16))
    wake_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    anchor_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_reason: Mapped[str | None] = mapped_column(String(64))
    goal_event_id: Mapped[int | None] = mapped_column(BigId)


class JourneyLog(Base):
    """What a journey did and why: entered, step ran, waited, skipped, left."""

    __tablename__ = "journey_log"
    __table_args__ = (Index("ix_journey_log_journey", "journey_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    journey_id: Mapped[int] = mapped_column(BigId, ForeignKey("journeys.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(32))
    step_id: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[str] = mapped_column(Text, default="")


class Broadcast(Base):
    """One send of a broadcast campaign version to a segment: started once, resumable.

    ``cursor`` is the last profile id given a journey, so a pass that stopped part way
    (crash, deploy) goes on from there and nobody is started twice.
    """

    __tablename__ = "broadcasts"
    # Keyed by the time: editing a sent broadcast's file (a new version) sends nothing again.
    __table_args__ = (UniqueConstraint("campaign_id", "scheduled_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaigns.id"))
    version_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaign_versions.id"))
    segment: Mapped[str] = mapped_column(String(255))
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cursor: Mapped[int] = mapped_column(BigId, default=0)
    audience: Mapped[int] = mapped_column(Integer, default=0)
    started: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
