"""Pure helpers for CSV cell values: missing-value markers and dates.

Every cell stays text until it is mapped to a typed field. Nothing here calls ``int()`` or
``float()`` on a cell to *store* it: leading zeros (``02138``), long digit strings and values
such as ``1E5`` are kept exactly as written. Dates are parsed only under a declared or detected
rule, and a value that cannot be read under that rule raises ``DateError`` with a reason, never a
stand-in date.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

DateOrder = Literal["DMY", "MDY", "YMD"]

# Compared case-insensitively, after trimming. "None", "NaN" and "NA" are deliberately absent:
# "Nan" is a first name and "NA" is Namibia's country code.
DEFAULT_MARKERS: tuple[str, ...] = ("NULL", "N/A", "#N/A", "(null)", "#NULL!")

# Invisible characters that spreadsheets and exports leave around values.
_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060\u00a0\u202f\u2007"


def clean_space(text: str) -> str:
    """Trim whitespace, no-break spaces, zero-width spaces and byte-order marks at both ends."""
    return text.strip().strip(_INVISIBLE).strip()


def is_missing(cell: str | None, markers: Iterable[str] = DEFAULT_MARKERS) -> bool:
    """True when the cell means "no value": empty, only whitespace, or a missing-value marker.

    ``markers`` is the import's declared list (compared case-insensitively); pass ``()`` to treat
    only empty cells as missing, so that a literal ``NULL`` is kept as text.
    """
    if cell is None:
        return True
    value = clean_space(cell)
    if not value:
        return True
    folded = value.casefold()
    return any(folded == m.strip().casefold() for m in markers)


# Words that often mean "no value" in exports. Those that are not among an import's markers
# are kept as text, and the preview warns about each column holding them.
LOOKS_MISSING: frozenset[str] = frozenset(
    {"null", "n/a", "#n/a", "(null)", "#null!", "none", "nil", "undefined"}
)


class MissingRule:
    """An import's declared rule for cells that mean "no value": empty (whitespace and
    invisible characters only), or one of its markers (compared case-insensitively)."""

    def __init__(self, markers: Iterable[str] = DEFAULT_MARKERS) -> None:
        self.markers = tuple(markers)
        self._folded = frozenset(m.strip().casefold() for m in self.markers)

    def classify(self, cell: str) -> str | None:
        """``"empty"``, ``"marker"`` (both missing), ``"looks-missing"`` (kept as text,
        but a word exports use for no value), or None (a value)."""
        value = clean_space(cell)
        if not value:
            return "empty"
        folded = value.casefold()
        if folded in self._folded:
            return "marker"
        if folded in LOOKS_MISSING:
            return "looks-missing"
        return None


class DateError(ValueError):
    """A date cell that cannot be read under the declared rule; ``str()`` gives the reason."""


@dataclass(frozen=True)
class MonthDay:
    """A date without a year (e.g. a birthday written ``15/05``). No year is ever invented."""

    month: int
    day: int

    def isoformat(self) -> str:
        return f"--{self.month:02d}-{self.day:02d}"  # ISO 8601 year-less form


_MONTHS = {
    name: i
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?|UTC|GMT)?)?$",
    re.IGNORECASE,
)
_COMPACT = re.compile(r"^(19|20)(\d{2})(\d{2})(\d{2})$")  # 20230401
_NUMERIC = re.compile(r"^(\d{1,4})([/.\-])(\d{1,2})(?:\2(\d{1,4}))?$")
_SERIAL = re.compile(r"^\d{1,7}(?:\.0+)?$")
_EXCEL_MAX = 2958465  # 9999-12-31
_WRITE_IT = (
    " (write it as YYYY-MM-DD, e.g. 2024-03-31, with a time as 13:05 and an offset as +02:00)"
)


def _make(year: int, month: int, day: int, cell: str) -> date:
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise DateError(f"impossible date {cell!r}: {exc}") from None


def _month_day(month: int, day: int, cell: str, year_required: bool) -> MonthDay:
    if year_required:
        raise DateError(f"date {cell!r} has no year, and a year is required")
    _make(2000, month, day, cell)  # validate against a leap year so 29 Feb is allowed
    return MonthDay(month, day)


def _year(text: str, cell: str, pivot: int | None) -> int:
    if len(text) == 4:
        return int(text)
    if len(text) == 2:
        if pivot is None:
            raise DateError(
                f"two-digit year in {cell!r}: write the year in full (1985, not 85): the century cannot be told"
            )
        yy = int(text)
        return 2000 + yy if yy < pivot else 1900 + yy
    raise DateError(f"cannot read the year in {cell!r}")


def excel_serial_to_date(serial: int) -> date:
    """Excel 1900 date system. Serial 60 is Excel's non-existent 29 February 1900."""
    if serial < 1 or serial > _EXCEL_MAX:
        raise DateError(f"spreadsheet serial {serial} is out of range")
    if serial == 60:
        raise DateError("spreadsheet serial 60 is 29 February 1900, which does not exist")
    if serial < 60:
        return date(1899, 12, 31) + timedelta(days=serial)
    return date(1899, 12, 30) + timedelta(days=serial)


