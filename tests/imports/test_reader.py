"""The CSV reading layer against the team's cases (input files read as bytes) and real files."""

from __future__ import annotations

import io

import pytest

from lifecycle.imports import (
    AmbiguousEncoding,
    NotTextError,
    Row,
    RowError,
    detect,
    normalise_header,
    read,
    read_stream,
    recognise,
)
from lifecycle.imports.values import DEFAULT_MARKERS, MonthDay, is_missing, parse_date
from tests.conftest import CASES, DATA

MESSY = DATA / "csv" / "messy_fixtures" / "frictionless-py"


def case(name: str, file: str) -> bytes:
    return (CASES / name / file).read_bytes()


def keys(result) -> list[str]:
    return [c.key for c in result.header]


# --------------------------------------------------------------------------- B1


def test_b1_bom_does_not_hide_the_first_column() -> None:
    result = read(case("B1-utf8-bom-header", "input.csv"))
    assert result.dialect.encoding_source == "bom"
    assert result.dialect.line_ending == "CRLF"
    assert [c.original for c in result.header] == ["email", "name"]
    assert not any("\ufeff" in c.original or "\ufeff" in c.key for c in result.header)
    assert [c.field for c in result.header] == ["email", "name"]
    assert result.header_errors == [] and result.errors == []
    assert [(r.line, r.cells) for r in result.rows] == [
        (2, {"email": "ava.stone@example.com", "name": "Ava Stone"})
    ]


def test_b1_trailing_space_nbsp_and_zero_width_space_in_header() -> None:
    result = read(case("B1-utf8-bom-header", "input-2.csv"))
    assert keys(result) == ["email", "name"]
    assert [c.field for c in result.header] == ["email", "name"]
    assert [r.cells for r in result.rows] == [{"email": "bo.lind@example.com", "name": "Bo Lind"}]
    assert result.errors == []


# --------------------------------------------------------------------------- B2


@pytest.mark.parametrize(
    ("file", "delimiter"), [("input-semicolon.csv", ";"), ("input-tab.csv", "\t")]
)
def test_b2_delimiter_is_sniffed(file: str, delimiter: str) -> None:
    data = case("B2-semicolon-delimiter", file)
    assert detect(data).delimiter == delimiter
    result = read(data)
    assert keys(result) == ["email", "first_name", "last_name", "balance"]
    assert len(result.rows) == 2 and result.errors == [] and result.ok
    lena = result.rows[0].cells
    assert lena["email"] == "lena.vogel@example.com"
    assert lena["balance"] == "12,50"  # the comma belongs to the value


def test_b2_forced_comma_on_semicolon_file_is_a_header_error_not_success() -> None:
    result = read(case("B2-semicolon-delimiter", "input-semicolon.csv"), delimiter=",")
    assert not result.ok
    assert result.rows == []
    assert result.data_rows == 2  # N is still known for the report
    assert any("';'" in e and "probably" in e for e in result.header_errors)


# --------------------------------------------------------------------------- B3


def test_b3_utf8_accents_read_exactly_once() -> None:
    result = read(case("B3-double-decoding", "input.csv"))
    assert result.dialect.encoding == "utf-8"
    joao, lukasz = (r.cells for r in result.rows)
    assert (joao["first_name"], joao["last_name"]) == ("João", "Conceição")
    assert len(joao["last_name"]) == 9
    assert joao["last_name"].encode() == b"Concei\xc3\xa7\xc3\xa3o"
    assert (lukasz["first_name"], lukasz["last_name"]) == ("Łukasz", "Żółw")
    for row in result.rows:
        for value in row.cells.values():
            assert not any(bad in value for bad in ("Ã", "Å", "\ufffd"))


def test_b3_declared_windows_1252_on_utf8_file_warns() -> None:
    result = read(case("B3-double-decoding", "input.csv"), encoding="windows-1252")
    assert result.dialect.encoding_source == "given"
    assert any("valid UTF-8" in w for w in result.dialect.warnings)
    # The garbled preview is shown as read (so the user sees it), and bytes that cp1252
    # cannot decode (0x81 in "Ł") make a row error naming the column, not a silent drop.
    assert result.rows[0].cells["first_name"] == "JoÃ£o"
    assert [(e.line, "'first_name'" in e.reason) for e in result.errors] == [(3, True)]
    assert "\\x81" in result.errors[0].raw


