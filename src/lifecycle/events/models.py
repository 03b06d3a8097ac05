"""The events table (SQLAlchemy only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from lifecycle.db import Base, BigId, JSONType, UTCDateTime


class Event(Base):
    """One call received: track (``name`` set), identify or alias.

    ``dedupe_key`` (the sender's messageId, scoped by source) makes a retry a no-op.
    ``evaluated_at`` is stamped once triggers, goals and waits have seen the event;
    the scheduler's sweep re-queues events left unevaluated (queue down, crash).
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_profile_name_time", "profile_id", "name", "occurred_at"),
        Index(
            "ix_events_unevaluated",
            "received_at",
            postgresql_where=text("evaluated_at IS NULL"),
            sqlite_where=text("evaluated_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign key (see Identity.profile_id): profiles are never deleted.
    profile_id: Mapped[int] = mapped_column(BigId)
    type: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(255))
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(64))
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    backfill: Mapped[bool] = mapped_column(Boolean, default=False)
    # The identifier the call resolved through ("id:u-1"): see AttributeChange.via.
    via: Mapped[str | None] = mapped_column(String(600))
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
