"""Message and message-event tables (SQLAlchemy only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lifecycle.db import Base, BigId, JSONType, UTCDateTime

FINAL_STATUSES = frozenset({"sent", "failed", "suppressed", "uncertain", "skipped"})


class Message(Base):
    """A message is written (with its idempotency key) before its send is queued.

    Status: queued -> sending -> sent | retrying -> ... | failed; ``uncertain`` when a
    worker died after possibly handing it to the provider (never re-sent blindly).
    """

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_profile", "profile_id", "created_at"),
        Index("ix_messages_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id"))
    journey_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("journeys.id"))
    campaign: Mapped[str | None] = mapped_column(String(255))
    campaign_version: Mapped[int | None] = mapped_column(Integer)
    step_id: Mapped[str | None] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(String(255))
    recipient: Mapped[str | None] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(128))
    error_message: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text, default="")
    context: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MessageEvent(Base):
    """Every status change of a message, in order."""

    __tablename__ = "message_events"
    __table_args__ = (Index("ix_message_events_message", "message_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(BigId, ForeignKey("messages.id"))
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    detail: Mapped[str] = mapped_column(Text, default="")