# --------------------------------------------------------------------------- B5


@pytest.mark.parametrize(("file", "ending"), [("input-cr.csv", "CR"), ("input-mixed.csv", "mixed")])
def test_b5_cr_and_mixed_line_endings(file: str, ending: str) -> None:
    result = read(case("B5-cr-only-line-endings", file))
    assert result.dialect.line_ending == ending
    assert [(r.line, r.cells["first_name"]) for r in result.rows] == [(2, "Mia"), (3, "Noe")]
    assert result.errors == []
    for row in result.rows:
        assert not any("\r" in v or "\n" in v for v in row.cells.values())


def test_b5_png_is_refused_before_any_row_is_read() -> None:
    with pytest.raises(NotTextError, match="not a text table"):
        read(case("B5-cr-only-line-endings", "not-a-csv.csv"))
    with pytest.raises(NotTextError):  # a declared encoding does not make it text
        read(case("B5-cr-only-line-endings", "not-a-csv.csv"), encoding="utf-8")


# --------------------------------------------------------------------------- B6


def test_b6_newlines_and_quotes_inside_quoted_cells() -> None:
    result = read(case("B6-newline-in-quoted-cell", "input.csv"))
    assert result.errors == [] and len(result.rows) == 2
    ava, ben = result.rows
    assert ava.cells["email"] == "ava.stone@example.com"
    assert ava.cells["name"] == "Ava\nStone"
    assert ava.cells["notes"] == 'prefers "email", not SMS'
    assert ben.cells["email"] == "ben.okafor@example.com"
    assert ben.cells["notes"].split("\n") == ["line one", "line two"]
    # Rows are records, not physical lines: Ben is row 3 (though he starts on line 4).
    assert (ava.line, ben.line) == (2, 3)
    assert ben.physical_line == 4
    for row in result.rows:
        assert not any(ch in row.cells["email"] for ch in '", ')


# --------------------------------------------------------------------------- B7


def test_b7_dates_stay_text_and_parse_only_under_a_rule() -> None:
    result = read(case("B7-spreadsheet-dates", "input.csv"))
    cells = [r.cells["birthday"] for r in result.rows]
    assert cells == ["1985-05-15", "31182", "15/05/1985", "15/05"]
    assert [r.line for r in result.rows] == [2, 3, 4, 5]
    from datetime import date

    birthday = date(1985, 5, 15)
    # Run A: DMY, serials accepted.
    run_a = [parse_date(c, order="DMY", serials=True) for c in cells]
    assert run_a == [birthday, birthday, birthday, MonthDay(5, 15)]
    # Run B: nothing declared: only ISO is read; the others are rejected with the value.
    assert parse_date(cells[0]) == birthday
    for cell in cells[1:]:
        with pytest.raises(ValueError, match=repr(cell).replace("/", "/")):
            parse_date(cell)
    # Run C: as A, year required: the year-less date is rejected for its missing year.
    assert [parse_date(c, order="DMY", serials=True, year_required=True) for c in cells[:3]] == [
        birthday
    ] * 3
    with pytest.raises(ValueError, match="no year"):
        parse_date(cells[3], order="DMY", serials=True, year_required=True)


# --------------------------------------------------------------------------- B9


def test_b9_leading_zeros_and_long_digit_strings_are_kept() -> None:
    result = read(case("B9-leading-zeros", "input.csv"))
    kim, lou = (r.cells for r in result.rows)
    assert (kim["zip"], lou["zip"]) == ("02138", "01801")
    assert (kim["member_no"], lou["member_no"]) == ("000417", "9007199254740993")
    assert kim["phone"] == "0555 0100 123"
    assert lou["phone"] == "(201) 555-0142"
    assert {c.key: c.field for c in result.header}["zip"] == "postal_code"


# --------------------------------------------------------------------------- B10


