"""Segment definitions -> one set-based SQLAlchemy query (PostgreSQL and SQLite).

Never string formatting: attribute names, property names and values are bound
parameters, so a hostile name or value is data, not SQL.

Each distinct event condition (name, filters, window) becomes one aggregate,
``SELECT profile_id, count(*), sum(...) FROM events WHERE ... GROUP BY profile_id``,
LEFT JOINed to ``profiles``; the test reads ``coalesce(count, 0)``. A profile with
no matching events therefore has a count of 0 and a sum of 0, and "did not" keeps
the people who never did anything (case C5).

On PostgreSQL every rule of :mod:`lifecycle.values` and :mod:`.evaluate` is written in
SQL (regular expressions guard each cast, ``numeric`` sums exactly, ``AT TIME ZONE``
finds local dates). SQLite has no regular expressions, decimals or time zones, so each
connection gets small deterministic functions that call :mod:`.evaluate` itself:
the same code, not a second copy of the rules.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Date,
    Integer,
    Numeric,
    Select,
    String,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TIMESTAMP

from lifecycle import values
from lifecycle.events.models import Event
from lifecycle.profiles.models import Profile
from lifecycle.segments import evaluate
from lifecycle.segments.definition import (
    All,
    AnyOf,
    Attribute,
    DateSpec,
    EventCondition,
    InSegment,
    Node,
    Not,
    Test,
    walk,
)

Expr = ColumnElement[Any]
TZ = TIMESTAMP(timezone=True)


def _stamp(moment: datetime) -> Expr:
    return literal(moment, TZ)


# ------------------------------------------------------------ PostgreSQL: values


class _PgValue:
    """One JSON value (``container -> name``) and the ways it reads, for PostgreSQL."""

    def __init__(self, container: Any, name: str, zone: Callable[[], Expr]) -> None:
        doc = type_coerce(container, JSONB)
        self.v = doc[literal(name, String)]
        self.t = doc[literal(name, String)].astext
        self.kind = func.jsonb_typeof(self.v)
        self.zone = zone

    def is_string(self) -> Expr:
        return self.kind == "string"

    def number(self) -> Expr:
        return case(
            (
                and_(
                    self.kind.in_(["number", "string"]), self.t.regexp_match(values.NUMBER_PATTERN)
                ),
                cast(self.t, Numeric),
            ),
        )

    def date(self) -> Expr:
        return case(
            (
                and_(self.is_string(), self.t.regexp_match(values.DATE_PATTERN)),
                case((_real_day(self.t), cast(self.t, Date))),
            )
        )

    def month_day(self) -> Expr:
        """values.month_day: MM-DD of a date, of an instant as written, or of --MM-DD."""
        dated = or_(
            self.t.regexp_match(values.DATE_PATTERN),
            self.t.regexp_match(values.INSTANT_PATTERN),
        )
        return case(
            (
                self.is_string(),
                case(
                    # nested: the day's digits are read only once a pattern matched
                    (dated, case((_real_day(self.t), func.substr(self.t, 6, 5)))),
                    (self.t.regexp_match(values.NO_YEAR_PATTERN), func.substr(self.t, 3, 5)),
                ),
            )
        )

    def instant(self) -> Expr:
        parsed = case(
            (self.t.regexp_match(values.OFFSET_PATTERN), cast(self.t, TZ)),
            else_=func.timezone("UTC", cast(self.t, TIMESTAMP(timezone=False))),
        )
        return case(
            (
                and_(self.is_string(), self.t.regexp_match(values.INSTANT_PATTERN)),
                case((_real_day(self.t), parsed)),
            )
        )


def _real_day(text: Expr) -> Expr:
    """The text's YYYY-MM-DD names a real day (only called once a pattern matched)."""
    year = cast(func.substr(text, 1, 4), Integer)
    month = cast(func.substr(text, 6, 2), Integer)
    day = cast(func.substr(text, 9, 2), Integer)
    leap = or_(and_(year % 4 == 0, year % 100 != 0), year % 400 == 0)
    last = case(
        (month == 2, case((leap, 29), else_=28)),
        (month.in_([4, 6, 9, 11]), 30),
        else_=31,
    )
    return and_(year >= 1, month >= 1, month <= 12, day >= 1, day <= last)


def _cmp(op: str, left: Any, right: Any) -> Expr:
    return {
        "equals": left == right,
        "gt": left > right,
        "gte": left >= right,
        "lt": left < right,
        "lte": left <= right,
    }[op]


