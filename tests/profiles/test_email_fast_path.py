"""The plain-address fast path of normalize_email never accepts what email_validator refuses."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.profiles.identifiers import NotAnIdentifier, _plain_email, normalize_email

PIECES = st.sampled_from(
    ["a", "Z", "0", "9", "_", "+", "-", ".", "@", "xn", "--", "test", "local", "arpa", "com",
     "co", "é", " ", "..", "onion", "localhost", "x" * 63, "y" * 64, '"', "!", "#"]
)  # fmt: skip


def _accepted(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


@settings(max_examples=3000, deadline=None)
@given(st.lists(PIECES, min_size=3, max_size=12).map("".join))
def test_the_fast_path_accepts_only_what_email_validator_accepts(address):
    if _plain_email(address):
        assert _accepted(address), address


@pytest.mark.parametrize(
    "address",
    [
        "john.smith42@gmail.com",
        "A_B+c@Ex-ample.COM",
        "a@b.co",
        "x@mail.example",
        "o-brien@sub.domain.org",
    ],
)
def test_plain_addresses_take_the_fast_path_with_the_same_answer(address):
    assert _plain_email(address) and _accepted(address)
    assert normalize_email(f" {address} ") == address.casefold()


@pytest.mark.parametrize(
    "address",
    [
        "a@b.test",
        "a@b.local",
        "a@xn--ab.com",
        "a@ab--cd.com",
        "a..b@example.com",
        ".a@example.com",
        "a@-b.com",
        "a@b.c0m",
        f"{'x' * 65}@example.com",
        "a@localhost",
    ],
)
def test_the_rest_goes_to_email_validator(address):
    assert not _plain_email(address)
    if _accepted(address):
        assert normalize_email(address) == address.casefold()
    else:
        with pytest.raises(NotAnIdentifier):
            normalize_email(address)
