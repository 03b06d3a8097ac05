"""Pure value helpers: missing-value markers and dates."""

from __future__ import annotations

from datetime import date

import pytest

from lifecycle.imports.values import (
    DateError,
    MonthDay,
    detect_date_order,
    excel_serial_to_date,
    is_missing,
    parse_date,
)


@pytest.mark.parametrize(
    "cell", ["", "   ", "\u00a0", "\u200b", None, "NULL", "null", "N/A", "n/a", "#N/A", " NULL "]
)
def test_missing_by_default(cell: str | None) -> None:
    assert is_missing(cell)


@pytest.mark.parametrize("cell", ["Nan", "NA", "0", "none of these", "02138", "-"])
def test_not_missing_by_default(cell: str) -> None:
    assert not is_missing(cell)


def test_markers_are_configurable() -> None:
    assert not is_missing("NULL", [])
    assert is_missing("", [])
    assert is_missing("-", ["-"])


def test_iso_always_accepted() -> None:
    assert parse_date("2024-03-04") == date(2024, 3, 4)
    assert parse_date("2015-03-16 14:40:47") == date(2015, 3, 16)
    assert parse_date("2024-03-04T10:00:00Z") == date(2024, 3, 4)
    assert parse_date("2018/03/31") == date(2018, 3, 31)


def test_declared_orders() -> None:
    assert parse_date("03/04/2024", order="DMY") == date(2024, 4, 3)
    assert parse_date("03/04/2024", order="MDY") == date(2024, 3, 4)
    assert parse_date("15.05.1985", order="DMY") == date(1985, 5, 15)
    assert parse_date("15-05", order="DMY") == MonthDay(5, 15)
    assert MonthDay(5, 15).isoformat() == "--05-15"
    assert parse_date("29/02", order="DMY") == MonthDay(2, 29)


def test_ambiguous_without_order() -> None:
    with pytest.raises(DateError, match=r"ambiguous: .* give the date order \(--date-order"):
        parse_date("03/04/2024")
    with pytest.raises(DateError, match=r"give it \(--date-order DMY or MDY; date_order="):
        parse_date("15/05/1985")


def test_a_time_after_an_iso_date_is_checked_and_compact_dates_are_read() -> None:
    from datetime import date

    assert parse_date("1990-04-13 23:59:59") == date(1990, 4, 13)
    for cell in ("1990-04-13 99:99", "2023-04-01T25:61:00.0000000"):
        with pytest.raises(DateError, match="impossible time"):
            parse_date(cell)
    assert parse_date("20230401") == date(2023, 4, 1)
    with pytest.raises(DateError, match="impossible date"):
        parse_date("20230231")


@pytest.mark.parametrize(
    ("cell", "order"),
    [("31/02/2024", "DMY"), ("02/31/2024", "MDY"), ("2023-02-29", None), ("31/04", "DMY")],
)
def test_impossible_dates(cell: str, order) -> None:
    with pytest.raises(DateError, match="impossible"):
        parse_date(cell, order=order)


def test_two_digit_years_need_a_rule() -> None:
    with pytest.raises(DateError, match="two-digit year"):
        parse_date("03/04/24", order="DMY")
    assert parse_date("03/04/24", order="DMY", two_digit_year_pivot=50) == date(2024, 4, 3)
    assert parse_date("03/04/85", order="DMY", two_digit_year_pivot=50) == date(1985, 4, 3)


def test_month_names_need_no_order() -> None:
    assert parse_date("3 Mar 2024") == date(2024, 3, 3)
    assert parse_date("Mar 3, 2024") == date(2024, 3, 3)
    assert parse_date("March 3rd 2024") == date(2024, 3, 3)
    assert parse_date("03-Mar-24", two_digit_year_pivot=50) == date(2024, 3, 3)
    assert parse_date("15 May") == MonthDay(5, 15)
    with pytest.raises(DateError, match="impossible"):
        parse_date("30 Feb 2024")


def test_excel_serials() -> None:
    assert parse_date("31182", serials=True) == date(1985, 5, 15)
    assert parse_date("45000", serials=True) == date(2023, 3, 15)
    assert parse_date("45123", serials=True) == date(2023, 7, 16)
    assert parse_date("45123.0", serials=True) == date(2023, 7, 16)
    assert excel_serial_to_date(1) == date(1900, 1, 1)
    assert excel_serial_to_date(59) == date(1900, 2, 28)
    assert excel_serial_to_date(61) == date(1900, 3, 1)
    with pytest.raises(DateError, match="does not exist"):
        excel_serial_to_date(60)  # Excel's 29 February 1900
    with pytest.raises(DateError, match="serial"):
        parse_date("31182")  # not read without a declared rule
    with pytest.raises(DateError, match="out of range"):
        parse_date("0", serials=True)


@pytest.mark.parametrize("cell", ["", "soon", "1E5", "12/13/14/15", "Mar", "2024-13-01"])
def test_garbage_is_rejected(cell: str) -> None:
    with pytest.raises(ValueError):
        parse_date(cell, order="DMY", serials=True)


def test_detect_date_order() -> None:
    assert detect_date_order(["03/04/2024", "15/05/1985", ""]) == "DMY"
    assert detect_date_order(["03/04/2024", "05/15/1985"]) == "MDY"
    assert detect_date_order(["03/04/2024", "01/02/2020"]) is None
    assert detect_date_order(["15/05/1985", "05/15/1985"]) is None
    assert detect_date_order(["1985-05-15"]) is None


def test_a_date_impossible_in_the_declared_order_suggests_the_other() -> None:
    with pytest.raises(DateError, match=r"read as DMY it would be a date.*--date-order DMY"):
        parse_date("15/05/1985", order="MDY")
    with pytest.raises(DateError, match=r"read as MDY it would be a date"):
        parse_date("05/15/1985", order="DMY")
    with pytest.raises(DateError, match=r"day is out of range for month$"):
        parse_date("31/02/1990", order="DMY")  # no order reads it: no suggestion
    with pytest.raises(DateError, match=r"write it as YYYY-MM-DD"):
        parse_date("sometime in May")
