"""Database foundation: declarative Base, column types, engine and session factories.

PostgreSQL (psycopg 3) and SQLite go through the same code. Entrypoints own the
transaction through :func:`session_scope`; services only ``flush()``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Engine, Integer, MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from lifecycle import jobs

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both engines (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Build an engine; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 60, "check_same_thread": False}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" hook own transactions (pysqlite's own are unreliable).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin_immediate(conn: Any) -> None:
            # Take the write lock at BEGIN so two writers queue instead of deadlocking.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # No pre-ping (a round trip per checkout); connections are recycled instead, and a
    # request or job that meets a dropped connection fails and is retried by its sender.
    kwargs.setdefault("pool_recycle", 1800)
    return create_engine(url, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error, then send its jobs.

    Jobs recorded with :func:`lifecycle.jobs.enqueue` leave only after the commit.
    """
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        jobs.discard(session)
        raise
    finally:
        session.close()
    jobs.flush(session)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# --------------------------------------------------------------------------- COPY rows
# PostgreSQL's COPY text format, for rows rendered ahead of their write (an import's
# worker processes render a new person's rows; the writer only fills in the id).

NEW_ID = "\x00"  # stands for a row's profile id until it is known: NUL is never data


def copy_field(value: str | None) -> str:
    """``value`` as a field of a COPY text row: ``\\N`` for NULL, the four special
    characters escaped."""
    if value is None:
        return r"\N"
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return value


_json_text = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


@lru_cache(maxsize=64)
def copy_time(moment: datetime) -> str:
    """``moment`` as a field of a COPY text row; cached: a file's rows share a few."""
    return moment.isoformat()


def copy_json(value: Any) -> str:
    """``value`` as JSON in a field of a COPY text row (``\\N`` for None)."""
    kind = type(value)
    if kind is str:
        text = _json_text(value)
    elif value is None:
        return r"\N"
    elif kind is bool:
        return "true" if value else "false"
    elif kind is int:
        return str(value)
    else:
        text = json.dumps(value)
    # JSON text holds no raw tab or newline; its escapes' backslashes are doubled.
    return text.replace("\\", "\\\\") if "\\" in text else text
