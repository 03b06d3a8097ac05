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
  (``+05:00``); without one it is read as UTC;
- a month and day (for anniversaries) is that of a calendar date, of an instant as
  written (a birthday sent as ``1985-05-15T00:00:00Z`` is on 15 May wherever the
  person lives), or of a date without its year, ``--MM-DD`` (ISO 8601; what an import
  stores for ``15/05``).
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
# --MM-DD naming a day of some year (29 February included).
NO_YEAR_PATTERN = (
    r"^--((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    r"|02-(0[1-9]|1[0-9]|2[0-9]))$"
)
_NUMBER = re.compile(NUMBER_PATTERN)
_NO_YEAR = re.compile(NO_YEAR_PATTERN)
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


def month_day(value: Any) -> str | None:
    """``"05-15"`` for a calendar date, an instant (as written) or a ``--05-15``; else None."""
    if date_text(value) is not None or instant(value) is not None:
        return value[5:10]
    if isinstance(value, str) and _NO_YEAR.match(value):
        return value[2:]
    return None


def day(text: str) -> date:
    return date.fromisoformat(text)