class _Pg:
    def __init__(self, now: datetime, workspace_zone: str) -> None:
        self.now = now
        self.ws = workspace_zone

    def profile_zone(self) -> Expr:
        name = type_coerce(Profile.attributes, JSONB)[literal("timezone", String)].astext
        known = select(func.pg_timezone_names().table_valued("name").c.name).scalar_subquery()
        return case((name.in_(known), name), else_=literal(self.ws, String))

    def local_date(self, moment: Expr, zone: Expr) -> Expr:
        return cast(func.timezone(zone, moment), Date)

    def day_start(self, day: Expr, zone: Expr) -> Expr:
        return func.timezone(zone, cast(day, TIMESTAMP(timezone=False)))

    def test(self, test: Test, value: _PgValue) -> Expr:
        """A NULL-free boolean: missing values give false, so ``not`` is exact."""
        return func.coalesce(self._test(test, value), false())

    def _test(self, test: Test, value: _PgValue) -> Expr:
        op, expected = test.op, test.value
        if op == "exists":
            present = and_(
                value.v.is_not(None),
                value.kind != "null",
                value.v != cast(literal('""'), JSONB),
                value.v != cast(literal("[]"), JSONB),
            )
            return (
                func.coalesce(present, false())
                if test.present
                else not_(func.coalesce(present, false()))
            )
        if op == "not_equals":
            return not_(self.test(Test("equals", expected), value))
        if op == "not_in":
            return not_(self.test(Test("in", expected), value))
        if op == "equals":
            if isinstance(expected, DateSpec):
                return self._date(op, value, expected)
            return self._equals(value, expected)
        if op == "in":
            return or_(*(func.coalesce(self._equals(value, e), false()) for e in expected))
        if op == "contains":
            item = cast(literal(json.dumps([_json(expected)])), JSONB)
            in_list = and_(value.kind == "array", value.v.op("@>")(item))
            if isinstance(expected, str):
                return or_(and_(value.is_string(), func.strpos(value.t, expected) > 0), in_list)
            return in_list
        if op == "starts_with":
            return and_(value.is_string(), func.left(value.t, len(expected)) == expected)
        if op in ("gt", "gte", "lt", "lte"):
            if isinstance(expected, DateSpec):
                return self._date(op, value, expected)
            return _cmp(op, value.number(), literal(expected, Numeric))
        if op == "between":
            low, high = expected
            return and_(self.test(Test("gte", low), value), self.test(Test("lte", high), value))
        if op in ("within_last", "within_next"):
            return self._within(op, value, expected)
        if op == "anniversary":
            zone = value.zone()
            today = self.local_date(_stamp(self.now), zone)
            month_day = func.to_char(today, "MM-DD")
            year = cast(func.extract("year", today), Integer)
            leap = or_(and_(year % 4 == 0, year % 100 != 0), year % 400 == 0)
            mine = value.month_day()
            return or_(mine == month_day, and_(month_day == "02-28", not_(leap), mine == "02-29"))
        raise AssertionError(op)

    def _equals(self, value: _PgValue, expected: Any) -> Expr:
        # Text comparisons first: ``->>`` and a text ``=`` cost a third less per row than a
        # jsonb ``=`` (measured in bench/segments.py), so the jsonb test (the type) only
        # runs on the rows whose text matched.
        if isinstance(expected, bool):
            # JSON true renders as 'true', one of the spellings; no number, object or
            # array renders as any of them: this is values.boolean exactly.
            return value.t.in_(values.TRUE_TEXTS if expected else values.FALSE_TEXTS)
        if isinstance(expected, Decimal):
            return value.number() == literal(expected, Numeric)
        # CASE keeps that order (the planner would put the jsonb test first).
        return case(
            (value.t == expected, value.v == cast(literal(json.dumps(expected)), JSONB)),
            else_=false(),
        )

    def _date(self, op: str, value: _PgValue, spec: DateSpec) -> Expr:
        date_value, moment = value.date(), value.instant()
        if spec.is_date:
            if spec.base == "today":
                zone = value.zone()
                target: Expr = self.local_date(_stamp(self.now), zone) + spec.offset.days
            else:
                target = literal(values.day(spec.literal), Date)
            zone = value.zone()
            start = self.day_start(target, zone)
            end = self.day_start(target + 1, zone)
            as_instant = {
                "equals": and_(moment >= start, moment < end),
                "lt": moment < start,
                "lte": moment < end,
                "gt": moment >= end,
                "gte": moment >= start,
            }[op]
            return or_(_cmp(op, date_value, target), as_instant)
        if spec.base == "now":
            at = _stamp(self.now + spec.offset)
        else:
            parsed = values.instant(spec.literal)
            assert parsed is not None
            at = _stamp(parsed)
        return or_(_cmp(op, date_value, self.local_date(at, value.zone())), _cmp(op, moment, at))

    def _within(self, op: str, value: _PgValue, span: timedelta) -> Expr:
        zone = value.zone()
        now = _stamp(self.now)
        today = self.local_date(now, zone)
        date_value, moment = value.date(), value.instant()
        if op == "within_last":
            edge = self.local_date(_stamp(self.now - span), zone)
            return or_(
                and_(date_value > edge, date_value <= today),
                and_(moment >= _stamp(self.now - span), moment <= now),
            )
        edge = self.local_date(_stamp(self.now + span), zone)
        return or_(
            and_(date_value >= today, date_value < edge),
            and_(moment >= now, moment <= _stamp(self.now + span)),
        )

    # -- events
    def property_test(self, name: str, test: Test) -> Expr:
        return self.test(test, _PgValue(Event.properties, name, lambda: literal(self.ws, String)))

    def number_of(self, name: str) -> Expr:
        return _PgValue(Event.properties, name, lambda: literal(self.ws, String)).number()

    def measure_test(self, amount: Expr, test: Test) -> Expr:
        if test.op == "between":
            low, high = test.value
            return and_(amount >= literal(low, Numeric), amount <= literal(high, Numeric))
        return _cmp(test.op, amount, literal(test.value, Numeric))

    def attribute(
        self, name: str, test: Test, zone: Callable[[], Expr], *, bare: bool = False
    ) -> Expr:
        """``bare``: NULL where a value is missing, not false (for a top-level conjunct,
        where the two mean the same and the planner estimates the bare test better)."""
        value = _PgValue(Profile.attributes, name, zone)
        return self._test(test, value) if bare else self.test(test, value)

    def zero(self) -> Expr:
        return literal(0, Numeric)

    def sum(self, amounts: Expr) -> Expr:
        return func.sum(amounts)


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return (
            int(value)
            if value == value.to_integral_value() and abs(value) < 2**53
            else float(value)
        )
    return value


