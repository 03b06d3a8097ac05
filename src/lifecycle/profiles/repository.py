"""The profile domain's SQL, private to it. Set-wise on both engines; on PostgreSQL the
hot statements pass arrays (``unnest``) so a 500-item batch is a handful of short
statements instead of thousands of bound parameters."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT, TEXT, TIMESTAMP
from sqlalchemy.orm import Session

from lifecycle.db import is_postgres
from lifecycle.profiles.models import AttributeChange, DuplicateCandidate, Identity, Profile

Key = tuple[str, str]
CHUNK = 1000
# last_seen is refreshed at most this often: a hot identifier is not rewritten per event.
SEEN_GRANULARITY = timedelta(minutes=10)


def chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _texts(name: str) -> Any:
    return bindparam(name, type_=ARRAY(TEXT))


def owners(session: Session, keys: list[Key]) -> dict[Key, int]:
    """Which profile holds each (kind, value)."""
    if not keys:
        return {}
    if is_postgres(session):
        rows = session.execute(
            text(
                "SELECT i.kind, i.value, i.profile_id FROM identities i"
                " JOIN unnest(:kinds, :vals) AS k(kind, value)"
                " ON i.kind = k.kind AND i.value = k.value"
            ).bindparams(_texts("kinds"), _texts("vals")),
            {"kinds": [k for k, _ in keys], "vals": [v for _, v in keys]},
        )
        return {(k, v): pid for k, v, pid in rows}
    found: dict[Key, int] = {}
    for part in chunks(keys):
        rows = session.execute(
            select(Identity.kind, Identity.value, Identity.profile_id).where(
                tuple_(Identity.kind, Identity.value).in_(part)
            )
        )
        found.update({(k, v): pid for k, v, pid in rows})
    return found


def identities_of(session: Session, profile_ids: set[int]) -> dict[int, set[Key]]:
    result: dict[int, set[Key]] = defaultdict(set)
    if not profile_ids:
        return result
    ids = sorted(profile_ids)
    if is_postgres(session):
        rows = session.execute(
            text(
                "SELECT profile_id, kind, value FROM identities WHERE profile_id = ANY(:ids)"
            ).bindparams(bindparam("ids", type_=ARRAY(BIGINT))),
            {"ids": ids},
        )
        for pid, kind, value in rows:
            result[pid].add((kind, value))
        return result
    for part in chunks(ids):
        for pid, kind, value in session.execute(
            select(Identity.profile_id, Identity.kind, Identity.value).where(
                Identity.profile_id.in_(part)
            )
        ):
            result[pid].add((kind, value))
    return result


def create_profiles(session: Session, count: int, now: datetime) -> list[int]:
    """``count`` new empty profiles; their ids."""
    if count == 0:
        return []
    if is_postgres(session):
        return list(
            session.scalars(
                text(
                    "INSERT INTO profiles (attributes, attribute_times, created_at, updated_at)"
                    " SELECT '{}'::jsonb, '{}'::jsonb, :now, :now FROM generate_series(1, :n)"
                    " RETURNING id"
                ).bindparams(bindparam("now", type_=TIMESTAMP(timezone=True))),
                {"now": now, "n": count},
            )
        )
    return list(
        session.scalars(
            insert(Profile).returning(Profile.id, sort_by_parameter_order=True),
            [
                {"attributes": {}, "attribute_times": {}, "created_at": now, "updated_at": now}
                for _ in range(count)
            ],
        )
    )


def insert_identities(session: Session, rows: list[dict[str, Any]]) -> set[Key]:
    """Insert identities (sorted, so concurrent writers lock in one order); return the keys
    actually inserted: the others were taken meanwhile by another transaction."""
    rows = sorted(rows, key=lambda r: (r["kind"], r["value"]))
    if not rows:
        return set()
    if is_postgres(session):
        result = session.execute(
            text(
                "INSERT INTO identities"
                " (kind, value, display, profile_id, source, first_seen, last_seen)"
                " SELECT k, v, d, p, s, :now, :now FROM unnest(:k, :v, :d, :p, :s) AS t(k, v, d, p, s)"
                " ON CONFLICT (kind, value) DO NOTHING RETURNING kind, value"
            ).bindparams(
                _texts("k"),
                _texts("v"),
                _texts("d"),
                bindparam("p", type_=ARRAY(BIGINT)),
                _texts("s"),
                bindparam("now", type_=TIMESTAMP(timezone=True)),
            ),
            {
                "k": [r["kind"] for r in rows],
                "v": [r["value"] for r in rows],
                "d": [r["display"] for r in rows],
                "p": [r["profile_id"] for r in rows],
                "s": [r["source"] for r in rows],
                "now": rows[0]["first_seen"],
            },
        )
        return {(k, v) for k, v in result}
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    inserted: set[Key] = set()
    for part in chunks(rows):
        stmt = (
            sqlite_insert(Identity)
            .on_conflict_do_nothing(index_elements=["kind", "value"])
            .returning(Identity.kind, Identity.value)
        )
        inserted.update((k, v) for k, v in session.execute(stmt, part))
    return inserted


def touch_last_seen(session: Session, keys: list[Key], now: datetime) -> None:
    """Refresh last_seen, at most every SEEN_GRANULARITY; rows another writer holds are
    skipped (it is stamping them with the same moment), so this never waits or deadlocks."""
    if not keys:
        return
    cutoff = now - SEEN_GRANULARITY
    if is_postgres(session):
        session.execute(
            text(
                "UPDATE identities SET last_seen = :now WHERE id IN ("
                " SELECT i.id FROM identities i JOIN unnest(:kinds, :vals) AS k(kind, value)"
                " ON i.kind = k.kind AND i.value = k.value"
                " WHERE i.last_seen < :cutoff ORDER BY i.id FOR UPDATE OF i SKIP LOCKED)"
            ).bindparams(
                _texts("kinds"),
                _texts("vals"),
                bindparam("now", type_=TIMESTAMP(timezone=True)),
                bindparam("cutoff", type_=TIMESTAMP(timezone=True)),
            ),
            {
                "kinds": [k for k, _ in keys],
                "vals": [v for _, v in keys],
                "now": now,
                "cutoff": cutoff,
            },
        )
        return
    for part in chunks(keys):
        session.execute(
            update(Identity)
            .where(tuple_(Identity.kind, Identity.value).in_(part), Identity.last_seen < cutoff)
            .values(last_seen=now)
        )


def attribute_state(
    session: Session, profile_ids: list[int]
) -> dict[int, tuple[dict[str, Any], dict[str, str]]]:
    state: dict[int, tuple[dict[str, Any], dict[str, str]]] = {}
    if is_postgres(session):
        rows = session.execute(
            text(
                "SELECT id, attributes, attribute_times FROM profiles WHERE id = ANY(:ids)"
            ).bindparams(bindparam("ids", type_=ARRAY(BIGINT))),
            {"ids": profile_ids},
        )
        return {pid: (dict(a or {}), dict(t or {})) for pid, a, t in rows}
    for part in chunks(profile_ids):
        rows = session.execute(
            select(Profile.id, Profile.attributes, Profile.attribute_times).where(
                Profile.id.in_(part)
            )
        )
        state.update({pid: (dict(a or {}), dict(t or {})) for pid, a, t in rows})
    return state


def write_attribute_state(
    session: Session,
    state: dict[int, tuple[dict[str, Any], dict[str, str]]],
    changes: list[dict[str, Any]],
    now: datetime,
) -> None:
    """Store new attributes (profiles in id order, so writers lock alike) and their history."""
    ids = sorted(state)
    if is_postgres(session):
        _copy_attribute_state(session, ids, state, changes, now)
        return
    if ids:
        session.execute(
            update(Profile),
            [
                {
                    "id": pid,
                    "attributes": state[pid][0],
                    "attribute_times": state[pid][1],
                    "updated_at": now,
                }
                for pid in ids
            ],
        )
    if changes:
        session.execute(insert(AttributeChange), changes)


def _copy_attribute_state(
    session: Session,
    ids: list[int],
    state: dict[int, tuple[dict[str, Any], dict[str, str]]],
    changes: list[dict[str, Any]],
    now: datetime,
) -> None:
    """PostgreSQL: COPY the new states into a staging table and update from it, and COPY
    the history rows straight in (COPY is PostgreSQL's fast path; no per-value escaping
    in Python)."""
    cursor = session.connection().connection.driver_connection.cursor()
    try:
        if ids:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS profile_states"
                " (id bigint, attributes jsonb, attribute_times jsonb) ON COMMIT DELETE ROWS"
            )
            with cursor.copy(
                "COPY profile_states (id, attributes, attribute_times) FROM STDIN"
            ) as copy:
                for pid in ids:
                    copy.write_row((pid, json.dumps(state[pid][0]), json.dumps(state[pid][1])))
            # Lock in id order first: concurrent batches touching the same people queue
            # instead of deadlocking.
            cursor.execute(
                "SELECT id FROM profiles WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (ids,)
            )
            cursor.execute(
                "UPDATE profiles p SET attributes = s.attributes,"
                " attribute_times = s.attribute_times, updated_at = %s"
                " FROM profile_states s WHERE p.id = s.id",
                (now,),
            )
            cursor.execute("TRUNCATE profile_states")
        if changes:
            columns = "profile_id, name, old_value, new_value, source, changed_at, recorded_at, via"
            with cursor.copy(f"COPY attribute_changes ({columns}) FROM STDIN") as copy:
                for c in changes:
                    copy.write_row(
                        (
                            c["profile_id"],
                            c["name"],
                            _json_or_null(c["old_value"]),
                            _json_or_null(c["new_value"]),
                            c["source"],
                            c["changed_at"],
                            now,
                            c.get("via"),
                        )
                    )
    finally:
        cursor.close()


def insert_people(
    session: Session, people: list[dict[str, Any]], *, source: str, now: datetime
) -> list[int] | None:
    """PostgreSQL: new profiles with their attributes, identities and attribute history,
    set-wise: ids taken from the sequence, one COPY per table into staging tables, then one
    INSERT … SELECT each. Each person is ``changes`` ([name, None, value] each, in order:
    on an empty profile they are its attributes, all changed at ``at_text``), ``changed_at``,
    ``via`` and ``identities`` ((kind, value, display) each); the attributes, their times and
    the history rows are made from the changes in SQL.
    Returns the new ids in order, or None when an identity was taken meanwhile by another
    transaction (nothing is usable then: the caller rolls back to its savepoint)."""
    cursor = session.connection().connection.driver_connection.cursor()
    try:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('profiles', 'id')) FROM generate_series(1, %s)",
            (len(people),),
        )
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS people_incoming (id bigint, changes jsonb,"
            " at_text text, changed_at timestamptz, via text) ON COMMIT DELETE ROWS"
        )
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS identities_incoming"
            " (kind text, value text, display text, profile_id bigint) ON COMMIT DELETE ROWS"
        )
        dumps = json.dumps
        expected = 0
        with cursor.copy(
            "COPY people_incoming (id, changes, at_text, changed_at, via) FROM STDIN"
        ) as copy:
            for pid, p in zip(ids, people, strict=True):
                copy.write_row((pid, dumps(p["changes"]), p["at_text"], p["changed_at"], p["via"]))
        with cursor.copy(
            "COPY identities_incoming (kind, value, display, profile_id) FROM STDIN"
        ) as copy:
            for pid, p in zip(ids, people, strict=True):
                for kind, value, display in p["identities"]:
                    copy.write_row((kind, value, display, pid))
                    expected += 1
        # The staging tables have no statistics: the planner guesses a million rows and
        # JIT-compiles each statement, and the history's sort (40,000 rows a batch)
        # spills to disk. Measured on one batch of 5,000 people: 0.65 s with both, 0.47 s
        # without. ANALYZE of the staging tables cost more than it saved; these two
        # settings last until this transaction (one batch) ends.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL work_mem = '64MB'")
        # A new profile's attributes are its changes' new values, each changed at_text.
        cursor.execute(
            "INSERT INTO profiles (id, attributes, attribute_times, created_at, updated_at)"
            " SELECT p.id, COALESCE(a.attributes, '{}'), COALESCE(a.times, '{}'),"
            " %(now)s, %(now)s FROM people_incoming p CROSS JOIN LATERAL ("
            "  SELECT jsonb_object_agg(c->>0, c->2) AS attributes,"
            "   jsonb_object_agg(c->>0, to_jsonb(p.at_text)) AS times"
            "  FROM jsonb_array_elements(p.changes) c) a"
            " ORDER BY p.id",
            {"now": now},
        )
        # Sorted, so concurrent writers lock in one order (as insert_identities).
        cursor.execute(
            "INSERT INTO identities"
            " (kind, value, display, profile_id, source, first_seen, last_seen)"
            " SELECT kind, value, display, profile_id, %(source)s, %(now)s, %(now)s"
            " FROM identities_incoming ORDER BY kind, value"
            " ON CONFLICT (kind, value) DO NOTHING",
            {"source": source, "now": now},
        )
        if cursor.rowcount != expected:
            return None
        # A change is [name, old, new]; JSON null stands for "no value" (SQL NULL, as
        # write_attribute_state stores it).
        cursor.execute(
            "INSERT INTO attribute_changes"
            " (profile_id, name, old_value, new_value, source, changed_at, recorded_at, via)"
            " SELECT p.id, c.change->>0, NULLIF(c.change->1, 'null'::jsonb),"
            " NULLIF(c.change->2, 'null'::jsonb), %(source)s, p.changed_at, %(now)s, p.via"
            " FROM people_incoming p"
            " CROSS JOIN LATERAL jsonb_array_elements(p.changes) WITH ORDINALITY AS c(change, n)"
            " ORDER BY p.id, c.n",
            {"source": source, "now": now},
        )
        cursor.execute("TRUNCATE people_incoming, identities_incoming")
        return ids
    finally:
        cursor.close()


def _json_or_null(value: Any) -> str | None:
    # SQL NULL for "no value", as the ORM path stores it (JSON null is not used).
    return None if value is None else json.dumps(value)


def record_candidates(
    session: Session, pairs: list[tuple[int, int, list[str]]], now: datetime
) -> None:
    """Remember possible duplicates (a pair once; a dismissed pair stays dismissed)."""
    seen: dict[tuple[int, int], list[str]] = {}
    for a, b, evidence in pairs:
        if a != b:
            seen.setdefault((min(a, b), max(a, b)), []).extend(evidence)
    for (a, b), evidence in sorted(seen.items()):
        existing = session.scalar(
            select(DuplicateCandidate).where(
                DuplicateCandidate.profile_a == a, DuplicateCandidate.profile_b == b
            )
        )
        if existing is None:
            session.add(
                DuplicateCandidate(
                    profile_a=a,
                    profile_b=b,
                    score=1.0,
                    evidence=sorted(set(evidence)),
                    status="open",
                    created_at=now,
                    updated_at=now,
                )
            )
        elif not set(evidence) <= set(existing.evidence):
            existing.evidence = sorted(set(existing.evidence) | set(evidence))
            existing.updated_at = now
    session.flush()
