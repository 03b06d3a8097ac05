"""The North American fast path of normalize_phone answers exactly what phonenumbers does."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.profiles.identifiers import NotAnIdentifier, _nanp, normalize_phone

PIECES = st.sampled_from(
    ["+", "1", "0", "2", "5", "9", "20", "201", "555", "0123", "212", "646", "800", "011",
     " ", "-", ".", "(", ")", "x", "ext", "  ", "44", "7"]
)  # fmt: skip
REGIONS = st.sampled_from(["US", "CA", "PR", "JM", "GB", "DE", "EG", "BR", "IN"])


def _slow(text: str, region: str) -> str | None:
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@settings(max_examples=4000, deadline=None)
@given(st.lists(PIECES, min_size=2, max_size=10).map("".join), REGIONS)
def test_the_fast_path_answers_what_phonenumbers_answers(text, region):
    fast = _nanp(text, region)
    if fast is not None:
        assert fast == _slow(text, region), (text, region)


@settings(max_examples=3000, deadline=None)
@given(
    st.sampled_from(["", "+1", "+1 ", "1", "1 ", "1-", "+1-", "+1.", "1."]),
    st.integers(200, 999),
    st.sampled_from(["", " ", "-", "."]),
    st.integers(0, 999),
    st.integers(0, 9999),
    st.booleans(),
    REGIONS,
)
def test_usual_north_american_spellings_take_the_fast_path(
    prefix, area, separator, exchange, line, bracketed, region
):
    area_text = f"({area}) " if bracketed else f"{area}{separator}"
    text = f"{prefix}{area_text}{exchange:03d}{separator}{line:04d}"
    fast = _nanp(text, region)
    if "+" in prefix or region in ("US", "CA", "PR", "JM"):
        assert fast is not None, (text, region)
    assert fast is None or fast == _slow(text, region), (text, region)
    assert _normalized(text, region) == _slow(text, region)


def _normalized(text: str, region: str) -> str | None:
    try:
        return normalize_phone(text, region)
    except NotAnIdentifier:
        return None


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("+1 201 555 0123", "GB", "+12015550123"),
        ("(646) 555-0100", "US", "+16465550100"),
        ("1-646-555-0100", "CA", "+16465550100"),
        ("+201 555 0123", "US", None),  # Egypt's +20, not area code 201
        ("201 555 0123", "GB", None),  # a British number, for phonenumbers to read
        ("+1 101 555 0123", "US", None),  # no area code starts with 1: phonenumbers decides
        ("+1 201 555 0123 x12", "US", None),  # an extension
        ("+１ ２０１ ５５５ ０１２３", "US", None),  # full-width digits
    ],
)
def test_what_takes_the_fast_path(text, region, expected):
    assert _nanp(text, region) == expected


def test_a_number_off_the_fast_path_is_still_checked():
    with pytest.raises(NotAnIdentifier):
        normalize_phone("+1 201 555", "US")
