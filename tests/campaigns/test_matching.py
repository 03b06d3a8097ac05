"""Conditions and property filters: every operator, missing properties, numbers as text (C2)."""

from __future__ import annotations

from typing import Any

import pytest

from lifecycle.campaigns.definition import Condition
from lifecycle.campaigns.matching import compare, condition_holds, properties_match


@pytest.mark.parametrize(
    ("op", "actual", "expected", "result"),
    [
        ("equals", "shoes", "shoes", True),
        ("equals", "shoes", "Shoes", False),
        ("equals", "35.00", 35, True),  # C2: a number sent as text is still that number
        ("equals", 35, "35", True),
        ("equals", "035", 35, True),
        ("equals", 12.5, "12.50", True),
        ("equals", True, True, True),
        ("equals", True, 1, False),  # a yes/no is not a number
        ("equals", False, 0, False),
        ("equals", None, None, True),
        ("equals", "NaN", "NaN", True),
        ("not_equals", "35.00", 35, False),
        ("not_equals", "a", "b", True),
        ("in", "shoes", ["shoes", "bags"], True),
        ("in", "hats", ["shoes", "bags"], False),
        ("in", "2", [1, 2, 3], True),
        ("in", "shoes", "shoes", False),  # in needs a list
        ("contains", "running shoes", "shoes", True),
        ("contains", "running shoes", "hats", False),
        ("contains", ["a", "b"], "b", True),
        ("contains", ["1", "2"], 2, True),
        ("contains", ["a", "b"], "c", False),
        ("contains", 12345, "23", False),  # only text and lists contain things
        ("gt", "100", "9", True),  # C2: never character by character
        ("gt", "9", "100", False),
        ("gt", 10, 10, False),
        ("gte", 10, "10.0", True),
        ("lt", "8", 18, True),
        ("lt", "120", 18, False),
        ("lte", "99.5", 99.5, True),
        ("gt", "n/a", 18, False),  # not a number: no ordering
        ("lt", "n/a", 18, False),
        ("gt", True, 0, False),
        ("gt", "NaN", 1, False),  # and no crash
        ("lt", float("nan"), 1, False),
        ("exists", "x", None, True),
        ("exists", "x", True, True),
        ("exists", None, True, False),
        ("exists", None, False, True),
        ("exists", "x", False, False),
    ],
)
def test_compare(op: str, actual: Any, expected: Any, result: bool) -> None:
    assert compare(op, actual, expected) is result


@pytest.mark.parametrize(
    ("where", "result"),
    [
        ({"price": {"gt": 100}}, False),
        ({"price": {"lt": 100}}, False),
        ({"price": {"exists": True}}, False),
        ({"price": {"exists": False}}, True),
        ({"price": {"in": [1, 2]}}, False),
        ({"price": {"contains": "1"}}, False),
        ({"price": {"not_equals": 5}}, True),  # missing is "not equal to 5"
        ({"price": 5}, False),
        ({"price": None}, False),  # a missing property is not a null one
    ],
)
def test_missing_property(where: dict[str, Any], result: bool) -> None:
    assert properties_match({"category": "shoes"}, where) is result


def test_properties_match_every_filter_must_hold() -> None:
    props = {"category": "shoes", "price": "129.90", "tags": ["sale", "new"], "brand": "acme"}
    assert properties_match(props, {})
    assert properties_match(props, {"category": "shoes"})
    assert properties_match(props, {"category": "shoes", "price": {"gt": 100, "lte": 130}})
    assert not properties_match(props, {"category": "shoes", "price": {"gt": 100, "lt": 120}})
    assert properties_match(
        props, {"tags": {"contains": "sale"}, "brand": {"in": ["acme", "zeta"]}}
    )
    assert not properties_match(props, {"tags": {"contains": "clearance"}})
    assert not properties_match(props, {"category": "shoes", "colour": "red"})


def test_properties_match_null_value() -> None:
    assert properties_match({"coupon": None}, {"coupon": None})
    assert not properties_match({"coupon": None}, {"coupon": {"exists": True}})
    assert properties_match({"coupon": None}, {"coupon": {"exists": False}})


def test_properties_match_numbers_as_text() -> None:
    assert properties_match({"total": "35.00"}, {"total": 35})
    assert properties_match({"total": 35}, {"total": "35.00"})
    assert properties_match({"total": "100.50"}, {"total": {"gt": 99.5}})
    assert not properties_match({"total": "99"}, {"total": {"gt": 99.5}})


def test_condition_holds_on_attributes() -> None:
    attributes = {"vip": True, "age": "8", "plan": "pro", "orders": 3}
    assert condition_holds(Condition(attribute="vip", op="equals", value=True), attributes)
    assert not condition_holds(Condition(attribute="vip", op="equals", value=False), attributes)
    assert not condition_holds(Condition(attribute="age", op="gte", value=18), attributes)
    assert condition_holds(Condition(attribute="orders", op="gte", value="3"), attributes)
    assert condition_holds(Condition(attribute="plan", op="exists"), attributes)
    assert not condition_holds(Condition(attribute="nickname", op="exists"), attributes)
    assert condition_holds(Condition(attribute="nickname", op="exists", value=False), attributes)
    assert condition_holds(Condition(attribute="nickname", op="not_equals", value="x"), attributes)
    assert not condition_holds(Condition(attribute="nickname", op="equals", value="x"), attributes)


def test_condition_defaults_to_equals() -> None:
    condition = Condition.model_validate({"attribute": "plan", "value": "pro"})
    assert condition.op == "equals"
    assert condition_holds(condition, {"plan": "pro"})
