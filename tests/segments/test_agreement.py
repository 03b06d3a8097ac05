"""Property: one meaning, three evaluators.

Hypothesis generates profiles (attributes of every awkward kind: numbers as text, words,
dates, instants with offsets, impossible dates, lists, nulls, their own time zones),
their events, a moment, and segment definitions (nested all/any/not over attribute,
event and segment conditions). The compiled query on PostgreSQL, the compiled query on
SQLite and the single-profile evaluator must name the same members, every time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, delete, insert
from sqlalchemy.orm import Session

from lifecycle import migrate
from lifecycle.db import make_engine
from lifecycle.events.models import Event
from lifecycle.profiles.models import Profile
from lifecycle.segments import evaluate
from lifecycle.segments.compile import Compiled, prepare
from lifecycle.segments.definition import Node, parse_node

BASE = datetime(2026, 1, 16, 3, 0, tzinfo=UTC)
ZONE = "America/New_York"
ATTRIBUTES = ["x", "y", "tags"]  # few names, so conditions meet the values they test


def _day(offset: int) -> str:
    return (BASE.date() + timedelta(days=offset)).isoformat()


def _instant(minutes: int, offset: str) -> str:
    moment = BASE + timedelta(minutes=minutes)
    if offset == "Z":
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if offset == "":
        return moment.strftime("%Y-%m-%dT%H:%M:%S")
    hours, minutes_ = int(offset[1:3]), int(offset[4:6])
    delta = timedelta(hours=hours, minutes=minutes_) * (1 if offset[0] == "+" else -1)
    return (moment + delta).strftime("%Y-%m-%dT%H:%M:%S") + offset


texts = st.sampled_from(
    ["8", "18", " 18 ", "100.50", "99", "0.10", "1e3", "00123", "-4", ".5", "n/a", "NaN",
     "Infinity", "1_000", "DE", "de", "Germany", "apparel.shoes", "", "true", "TRUE", "no",
     " yes", "Yes ", "2026-02-30", "--01-16", "--01-15", "--02-29", "--02-30", "--13-01",
     "--1-16", "1990-01-16T23:30:00-05:00",
     "2026-13-01", "0000-01-01", "15/01/2026", "2026-01-15T25:00:00Z"]
)  # fmt: skip
days = st.integers(-6, 6).map(_day)
instants = st.builds(
    _instant, st.integers(-6 * 1440, 6 * 1440), st.sampled_from(["Z", "", "-05:00", "+09:00"])
)
scalars = st.one_of(
    days,
    instants,
    st.integers(-5, 200),
    st.sampled_from([0.1, 0.2, 0.3, 99.5, 1e-7, 2.5e6, -0.0]),
    texts,
    days,
    instants,
    st.booleans(),
    st.none(),
)
values = st.one_of(
    scalars,
    st.lists(
        st.one_of(st.sampled_from(["vip", "a", "5"]), st.integers(0, 6), st.booleans()), max_size=3
    ),
)
attributes = st.dictionaries(st.sampled_from(ATTRIBUTES), values, min_size=1, max_size=3).flatmap(
    lambda found: st.one_of(
        st.just(found),
        st.sampled_from(["Asia/Tokyo", "Europe/Berlin", "UTC", "Not/AZone", ""]).map(
            lambda zone: {**found, "timezone": zone}
        ),
    )
)
event = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["A", "B"]),
        "properties": st.dictionaries(
            st.sampled_from(["total", "cat"]),
            st.one_of(
                st.sampled_from(["0.10", "0.20", "100.50", "x", "apparel.shoes", "socks"]),
                st.integers(0, 120),
                st.none(),
            ),
            max_size=2,
        ),
        "minutes": st.integers(-12 * 1440, 1440),
    }
)
person = st.fixed_dictionaries({"attributes": attributes, "events": st.lists(event, max_size=5)})

# ------------------------------------------------------------ definitions

compare_values = st.sampled_from(
    [18, "18", 0.3, 99.5, -1, "today", "now", "today - 3d", "now + 2h", "now - 1d",
     "2026-01-15", "2026-01-15T12:00:00Z", "2026-01-15T12:00:00+05:30"]
)  # fmt: skip
equal_values = st.sampled_from(
    [18, "18", 100.5, "DE", "", True, False, "today", "now", "2026-01-15", "vip"]
)


@st.composite
def attribute_condition(draw: Any) -> dict[str, Any]:
    name = draw(st.sampled_from(ATTRIBUTES))
    op = draw(
        st.sampled_from(
            ["equals", "not_equals", "in", "not_in", "contains", "starts_with", "exists", "gt",
             "gte", "lt", "lte", "before", "after", "between", "within_last", "within_next",
             "anniversary"]
        )
    )  # fmt: skip
    if op in ("equals", "not_equals"):
        value: Any = draw(equal_values)
    elif op in ("in", "not_in"):
        value = draw(
            st.lists(st.sampled_from([18, "DE", True, "vip", 0.3]), min_size=1, max_size=3)
        )
    elif op == "contains":
        value = draw(st.sampled_from(["a", "vip", 5, True, "De"]))
    elif op == "starts_with":
        value = draw(st.sampled_from(["D", "2026-01", "app"]))
    elif op == "exists":
        value = draw(st.booleans())
    elif op == "between":
        value = draw(st.sampled_from([[10, 100], ["0.1", 0.3], ["today - 3d", "today"], ["now - 2d", "now"], ["2026-01-10", "2026-01-15T12:00:00Z"]]))  # fmt: skip
    elif op in ("within_last", "within_next"):
        value = draw(st.sampled_from(["1d", "3d", "36h", "2w"]))
    elif op == "anniversary":
        value = None
    else:
        value = draw(compare_values)
    return {"attribute": name, "op": op, "value": value}


@st.composite
def event_condition(draw: Any) -> dict[str, Any]:
    condition: dict[str, Any] = {"event": draw(st.sampled_from(["A", "B"]))}
    where = draw(
        st.sampled_from(
            [None, {"total": {"gt": 10}}, {"cat": "socks"}, {"cat": {"starts_with": "apparel"}},
             {"total": {"lte": "0.30"}, "cat": {"exists": False}}]
        )
    )  # fmt: skip
    if where:
        condition["where"] = where
    window = draw(st.sampled_from([None, "1d", "7d", "36h"]))
    if window:
        condition["within_last"] = window
    measure = draw(st.sampled_from(["performed", "count", "sum"]))
    if measure == "performed":
        condition["performed"] = draw(st.booleans())
    elif measure == "count":
        condition["count"] = draw(
            st.sampled_from([0, 1, 2, {"gte": 2}, {"lte": 1}, {"lt": 1}, {"between": [0, 2]}])
        )
    else:
        condition["sum"] = "total"
        op = draw(st.sampled_from(["gt", "gte", "lt", "lte"]))
        condition[op] = draw(st.sampled_from([0, "0.30", 0.3, 100.5, 120]))
    return condition


def conditions(reference: bool) -> st.SearchStrategy[dict[str, Any]]:
    leaves = st.one_of(
        attribute_condition(),
        event_condition(),
        st.sampled_from(
            [{"consent": "email"}, {"consent": "sms", "explicit": True}]
            + ([{"segment": "other"}] if reference else [])
        ),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda items: {"all": items}),
            st.lists(inner, min_size=1, max_size=3).map(lambda items: {"any": items}),
            inner.map(lambda item: {"not": item}),
        ),
        max_leaves=5,
    )


# ------------------------------------------------------------ three evaluators


@pytest.fixture(scope="module")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("agreement") / "segments.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def _store(session: Session, people: list[dict[str, Any]], now: datetime) -> list[int]:
    ids = list(
        session.scalars(
            insert(Profile).returning(Profile.id, sort_by_parameter_order=True),
            [
                {"attributes": p["attributes"], "attribute_times": {}, "created_at": now,
                 "updated_at": now}
                for p in people
            ],
        )
    )  # fmt: skip
    rows = [
        {
            "profile_id": profile_id,
            "type": "track",
            "name": item["name"],
            "properties": item["properties"],
            "context": {},
            "occurred_at": BASE + timedelta(minutes=item["minutes"]),
            "received_at": now,
            "source": "test",
            "dedupe_key": f"{profile_id}-{index}",
            "backfill": False,
        }
        for profile_id, spec in zip(ids, people, strict=True)
        for index, item in enumerate(spec["events"])
    ]
    if rows:
        session.execute(insert(Event), rows)
    session.flush()
    return ids


def _members(session: Session, node: Node, other: Node, now: datetime) -> set[int]:
    prepare(session)
    compiled = Compiled(
        node,
        dialect=session.get_bind().dialect.name,
        now=now,
        workspace_zone=ZONE,
        segment=lambda name: other,
    )
    return set(session.scalars(compiled.members()))


def _expected(people: list[dict[str, Any]], node: Node, other: Node, now: datetime) -> set[int]:
    inside = set()
    for index, spec in enumerate(people):
        subject = evaluate.Subject(
            spec["attributes"],
            [
                evaluate.EventRow(
                    e["name"], e["properties"], BASE + timedelta(minutes=e["minutes"])
                )
                for e in spec["events"]
            ],
        )
        if evaluate.holds(
            node, subject, now=now, workspace_zone=ZoneInfo(ZONE), segment=lambda _: other
        ):
            inside.add(index)
    return inside


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    people=st.lists(person, min_size=1, max_size=8),
    definition=conditions(reference=True),
    other=conditions(reference=False),
    minutes=st.integers(-3 * 1440, 3 * 1440),
)
def test_postgres_sqlite_and_the_single_profile_evaluator_agree(
    connection: Connection, sqlite_engine: Engine, people, definition, other, minutes
) -> None:
    _agree(connection, sqlite_engine, people, definition, other, minutes)


def _agree(connection: Connection, sqlite_engine: Engine, people, definition, other, minutes):
    now = BASE + timedelta(minutes=minutes)
    node, other_node = parse_node(definition), parse_node(other)
    expected = _expected(people, node, other_node, now)
    savepoint = connection.begin_nested()
    try:
        with Session(bind=connection) as session:
            ids = _store(session, people, now)
            found = _members(session, node, other_node, now)
    finally:
        savepoint.rollback()
    assert {ids.index(p) for p in found} == expected, "PostgreSQL"
    with Session(sqlite_engine) as session:
        session.execute(delete(Event))
        session.execute(delete(Profile))
        ids = _store(session, people, now)
        found = _members(session, node, other_node, now)
        session.rollback()
    assert {ids.index(p) for p in found} == expected, "SQLite"


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    people=st.lists(person, min_size=10, max_size=30),
    definition=st.one_of(attribute_condition(), event_condition()),
    minutes=st.integers(-3 * 1440, 3 * 1440),
)
def test_each_kind_of_condition_agrees_over_many_values(
    connection: Connection, sqlite_engine: Engine, people, definition, minutes
) -> None:
    """One condition against many people at once: every value kind meets every op."""
    _agree(connection, sqlite_engine, people, definition, {"consent": "email"}, minutes)


@pytest.mark.parametrize(
    ("expected", "inside"),
    [(True, {0, 2, 4, 6}), (False, {1, 3, 5})],
)
def test_yes_no_written_as_text_reads_as_true_or_false(
    connection: Connection, sqlite_engine: Engine, expected: bool, inside: set[int]
) -> None:
    """A CSV import stores ``TRUE`` or ``yes`` as text (C2's kind: a typed value sent as
    text); ``equals: true`` must still find it, the same way in all three evaluators."""
    people = [
        {"attributes": {"vip": v}, "events": []}
        for v in (True, False, "true", "FALSE", "yes", "No", "TRUE", "maybe", " yes", 1, "1")
    ]
    definition = {"attribute": "vip", "op": "equals", "value": expected}
    assert _expected(people, parse_node(definition), parse_node(definition), BASE) == inside
    _agree(connection, sqlite_engine, people, definition, definition, 0)


def test_a_birthday_is_today_whether_written_with_a_year_without_one_or_as_an_instant(
    connection: Connection, sqlite_engine: Engine
) -> None:
    """An import stores 15/05 without a year as ``--05-15`` (ISO 8601); a birthday sent
    as an instant is on the day as written. Both are birthdays, in all three evaluators."""
    people = [
        {"attributes": {"birthday": b}, "events": []}
        for b in (
            "1985-01-15",  # 0: today in New York (BASE is 03:00 UTC on the 16th)
            "--01-15",  # 1: no year
            "1985-01-15T00:00:00Z",  # 2: an instant, the day as written
            "1985-01-15T22:00:00-05:00",  # 3: as written, though it is the 16th in UTC
            "--01-16",  # 4: tomorrow
            "--02-30",  # 5: no such day
            "--1-15",  # 6: not ISO
            "15/01",  # 7: not stored so by an import; never a date here
        )
    ]
    definition = {"attribute": "birthday", "op": "anniversary"}
    assert _expected(people, parse_node(definition), parse_node(definition), BASE) == {0, 1, 2, 3}
    _agree(connection, sqlite_engine, people, definition, definition, 0)


def test_equals_a_calendar_date_holds_for_instants_within_that_local_day(
    connection: Connection, sqlite_engine: Engine
) -> None:
    people = [
        {"attributes": {"last_login": v}, "events": []}
        for v in (
            "2026-01-15",  # 0: the date itself
            "2026-01-16T03:00:00Z",  # 1: 22:00 on the 15th in New York
            "2026-01-15T06:00:00Z",  # 2: 01:00 on the 15th in New York
            "2026-01-15T04:00:00Z",  # 3: 23:00 on the 14th in New York
            "2026-01-16",  # 4: the next day
            "15/01/2026",  # 5: not a date
        )
    ]
    definition = {"attribute": "last_login", "op": "equals", "value": "2026-01-15"}
    assert _expected(people, parse_node(definition), parse_node(definition), BASE) == {0, 1, 2}
    _agree(connection, sqlite_engine, people, definition, definition, 0)
