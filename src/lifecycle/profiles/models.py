"""Profile, identity, attribute-change and merge tables (SQLAlchemy only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lifecycle.db import Base, BigId, JSONType, UTCDateTime


class Profile(Base):
    __tablename__ = "profiles"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # When each attribute last changed, by the update's own timestamp (ISO text):
    # an older update never overwrites a newer one.
    attribute_times: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    timezone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A profile merged away stays as a tombstone so old references still resolve.
    merged_into_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("profiles.id"), index=True)


class Identity(Base):
    """(kind, normalised value) -> profile. Kinds: id, email, phone, anonymous_id, source ids."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(512))
    display: Mapped[str] = mapped_column(String(512))
    # No foreign key, as for the history (AttributeChange.profile_id): profiles are never
    # deleted, and the key's check was a third of an import's identities COPY.
    profile_id: Mapped[int] = mapped_column(BigId, index=True)
    source: Mapped[str] = mapped_column(String(64))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)


FIRST_VALUES = None  # AttributeChange.name of the row of a new profile's first attributes


class AttributeChange(Base):
    """Every change of a profile attribute: old, new, source and the update's own time.

    A profile's first attributes, set as it is made, are one row: no ``name``, and
    ``new_value`` the object of them (:data:`FIRST_VALUES`); the timeline shows it as the
    profile's creation. One row, not one per attribute: an import of a million new
    people wrote eight million history rows, the largest part of its time.
    """

    __tablename__ = "attribute_changes"
    __table_args__ = (Index("ix_attribute_changes_profile_time", "profile_id", "changed_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # A profile id without a foreign key: history is append-only and profiles are never
    # deleted (a merged one stays, pointing at its survivor), while the key's check, one
    # lookup per row, took over half the time of an import's largest write (five history
    # rows a new person; measured, docs/import.md). Rows are only written beside their
    # profile, in the same transaction, by lifecycle.profiles.
    profile_id: Mapped[int] = mapped_column(BigId)
    name: Mapped[str | None] = mapped_column(String(255))  # None: the first values
    old_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    new_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    source: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The identifier the write came through ("email:a@b.c"): undoing a merge gives a
    # change made while merged back to the profile that identifier belonged to.
    via: Mapped[str | None] = mapped_column(String(600))


class Merge(Base):
    """Who merged into whom, why and by whom, and what moved (so it can be undone)."""

    __tablename__ = "merges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    survivor_id: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id"), index=True)
    merged_id: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(255))
    moved: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    undone_by: Mapped[str | None] = mapped_column(String(255))
    undo_reason: Mapped[str | None] = mapped_column(Text)


class DuplicateCandidate(Base):
    """Two profiles that may be one person, with the evidence, for a person to review.

    ``profile_a < profile_b``; a dismissed pair is remembered and not shown again.
    """

    __tablename__ = "duplicate_candidates"
    __table_args__ = (UniqueConstraint("profile_a", "profile_b"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    profile_a: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id"), index=True)
    profile_b: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id"), index=True)
    score: Mapped[float] = mapped_column(Float)
    evidence: Mapped[list[str]] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|dismissed|merged
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(255))
