"""Import and rejected-row tables (SQLAlchemy only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lifecycle.db import Base, BigId, JSONType, UTCDateTime


class Import(Base):
    """One file imported (or previewed): how it was read, what it did, and its state."""

    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    filename: Mapped[str] = mapped_column(String(512))
    checksum: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))  # queued | running | done | failed
    options: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    encoding: Mapped[str | None] = mapped_column(String(128))
    delimiter: Mapped[str | None] = mapped_column(String(8))
    columns: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    counts: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    # The uploaded file, kept until a worker has imported it (API uploads only).
    data: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when a run began
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ImportRejection(Base):
    """A row not imported, kept with its line, its original text and the reason."""

    __tablename__ = "import_rejections"
    __table_args__ = (Index("ix_import_rejections_import_line", "import_id", "line"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    import_id: Mapped[int] = mapped_column(BigId, ForeignKey("imports.id"))
    line: Mapped[int] = mapped_column(Integer)
    raw: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)


class ImportWarning(Base):
    """A row imported with a warning (e.g. a phone left out), kept with its line."""

    __tablename__ = "import_warnings"
    __table_args__ = (Index("ix_import_warnings_import_line", "import_id", "line"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    import_id: Mapped[int] = mapped_column(BigId, ForeignKey("imports.id"))
    line: Mapped[int] = mapped_column(Integer)
    warning: Mapped[str] = mapped_column(Text)
