"""The single-profile evaluator: one profile's attributes and events -> in or out (pure).

This is the meaning of every condition; :mod:`.compile` says the same thing in SQL for
whole-table recomputes, and a property-based test holds the two to agreement.

Time: ``now`` is an instant. ``today`` is the calendar date of ``now`` in the profile's
time zone (its ``timezone`` attribute when that names a real zone, else the workspace
zone). A calendar-date value compares with dates as dates; an instant compares with
instants as instants, and with a date as "during that local day". Event property
filters use the workspace zone.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from lifecycle import values
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
)

MISSING: Any = object()
_SUMS = decimal.Context(prec=200)  # sums of money are exact (0.10 + 0.20 is 0.30)


@lru_cache(maxsize=512)
def zone_named(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError):
        return None


def local_date(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _resolve(spec: DateSpec, now: datetime, zone: ZoneInfo) -> date | datetime:
    if spec.base == "today":
        return local_date(now, zone) + spec.offset
    if spec.base == "now":
        return now + spec.offset
    if spec.base == "date":
        return values.day(spec.literal)
    moment = values.instant(spec.literal)
    assert moment is not None
    return moment


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "equals":
        return bool(left == right)
    return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[op]


def _date_test(op: str, value: Any, spec: DateSpec, now: datetime, zone: ZoneInfo) -> bool:
    target = _resolve(spec, now, zone)
    text = values.date_text(value)
    if text is not None:
        day = values.day(text)
        other = target if isinstance(target, date) and not isinstance(target, datetime) else None
        if other is None:
            assert isinstance(target, datetime)
            other = local_date(target, zone)
        return _compare(op, day, other)
    moment = values.instant(value)
    if moment is None:
        return False
    if isinstance(target, datetime):
        return _compare(op, moment, target)
    start, end = day_start(target, zone), day_start(target + timedelta(days=1), zone)
    return {
        "equals": start <= moment < end,
        "lt": moment < start,
        "lte": moment < end,
        "gt": moment >= end,
        "gte": moment >= start,
    }[op]


def _equals(value: Any, expected: Any) -> bool:
    if isinstance(expected, bool):
        return values.boolean(value) is expected
    if isinstance(expected, Decimal):
        number = values.number(value)
        return number is not None and number == expected
    return isinstance(value, str) and value == expected


def _contains(value: Any, expected: Any) -> bool:
    if isinstance(value, str):
        return isinstance(expected, str) and expected in value
    if not isinstance(value, list):
        return False
    for item in value:
        if isinstance(expected, bool) or isinstance(item, bool):
            if isinstance(item, bool) and item == expected:
                return True
        elif isinstance(expected, Decimal):
            if isinstance(item, int | float) and values.number(item) == expected:
                return True
        elif isinstance(item, str) and item == expected:
            return True
    return False


def present(value: Any) -> bool:
    return value is not MISSING and value is not None and value != "" and value != []


def test_value(test: Test, value: Any, now: datetime, zone: ZoneInfo) -> bool:
    """Does ``value`` (MISSING when absent) pass ``test``, at ``now`` in ``zone``?"""
    op, expected = test.op, test.value
    if op == "exists":
        return present(value) == test.present
    if op == "not_equals":
        return not test_value(Test("equals", expected), value, now, zone)
    if op == "not_in":
        return not test_value(Test("in", expected), value, now, zone)
    if value is MISSING or value is None:
        return False
    if op == "equals":
        if isinstance(expected, DateSpec):
            return _date_test("equals", value, expected, now, zone)
        return _equals(value, expected)
    if op == "in":
        return any(_equals(value, e) for e in expected)
    if op == "contains":
        return _contains(value, expected)
    if op == "starts_with":
        return isinstance(value, str) and value.startswith(expected)
    if op in ("gt", "gte", "lt", "lte"):
        if isinstance(expected, DateSpec):
            return _date_test(op, value, expected, now, zone)
        number = values.number(value)
        return number is not None and _compare(op, number, expected)
    if op == "between":
        low, high = expected
        return test_value(Test("gte", low), value, now, zone) and test_value(
            Test("lte", high), value, now, zone
        )
    if op in ("within_last", "within_next"):
        text = values.date_text(value)
        today = local_date(now, zone)
        if text is not None:
            day = values.day(text)
            if op == "within_last":
                return local_date(now - expected, zone) < day <= today
            return today <= day < local_date(now + expected, zone)
        moment = values.instant(value)
        if moment is None:
            return False
        if op == "within_last":
            return now - expected <= moment <= now
        return now <= moment <= now + expected
    if op == "anniversary":
        mine = values.month_day(value)
        if mine is None:
            return False
        today = local_date(now, zone)
        month_day = today.isoformat()[5:]
        return mine == month_day or (
            month_day == "02-28" and not _leap(today.year) and mine == "02-29"
        )
    raise AssertionError(f"unknown op {op}")


def readable(test: Test, value: Any) -> bool:
    """False when a present value cannot be read as the type the test compares (C2's "n/a")."""
    if not present(value):
        return True
    if test.op == "anniversary":
        return values.month_day(value) is not None
    if test.op in ("within_last", "within_next"):
        return values.date_text(value) is not None or values.instant(value) is not None
    if test.op not in ("gt", "gte", "lt", "lte", "between"):
        return True
    parts = test.value if isinstance(test.value, tuple) else (test.value,)
    if isinstance(parts[0], DateSpec):
        return values.date_text(value) is not None or values.instant(value) is not None
    return values.number(value) is not None


@dataclass(frozen=True)
class EventRow:
    name: str
    properties: dict[str, Any]
    occurred_at: datetime


def measure(
    condition: EventCondition, events: Iterable[EventRow], now: datetime, zone: ZoneInfo
) -> Decimal:
    """The count (or sum) of this profile's events that the condition reads."""
    since = now - condition.within_last if condition.within_last is not None else None
    total = Decimal(0)
    for event in events:
        if event.name != condition.name:
            continue
        if since is not None and not since <= event.occurred_at <= now:
            continue
        props = event.properties or {}
        if not all(test_value(t, props.get(p, MISSING), now, zone) for p, t in condition.where):
            continue
        if condition.measure == "count":
            total += 1
        else:
            number = values.number(props.get(condition.sum_of or "", MISSING))
            if number is not None:
                total = _SUMS.add(total, number)
    return total


@dataclass
class Subject:
    """What the evaluator reads about one profile."""

    attributes: dict[str, Any]
    events: list[EventRow]


def holds(
    node: Node,
    subject: Subject,
    *,
    now: datetime,
    workspace_zone: ZoneInfo,
    segment: Callable[[str], Node],
) -> bool:
    """Is the profile described by ``subject`` in the segment ``node``, at ``now``?"""
    zone = zone_named(subject.attributes.get("timezone")) or workspace_zone

    def check(n: Node) -> bool:
        if isinstance(n, All):
            return all(check(i) for i in n.items)
        if isinstance(n, AnyOf):
            return any(check(i) for i in n.items)
        if isinstance(n, Not):
            return not check(n.item)
        if isinstance(n, Attribute):
            return test_value(n.test, subject.attributes.get(n.name, MISSING), now, zone)
        if isinstance(n, EventCondition):
            amount = measure(n, subject.events, now, workspace_zone)
            return test_value(n.test, amount, now, zone)
        if isinstance(n, InSegment):
            return check(segment(n.name))
        raise AssertionError(n)

    return check(node)
