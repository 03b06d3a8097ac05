"""The profile domain's SQL, private to it. Set-wise on both engines; on PostgreSQL the
hot statements pass arrays (``unnest``) so a 500-item batch is a handful of short
statements instead of thousands of bound parameters."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

import psycopg
from sqlalchemy import bindparam, insert, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT, TEXT, TIMESTAMP
from sqlalchemy.orm import Session

from lifecycle.db import NEW_ID, copy_field, copy_json, copy_time, is_postgres
from lifecycle.profiles.models import (
    FIRST_VALUES,
    AttributeChange,
    DuplicateCandidate,
    Identity,
    Profile,
)

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
        # The keys as one JSON text: psycopg dumps a list parameter item by item in Python,
        # which was a tenth of an import's main process.
        rows = session.execute(
            text(
                "SELECT i.kind, i.value, i.profile_id FROM identities i"
                " JOIN jsonb_to_recordset(CAST(:keys AS jsonb)) AS k(kind text, value text)"
                " ON i.kind = k.kind AND i.value = k.value"
            ),
            # In index order: each probe finds its page near the last one's, not anywhere
            # in an index that outgrew memory.
            {"keys": json.dumps([{"kind": k, "value": v} for k, v in sorted(keys)])},
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


def history_of(
    found: list[tuple[str, Any, Any]], *, created: bool
) -> list[tuple[str | None, Any, Any]]:
    """The history rows of one update's changes ((name, old, new) each): on a profile made
    for it, one row of its first values (name :data:`FIRST_VALUES`, the object of them)."""
    if created and found:
        return [(FIRST_VALUES, None, {name: value for name, _, value in found})]
    return list(found)


class PersonRows(NamedTuple):
    """A new person's rows, rendered for COPY (:func:`person_rows`), its id left as
    :data:`lifecycle.db.NEW_ID`: made ahead (in another process), written by
    :func:`insert_drafted`."""

    profile: str  # the profiles row
    identities: tuple[tuple[str, str, str], ...]  # (kind, value, identities row) each
    history: str  # its attribute changes, one row each
    changed: bool  # whether it has attributes (any history)


def person_rows(
    attributes: dict[str, Any],
    times: dict[str, str],
    changes: list[tuple[str, Any, Any]],
    identities: list[tuple[str, str, str]],
    *,
    changed_at: datetime,
    via: str | None,
    source: str,
    now: datetime,
    history_source: str | None = None,
) -> PersonRows:
    """A new profile holding ``identities`` ((kind, value, display) each) and
    ``attributes`` (their ``times``), with the history of its ``changes`` ((name, old,
    new) each, as :func:`lifecycle.profiles.traits.initial_state` gives them: one row of
    first values): the rows :func:`insert_drafted` writes. Pure, so a worker process can
    render them."""
    stamp, src = copy_time(now), copy_field(source)
    known = f"\t{NEW_ID}\t{src}\t{stamp}\t{stamp}\n"  # an identity's profile, source, times
    told = copy_field(history_source) if history_source else src  # the history's source
    history = f"\t{told}\t{copy_time(changed_at)}\t{stamp}\t{copy_field(via)}\n"
    values = copy_json(attributes)
    # A new person's attributes all have its one moment: the same few objects of times
    # (one per set of columns a row fills) for a whole file, rendered once each.
    moments = set(times.values())
    times_text = _times_json(tuple(times), moments.pop()) if len(moments) == 1 else copy_json(times)
    rows = []
    for name, old, new in history_of(changes, created=True):
        # The first values are the attributes themselves (on an empty profile): one JSON.
        new_text = values if new == attributes else copy_json(new)
        rows.append(f"{NEW_ID}\t{copy_field(name)}\t{copy_json(old)}\t{new_text}{history}")
    return PersonRows(
        f"{NEW_ID}\t{values}\t{times_text}\t{stamp}\t{stamp}\n",
        tuple(
            (kind, value, f"{copy_field(kind)}\t{copy_field(value)}\t{copy_field(display)}{known}")
            for kind, value, display in identities
        ),
        "".join(rows),
        bool(changes),
    )


@lru_cache(maxsize=256)
def _times_json(names: tuple[str, ...], moment: str) -> str:
    return copy_json(dict.fromkeys(names, moment))


def insert_drafted(session: Session, people: list[PersonRows]) -> list[int] | None:
    """PostgreSQL: new profiles with their identities and history, one COPY per table
    (PostgreSQL's fastest way in: no staging table, no statement per row), ids taken
    from the sequence first. Returns the new ids in order, or None when an identity was
    taken meanwhile by another transaction: the transaction is then unusable, and the
    caller rolls back to its savepoint."""
    cursor = session.connection().connection.driver_connection.cursor()
    try:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('profiles', 'id')) FROM generate_series(1, %s)",
            (len(people),),
        )
        ids = [row[0] for row in cursor.fetchall()]
        texts = [str(pid) for pid in ids]
        # Identities sorted, so concurrent writers lock in one order (as insert_identities).
        identities = sorted(
            (kind, value, row, pid)
            for pid, person in zip(texts, people, strict=True)
            for kind, value, row in person.identities
        )
        try:
            with cursor.copy(
                "COPY profiles (id, attributes, attribute_times, created_at, updated_at) FROM STDIN"
            ) as copy:
                copy.write(
                    "".join(
                        p.profile.replace(NEW_ID, t) for t, p in zip(texts, people, strict=True)
                    )
                )
            with cursor.copy(
                "COPY identities (kind, value, display, profile_id, source, first_seen,"
                " last_seen) FROM STDIN"
            ) as copy:
                copy.write("".join(row.replace(NEW_ID, pid) for _, _, row, pid in identities))
            with cursor.copy(
                "COPY attribute_changes (profile_id, name, old_value, new_value, source,"
                " changed_at, recorded_at, via) FROM STDIN"
            ) as copy:
                copy.write(
                    "".join(
                        p.history.replace(NEW_ID, t) for t, p in zip(texts, people, strict=True)
                    )
                )
        except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected):
            return None
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
