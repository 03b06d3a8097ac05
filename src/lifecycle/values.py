"""How a stored value reads as a number, a calendar date or an instant (pure).

Values are stored as they were sent (``"8"``, ``"100.50"``, ``"2026-01-15"``); only
comparisons, sums and sorting read them as typed values, always through these rules,
which the SQL compiler of :mod:`lifecycle.segments` mirrors exactly:

- a yes/no is JSON true/false or one of the texts in ``TRUE_TEXTS`` / ``FALSE_TEXTS``
  (``"true"``, ``"TRUE"``, ``"yes"``...: what spreadsheets and CSV exports write);
- a number is a JSON number (not true/false) or a text of digits with an optional
  sign, decimal point and exponent, spaces around allowed; compared as a decimal;
- a calendar date is a text ``YYYY-MM-DD`` naming a real day;
- an instant is ISO 8601 text ``YYYY-MM-DDTHH:MM[:SS[.ffffff]]`` with ``Z`` or an offset
  (``+05:00``); without one it is read as UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

# The same patterns are used in SQL (PostgreSQL regular expressions): keep them plain.
NUMBER_PATTERN = r"^[ \t]*[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]{1,3})?[ \t]*$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
INSTANT_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{1,6})?)?"
    r"(Z|[+-](0[0-9]|1[0-4]):?[0-5][0-9])?$"
)
OFFSET_PATTERN = r"(Z|[+-][0-9]{2}:?[0-9]{2})$"
_NUMBER = re.compile(NUMBER_PATTERN)
_DATE = re.compile(DATE_PATTERN)
_INSTANT = re.compile(INSTANT_PATTERN)
_OFFSET = re.compile(OFFSET_PATTERN)
TRUE_TEXTS = ("true", "True", "TRUE", "yes", "Yes", "YES")
FALSE_TEXTS = ("false", "False", "FALSE", "no", "No", "NO")
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def boolean(value: Any) -> bool | None:
    """True or false as a JSON boolean or as one of the fixed texts; else None. The
    spellings are a closed list (no trimming, no case folding) so that SQL reads them
    exactly as Python does."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value in TRUE_TEXTS:
            return True
        if value in FALSE_TEXTS:
            return False
    return None


def number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        number = Decimal(repr(value))
        return number if number.is_finite() else None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str) and _NUMBER.match(value):
        return Decimal(value.strip(" \t"))
    return None


def real_day(year: int, month: int, day: int) -> bool:
    if year < 1 or not 1 <= month <= 12:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 1 <= day <= _MONTH_DAYS[month - 1] + (1 if month == 2 and leap else 0)


def _real_day_text(text: str) -> bool:
    return real_day(int(text[0:4]), int(text[5:7]), int(text[8:10]))


def date_text(value: Any) -> str | None:
    """``"2026-01-15"`` for a calendar-date value (compared as text: ISO order is date order)."""
    if isinstance(value, str) and _DATE.match(value) and _real_day_text(value):
        return value
    return None


def instant(value: Any) -> datetime | None:
    """The UTC instant of an ISO date-time text, or None."""
    if not isinstance(value, str) or not _INSTANT.match(value) or not _real_day_text(value):
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    moment = datetime.fromisoformat(text)
    if _OFFSET.search(value) is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def day(text: str) -> date:
    return date.fromisoformat(text)