# ------------------------------------------------------------ SQLite: the same functions

_TESTS: dict[str, Test] = {}


def _key(test: Test) -> str:
    key = hashlib.sha1(repr(test).encode()).hexdigest()[:20]
    _TESTS[key] = test
    return key


@lru_cache(maxsize=16)
def _document(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    loaded = json.loads(text)
    return loaded if isinstance(loaded, dict) else {}


@lru_cache(maxsize=64)
def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _lc_attr(document: str | None, name: str, key: str, now: str, zone: str) -> int:
    attributes = _document(document)
    where = evaluate.zone_named(attributes.get("timezone")) or ZoneInfo(zone)
    return int(
        evaluate.test_value(
            _TESTS[key], attributes.get(name, evaluate.MISSING), _moment(now), where
        )
    )


def _lc_prop(document: str | None, name: str, key: str, now: str, zone: str) -> int:
    value = _document(document).get(name, evaluate.MISSING)
    return int(evaluate.test_value(_TESTS[key], value, _moment(now), ZoneInfo(zone)))


def _lc_num(document: str | None, name: str) -> str | None:
    number = values.number(_document(document).get(name, evaluate.MISSING))
    return None if number is None else str(number)


def _lc_measure(amount: Any, key: str) -> int:
    number = Decimal(str(amount)) if amount is not None else Decimal(0)
    test = _TESTS[key]
    return int(evaluate.test_value(test, number, datetime.min, ZoneInfo("UTC")))


class _DecimalSum:
    def __init__(self) -> None:
        self.total: Decimal | None = None

    def step(self, value: str | None) -> None:
        if value is not None:
            self.total = evaluate._SUMS.add(self.total or Decimal(0), Decimal(value))

    def finalize(self) -> str | None:
        return None if self.total is None else str(self.total)


def prepare(session: Session) -> None:
    """Give this session's SQLite connection the functions the compiled queries call."""
    if session.get_bind().dialect.name != "sqlite":
        return
    raw = session.connection().connection.dbapi_connection
    assert isinstance(raw, sqlite3.Connection)
    raw.create_function("lc_attr", 5, _lc_attr, deterministic=True)
    raw.create_function("lc_prop", 5, _lc_prop, deterministic=True)
    raw.create_function("lc_num", 2, _lc_num, deterministic=True)
    raw.create_function("lc_measure", 2, _lc_measure, deterministic=True)
    raw.create_aggregate("lc_sum", 1, _DecimalSum)  # type: ignore[arg-type]


class _Sqlite:
    def __init__(self, now: datetime, workspace_zone: str) -> None:
        self.now = now.isoformat()
        self.ws = workspace_zone

    def attribute(
        self, name: str, test: Test, zone: Callable[[], Expr], *, bare: bool = False
    ) -> Expr:
        return func.lc_attr(Profile.attributes, name, _key(test), self.now, self.ws) == 1

    def property_test(self, name: str, test: Test) -> Expr:
        return func.lc_prop(Event.properties, name, _key(test), self.now, self.ws) == 1

    def number_of(self, name: str) -> Expr:
        return func.lc_num(Event.properties, name)

    def measure_test(self, amount: Expr, test: Test) -> Expr:
        return func.lc_measure(amount, _key(test)) == 1

    def zero(self) -> Expr:
        return literal("0", String)

    def sum(self, amounts: Expr) -> Expr:
        return func.lc_sum(amounts)


# ------------------------------------------------------------ the query


class Compiled:
    """The query for one segment at one moment: ``select(profile id)`` of its members."""

    def __init__(
        self,
        node: Node,
        *,
        dialect: str,
        now: datetime,
        workspace_zone: str,
        segment: Callable[[str], Node],
    ) -> None:
        self.sql = (
            _Pg(now, workspace_zone) if dialect == "postgresql" else _Sqlite(now, workspace_zone)
        )
        self.now = now
        self.segment = segment
        self._aggregates: dict[tuple[Any, ...], Any] = {}
        self._sums: dict[tuple[Any, ...], list[str]] = {}
        self._inner: set[tuple[Any, ...]] = set()  # aggregates a member must have a row in
        self._zone: Expr | None = None
        self._collect(node)
        self.where = and_(*(self._top(n) for n in self._conjuncts(node)))

    def _zone_expr(self) -> Expr:
        if self._zone is None:
            assert isinstance(self.sql, _Pg)
            self._zone = self.sql.profile_zone()
        return self._zone

    def _collect(self, node: Node) -> None:
        for n in walk(node):
            if isinstance(n, InSegment):
                self._collect(self.segment(n.name))
            elif isinstance(n, EventCondition):
                sums = self._sums.setdefault(n.key, [])
                if n.sum_of is not None and n.sum_of not in sums:
                    sums.append(n.sum_of)

    def _filters(self, key: tuple[Any, ...]) -> list[Expr]:
        name, where, window = key
        conditions = [Event.name == name]
        conditions += [self.sql.property_test(p, t) for p, t in where]
        if window is not None:
            conditions += [Event.occurred_at >= self.now - window, Event.occurred_at <= self.now]
        return conditions

    def _aggregate(self, key: tuple[Any, ...]) -> Any:
        """The event condition's ``GROUP BY profile_id`` subquery, built when first needed."""
        if key not in self._aggregates:
            sums = self._sums[key]
            columns = [Event.profile_id.label("profile_id"), func.count().label("n")]
            columns += [
                self.sql.sum(self.sql.number_of(p)).label(f"s{i}") for i, p in enumerate(sums)
            ]
            self._aggregates[key] = (
                select(*columns)
                .where(*self._filters(key))
                .group_by(Event.profile_id)
                .subquery(f"e{len(self._aggregates)}")
            )
        return self._aggregates[key]

    def _conjuncts(self, node: Node) -> Any:
        """The conditions every member meets: ``all`` at the root, through segment references."""
        if isinstance(node, All):
            for item in node.items:
                yield from self._conjuncts(item)
        elif isinstance(node, InSegment):
            yield from self._conjuncts(self.segment(node.name))
        else:
            yield node

    def _top(self, node: Node) -> Expr:
        """One condition every member meets, written so the planner may join, not outer-join.

        Only here, not under ``any``/``not``: "performed" becomes EXISTS and "did not"
        NOT EXISTS (semi- and anti-joins, as one would write them by hand); a count or
        sum that 0 fails compares the aggregate's column itself, so a profile without an
        aggregate row is left out by an inner join, as ``coalesce(..., 0)`` would have
        left it out; an attribute test is left bare (NULL rather than false for a missing
        value: the same here, and the planner estimates it). Anything else reads as in
        :meth:`_expr`.
        """
        if isinstance(node, Attribute):
            return self.sql.attribute(node.name, node.test, self._zone_expr, bare=True)
        if not isinstance(node, EventCondition):
            return self._expr(node)
        test = node.test
        if node.measure == "count" and (test.op, test.value) in (("gte", 1), ("gt", 0)):
            return (
                select(Event.id)
                .where(Event.profile_id == Profile.id, *self._filters(node.key))
                .exists()
            )
        if node.measure == "count" and (test.op, test.value) in (
            ("equals", 0),
            ("lte", 0),
            ("lt", 1),
        ):
            return (
                ~select(Event.id)
                .where(Event.profile_id == Profile.id, *self._filters(node.key))
                .exists()
            )
        if evaluate.test_value(test, Decimal(0), self.now, ZoneInfo("UTC")):
            return self._expr(node)
        aggregate = self._aggregate(node.key)
        self._inner.add(node.key)
        if node.measure == "count":
            return self.sql.measure_test(aggregate.c.n, test)
        column = aggregate.c[f"s{self._sums[node.key].index(node.sum_of)}"]
        return self.sql.measure_test(column, test)

    def _expr(self, node: Node) -> Expr:
        if isinstance(node, All):
            return and_(*(self._expr(i) for i in node.items))
        if isinstance(node, AnyOf):
            return or_(*(self._expr(i) for i in node.items))
        if isinstance(node, Not):
            return not_(self._expr(node.item))
        if isinstance(node, InSegment):
            return self._expr(self.segment(node.name))
        if isinstance(node, Attribute):
            return self.sql.attribute(node.name, node.test, self._zone_expr)
        if isinstance(node, EventCondition):
            aggregate = self._aggregate(node.key)
            if node.measure == "count":
                amount = func.coalesce(aggregate.c.n, 0)
            else:
                column = aggregate.c[f"s{self._sums[node.key].index(node.sum_of)}"]
                amount = func.coalesce(column, self.sql.zero())
            return self.sql.measure_test(amount, node.test)
        raise AssertionError(node)

    def members(self) -> Select[tuple[int]]:
        source: Any = Profile.__table__
        for key, aggregate in self._aggregates.items():
            on = aggregate.c.profile_id == Profile.id
            source = (
                source.join(aggregate, on)
                if key in self._inner
                else source.outerjoin(aggregate, on)
            )
        # ``where`` is never NULL below its top-level conjuncts (every test is coalesced),
        # and NULL in a top-level conjunct means "not a member"; left bare, its EXISTS
        # clauses become semi- and anti-joins.
        return (
            select(Profile.id)
            .select_from(source)
            .where(Profile.merged_into_id.is_(None), self.where)
        )


def unreadable_counts(
    session: Session, node: Node, *, segment: Callable[[str], Node]
) -> dict[str, int]:
    """Per attribute compared as a number or date: profiles whose value cannot be read so.

    C2: ``age: "n/a"`` is in no age-based segment, and the preview says how many there are.
    """
    names: dict[str, Test] = {}
    stack = [node]
    while stack:
        current = stack.pop()
        for n in walk(current):
            if isinstance(n, InSegment):
                stack.append(segment(n.name))
            elif isinstance(n, Attribute) and n.test.op in (
                *("gt", "gte", "lt", "lte", "between"),
                *("within_last", "within_next", "anniversary"),
            ):
                names.setdefault(n.name, n.test)
    counts: dict[str, int] = {}
    for name, test in names.items():
        rows = session.execute(
            select(Profile.attributes).where(Profile.merged_into_id.is_(None))
            if session.get_bind().dialect.name == "sqlite"
            else select(Profile.attributes).where(
                Profile.merged_into_id.is_(None),
                type_coerce(Profile.attributes, JSONB).has_key(name),
            )
        )
        counts[name] = sum(
            1 for (attributes,) in rows if not evaluate.readable(test, (attributes or {}).get(name))
        )
    return {k: v for k, v in counts.items() if v}
