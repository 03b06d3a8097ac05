"""Segment use cases: publish, recompute, re-check one profile, membership history, preview.

Entrypoints own the transaction; these functions only flush. Memberships change two
ways (``docs/segments.md``): after a change, only the segments that depend on that
attribute or event name are re-checked for that profile, by the single-profile
evaluator; on the scheduler's pass, time-based segments are recomputed set-wise by
the compiled query and the difference written. Every entry and exit is a row with
its time and cause.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ARRAY, and_, any_, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lifecycle.errors import NotFound
from lifecycle.events.models import Event
from lifecycle.profiles.models import Identity, Profile
from lifecycle.segments import evaluate
from lifecycle.segments.compile import Compiled, prepare, unreadable_counts
from lifecycle.segments.definition import (
    Attribute,
    DateSpec,
    EventCondition,
    InSegment,
    Node,
    SegmentDef,
    is_time_based,
    parse_segment,
    walk,
)
from lifecycle.segments.loader import LoadedSegment
from lifecycle.segments.models import Segment, SegmentMembership


@dataclass(frozen=True)
class Entry:
    """A published segment as plain data (safe to cache)."""

    id: int
    name: str
    definition: SegmentDef
    attributes: frozenset[str]
    events: frozenset[str]
    time_based: bool


@dataclass(frozen=True)
class Transition:
    """Someone entered or left a segment. ``triggers``: campaigns may start on it
    (data or time moved them; a new or changed definition does not)."""

    segment: str
    profile_id: int
    entered: bool
    at: datetime
    cause: str
    triggers: bool = True


@dataclass
class Catalog:
    entries: dict[str, Entry] = field(default_factory=dict)

    def node(self, name: str) -> Node:
        entry = self.entries.get(name)
        if entry is None:
            raise NotFound(f"no segment named {name!r}")
        return entry.definition.where

    def get(self, name: str) -> Entry:
        entry = self.entries.get(name)
        if entry is None:
            raise NotFound(f"no segment named {name!r}")
        return entry


def dependencies(node: Node, segment: Any) -> tuple[set[str], set[str], bool]:
    """Attribute names, event names and time-basedness of ``node``, through references."""
    attributes: set[str] = set()
    events: set[str] = set()
    timed = False
    stack = [node]
    seen: set[str] = set()
    while stack:
        current = stack.pop()
        timed = timed or is_time_based(current)
        for n in walk(current):
            if isinstance(n, Attribute):
                attributes.add(n.name)
                parts = n.test.value if isinstance(n.test.value, tuple) else (n.test.value,)
                if n.test.op in ("within_last", "within_next", "anniversary") or any(
                    isinstance(p, DateSpec) for p in parts
                ):
                    attributes.add("timezone")  # the profile's zone decides its "today"
            elif isinstance(n, EventCondition):
                events.add(n.name)
            elif isinstance(n, InSegment) and n.name not in seen:
                seen.add(n.name)
                stack.append(segment(n.name))
    return attributes, events, timed


# Every evaluation needs the catalog; it changes only on publish (see campaigns.live_campaigns).
CATALOG_TTL = 5.0
_catalogs: dict[str, tuple[float, Catalog]] = {}


def catalog(session: Session) -> Catalog:
    key = session.get_bind().engine.url.render_as_string()
    cached = _catalogs.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    rows = list(session.scalars(select(Segment).where(Segment.status == "active")))
    parsed = {row.name: (row, parse_segment(row.definition)) for row in rows}
    found = Catalog()
    lookup = {name: d.where for name, (_, d) in parsed.items()}

    def node(name: str) -> Node:
        if name not in lookup:
            raise NotFound(f"no segment named {name!r}")
        return lookup[name]

    for name, (row, definition) in parsed.items():
        attributes, events, timed = dependencies(definition.where, node)
        found.entries[name] = Entry(
            row.id, name, definition, frozenset(attributes), frozenset(events), timed
        )
    _catalogs[key] = (time.monotonic() + CATALOG_TTL, found)
    return found


def forget_catalog() -> None:
    _catalogs.clear()


def publish(
    session: Session,
    loaded: list[LoadedSegment],
    *,
    now: datetime,
    zone: str,
    complete: bool = False,
) -> tuple[list[str], list[Transition]]:
    """Store each definition (a changed one gets a new version) and compute its members.

    With ``complete`` (the whole directory), segments no longer there are archived and
    their members leave. Entries from a new or changed definition start no campaigns.
    """
    changed: list[str] = []
    names = {item.definition.name for item in loaded}
    for item in loaded:
        definition = item.definition
        row = session.scalar(select(Segment).where(Segment.name == definition.name))
        if row is not None and row.checksum == item.checksum and row.status == "active":
            continue
        if row is None:
            row = Segment(name=definition.name, created_at=now, version=0)
            session.add(row)
        row.version = (row.version or 0) + 1
        row.description = definition.description
        row.definition = definition.source
        row.checksum = item.checksum
        row.source_file = item.file
        row.status = "active"
        row.updated_at = now
        changed.append(f"{definition.name} v{row.version}")
    retired = []
    if complete:
        for row in session.scalars(
            select(Segment).where(Segment.status == "active", Segment.name.not_in(names or {""}))
        ):
            row.status, row.updated_at = "archived", now
            retired.append(row)
    session.flush()
    forget_catalog()
    found = catalog(session)
    for row in retired:
        _close_all(session, row.id, now, "segment removed")
    transitions: list[Transition] = []
    # Recompute what changed, and what refers to it.
    touched = {c.rsplit(" v", 1)[0] for c in changed}
    for entry in found.entries.values():
        refs = {n.name for n in walk(entry.definition.where) if isinstance(n, InSegment)}
        if entry.name in touched or refs & touched:
            transitions += recompute(
                session,
                entry,
                now=now,
                zone=zone,
                cause=f"segment {entry.name} published",
                triggers=False,
            )
    # Said, not silent: a segment whose file was removed is archived and its members left.
    changed += [f"{row.name} archived (its file is gone; its members left)" for row in retired]
    return changed, transitions


def _close_all(session: Session, segment_id: int, now: datetime, cause: str) -> None:
    session.execute(
        update(SegmentMembership)
        .where(SegmentMembership.segment_id == segment_id, SegmentMembership.exited_at.is_(None))
        .values(exited_at=now, exited_cause=cause)
    )


def members_query(session: Session, entry: Entry, *, now: datetime, zone: str) -> Any:
    prepare(session)
    compiled = Compiled(
        entry.definition.where,
        dialect=session.get_bind().dialect.name,
        now=now,
        workspace_zone=zone,
        segment=catalog(session).node,
    )
    return compiled.members()


def _current(session: Session, segment_id: int) -> set[int]:
    return set(
        session.scalars(
            select(SegmentMembership.profile_id).where(
                SegmentMembership.segment_id == segment_id, SegmentMembership.exited_at.is_(None)
            )
        )
    )


def _chunks(items: list[int], size: int = 5000) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def recompute(
    session: Session,
    entry: Entry,
    *,
    now: datetime,
    zone: str,
    cause: str,
    triggers: bool = True,
) -> list[Transition]:
    """One set-based query for the members now; the difference is written as entries and exits."""
    members = set(session.scalars(members_query(session, entry, now=now, zone=zone)))
    current = _current(session, entry.id)
    entered, left = sorted(members - current), sorted(current - members)
    for chunk in _chunks(entered):
        session.execute(
            insert(SegmentMembership),
            [
                {"segment_id": entry.id, "profile_id": p, "entered_at": now, "entered_cause": cause}
                for p in chunk
            ],
        )
    for chunk in _chunks(left):
        session.execute(
            update(SegmentMembership)
            .where(
                SegmentMembership.segment_id == entry.id,
                SegmentMembership.exited_at.is_(None),
                SegmentMembership.profile_id.in_(chunk),
            )
            .values(exited_at=now, exited_cause=cause)
        )
    session.execute(update(Segment).where(Segment.id == entry.id).values(computed_at=now))
    session.flush()
    return [Transition(entry.name, p, True, now, cause, triggers) for p in entered] + [
        Transition(entry.name, p, False, now, cause, triggers) for p in left
    ]


def _midnight_passed(since: datetime, now: datetime, zone: str) -> bool:
    where = ZoneInfo(zone)
    return evaluate.local_date(since, where) != evaluate.local_date(now, where)


def refresh(
    session: Session,
    *,
    now: datetime,
    zone: str,
    every: timedelta,
    full_every: timedelta = timedelta(hours=24),
) -> list[Transition]:
    """The scheduler's pass: time-based segments last computed ``every`` ago, or before the
    workspace's local midnight, are recomputed; what changed is caused by time alone.
    Every other segment is recomputed ``full_every``: a safety net for a lost re-check."""
    transitions: list[Transition] = []
    found = catalog(session)
    computed = dict(
        session.execute(
            select(Segment.id, Segment.computed_at).where(Segment.status == "active")
        ).all()
    )
    for entry in found.entries.values():
        last = computed.get(entry.id)
        if last is not None and now <= last:
            continue  # computed at or after this moment (a replay runs an earlier clock)
        if last is not None and not entry.time_based:
            if now - last >= full_every:
                transitions += recompute(
                    session, entry, now=now, zone=zone, cause="daily recompute"
                )
            continue
        if last is None or now - last >= every or _midnight_passed(last, now, zone):
            transitions += recompute(
                session, entry, now=now, zone=zone, cause=f"time: recomputed at {now.isoformat()}"
            )
    return transitions


def next_refresh(
    session: Session,
    *,
    now: datetime,
    every: timedelta,
    full_every: timedelta = timedelta(hours=24),
) -> datetime | None:
    """When the scheduler should next recompute something."""
    entries = list(catalog(session).entries.values())
    if not entries:
        return None
    computed = dict(
        session.execute(
            select(Segment.id, Segment.computed_at).where(Segment.id.in_([e.id for e in entries]))
        ).all()
    )
    due = []
    for entry in entries:
        last = computed.get(entry.id)
        if last is None:
            return now
        due.append(last + (every if entry.time_based else full_every))
    return min(due)


# ------------------------------------------------------------ one profile


# Built once per dialect: a re-check runs after every event, and building and caching a
# statement costs about as much as running it (bench/segments.py). On PostgreSQL a list is
# one array parameter (``= ANY``): an expanding IN is re-rendered on every call.
def _in_list(column: Any, name: str, dialect: str) -> Any:
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


@functools.cache
def _one_profile_statements(dialect: str) -> tuple[Any, Any]:
    events_of = select(Event.name, Event.properties, Event.occurred_at).where(
        Event.profile_id == bindparam("profile_id"),
        _in_list(Event.name, "names", dialect),
    )
    profile_and_segments = (
        select(Profile.attributes, Profile.merged_into_id, SegmentMembership.segment_id)
        .outerjoin(
            SegmentMembership,
            and_(
                SegmentMembership.profile_id == Profile.id,
                SegmentMembership.exited_at.is_(None),
                _in_list(SegmentMembership.segment_id, "segments", dialect),
            ),
        )
        .where(Profile.id == bindparam("profile_id"))
    )
    return events_of, profile_and_segments


def _event_rows(
    session: Session, profile_id: int, events: Iterable[str]
) -> list[evaluate.EventRow]:
    names = sorted(set(events))
    if not names:
        return []
    connection = session.connection()
    events_of, _ = _one_profile_statements(connection.dialect.name)
    return [
        evaluate.EventRow(name, properties or {}, occurred_at)
        for name, properties, occurred_at in connection.execute(
            events_of, {"profile_id": profile_id, "names": names}
        )
    ]


def _subject(session: Session, profile_id: int, events: Iterable[str]) -> evaluate.Subject | None:
    profile = session.get(Profile, profile_id)
    if profile is None or profile.merged_into_id is not None:
        return None
    return evaluate.Subject(
        dict(profile.attributes or {}), _event_rows(session, profile_id, events)
    )


def _entries_needing(
    found: Catalog, attributes: set[str] | None, events: set[str] | None
) -> list[Entry]:
    if attributes is None and events is None:
        return list(found.entries.values())
    return [
        e
        for e in found.entries.values()
        if (attributes and e.attributes & attributes) or (events and e.events & events)
    ]


def recheck(
    session: Session,
    profile_id: int,
    *,
    now: datetime,
    zone: str,
    cause: str,
    attributes: set[str] | None = None,
    events: set[str] | None = None,
) -> list[Transition]:
    """Re-check one profile in the segments that depend on what changed (``None`` and
    ``None``: every segment), and write its entries and exits."""
    found = catalog(session)
    entries = _entries_needing(found, attributes, events)
    if not entries:
        return []
    # One query for the profile and which of these segments it is in, one for its events (plain
    # rows through the Core connection, not the ORM: this runs after every event, and the ORM
    # layer cost as much as the queries; see bench/segments.py).
    connection = session.connection()
    _, profile_and_segments = _one_profile_statements(connection.dialect.name)
    rows = connection.execute(
        profile_and_segments, {"profile_id": profile_id, "segments": [e.id for e in entries]}
    ).all()

    def open_in() -> Any:  # built only when needed: building it costs ~0.1 ms
        return and_(
            SegmentMembership.profile_id == profile_id,
            SegmentMembership.exited_at.is_(None),
            SegmentMembership.segment_id.in_([e.id for e in entries]),
        )

    if rows:
        current = {r.segment_id for r in rows if r.segment_id is not None}
    else:  # no such profile: whatever it was in, it leaves
        current = set(session.scalars(select(SegmentMembership.segment_id).where(open_in())))
    subject = None
    if rows and rows[0].merged_into_id is None:
        subject = evaluate.Subject(
            dict(rows[0].attributes or {}),
            _event_rows(session, profile_id, {n for e in entries for n in e.events}),
        )
    where = ZoneInfo(zone)
    transitions = []
    for entry in entries:
        inside = subject is not None and evaluate.holds(
            entry.definition.where, subject, now=now, workspace_zone=where, segment=found.node
        )
        if inside and entry.id not in current:
            try:
                with session.begin_nested():
                    session.add(
                        SegmentMembership(
                            segment_id=entry.id,
                            profile_id=profile_id,
                            entered_at=now,
                            entered_cause=cause,
                        )
                    )
                    session.flush()
            except IntegrityError:
                continue  # entered meanwhile, by a concurrent re-check
            transitions.append(Transition(entry.name, profile_id, True, now, cause))
        elif not inside and entry.id in current:
            session.execute(
                update(SegmentMembership)
                .where(open_in(), SegmentMembership.segment_id == entry.id)
                .values(exited_at=now, exited_cause=cause)
            )
            transitions.append(Transition(entry.name, profile_id, False, now, cause))
    session.flush()
    return transitions


def is_member(session: Session, name: str, profile_id: int, *, now: datetime, zone: str) -> bool:
    """Evaluated now, for this one person (a branch, or the last check before a send)."""
    found = catalog(session)
    entry = found.get(name)
    subject = _subject(session, profile_id, entry.events)
    return subject is not None and evaluate.holds(
        entry.definition.where, subject, now=now, workspace_zone=ZoneInfo(zone), segment=found.node
    )


# ------------------------------------------------------------ reading


def _label(session: Session, profile_ids: list[int]) -> dict[int, dict[str, str]]:
    labels: dict[int, dict[str, str]] = {p: {} for p in profile_ids}
    for profile_id, kind, display in session.execute(
        select(Identity.profile_id, Identity.kind, Identity.display).where(
            Identity.profile_id.in_(profile_ids), Identity.kind.in_(["id", "email", "phone"])
        )
    ):
        labels[profile_id].setdefault(kind, display)
    return labels


def summary(session: Session) -> list[dict[str, Any]]:
    """Every active segment with its size (current members) and when it was computed."""
    sizes = dict(
        session.execute(
            select(SegmentMembership.segment_id, func.count())
            .where(SegmentMembership.exited_at.is_(None))
            .group_by(SegmentMembership.segment_id)
        ).all()
    )
    rows = session.scalars(select(Segment).where(Segment.status == "active").order_by(Segment.name))
    found = catalog(session)
    return [
        {
            "name": row.name,
            "description": row.description,
            "version": row.version,
            "size": sizes.get(row.id, 0),
            "time_based": found.entries[row.name].time_based
            if row.name in found.entries
            else False,
            "depends_on": {
                "attributes": sorted(found.entries[row.name].attributes)
                if row.name in found.entries
                else [],
                "events": sorted(found.entries[row.name].events)
                if row.name in found.entries
                else [],
            },
            "computed_at": row.computed_at.isoformat() if row.computed_at else None,
            "definition": row.definition,
            "source_file": row.source_file,
        }
        for row in rows
    ]


def sample(session: Session, name: str, *, limit: int = 20) -> list[dict[str, Any]]:
    entry = catalog(session).get(name)
    rows = session.execute(
        select(
            SegmentMembership.profile_id,
            SegmentMembership.entered_at,
            SegmentMembership.entered_cause,
        )
        .where(SegmentMembership.segment_id == entry.id, SegmentMembership.exited_at.is_(None))
        .order_by(SegmentMembership.profile_id)
        .limit(limit)
    ).all()
    labels = _label(session, [r[0] for r in rows])
    return [
        {"profile_id": p, **labels.get(p, {}), "entered_at": at.isoformat(), "cause": cause}
        for p, at, cause in rows
    ]


def memberships_of(session: Session, profile_id: int) -> list[dict[str, Any]]:
    """Every stay of this profile in every segment, newest first: current ones have no exit."""
    rows = session.execute(
        select(SegmentMembership, Segment.name)
        .join(Segment, Segment.id == SegmentMembership.segment_id)
        .where(SegmentMembership.profile_id == profile_id)
        .order_by(SegmentMembership.entered_at.desc(), SegmentMembership.id.desc())
    ).all()
    return [
        {
            "segment": name,
            "current": m.exited_at is None,
            "entered_at": m.entered_at.isoformat(),
            "entered_cause": m.entered_cause,
            "exited_at": m.exited_at.isoformat() if m.exited_at else None,
            "exited_cause": m.exited_cause,
        }
        for m, name in rows
    ]


def current_members(session: Session, name: str) -> set[int]:
    return _current(session, catalog(session).get(name).id)


def preview(
    session: Session,
    loaded: list[LoadedSegment],
    *,
    now: datetime,
    zone: str,
    limit: int = 10,
) -> list[dict[str, Any]]:
    """Size, a sample and values that cannot be compared, for definitions not yet published
    (they may refer to each other and to published segments). Writes nothing."""
    published = catalog(session)
    drafts = {item.definition.name: item.definition.where for item in loaded}

    def node(name: str) -> Node:
        return drafts[name] if name in drafts else published.node(name)

    prepare(session)
    out = []
    for item in loaded:
        compiled = Compiled(
            item.definition.where,
            dialect=session.get_bind().dialect.name,
            now=now,
            workspace_zone=zone,
            segment=node,
        )
        query = compiled.members()
        size = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        ids = list(session.scalars(query.order_by(Profile.id).limit(limit)))
        labels = _label(session, ids)
        _, _, timed = dependencies(item.definition.where, node)
        out.append(
            {
                "name": item.definition.name,
                "file": item.file,
                "size": size,
                "sample": [{"profile_id": p, **labels.get(p, {})} for p in ids],
                "not_comparable": unreadable_counts(session, item.definition.where, segment=node),
                "time_based": timed,
            }
        )
    return out


@dataclass(frozen=True)
class Change:
    """What changed for one profile: attribute names, event names (``None`` and ``None``:
    anything, so every segment is re-checked), and the cause written with any move."""

    profile_id: int
    cause: str
    attributes: frozenset[str] | None = None
    events: frozenset[str] | None = None


def recheck_many(
    session: Session, changes: list[Change], *, now: datetime, zone: str
) -> list[Transition]:
    """:func:`recheck` for a batch of profiles (an ingest batch, an evaluation job) in a
    fixed number of queries: their attributes, their events of the names concerned, their
    open memberships; then the entries as one insert and the exits as one update."""
    found = catalog(session)
    wanted: dict[int, list[Entry]] = {}
    causes: dict[tuple[int, int], str] = {}  # (profile, segment): the first change needing it
    for change in sorted(changes, key=lambda c: c.profile_id):
        attributes = None if change.attributes is None else set(change.attributes)
        events = None if change.events is None else set(change.events)
        entries = _entries_needing(found, attributes, events)
        if entries:
            known = {e.id for e in wanted.get(change.profile_id, [])}
            wanted.setdefault(change.profile_id, []).extend(e for e in entries if e.id not in known)
            for e in entries:
                causes.setdefault((change.profile_id, e.id), change.cause)
    if not wanted:
        return []
    profile_ids = sorted(wanted)
    segment_ids = sorted({e.id for entries in wanted.values() for e in entries})
    names = sorted({n for entries in wanted.values() for e in entries for n in e.events})
    people = {
        pid: (attributes, merged)
        for pid, attributes, merged in session.execute(
            select(Profile.id, Profile.attributes, Profile.merged_into_id).where(
                Profile.id.in_(profile_ids)
            )
        )
    }
    events: dict[int, list[evaluate.EventRow]] = {}
    if names:
        for pid, name, properties, occurred_at in session.execute(
            select(Event.profile_id, Event.name, Event.properties, Event.occurred_at).where(
                Event.profile_id.in_(profile_ids), Event.name.in_(names)
            )
        ):
            events.setdefault(pid, []).append(
                evaluate.EventRow(name, properties or {}, occurred_at)
            )
    current = {
        (pid, sid): row_id
        for row_id, pid, sid in session.execute(
            select(
                SegmentMembership.id, SegmentMembership.profile_id, SegmentMembership.segment_id
            ).where(
                SegmentMembership.profile_id.in_(profile_ids),
                SegmentMembership.segment_id.in_(segment_ids),
                SegmentMembership.exited_at.is_(None),
            )
        )
    }
    where = ZoneInfo(zone)
    entering: list[dict[str, Any]] = []
    leaving: dict[str, list[int]] = {}
    transitions: list[Transition] = []
    for pid in profile_ids:
        attributes, merged = people.get(pid, (None, None))
        subject = (
            evaluate.Subject(dict(attributes or {}), events.get(pid, []))
            if pid in people and merged is None
            else None
        )
        for entry in wanted[pid]:
            inside = subject is not None and evaluate.holds(
                entry.definition.where, subject, now=now, workspace_zone=where, segment=found.node
            )
            row_id = current.get((pid, entry.id))
            cause = causes[(pid, entry.id)]
            if inside and row_id is None:
                entering.append(
                    {
                        "segment_id": entry.id,
                        "profile_id": pid,
                        "entered_at": now,
                        "entered_cause": cause[:255],
                    }
                )
                transitions.append(Transition(entry.name, pid, True, now, cause))
            elif not inside and row_id is not None:
                leaving.setdefault(cause[:255], []).append(row_id)
                transitions.append(Transition(entry.name, pid, False, now, cause))
    if entering:
        try:
            with session.begin_nested():
                session.execute(insert(SegmentMembership), entering)
        except IntegrityError:  # a concurrent re-check entered someone first: one by one
            for row in entering:
                try:
                    with session.begin_nested():
                        session.execute(insert(SegmentMembership), [row])
                except IntegrityError:
                    transitions = [
                        t
                        for t in transitions
                        if not (t.entered and t.profile_id == row["profile_id"])
                        or found.entries[t.segment].id != row["segment_id"]
                    ]
    for cause, row_ids in leaving.items():
        for chunk in _chunks(row_ids):
            session.execute(
                update(SegmentMembership)
                .where(SegmentMembership.id.in_(chunk), SegmentMembership.exited_at.is_(None))
                .values(exited_at=now, exited_cause=cause)
            )
    session.flush()
    return transitions