def test_b10_header_spacing_case_and_separators() -> None:
    result = read(case("B10-header-spaces", "input.csv"))
    assert [(c.original, c.key, c.field) for c in result.header] == [
        ("Email", "email", "email"),
        (" first_name ", "first_name", "first_name"),
        ("Last  Name", "last_name", "last_name"),
        ("Shoe Size", "shoe_size", None),  # listed, not mapped, not dropped
    ]
    assert result.rows[0].cells == {
        "email": "lee@example.com",
        "first_name": "Lee",
        "last_name": "Park",
        "shoe_size": "42",
    }


# --------------------------------------------------------------------------- B11


def test_b11_both_duplicate_rows_are_read() -> None:
    result = read(case("B11-duplicate-rows-in-upload", "input.csv"))
    assert [(r.line, r.cells) for r in result.rows] == [
        (2, {"email": "noa@example.com", "first_name": "Noa"}),
        (3, {"email": " NOA@example.com", "first_name": "Noah"}),  # as written; folding is later
    ]
    assert result.data_rows == 2 and result.errors == []


# --------------------------------------------------------------------------- B24


def test_b24_which_cells_are_missing() -> None:
    result = read(case("B24-blank-and-null-cells", "update.csv"))
    iris, omar = (r.cells for r in result.rows)
    assert iris == {"phone": "+1 201 555 0142", "name": "NULL", "city": ""}
    assert omar == {"phone": "+1 201 555 0143", "name": "", "city": "Lisbon"}

    def missing(cells, markers=DEFAULT_MARKERS):
        return [k for k, v in cells.items() if is_missing(v, markers)]

    # Runs A and D (NULL declared, or the defaults): NULL and empty cells are missing.
    assert missing(iris) == missing(iris, ["NULL"]) == ["name", "city"]
    assert missing(omar) == ["name"]
    # Run C: the marker list set to empty on purpose: NULL is the literal text.
    assert missing(iris, []) == ["city"]


# --------------------------------------------------------------------------- general


def test_empty_and_header_only_files_give_a_message() -> None:
    empty = read(b"")
    assert empty.rows == [] and empty.header == [] and "empty" in empty.messages[0]
    only = read(b"email,name\r\n")
    assert only.rows == [] and keys(only) == ["email", "name"]
    assert "no data rows" in only.messages[0]


def test_ragged_rows_are_row_errors_with_counts() -> None:
    result = read(b"email,name\nann@example.com,Ann,extra\nbob@example.com\ncid@example.com,Cid\n")
    assert [(e.line, e.reason) for e in result.errors] == [
        (
            2,
            "expected 2 cells as in the header, found 3 (a cell holding ',' must be in double quotes)",
        ),
        (3, "expected 2 cells as in the header, found 1"),
    ]
    assert [r.line for r in result.rows] == [4]


def test_duplicate_header_after_normalisation_names_both_columns() -> None:
    result = read(b"E-mail,e_mail,Name\na@example.com,b@example.com,A\n")
    assert not result.ok
    assert "'E-mail'" in result.header_errors[0] and "'e_mail'" in result.header_errors[0]
    assert len(keys(result)) == len(set(keys(result)))  # no cell lost under a shared key
    assert result.rows[0].cells["e_mail_2"] == "b@example.com"


def test_undecodable_byte_in_utf8_file_is_a_row_error_naming_the_column() -> None:
    text = "email,city\nana@example.com,Málaga\nbo@example.com,Mx\ncy@example.com,Córdoba\n"
    data = text.encode().replace(b"Mx", b"M\xe1laga")  # one Latin-1 byte in a UTF-8 file
    result = read(data)
    assert result.dialect.encoding == "utf-8"
    assert any("not valid UTF-8" in w for w in result.dialect.warnings)
    assert [r.cells["city"] for r in result.rows] == ["Málaga", "Córdoba"]
    assert [(e.line, "'city'" in e.reason) for e in result.errors] == [(3, True)]
    assert result.errors[0].raw == "bo@example.com,M\\xe1laga"


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Email Address", "email"),
        ("E-mail", "email"),
        (" Email  Address ", "email"),
        ("Phone Number", "phone"),
        ("First Name", "first_name"),
        ("Accepts Email Marketing", "accepts_email_marketing"),
        ("Accepts SMS Marketing", "accepts_sms_marketing"),
        ("Customer ID", "id"),
        ("Record ID", "hubspot_record_id"),
        ("Klaviyo ID", "klaviyo_id"),
        ("LEID", "mailchimp_leid"),
        ("Postal Code", "postal_code"),
        ("Default Address Zip", "postal_code"),
        ("State/Region", "region"),
        ("Country/Region", "country"),
        ("Shoe Size", None),
    ],
)
def test_recognised_export_headers(header: str, field: str | None) -> None:
    assert recognise(header) == field


