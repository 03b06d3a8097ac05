"""Conditions on attributes and filters on event properties (pure).

Comparisons are type-aware: numbers that arrive as text (``"35.00"``) compare as
numbers, never character by character.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from lifecycle import values
from lifecycle.campaigns.definition import Condition

_MISSING = object()


def _number(value: Any) -> Decimal | None:
    """One reading of numbers for campaigns and segments: :func:`lifecycle.values.number`."""
    return values.number(value)


def _equal(left: Any, right: Any) -> bool:
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return a == b
    if isinstance(left, bool) != isinstance(right, bool):
        return False  # Python's True == 1 and False == 0 are not what a marketer means
    return left == right


def compare(op: str, actual: Any, expected: Any) -> bool:
    if op == "exists":
        present = actual is not _MISSING and actual is not None
        return present if expected in (None, True) else not present
    if actual is _MISSING:
        return op == "not_equals"
    if op == "equals":
        return _equal(actual, expected)
    if op == "not_equals":
        return not _equal(actual, expected)
    if op == "in":
        return isinstance(expected, list) and any(_equal(actual, e) for e in expected)
    if op == "contains":
        if isinstance(actual, list):
            return any(_equal(a, expected) for a in actual)
        return isinstance(actual, str) and str(expected) in actual
    a, b = _number(actual), _number(expected)
    if a is None or b is None:
        return False
    return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]


def condition_holds(condition: Condition, attributes: dict[str, Any]) -> bool:
    return compare(
        condition.op, attributes.get(condition.attribute or "", _MISSING), condition.value
    )


def properties_match(properties: dict[str, Any], where: dict[str, Any]) -> bool:
    """``where``: ``{prop: value}`` for equality or ``{prop: {op: value, ...}}``."""
    for prop, test in where.items():
        actual = properties.get(prop, _MISSING)
        if isinstance(test, dict):
            if not all(compare(op, actual, expected) for op, expected in test.items()):
                return False
        elif not compare("equals", actual, test):
            return False
    return True
