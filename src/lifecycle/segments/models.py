"""Segment and segment membership tables (SQLAlchemy only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from lifecycle.db import Base, BigId, JSONType, UTCDateTime


class Segment(Base):
    """A published definition, kept as written (``today`` stays ``today``).

    ``depends_on`` lists the attribute and event names whose changes can move someone
    in or out; ``time_based`` segments are also recomputed on the scheduler's pass.
    """

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    checksum: Mapped[str] = mapped_column(String(64))
    source_file: Mapped[str] = mapped_column(String(512))
    depends_on: Mapped[dict[str, list[str]]] = mapped_column(JSONType, default=dict)
    time_based: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="active")
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    computed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SegmentMembership(Base):
    """One stay of a profile in a segment: when and why it entered, when and why it left.

    The current members are the rows with no ``exited_at`` (at most one per profile).
    """

    __tablename__ = "segment_memberships"
    __table_args__ = (
        Index(
            "uq_segment_memberships_current",
            "segment_id",
            "profile_id",
            unique=True,
            postgresql_where=text("exited_at IS NULL"),
            sqlite_where=text("exited_at IS NULL"),
        ),
        Index("ix_segment_memberships_profile", "profile_id", "entered_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    segment_id: Mapped[int] = mapped_column(BigId, ForeignKey("segments.id"))
    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id"))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    entered_cause: Mapped[str] = mapped_column(String(255))
    exited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exited_cause: Mapped[str | None] = mapped_column(String(255))