def test_normalise_header() -> None:
    assert normalise_header("\ufeff Email  Address\u200b") == "email_address"
    assert normalise_header("e-mail") == normalise_header("E_Mail") == "e_mail"


# --------------------------------------------------------------------------- real files


def test_mailchimp_export_header() -> None:
    data = DATA / "csv" / "exports" / "mailchimp_audience_export_header_honey_format_spec.csv"
    result = read(data.read_bytes())
    fields = {c.original: c.field for c in result.header}
    assert fields["Email Address"] == "email"
    assert fields["First Name"] == "first_name" and fields["Last Name"] == "last_name"
    assert result.rows[0].cells["email_address"] == "mail@example.com"
    assert result.ok and result.errors == []
    # Mailchimp's own member numbers are kept as attributes, never as the user id.
    assert (fields["LEID"], fields["EUID"]) == ("mailchimp_leid", "mailchimp_euid")
    assert "id" not in fields.values()


def test_a_field_claimed_twice_is_a_note_not_a_failure() -> None:
    result = read(b"Email,Phone Number,Mobile Phone Number\na@example.com,1,2\n")
    assert result.ok
    assert [c.field for c in result.header] == ["email", "phone", None]
    assert any("'Mobile Phone Number'" in m for m in result.messages)


def test_windows_1252_semicolon_file_with_quoted_newline_in_header() -> None:
    result = read((MESSY / "issue-811.csv").read_bytes())
    assert result.dialect.encoding == "cp1252"
    assert result.dialect.delimiter == ";"
    assert "Codice dell'Unità territoriale sovracomunale \n(valida a fini statistici)" in [
        c.original for c in result.header
    ]
    names = {r.cells["denominazione_in_italiano"] for r in result.rows}
    assert {"Agliè", "San Floriano del Collio"} <= names
    assert any("Š" in r.raw for r in result.rows) and any("ž" in r.raw for r in result.rows)
    assert result.errors == [] and len(result.rows) > 7000


def test_latin1_and_western_accents() -> None:
    assert read((MESSY / "latin1.csv").read_bytes()).rows[1].cells["name"] == "©"
    accents = read((MESSY / "table-with-accents.csv").read_bytes())
    assert accents.dialect.delimiter == ";"
    assert [c.original for c in accents.header][3] == "Année"
    assert accents.rows[0].cells["occupancy_rate"] == "0,611553068"


def test_greek_with_declared_encoding() -> None:
    result = read((MESSY / "table-infer-iso-8859-7.csv").read_bytes(), encoding="iso-8859-7")
    assert [r.cells["name"] for r in result.rows][:2] == ["Λεωνιδας", "Αλεξανδρος"]


def test_greek_without_a_declared_encoding_is_refused_with_each_reading_not_garbled() -> None:
    """Four Greek names are too little text to tell Greek from Russian (charset-normalizer
    prefers cp1251): the import asks, showing what each encoding would make of them."""
    with pytest.raises(AmbiguousEncoding) as refused:
        read((MESSY / "table-infer-iso-8859-7.csv").read_bytes())
    message = str(refused.value)
    assert "as cp1253 it reads 'Λεωνιδας'" in message and "as cp1251" in message
    assert "--encoding" in message


