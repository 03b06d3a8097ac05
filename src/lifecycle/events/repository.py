"""The events domain's SQL, private to it. On PostgreSQL the batch statements pass
arrays (``unnest``), so a 500-event batch is two short statements."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from lifecycle.db import NEW_ID, copy_field, copy_time, is_postgres
from lifecycle.events.models import Event

CHUNK = 1000


def existing(session: Session, keys: list[str]) -> dict[str, int]:
    """Dedupe keys already stored, with their event ids."""
    if not keys:
        return {}
    if is_postgres(session):
        # The keys as one JSON text: psycopg dumps a list parameter item by item in Python.
        rows = session.execute(
            text(
                "SELECT dedupe_key, id FROM events WHERE dedupe_key"
                " = ANY(ARRAY(SELECT jsonb_array_elements_text(CAST(:keys AS jsonb))))"
            ),
            {"keys": json.dumps(sorted(keys))},  # in index order, as profiles' owners
        )
        return dict(rows.all())
    found: dict[str, int] = {}
    for start in range(0, len(keys), CHUNK):
        rows = session.execute(
            select(Event.dedupe_key, Event.id).where(
                Event.dedupe_key.in_(keys[start : start + CHUNK])
            )
        )
        found.update(dict(rows.all()))
    return found


def insert_new(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert events whose dedupe key is new; return {dedupe_key: id} of those inserted."""
    if not rows:
        return {}
    if is_postgres(session):
        # COPY pays for its set-up only on a batch; a single call is one INSERT.
        return _copy_new(session, rows) if len(rows) > 20 else _insert_rows(session, rows)
    from sqlalchemy.dialects.sqlite import insert

    inserted: dict[str, int] = {}
    for start in range(0, len(rows), CHUNK):
        stmt = (
            insert(Event)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(Event.dedupe_key, Event.id)
        )
        inserted.update(dict(session.execute(stmt, rows[start : start + CHUNK]).all()))
    return inserted


COLUMNS = (
    "profile_id", "type", "name", "properties", "context", "occurred_at",
    "received_at", "source", "dedupe_key", "backfill", "evaluated_at", "via",
)  # fmt: skip


def _insert_rows(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    from sqlalchemy.dialects.postgresql import insert

    stmt = (
        insert(Event)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(Event.dedupe_key, Event.id)
    )
    return {key: event_id for row in rows for key, event_id in session.execute(stmt, row)}


def _copy_new(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """COPY into a session-local staging table, then one INSERT … ON CONFLICT DO NOTHING.

    COPY is PostgreSQL's fastest way in; the staging table keeps the dedupe rule in SQL.
    """
    cursor = session.connection().connection.driver_connection.cursor()
    columns = ", ".join(COLUMNS)
    try:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS events_incoming ("
            " profile_id bigint, type text, name text, properties jsonb, context jsonb,"
            " occurred_at timestamptz, received_at timestamptz, source text, dedupe_key text,"
            " backfill boolean, evaluated_at timestamptz, via text) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY events_incoming ({columns}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(
                    (
                        r["profile_id"],
                        r["type"],
                        r["name"],
                        json.dumps(r["properties"]),
                        json.dumps(r["context"]),
                        r["occurred_at"],
                        r["received_at"],
                        r["source"],
                        r["dedupe_key"],
                        r["backfill"],
                        r["evaluated_at"],
                        r["via"],
                    )
                )
        cursor.execute(
            f"INSERT INTO events ({columns}) SELECT {columns} FROM events_incoming"
            " ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key, id"
        )
        inserted = dict(cursor.fetchall())
        cursor.execute("TRUNCATE events_incoming")  # no dead rows pile up in a long import
        return inserted
    finally:
        cursor.close()


def plain_row(
    dedupe_key: str,
    occurred_at: datetime,
    via: str | None,
    *,
    kind: str,
    source: str,
    now: datetime,
) -> str:
    """The COPY row of a call with no name, properties or context, not backfilled (an
    import's identify), its profile id left as :data:`lifecycle.db.NEW_ID`, for
    :func:`insert_drafted`. Evaluated at ``now``: only track calls can start journeys."""
    stamp = copy_time(now)
    return (
        f"{NEW_ID}\t{copy_field(kind)}\t\\N\t{{}}\t{{}}\t{copy_time(occurred_at)}\t{stamp}"
        f"\t{copy_field(source)}\t{copy_field(dedupe_key)}\tf\t{stamp}\t{copy_field(via)}\n"
    )


def insert_drafted(session: Session, rows: list[tuple[int, str]]) -> bool:
    """PostgreSQL: COPY events rendered by :func:`plain_row`, given as (profile id, row),
    straight into the table. False when one's dedupe key was stored meanwhile by another
    transaction: the transaction is then unusable, and the caller rolls back to its
    savepoint (event ids are not returned: such calls start nothing)."""
    if not rows:
        return True
    cursor = session.connection().connection.driver_connection.cursor()
    try:
        with cursor.copy(f"COPY events ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            copy.write("".join(row.replace(NEW_ID, str(pid)) for pid, row in rows))
        return True
    except psycopg.errors.UniqueViolation:
        return False
    finally:
        cursor.close()


def unevaluated(
    session: Session, *, now: datetime, older_than: timedelta, limit: int = 5000
) -> list[int]:
    return list(
        session.scalars(
            select(Event.id)
            .where(Event.evaluated_at.is_(None), Event.received_at <= now - older_than)
            .order_by(Event.id)
            .limit(limit)
        )
    )