def parse_date(
    cell: str,
    *,
    order: DateOrder | None = None,
    serials: bool = False,
    year_required: bool = False,
    two_digit_year_pivot: int | None = None,
) -> date | MonthDay:
    """Read one date cell under a declared rule; raise ``DateError`` (a ValueError) otherwise.

    * ISO ``YYYY-MM-DD`` (optionally with a time) and ``YYYY/MM/DD`` are always accepted.
    * ``dd/mm/yyyy`` / ``mm/dd/yyyy`` (``/``, ``.`` or ``-``) need ``order``; without it the
      cell is rejected (``ambiguous: ...`` when both readings are possible).
    * ``15/05`` (no year) gives a ``MonthDay`` under a declared order, unless ``year_required``.
    * Month names (``3 Mar 2024``, ``Mar 3, 2024``, ``03-Mar-24``) need no order.
    * Spreadsheet serial numbers (``31182``) are read only when ``serials`` is true.
    * Two-digit years need ``two_digit_year_pivot`` (yy < pivot -> 20yy, else 19yy).
    """
    text = " ".join(cell.split()).strip()
    if not text:
        raise DateError("empty date")

    m = _ISO.match(text)
    if m:
        day = _make(int(m[1]), int(m[2]), int(m[3]), cell)
        if m[4] is not None and (int(m[4]) > 23 or int(m[5]) > 59 or int(m[6] or 0) > 59):
            raise DateError(f"impossible time in {cell!r}")
        return day
    m = _COMPACT.match(text)
    if m:
        return _make(int(m[1] + m[2]), int(m[3]), int(m[4]), cell)

    if _SERIAL.match(text):
        serial = int(text.split(".")[0])
        if not serials:
            raise DateError(
                f"{cell!r} looks like a spreadsheet serial number; "
                "declare spreadsheet serials to read it as a date"
            )
        return excel_serial_to_date(serial)

    m = _NUMERIC.match(text)
    if m:
        a, b, c = m[1], m[3], m[4]
        if len(a) == 4:  # year first: YYYY/MM/DD is unambiguous
            if c is None:
                raise DateError(f"cannot read {cell!r} as a date{_WRITE_IT}")
            return _make(int(a), int(b), int(c), cell)
        if c is not None and len(c) not in (2, 4):
            raise DateError(f"cannot read the year in {cell!r}")
        x, y = int(a), int(b)
        if order is None:
            if x <= 12 and y <= 12 and x != y:
                raise DateError(
                    f"ambiguous: {cell!r} could be day/month or month/day; give the date order"
                    " (--date-order DMY or MDY; date_order= over HTTP)"
                )
            raise DateError(
                f"date order not declared for {cell!r}: give it (--date-order DMY or MDY;"
                " date_order= over HTTP)"
            )
        if order == "DMY":
            day, month = x, y
        elif order == "MDY":
            month, day = x, y
        else:
            raise DateError(f"{cell!r} does not match the declared order {order}")
        try:
            if c is None:
                return _month_day(month, day, cell, year_required)
            return _make(_year(c, cell, two_digit_year_pivot), month, day, cell)
        except DateError as err:
            # 15/05 under MDY: the other order would read it; say so rather than guess.
            if x != y and day <= 12 and month <= 31 and "impossible" in str(err):
                other = "MDY" if order == "DMY" else "DMY"
                raise DateError(
                    f"{err}; read as {other} it would be a date: is the file's date order"
                    f" {other}? (--date-order {other})"
                ) from None
            raise

    return _parse_month_name(text, cell, year_required, two_digit_year_pivot)


def _parse_month_name(
    text: str, cell: str, year_required: bool, pivot: int | None
) -> date | MonthDay:
    tokens = [t for t in re.split(r"[\s,./\-]+", text.casefold()) if t]
    month = None
    numbers: list[str] = []
    for token in tokens:
        token = re.sub(r"(?<=\d)(st|nd|rd|th)$", "", token)
        if token.isdigit():
            numbers.append(token)
        elif token in _MONTHS and month is None:
            month = _MONTHS[token]
        else:
            raise DateError(f"cannot read {cell!r} as a date{_WRITE_IT}")
    if month is None or not 1 <= len(numbers) <= 2:
        raise DateError(f"cannot read {cell!r} as a date{_WRITE_IT}")
    if len(numbers) == 1:
        return _month_day(month, int(numbers[0]), cell, year_required)
    first, second = numbers
    if len(first) == 4:  # 2024 Mar 3
        return _make(int(first), month, int(second), cell)
    return _make(_year(second, cell, pivot), month, int(first), cell)


def detect_date_order(cells: Iterable[str]) -> Literal["DMY", "MDY"] | None:
    """Day-first or month-first, judged only from values that can be read one way.

    ``15/05/1985`` is evidence of DMY, ``05/15/1985`` of MDY. No evidence, or evidence both ways,
    gives None: the import must then ask for the order rather than guess.
    """
    dmy = mdy = False
    for cell in cells:
        m = _NUMERIC.match(cell.strip())
        if not m or len(m[1]) == 4:
            continue
        x, y = int(m[1]), int(m[3])
        if x > 12 >= y >= 1:
            dmy = True
        elif y > 12 >= x >= 1:
            mdy = True
    if dmy and not mdy:
        return "DMY"
    if mdy and not dmy:
        return "MDY"
    return None