@pytest.mark.parametrize(
    ("text", "codec", "refused"),
    [
        ("Ivan,Иванов Пётр,Москва\nAnna,Смирнова Анна,Санкт-Петербург\n", "cp1251", False),
        ("Ivan,Иванов Пётр,Москва\nAnna,Смирнова Анна,Санкт-Петербург\n", "koi8_r", False),
        ("Olek,Олександр Шевченко,Київ\nIra,Ірина Коваленко,Львів\n", "cp1251", False),
        ("Gio,Γιώργος Παπαδόπουλος,Αθήνα\n" * 5, "cp1253", False),
        ("Mo,محمد علي,القاهرة\nFa,فاطمة حسن,دبي\n", "cp1256", False),
        ("Dav,דוד כהן,תל אביב\nSar,שרה לוי,ירושלים\n", "cp1255", True),  # read as cp1251
    ],
)
def test_single_byte_alphabets_are_read_right_or_refused_never_garbled(
    text: str, codec: str, refused: bool
) -> None:
    data = ("nick,name,city\n" + text).encode(codec)
    if refused:
        with pytest.raises(AmbiguousEncoding):
            read(data)
        return
    result = read(data)
    assert [r.raw for r in result.rows] == text.splitlines()


RUSSIAN = "a@example.com,Александр,Иванов\nb@example.com,Екатерина,Смирнова\n"
GREEK_ALPHA = "anna@example.com,Άννα,Άγγελος\n" + "".join(
    f"g{i}@example.com,Άννα,Παπαδόπουλος\n" for i in range(60)
)


@pytest.mark.parametrize(
    ("text", "codec"),
    [
        (RUSSIAN * 30, "koi8_r"),  # charset-normalizer alone says cp1255: Hebrew points
        (GREEK_ALPHA, "iso8859_7"),  # cp1253 would store ¶ννα for Άννα
        (RUSSIAN * 30, "cp1251"),
        ("t@example.com,Тарас,Шевченко\ny@example.com,Їжак,Ґудзь\n", "cp1251"),
    ],
)
def test_the_reading_without_impossible_words_wins(text: str, codec: str) -> None:
    result = read(("email,first_name,last_name\n" + text).encode(codec))
    assert [r.raw for r in result.rows] == text.splitlines()


def test_one_hebrew_row_among_ascii_ones_is_refused_with_the_hebrew_reading_offered() -> None:
    text = "d@example.com,דוד,כהן\n" + "".join(
        f"u{i}@example.com,John{i},Smith{i}\n" for i in range(200)
    )
    with pytest.raises(AmbiguousEncoding, match="as cp1255 it reads 'דוד'"):
        read(("email,first_name,last_name\n" + text).encode("cp1255"))


def test_ukrainian_letters_are_not_read_by_a_rare_near_twin_of_cp1251() -> None:
    text = "".join(
        f"u{i}@example.com,Євген,Їжакевич\nv{i}@example.com,Ґалина,Олександрівна\n"
        for i in range(10)
    )
    result = read(("email,first_name,last_name\n" + text).encode("cp1251"))
    assert result.dialect.encoding == "cp1251"
    assert [r.raw for r in result.rows] == text.splitlines()


def test_one_greek_row_among_ascii_ones_is_refused_with_the_greek_reading_offered() -> None:
    text = "n@example.com,Νίκος,Παπαδόπουλος\n" + "".join(
        f"u{i}@example.com,John{i},Smith{i}\n" for i in range(300)
    )
    with pytest.raises(AmbiguousEncoding, match="as cp1253 it reads 'Νίκος'"):
        read(("email,first_name,last_name\n" + text).encode("cp1253"))


def test_bom_cjk_and_semicolon_leading_zero() -> None:
    bom = read((MESSY / "bom.csv").read_bytes())
    assert keys(bom) == ["id", "name"] and bom.rows[1].cells["name"] == "中国人"
    semi = read((MESSY / "issue-1009-semicolon.csv").read_bytes())
    assert semi.rows[0].cells == {"fieldnamea": "0123", "fieldnameb": "c"}


def test_quotes_and_newlines_fixture() -> None:
    data = (DATA / "csv" / "messy_fixtures" / "csv-parser" / "quotes+newlines.csv").read_bytes()
    result = read(data)
    assert [(r.line, r.cells["b"]) for r in result.rows] == [
        (2, 'ha \n"ha" \nha'),
        (3, ' \n"" \n'),
        (4, "4"),
    ]


# --------------------------------------------------------------------------- streaming


