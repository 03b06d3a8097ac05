"""The segment YAML format, parsed into a small condition tree (pure: no database).

A segment file holds a ``name``, an optional ``description`` and ``where``: one
condition. Conditions (see ``docs/segments.md`` for the reference a marketer reads)::

    {attribute: age, op: gte, value: 18}
    {event: Order Completed, where: {total: {gt: 100}}, within_last: 30d, count: {gte: 2}}
    {event: Order Completed, sum: total, lte: 0.30}
    {segment: vip}
    {consent: email}
    {all: [...]}  {any: [...]}  {not: {...}}

Relative dates (``today``, ``now - 3d``) stay as written: they are resolved at
each evaluation, never when the definition is saved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from lifecycle import values
from lifecycle.durations import parse_duration

Path = tuple[str | int, ...]


class DefinitionError(ValueError):
    """A mistake at ``path`` (YAML keys and list indexes) in a segment definition."""

    def __init__(self, path: Path, text: str) -> None:
        super().__init__(f"{'.'.join(str(p) for p in path) or 'segment'}: {text}")
        self.path = path
        self.text = text

    @property
    def each(self) -> list[DefinitionError]:
        """Every mistake this stands for (one, or those of several conditions)."""
        return [self]


class DefinitionErrors(DefinitionError):
    """The mistakes of several conditions of one definition, all reported at once."""

    def __init__(self, errors: list[DefinitionError]) -> None:
        flat = [one for err in errors for one in err.each]
        super().__init__(flat[0].path, flat[0].text)
        self.errors = flat

    @property
    def each(self) -> list[DefinitionError]:
        return self.errors


def _all_or_raise(parsers: list[Any]) -> list[Any]:
    """Run each parser; if any fails, raise every failure together."""
    out, errors = [], []
    for parse in parsers:
        try:
            out.append(parse())
        except DefinitionError as err:
            errors.append(err)
    if errors:
        raise DefinitionErrors(errors)
    return out


# ---------------------------------------------------------------- values and tests

NUMBER_OPS = {"gt", "gte", "lt", "lte"}
DATE_WORDS = {"before": "lt", "after": "gt"}  # synonyms that read better for dates
OPS = (
    "equals",
    "not_equals",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "exists",
    "gt",
    "gte",
    "lt",
    "lte",
    "before",
    "after",
    "between",
    "within_last",
    "within_next",
    "anniversary",
)
_RELATIVE = re.compile(r"^(now|today)\s*(?:([+-])\s*(\d+\s*[a-z]+(?:\s*\d+\s*[a-z]+)*))?$")


@dataclass(frozen=True)
class DateSpec:
    """A date or instant to compare with: ``today``, ``now - 3h``, ``2026-01-01``, an ISO instant.

    ``base`` is ``today``, ``now``, ``date`` (``literal`` is ``YYYY-MM-DD``) or ``instant``
    (``literal`` is the ISO text). ``offset`` moves ``today`` by whole days, ``now`` by any time.
    """

    base: str
    offset: timedelta = timedelta(0)
    literal: str = ""

    @property
    def is_date(self) -> bool:
        return self.base in ("today", "date")


@dataclass(frozen=True)
class Test:
    """One comparison: ``op`` and its value, typed once here.

    ``value`` is a Decimal (numbers), bool, str (text), DateSpec, timedelta
    (within_last / within_next), a tuple (``in``, ``between``) or None (``exists``,
    ``anniversary``; ``exists`` keeps its wanted answer in ``present``).
    """

    op: str
    value: Any = None
    present: bool = True


def _date_spec(value: Any) -> DateSpec | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _RELATIVE.match(text.lower())
    if match:
        base, sign, amount = match.groups()
        offset = parse_duration(amount) if amount else timedelta(0)
        if base == "today" and offset % timedelta(days=1):
            raise ValueError(f"{value!r}: 'today' moves by whole days (d or w)")
        return DateSpec(base, -offset if sign == "-" else offset)
    if values.date_text(text) is not None:
        return DateSpec("date", literal=text)
    if values.instant(text) is not None:
        return DateSpec("instant", literal=text)
    return None


def _scalar(value: Any, where: Path) -> Decimal | bool | str:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        number = values.number(value)
        if number is None:
            raise DefinitionError(where, f"{value!r} is not a number to compare with")
        return number
    if isinstance(value, str):
        return value
    raise DefinitionError(where, f"{value!r}: use a text, a number or true/false")


def parse_test(op: str, value: Any, where: Path) -> Test:
    """Check ``op`` against its value and type the value (the one place that does)."""
    if op not in OPS:
        raise DefinitionError(where, f"unknown op {op!r}; use one of {', '.join(OPS)}")
    if value is None and op not in ("exists", "anniversary"):
        raise DefinitionError(where, f"{op} needs a value")
    written, op = op, DATE_WORDS.get(op, op)
    if op == "exists":
        if value not in (None, True, False):
            raise DefinitionError(where, "exists takes true or false")
        return Test("exists", present=value is not False)
    if op in ("equals", "not_equals"):
        try:
            spec = _date_spec(value) if isinstance(value, str) else None
        except ValueError as err:
            raise DefinitionError(where, str(err)) from None
        # A calendar date (today, 2026-12-04) is a day: a date-time value equals it when
        # it falls within that day in the profile's time zone, as with today.
        if spec is not None and spec.base in ("today", "now", "date"):
            return Test(op, spec)
        return Test(op, _scalar(value, where))
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise DefinitionError(where, f"{op} takes a non-empty list of values")
        return Test(op, tuple(_scalar(v, (*where, i)) for i, v in enumerate(value)))
    if op in ("contains", "starts_with"):
        if op == "starts_with" and not isinstance(value, str):
            raise DefinitionError(where, "starts_with takes a text")
        scalar = _scalar(value, where)
        if scalar == "":
            raise DefinitionError(where, f"{op} needs a non-empty text")
        return Test(op, scalar)
    if op in NUMBER_OPS:
        return Test(op, _ordered(value, where, written))
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise DefinitionError(where, "between takes a list of two values: [low, high]")
        low, high = (_ordered(v, (*where, i), written) for i, v in enumerate(value))
        if isinstance(low, DateSpec) != isinstance(high, DateSpec):
            raise DefinitionError(where, "between needs two numbers or two dates")
        if _above(low, high):
            raise DefinitionError(
                where,
                f"between takes [low, high]: {value[0]!r} is above {value[1]!r}, so nothing "
                "could ever match; put the smaller first",
            )
        return Test(op, (low, high))
    if op in ("within_last", "within_next"):
        try:
            return Test(op, parse_duration(value))
        except ValueError as err:
            raise DefinitionError(where, str(err)) from None
    # anniversary: the month and day of a date are today's (birthdays).
    if value not in (None, "today"):
        raise DefinitionError(where, "anniversary compares with today: leave value out")
    return Test("anniversary")


def _ordered(value: Any, where: Path, op: str) -> Decimal | DateSpec:
    if isinstance(value, str):
        try:
            spec = _date_spec(value)
        except ValueError as err:
            raise DefinitionError(where, str(err)) from None
        if spec is not None:
            return spec
        number = values.number(value)
        if number is not None:
            return number
        raise DefinitionError(
            where,
            f"{op} compares numbers or dates; {value!r} is neither (dates: 2026-01-31, "
            "today, now - 3d)",
        )
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise DefinitionError(where, f"{op} compares numbers or dates, not {value!r}")
    number = values.number(value)
    if number is None:
        raise DefinitionError(where, f"{value!r} is not a number to compare with")
    return number


# ---------------------------------------------------------------- the condition tree


@dataclass(frozen=True)
class All:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class Attribute:
    name: str
    test: Test


@dataclass(frozen=True)
class EventCondition:
    """Events of ``name`` (matching ``where``, in the window) measured and tested.

    ``measure`` is ``count`` or ``sum`` (of the number in property ``sum_of``);
    ``test`` applies to that measure, so "did not" is a count of 0 and keeps the
    people who have no events at all.
    """

    name: str
    where: tuple[tuple[str, Test], ...]
    within_last: timedelta | None
    measure: str
    sum_of: str | None
    test: Test

    @property
    def key(self) -> tuple[Any, ...]:
        """Conditions that read the same events share one aggregate in SQL."""
        return (self.name, self.where, self.within_last)


@dataclass(frozen=True)
class InSegment:
    name: str


Node = All | AnyOf | Not | Attribute | EventCondition | InSegment


_KINDS = ("all", "any", "not", "attribute", "event", "segment", "consent")
_ATTRIBUTE_KEYS = {"attribute", "op", "value"}
_EVENT_KEYS = {"event", "where", "within_last", "performed", "count", "sum", *NUMBER_OPS}
_COUNT_OPS = {"equals", "gt", "gte", "lt", "lte", "between"}
CHANNELS = ("email", "sms", "push")


def parse_node(data: Any, where: Path = ("where",)) -> Node:
    if not isinstance(data, dict):
        raise DefinitionError(where, "a condition is a mapping such as {attribute: x, op: equals}")
    kinds = [k for k in _KINDS if k in data]
    if len(kinds) != 1:
        found = f" (found {', '.join(kinds)})" if kinds else f" (found {', '.join(map(str, data))})"
        raise DefinitionError(where, f"a condition needs exactly one of {', '.join(_KINDS)}{found}")
    kind = kinds[0]
    if kind in ("all", "any"):
        _only(data, {kind}, where)
        items = data[kind]
        if not isinstance(items, list) or not items:
            raise DefinitionError((*where, kind), f"{kind} takes a non-empty list of conditions")
        nodes = tuple(
            _all_or_raise(
                [
                    lambda item=item, i=i: parse_node(item, (*where, kind, i))
                    for i, item in enumerate(items)
                ]
            )
        )
        return All(nodes) if kind == "all" else AnyOf(nodes)
    if kind == "not":
        _only(data, {"not"}, where)
        return Not(parse_node(data["not"], (*where, "not")))
    if kind == "segment":
        _only(data, {"segment"}, where)
        return InSegment(_name(data["segment"], (*where, "segment")))
    if kind == "consent":
        return _consent(data, where)
    if kind == "attribute":
        _only(data, _ATTRIBUTE_KEYS, where)
        name = _name(data["attribute"], (*where, "attribute"))
        op = data.get("op", "exists" if "value" not in data else "equals")
        if op not in OPS:
            parse_test(op, None, (*where, "op"))  # raises: the unknown op, at its line
        # A mistake in the value points at the value (the op is fine).
        at = (*where, "value") if "value" in data else (*where, "op")
        return Attribute(name, parse_test(op, data.get("value"), at))
    return _event(data, where)


def _only(data: dict[str, Any], allowed: set[str], where: Path) -> None:
    for key in data:
        if key not in allowed:
            raise DefinitionError((*where, key), f"unknown key {key!r} here")


def _name(value: Any, where: Path) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DefinitionError(where, "needs a non-empty name")
    return value


def _consent(data: dict[str, Any], where: Path) -> Node:
    """``{consent: email}``: not unsubscribed (from everything or that channel).

    ``{consent: sms, explicit: true}``: opted in on purpose (``unsubscribed_sms`` is false).
    """
    _only(data, {"consent", "explicit"}, where)
    channel = data["consent"]
    if channel not in CHANNELS:
        raise DefinitionError((*where, "consent"), f"consent is one of {', '.join(CHANNELS)}")
    unsubscribed = AnyOf(
        (
            Attribute("unsubscribed", Test("equals", True)),
            Attribute(f"unsubscribed_{channel}", Test("equals", True)),
        )
    )
    if data.get("explicit") is True:
        return All((Not(unsubscribed), Attribute(f"unsubscribed_{channel}", Test("equals", False))))
    if data.get("explicit") not in (None, False):
        raise DefinitionError((*where, "explicit"), "explicit is true or false")
    return Not(unsubscribed)


def _event(data: dict[str, Any], where: Path) -> EventCondition:
    _only(data, _EVENT_KEYS, where)
    name = _name(data["event"], (*where, "event"))
    filters = data.get("where") or {}
    if not isinstance(filters, dict):
        raise DefinitionError((*where, "where"), "where is a mapping of property: test")
    tests = []
    for prop, spec in filters.items():
        at = (*where, "where", prop)
        if isinstance(spec, dict):
            if len(spec) != 1:
                raise DefinitionError(at, "one test per property, such as {gt: 100}")
            ((op, value),) = spec.items()
            tests.append((str(prop), parse_test(op, value, at)))
        else:
            tests.append((str(prop), parse_test("equals", spec, at)))
    window = None
    if data.get("within_last") is not None:
        try:
            window = parse_duration(data["within_last"])
        except ValueError as err:
            raise DefinitionError((*where, "within_last"), str(err)) from None
    measure, sum_of, test = _measure(data, where)
    return EventCondition(name, tuple(sorted(tests)), window, measure, sum_of, test)


def _measure(data: dict[str, Any], where: Path) -> tuple[str, str | None, Test]:
    given = [k for k in ("performed", "count", "sum") if k in data]
    if len(given) > 1:
        raise DefinitionError(where, "use one of performed, count or sum")
    if "sum" in data:
        prop = _name(data["sum"], (*where, "sum"))
        ops = [k for k in NUMBER_OPS if k in data]
        if len(ops) != 1:
            raise DefinitionError(where, "sum needs one of gt, gte, lt, lte: {sum: total, gt: 100}")
        value = data[ops[0]]
        if isinstance(value, bool) or values.number(value) is None:
            raise DefinitionError((*where, ops[0]), f"{value!r} is not a number")
        return "sum", prop, Test(ops[0], values.number(value))
    stray = [k for k in NUMBER_OPS if k in data]
    if stray:
        raise DefinitionError((*where, stray[0]), f"{stray[0]} goes with sum; counts use count")
    if "count" in data:
        spec = data["count"]
        if isinstance(spec, int) and not isinstance(spec, bool):
            spec = {"equals": spec}
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in _COUNT_OPS:
            raise DefinitionError(
                (*where, "count"), "count is a number or one test such as {gte: 3}"
            )
        ((op, value),) = spec.items()
        bounds = value if op == "between" else [value]
        if not isinstance(bounds, list) or not all(
            isinstance(b, int) and not isinstance(b, bool) and b >= 0 for b in bounds
        ):
            raise DefinitionError((*where, "count", op), "counts are whole numbers, 0 or more")
        return "count", None, parse_test(op, value, (*where, "count", op))
    performed = data.get("performed", True)
    if not isinstance(performed, bool):
        raise DefinitionError((*where, "performed"), "performed is true or false")
    return "count", None, Test("gte" if performed else "equals", Decimal(1 if performed else 0))


def _above(low: Any, high: Any) -> bool:
    """Is ``low`` certainly above ``high``? (Bounds of different kinds are not compared.)"""
    if isinstance(low, Decimal) and isinstance(high, Decimal):
        return low > high
    if isinstance(low, DateSpec) and isinstance(high, DateSpec) and low.base == high.base:
        if low.base in ("today", "now"):
            return low.offset > high.offset
        if low.base == "date":
            return low.literal > high.literal
        first, second = values.instant(low.literal), values.instant(high.literal)
        return first is not None and second is not None and first > second
    return False


# ---------------------------------------------------------------- a whole segment


@dataclass(frozen=True)
class SegmentDef:
    name: str
    description: str
    where: Node
    source: dict[str, Any]  # as written: read back, it still says today, now and 3d

    def references(self) -> set[str]:
        return {n.name for n in walk(self.where) if isinstance(n, InSegment)}


_SEGMENT_KEYS = {"name", "description", "where"}
NAME = re.compile(r"^[A-Za-z0-9_\-]+$")


def _plain(data: Any) -> Any:
    """YAML reads 2026-01-15 as a date: keep it as the text it was, like any other value."""
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    if isinstance(data, date | datetime):
        return data.isoformat()
    return data


def parse_segment(data: Any) -> SegmentDef:
    data = _plain(data)
    if not isinstance(data, dict):
        raise DefinitionError((), "a segment file is a mapping with name and where")

    def name() -> str:
        value = data.get("name")
        if not isinstance(value, str) or not NAME.fullmatch(value):
            raise DefinitionError(("name",), "a name of letters, digits, _ and - is required")
        return value

    def description() -> str:
        value = data.get("description") or ""
        if not isinstance(value, str):
            raise DefinitionError(("description",), "description is a text")
        return value

    def where() -> Node:
        if "where" not in data:
            raise DefinitionError((), "where (the condition) is required")
        return parse_node(data["where"])

    def keys() -> None:
        _only(data, _SEGMENT_KEYS, ())

    _, found_name, found_description, found_where = _all_or_raise([keys, name, description, where])
    return SegmentDef(found_name, found_description, found_where, data)


def walk(node: Node) -> list[Node]:
    out: list[Node] = [node]
    if isinstance(node, All | AnyOf):
        for item in node.items:
            out.extend(walk(item))
    elif isinstance(node, Not):
        out.extend(walk(node.item))
    return out


def is_time_based(node: Node) -> bool:
    """True when the answer can change with no new data, only because time passes."""
    for n in walk(node):
        if isinstance(n, EventCondition) and n.within_last is not None:
            return True
        tests = [n.test] if isinstance(n, Attribute) else []
        if isinstance(n, EventCondition):
            tests = [t for _, t in n.where]
        for test in tests:
            if test.op in ("within_last", "within_next", "anniversary"):
                return True
            parts = test.value if isinstance(test.value, tuple) else (test.value,)
            if any(isinstance(p, DateSpec) and p.base in ("now", "today") for p in parts):
                return True
    return False