@pytest.mark.parametrize(
    "path",
    [
        CASES / "B6-newline-in-quoted-cell" / "input.csv",
        CASES / "B1-utf8-bom-header" / "input-2.csv",
        CASES / "B5-cr-only-line-endings" / "input-cr.csv",
        MESSY / "issue-811.csv",
    ],
)
def test_read_stream_gives_the_same_rows_as_read(path) -> None:
    whole = read(path.read_bytes())
    with path.open("rb") as f:
        stream = read_stream(f, sample_size=4096)  # small sample: the rest is streamed
        records = list(stream.records)
    assert stream.dialect.encoding == whole.dialect.encoding
    assert stream.dialect.delimiter == whole.dialect.delimiter
    assert stream.header == whole.header
    assert [r for r in records if isinstance(r, Row)] == whole.rows
    assert [r for r in records if isinstance(r, RowError)] == whole.errors


def test_read_stream_multibyte_character_across_the_sample_boundary() -> None:
    data = ("email,name\n" + "".join(f"p{i}@example.com,Żółw{i}\n" for i in range(500))).encode()
    stream = read_stream(io.BytesIO(data), sample_size=1001)
    rows = list(stream.records)
    assert stream.dialect.encoding == "utf-8"
    assert len(rows) == 500 and all(isinstance(r, Row) for r in rows)
    assert rows[-1].cells["name"] == "Żółw499" and rows[-1].line == 501


# --------------------------------------------------------------------------- stray quotes


@pytest.mark.parametrize(
    "bad",
    [
        'q2@example.com,"B,stray',  # the cells after it would be missing: wrong width
        'q2@example.com,B,"stray',  # the last cell: the width alone looks right
    ],
)
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_stray_quote_hides_no_row_after_it(bad: str, newline: str) -> None:
    later = [f"q{i}@example.com,N{i},fine" for i in range(3, 9)]
    text = newline.join(["Email,First Name,Notes", "q1@example.com,A,ok", bad, *later]) + newline
    for result in (read(text.encode()), _streamed(text.encode())):
        assert [r.cells["email"] for r in result.rows] == [
            "q1@example.com",
            *(f"q{i}@example.com" for i in range(3, 9)),
        ]
        assert [r.line for r in result.rows] == [2, 4, 5, 6, 7, 8, 9]
        [error] = result.errors
        assert error.line == 3 and error.raw == bad
        assert "quote opened in this row is never closed" in error.reason


def test_a_quoted_cell_over_several_lines_is_still_one_cell() -> None:
    text = (
        'Email,First Name,Notes\nq1@example.com,A,"line one\nline two, with a comma\n'
        'line three"\nq2@example.com,B,x\n'
    )
    result = read(text.encode())
    assert result.errors == []
    assert result.rows[0].cells["notes"] == "line one\nline two, with a comma\nline three"
    assert [r.line for r in result.rows] == [2, 3]


def _streamed(data: bytes):
    class Result:
        pass

    stream = read_stream(io.BytesIO(data))
    records = list(stream.records)
    result = Result()
    result.rows = [r for r in records if isinstance(r, Row)]
    result.errors = [r for r in records if isinstance(r, RowError)]
    return result


def test_a_stray_quote_whose_cell_outgrows_the_csv_limit_hides_no_row_either() -> None:
    import csv

    limit = csv.field_size_limit()
    filler = [f"q{i}@example.com,N{i},{'x' * 200}" for i in range(3, 3 + limit // 150)]
    text = "\n".join(["Email,First Name,Notes", 'q2@example.com,"B,stray', *filler]) + "\n"
    result = _streamed(text.encode())
    assert len(result.rows) == len(filler)
    [error] = result.errors
    assert error.line == 2 and "never closed" in error.reason


def test_a_stray_quote_in_a_two_column_file_or_on_the_last_line_hides_nothing() -> None:
    two = b'Email,First Name\na7@example.com,Ann\nb7@example.com,"Bob\nc7@example.com,Cat\n'
    result = _streamed(two)
    assert [r.cells["email"] for r in result.rows] == ["a7@example.com", "c7@example.com"]
    assert [(e.line, e.raw) for e in result.errors] == [(3, 'b7@example.com,"Bob')]
    for ending in (b"\n", b"\r\n", b""):
        last = b'Email,City\nr1@example.com,Paris\nr2@example.com,"Rome' + ending
        result = _streamed(last)
        assert [r.cells["city"] for r in result.rows] == ["Paris"]
        [error] = result.errors
        assert error.line == 3 and "never closed (the file ends inside it)" in error.reason


def test_a_closed_quoted_address_over_lines_shaped_like_rows_is_one_cell() -> None:
    text = (
        b'Email,First Name,Address\na13@example.com,Ann,"1 Main St\nSpringfield, IL, 62704\n'
        b'USA"\nb13@example.com,Bea,"5\'10"" tall"\nc13@example.com,Cy,5\'10"\n'
    )
    result = _streamed(text)
    assert result.errors == []
    assert [r.cells["address"] for r in result.rows] == [
        "1 Main St\nSpringfield, IL, 62704\nUSA",
        "5'10\" tall",
        "5'10\"",
    ]


@pytest.mark.parametrize(
    "text",
    [
        # The stray quote runs on to the next row's quoted cell: the width looks right.
        'Email,Name,City\nb@x.com,Bob,"Paris\nc@x.com,Cy,"Lyon"\nd@x.com,Dee,Nice\n',
        'Email,Name,City\nb@x.com,"Bob,Paris\nc@x.com,"Cy",Lyon\nd@x.com,Dee,Nice\n',
        'Email;Name;City\nb@x.com;Bob;"Paris\nc@x.com;Cy;"Lyon"\nd@x.com;Dee;Nice\n',
        # ... or to a quote ending the next row's last cell: a row inside, too few cells.
        'Email,Name,City\nb@x.com,"Bob\nc@x.com,Cy,Lyon"\nd@x.com,Dee,Nice\n',
    ],
)
def test_a_stray_quote_running_on_to_another_rows_quote_hides_nothing(text: str) -> None:
    result = _streamed(text.encode())
    assert [r.cells["email"] for r in result.rows] == ["c@x.com", "d@x.com"]
    [error] = result.errors
    assert error.line == 2 and "never closed" in error.reason


def test_a_closed_multi_line_cell_in_a_row_missing_a_cell_is_one_rejected_row() -> None:
    text = b'Email,Name,Notes,City\na@x.com,Ann,"line1\nline2"\nb@x.com,Bob\nc@x.com,Cy,n,Paris\n'
    result = _streamed(text)
    assert [r.cells["email"] for r in result.rows] == ["c@x.com"]
    assert [(e.line, e.reason) for e in result.errors] == [
        (2, "expected 4 cells as in the header, found 3"),
        (3, "expected 4 cells as in the header, found 2"),
    ]


def test_a_utf8_file_with_a_few_windows_bytes_stays_utf8() -> None:
    data = (
        b"Email,First Name,City\na@x.com,Ren\xc3\xa9e,Z\xc3\xbcrich\nbad@x.com,Fr\xe9d,Par\xeds\n"
    )
    result = _streamed(data)
    assert [(r.cells["first_name"], r.cells["city"]) for r in result.rows] == [("Renée", "Zürich")]
    [error] = result.errors
    assert error.line == 3 and "not valid utf-8" in error.reason


def test_a_delimiter_ending_every_row_adds_no_cell() -> None:
    result = _streamed(b"Email,Name\na@x.com,Ann,\nb@x.com,Bob,, \nc@x.com,Cy,x\n")
    assert [r.cells for r in result.rows] == [
        {"email": "a@x.com", "name": "Ann"},
        {"email": "b@x.com", "name": "Bob"},
    ]
    [error] = result.errors  # an extra cell with something in it is still a row error
    assert error.line == 4 and "found 3" in error.reason


def test_a_delimiter_ending_the_header_names_no_column() -> None:
    result = _streamed(b"Email,Name,\na@x.com,Ann,\nb@x.com,Bob,oops\n")
    assert [c.key for c in read(b"Email,Name,\na@x.com,Ann,\n").header] == ["email", "name"]
    assert [r.cells for r in result.rows] == [{"email": "a@x.com", "name": "Ann"}]
    [error] = result.errors  # a cell under no header is not dropped unseen
    assert error.line == 3 and "found 3" in error.reason
