"""Read an uploaded CSV file: bytes in, rows of text cells (or row errors) out.

* The bytes are decoded exactly once. A byte-order mark decides first (UTF-8/16/32); then strict
  UTF-8; then charset-normalizer. A given encoding is used as given (with a warning when the
  file is valid UTF-8 but another codec was declared). Bytes that cannot be decoded are kept as
  surrogate escapes and the row holding them becomes a ``RowError`` naming the column.
* The delimiter is sniffed among ``,`` ``;`` tab ``|`` by parsing a sample with each candidate
  and preferring the one that gives a multi-column header and rows of the same width.
* Python's ``csv`` module reads the decoded text (RFC 4180 quoting: quoted delimiters, line
  breaks and doubled quotes); CR, LF, CRLF and mixed line ends all work.
* Row numbers are spreadsheet row numbers: the header is row 1, the first record row 2, and a
  record with a quoted line break is still one row.
* Cells are never converted: every value is the text in the file (line breaks inside a cell are
  normalised to ``\\n``).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
SAMPLE_CHARS = 64 * 1024
SAMPLE_RECORDS = 200

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_MAGIC = (
    (b"\x89PNG", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook is one: save it as CSV)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel/Office document (save it as CSV)"),
)
_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060\u00a0\u202f\u2007"
_SURROGATE = re.compile("[\udc80-\udcff]")


class NotTextError(ValueError):
    """The content is not a text table (an image, a workbook, binary data)."""


class AmbiguousEncoding(ValueError):
    """Single-byte encodings of different alphabets read the file equally well: choosing
    one would be a guess that may garble every name (``--encoding`` decides)."""


@dataclass(frozen=True)
class Dialect:
    encoding: str  # Python codec name used for the single decode
    encoding_source: str  # "bom", "utf-8", "detected: cp1252 (charset-normalizer)", "given"
    delimiter: str
    delimiter_source: str  # "sniffed", "given", "default (single column)"
    line_ending: str  # "CRLF", "LF", "CR", "mixed" or "none"
    skip_initial_space: bool = False
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Column:
    index: int
    original: str  # the header cell as written
    key: str  # normalised: trimmed, case-folded, separators collapsed to "_"; unique
    field: str | None  # a recognised field ("email", "first_name", ...) or None


@dataclass(frozen=True)
class Row:
    line: int  # spreadsheet row number: header = 1, first record = 2
    cells: dict[str, str]  # column key -> text as written
    raw: str
    physical_line: int = 0  # 1-based physical line where the record starts


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str
    raw: str


@dataclass
class ReadResult:
    dialect: Dialect
    header: list[Column]
    rows: list[Row] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    header_errors: list[str] = field(default_factory=list)  # fatal: fix before importing
    messages: list[str] = field(default_factory=list)  # informational (empty file, blanks...)
    blank_rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.header_errors

    @property
    def data_rows(self) -> int:
        """Records read (good rows and row errors), not counting blank lines."""
        return len(self.rows) + len(self.errors)


# --------------------------------------------------------------------------- encoding


def _check_binary(data: bytes) -> None:
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise NotTextError(f"the content is not a text table: it looks like {what}")
    if b"\x00" in data[:8192]:
        raise NotTextError("the content is not a text table: it contains NUL bytes (binary data)")


def _detect_encoding(
    data: bytes, given: str | None, complete: bool = True
) -> tuple[str, str, int, list[str]]:
    """Return (codec, how, bytes to skip, warnings). ``complete`` is False for a sample."""
    warnings: list[str] = []
    for bom, codec in _BOMS:
        if data.startswith(bom):
            if given and codecs.lookup(given).name != codecs.lookup(codec).name:
                warnings.append(f"the file starts with a {codec} byte-order mark; read as {codec}")
            return codec, "bom", len(bom), warnings
    _check_binary(data)
    if given:
        codec = codecs.lookup(given).name
        if codec not in ("utf-8", "ascii") and _is_utf8(data, complete) and not data.isascii():
            warnings.append(
                f"the file is valid UTF-8 but was declared {given}: accented letters may be "
                "garbled; check the preview or choose UTF-8"
            )
        return codec, "given", 0, warnings
    if _is_utf8(data, complete):
        return "utf-8", "detected: valid UTF-8", 0, warnings
    # Mostly UTF-8 with a few damaged bytes: stay UTF-8, the damaged rows become row errors.
    text = data.decode("utf-8", errors="surrogateescape")
    bad = len(_SURROGATE.findall(text))
    good = sum(1 for ch in text if ord(ch) > 127 and not 0xDC80 <= ord(ch) <= 0xDCFF)
    # Valid UTF-8 sequences are next to impossible in a single-byte file's text ("Ã©"
    # is mojibake, not a name): a few of them outweigh several bad bytes.
    if good and good * 4 >= bad:
        warnings.append(f"{bad} byte(s) are not valid UTF-8; the rows holding them are rejected")
        return "utf-8", f"detected: UTF-8 but for {bad} byte(s)", 0, warnings
    if _looks_western(data):
        return "cp1252", "detected: cp1252 (Western accents)", 0, warnings
    codec = _charset_normalizer(data)
    if codec:
        return codec, f"detected: {codec} (charset-normalizer)", 0, warnings
    warnings.append("the encoding could not be detected; read as cp1252, check the preview")
    return "cp1252", "fallback: cp1252", 0, warnings


def _is_utf8(data: bytes, final: bool = True) -> bool:
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=final)
    except UnicodeDecodeError:
        return False
    return True


def _looks_western(data: bytes) -> bool:
    """Windows-1252 text reads as words with an accented letter or two (``Agliè``, ``Année``);
    other single-byte scripts read through cp1252 give runs of accented letters only."""
    try:
        text = data[: 256 * 1024].decode("cp1252")
    except UnicodeDecodeError:
        return False
    ratios = [
        sum(1 for ch in run if ord(ch) > 127) / len(run)
        for run in re.findall(r"[^\W\d_]+", text)
        if not run.isascii()
    ]
    return not ratios or sum(ratios) / len(ratios) <= 0.5


# Single-byte encodings still met in exports, besides the Western ones: each letter byte
# means a different letter in each, so a wrong choice garbles every name.
_SINGLE_BYTE = (
    *("cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258"),
    *("koi8_r", "koi8_u", "cp866", "iso8859_2", "iso8859_5", "iso8859_7", "iso8859_8"),
)
# Below this many bytes outside ASCII, a detector's scores are too close to trust when
# another reading is as plausible (a few Greek names read as plausible Russian).
_FEW_LETTERS = 500
_COMMON = frozenset(codecs.lookup(c).name for c in (*_SINGLE_BYTE, "cp1252"))
_TOKEN = re.compile(r"[^\s,;|\t\"]+")


def _broken(text: str) -> float:
    """The share of words with letters outside ASCII that no one writes: a symbol among
    the letters (``¶ννα``), a combining mark (Hebrew points read from KOI8-R), or capitals
    in the middle (``НЯкпт``). A wrong single-byte encoding makes many; the right, none."""
    words = [w for w in _TOKEN.findall(text) if not w.isascii()]
    if not words:
        return 0.0
    bad = 0
    for word in words:
        letters = [ch for ch in word if ch.isalpha()]
        odd = any(
            not ch.isascii() and not ch.isalpha() and unicodedata.category(ch)[0] in "SMPC"
            for ch in word
        )
        core = "".join(letters)
        cased = core.islower() or core.isupper() or (core[:1].isupper() and core[1:].islower())
        bad += odd or (
            len(core) > 1 and any(ch.isupper() or ch.islower() for ch in core) and not cased
        )
    return bad / len(words)


def _charset_normalizer(data: bytes) -> str | None:
    """The most plausible single-byte codec: fewest impossible words, then charset-
    normalizer's coherence. Raises AmbiguousEncoding when another reads the text as
    plausibly with different letters and there is too little text to tell them apart."""
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - dependency missing
        return None
    sample = data[: 256 * 1024]
    # charset-normalizer's own choice, and the common single-byte encodings.
    best = from_bytes(sample).best()
    found = [best] if best is not None else []
    found += list(from_bytes(sample, cp_isolation=list(_SINGLE_BYTE)))
    if not found:
        return None
    readings: dict[str, tuple[float, float, str]] = {}
    for match in found:
        codec = codecs.lookup(match.encoding).name
        if codec in ("latin-1", "iso8859-1"):
            codec = "cp1252"  # a superset of Latin-1's printable range
        text = str(match)
        if codec not in readings:
            readings[codec] = (_broken(text), -match.coherence, text)
    # Fewest impossible words; then a common encoding before a rare near-twin (kz1048
    # beside cp1251); then charset-normalizer's coherence.
    ranked = sorted(
        readings.items(), key=lambda item: (item[1][0], item[0] not in _COMMON, item[1][1])
    )
    codec, (broken, coherence, text) = ranked[0]
    few = sum(1 for b in sample if b > 127) < _FEW_LETTERS
    rivals = [
        (other, reading)
        for other, reading in ranked[1:]
        if reading[0] <= broken
        and reading[2] != text
        and other in _COMMON
        and (few or reading[1] - coherence < 0.1)
    ]
    if rivals:
        # One reading of each alphabet first (the likeliest of each), then the others.
        possible = [(codec, text)] + [(n, r[2]) for n, r in ranked[1:] if r[0] <= broken]
        shown: dict[str, str] = {}
        alphabets: set[str] = set()
        for name, reading in possible:
            alphabet = _alphabet(reading)
            if alphabet not in alphabets:
                alphabets.add(alphabet)
                shown.setdefault(_first_words(reading), name)
        for name, reading in possible:
            shown.setdefault(_first_words(reading), name)
        raise AmbiguousEncoding(
            "the encoding cannot be told for sure: "
            + "; ".join(f"as {name} it reads {words!r}" for words, name in list(shown.items())[:6])
            + ". Give the file's encoding (--encoding, or encoding= over HTTP)"
        )
    return codec


def _alphabet(text: str) -> str:
    """The script of the first letter outside ASCII: GREEK, CYRILLIC, HEBREW, LATIN..."""
    for word in _TOKEN.findall(text):
        for ch in word:
            if not ch.isascii() and ch.isalpha():
                return unicodedata.name(ch, "?").split()[0]
    return "?"


def _first_words(text: str) -> str:
    """The first cell with a character outside ASCII: what a reader recognises at once."""
    for word in _TOKEN.findall(text):
        if not word.isascii():
            return word[:40]
    return text[:40]


# --------------------------------------------------------------------------- dialect


def _line_ending(text: str) -> str:
    sample = text[:SAMPLE_CHARS]
    crlf = sample.count("\r\n")
    cr = sample.count("\r") - crlf
    lf = sample.count("\n") - crlf
    kinds = [name for name, n in (("CRLF", crlf), ("CR", cr), ("LF", lf)) if n]
    if not kinds:
        return "none"
    return kinds[0] if len(kinds) == 1 else "mixed"


def _records(text: str, delimiter: str, limit: int) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    out: list[list[str]] = []
    try:
        for record in reader:
            if record:
                out.append(record)
            if len(out) >= limit:
                break
    except csv.Error:
        pass
    return out


def _sniff_delimiter(text: str) -> tuple[str, str]:
    sample = text[:SAMPLE_CHARS]
    truncated = len(text) > SAMPLE_CHARS
    best: tuple[float, int, int] | None = None
    choice = None
    for delim in CANDIDATE_DELIMITERS:
        records = _records(sample, delim, SAMPLE_RECORDS)
        if truncated and len(records) > 1:
            records = records[:-1]  # the last record may be cut off
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        body = records[1:]
        consistent = sum(1 for r in body if len(r) == width) / len(body) if body else 1.0
        score = (consistent, width, -CANDIDATE_DELIMITERS.index(delim))
        if best is None or score > best:
            best, choice = score, delim
    if choice is None:
        return ",", "default (single column)"
    return choice, "sniffed"


def _skip_initial_space(text: str, delimiter: str) -> bool:
    sample = text[:SAMPLE_CHARS]
    return f'{delimiter} "' in sample and f'{delimiter}"' not in sample


def _decode(data: bytes, encoding: str | None) -> tuple[str, str, str, list[str]]:
    codec, how, skip, warnings = _detect_encoding(data, encoding)
    text = data[skip:].decode(codec, errors="surrogateescape")  # the one and only decode
    return text, codec, how, warnings


def _dialect_for(
    text: str, codec: str, how: str, warnings: list[str], delimiter: str | None
) -> Dialect:
    if delimiter:
        delim, delim_how = delimiter, "given"
    else:
        delim, delim_how = _sniff_delimiter(text)
    return Dialect(
        encoding=codec,
        encoding_source=how,
        delimiter=delim,
        delimiter_source=delim_how,
        line_ending=_line_ending(text),
        skip_initial_space=_skip_initial_space(text, delim),
        warnings=tuple(warnings),
    )


def detect(data: bytes, *, encoding: str | None = None, delimiter: str | None = None) -> Dialect:
    """Choose the encoding, delimiter and line ending of ``data`` (raises ``NotTextError``)."""
    text, codec, how, warnings = _decode(data, encoding)
    return _dialect_for(text, codec, how, warnings, delimiter)


# --------------------------------------------------------------------------- header

# Compact form (case-folded, only letters and digits) -> field.
_FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "email": (
        "email",
        "emailaddress",
        "mail",
        "emailid",
        "primaryemail",
        "contactemail",
        "customeremail",
    ),
    "phone": (
        "phone",
        "phonenumber",
        "mobile",
        "mobilephone",
        "mobilephonenumber",
        "mobilenumber",
        "cellphone",
        "telephone",
        "tel",
        "smsphonenumber",
        "phonee164",
    ),
    "first_name": ("firstname", "fname", "givenname", "forename"),
    "last_name": ("lastname", "lname", "surname", "familyname"),
    "name": ("name", "fullname", "contactname", "customername"),
    "company": (
        "company",
        "companyname",
        "organization",
        "organisation",
        "defaultaddresscompany",
    ),
    "address1": (
        "address",
        "address1",
        "addressline1",
        "streetaddress",
        "street",
        "defaultaddressaddress1",
    ),
    "address2": ("address2", "addressline2", "defaultaddressaddress2"),
    "city": ("city", "town", "defaultaddresscity"),
    "region": (
        "province",
        "state",
        "region",
        "stateregion",
        "county",
        "provincecode",
        "statecode",
        "defaultaddressprovincecode",
    ),
    "postal_code": (
        "zip",
        "zipcode",
        "postalcode",
        "postcode",
        "postal",
        "defaultaddresszip",
    ),
    "country": ("country", "countryregion", "countryname"),
    "country_code": ("countrycode", "cc", "defaultaddresscountrycode"),
    "address_phone": ("defaultaddressphone",),
    "id": (
        "id",
        "customerid",
        "externalid",
        "contactid",
        "userid",
        "profileid",
        "memberid",
    ),
    # A vendor's own number for its record of the person is kept, but it is not the id
    # the product knows them by: as ``id`` it would claim the user-id slot, and the
    # product's real user id would then conflict with it.
    "mailchimp_leid": ("leid",),
    "mailchimp_euid": ("euid",),
    "klaviyo_id": ("klaviyoid",),
    "hubspot_record_id": ("recordid",),
    # The notes on a file of rejected rows (lifecycle imports rejected), fixed and re-imported.
    "ignore": ("rejectedline", "rejectedreason"),
    "accepts_email_marketing": (
        "acceptsemailmarketing",
        "acceptsmarketing",
        "emailmarketingconsent",
        "emailconsent",
        "emailoptin",
        "subscribed",
        "marketingemailconsent",
    ),
    "accepts_sms_marketing": (
        "acceptssmsmarketing",
        "smsconsent",
        "smsmarketingconsent",
        "smsoptin",
    ),
    "tags": ("tags", "tag"),
    "created_at": (
        "createdat",
        "createdate",
        "created",
        "datecreated",
        "dateadded",
        "profilecreatedon",
        "signupdate",
    ),
    "optin_time": ("optintime",),
    "confirm_time": ("confirmtime",),
    "updated_at": ("updatedat", "lastchanged", "lastmodifieddate", "lastupdated"),
    "birthday": ("birthday", "birthdate", "dateofbirth", "dob"),
    "timezone": ("timezone", "tz"),
    "language": ("language", "locale", "preferredlanguage"),
    "note": ("note", "notes"),
}
RECOGNISED_HEADERS: dict[str, str] = {
    compact: name for name, compacts in _FIELD_NAMES.items() for compact in compacts
}


def normalise_header(text: str) -> str:
    """Trim invisible characters and spaces, case-fold, collapse spaces/``_``/``-`` to ``_``."""
    for ch in _INVISIBLE:
        text = text.replace(ch, " ")
    text = " ".join(text.split()).casefold()
    return re.sub(r"[\s_\-]+", "_", text).strip("_")


def _compact(key: str) -> str:
    return re.sub(r"[\W_]+", "", key)


def recognise(header_text: str) -> str | None:
    """The field a column name stands for (``'E-mail'`` -> ``'email'``), or None."""
    return RECOGNISED_HEADERS.get(_compact(normalise_header(header_text)))


def _build_header(cells: list[str]) -> tuple[list[Column], list[str], list[str]]:
    """Columns, fatal header errors (duplicate names), and notes (a field claimed twice)."""
    columns: list[Column] = []
    errors: list[str] = []
    notes: list[str] = []
    seen_keys: dict[str, str] = {}
    seen_fields: dict[str, str] = {}
    for index, original in enumerate(cells):
        key = normalise_header(original)
        if not key:
            key = f"column_{index + 1}"
        col_field = recognise(original)
        if key in seen_keys:
            errors.append(
                f"columns {seen_keys[key]!r} and {original!r} have the same name after "
                "trimming and case-folding; rename one"
            )
            n = 2
            while f"{key}_{n}" in seen_keys:
                n += 1
            key = f"{key}_{n}"
            col_field = None
        elif col_field and col_field != "ignore" and col_field in seen_fields:
            notes.append(
                f"columns {seen_fields[col_field]!r} and {original!r} both look like "
                f"{col_field}; {original!r} is left unmapped"
            )
            col_field = None
        seen_keys[key] = original
        if col_field:
            seen_fields[col_field] = original
        columns.append(Column(index=index, original=original, key=key, field=col_field))
    return columns, errors, notes


# --------------------------------------------------------------------------- rows


def _delimiter_name(delimiter: str) -> str:
    return "a tab" if delimiter == "\t" else repr(delimiter)


def _show(text: str) -> str:
    """Make undecodable bytes visible as ``\\xNN`` in messages and raw text."""
    return _SURROGATE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)


def _cell(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _iter_records(
    source: Iterable[str], dialect: Dialect, width: list[int] | None = None
) -> Iterator[tuple[int, list[str] | None, str, str | None]]:
    """Yield (physical start line, cells or None, raw text, csv error or None) per record.

    ``width`` (set once the header is read) guards against a stray quote: a quote opened
    and never closed makes the csv module read every following line into one cell, to
    the next quote or to the end of the file. A record over several lines is a stray
    quote's when it ends inside a quoted cell, when a closing quote in it is followed by
    more of the cell (it closed another row's quote), or when it has the wrong number of
    cells and a line after its first is a whole row by itself: its first line is given
    as an error, and the lines after it are read again on their own, so no row is hidden
    inside another. (A closed quoted cell over several lines is data: an address, a
    note.)"""
    consumed: list[str] = []
    pending: deque[str] = deque()  # lines given back, read again before the source
    source_lines = iter(source)
    counter = [0]

    def lines() -> Iterator[str]:
        while True:
            if pending:
                line = pending.popleft()
            else:
                line = next(source_lines, None)
                if line is None:
                    return
            counter[0] += 1
            consumed.append(line)
            yield line

    def reader() -> Iterator[list[str]]:
        return csv.reader(
            lines(),
            delimiter=dialect.delimiter,
            quotechar='"',
            doublequote=True,
            skipinitialspace=dialect.skip_initial_space,
            strict=False,
        )

    def _give_back() -> str:
        """The record's first line (its raw text); the lines after it are read again."""
        first = consumed[0]
        pending.extendleft(reversed(consumed[1:]))
        counter[0] -= len(consumed) - 1
        consumed.clear()
        return first.rstrip("\r\n")

    records = reader()
    while True:
        start = counter[0] + 1
        try:
            record = next(records)
        except StopIteration:
            if not pending:
                return
            records = reader()
            continue
        except csv.Error as exc:
            if width and len(consumed) > 1:
                # Most often a quote never closed, its cell grown past the csv module's
                # limit: the lines after the first are read again, as below.
                yield start, None, _give_back(), _STRAY_QUOTE
                records = reader()
                continue
            raw = "".join(consumed)
            consumed.clear()
            yield start, None, raw.rstrip("\r\n"), _csv_error(str(exc))
            if not raw:
                return
            continue
        raw = "".join(consumed)
        if width:
            if len(consumed) > 1:
                state = _quote_state(raw, dialect)
                if state != "closed" or (
                    len(record) != width[0] and _holds_a_row(consumed[1:], width[0], dialect)
                ):
                    yield start, None, _give_back(), _STRAY_QUOTE
                    records = reader()  # a fresh reader: the old one may have seen the end
                    continue
            # An odd number of quotes is rare (5'10"): only then is the line scanned.
            elif raw.count('"') % 2 == 1 and _quote_state(raw, dialect) == "open":
                consumed.clear()  # on the file's last line: nothing after it to read again
                yield start, None, raw.rstrip("\r\n"), _STRAY_QUOTE_AT_END
                continue
        consumed.clear()
        yield start, record, raw.rstrip("\r\n"), None


_STRAY_QUOTE = (
    "a quote opened in this row is never closed, so the lines after it would have been"
    " read into one cell; close or remove the quote (the lines after it were read on"
    " their own)"
)


_STRAY_QUOTE_AT_END = (
    "a quote opened in this row is never closed (the file ends inside it); close or remove"
    " the quote"
)


def _csv_error(message: str) -> str:
    if "field larger than field limit" in message:
        return f"a cell longer than {csv.field_size_limit():,} characters: shorten it"
    return message


def _quote_state(raw: str, dialect: Dialect) -> str:
    """How a record's quotes stand, read as the csv module reads them (strict=False): a
    quote opens a cell only at the cell's start; inside, a doubled quote is a quote and
    a single one closes it. "open": the text ends inside a quoted cell; "stray": a
    closing quote is followed by more of the cell (it closed someone else's quote, as
    when a stray quote runs on to the next row's quoted cell); "closed": neither."""
    quoted, at_start, closed_at, i = False, True, -2, 0  # -2: no quote closed yet
    while i < len(raw):
        ch = raw[i]
        if quoted:
            if ch == '"':
                if raw.startswith('"', i + 1):
                    i += 1
                else:
                    quoted, closed_at = False, i
        elif ch == '"' and at_start:
            quoted, at_start = True, False
        elif ch == dialect.delimiter or ch in "\r\n":
            at_start = True
        elif closed_at == i - 1:
            return "stray"
        elif not (ch == " " and at_start and dialect.skip_initial_space):
            at_start = False
        i += 1
    return "open" if quoted else "closed"


def _holds_a_row(lines: list[str], width: int, dialect: Dialect) -> bool:
    """Whether one of ``lines``, read on its own, is a whole row of ``width`` cells."""
    return any(
        len(cells) == width
        for line in lines
        for cells in csv.reader([line.rstrip("\r\n")], delimiter=dialect.delimiter)
    )


@dataclass
class StreamResult:
    """The header and dialect, read up front, and the records as a one-pass iterator."""

    dialect: Dialect
    header: list[Column]
    records: Iterator[Row | RowError]
    header_errors: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    blank_rows: int = 0  # grows as ``records`` is consumed

    @property
    def ok(self) -> bool:
        return not self.header_errors


def _start(lines: Iterable[str], dialect: Dialect, delimiter: str | None) -> StreamResult:
    width: list[int] = []  # known once the header is read
    records = _iter_records(lines, dialect, width)
    codec = dialect.encoding

    header_cells: list[str] | None = None
    header_line = 0
    for _start_line, cells, _raw, error in records:
        header_line += 1
        if error:
            return StreamResult(
                dialect, [], iter(()), header_errors=[f"the header row cannot be read: {error}"]
            )
        if cells and any(c.strip(" " + _INVISIBLE) for c in cells):
            header_cells = cells
            break
    if header_cells is None:
        return StreamResult(
            dialect, [], iter(()), messages=["the file is empty: no header row and no data"]
        )

    # A delimiter ending the header ("Email,Name,") names no column: a row's cells past
    # the named ones are dropped when empty, and a row error when they hold something.
    while len(header_cells) > 1 and not header_cells[-1].strip(" \t" + _INVISIBLE):
        header_cells = header_cells[:-1]
    header, header_errors, notes = _build_header(header_cells)
    width.append(len(header))
    if len(header) == 1 and delimiter:
        others = [d for d in CANDIDATE_DELIMITERS if d != delimiter and d in header_cells[0]]
        if others:
            shown = "tab" if others[0] == "\t" else others[0]
            header_errors.append(
                f"the single header cell {header_cells[0]!r} contains {shown!r}: the file is "
                f"probably {shown!r}-separated, not {delimiter!r}-separated"
            )
    for problem in [c.original for c in header if _SURROGATE.search(c.original)]:
        header_errors.append(
            f"the column name {_show(problem)!r} holds bytes that are not valid {codec}"
        )
    result = StreamResult(dialect, header, iter(()), header_errors=header_errors, messages=notes)

    if dialect.encoding_source == "given":  # the bytes say the encoding given is wrong
        hint = "; check the encoding given (--encoding), or leave it out to detect it"
    elif codecs.lookup(codec).name == "utf-8":
        # The rest of the file is UTF-8: another encoding would garble every other accent.
        hint = (
            "; the rest of the file is UTF-8, so fix this row's letters (in the"
            " rejected-rows file) rather than giving another encoding"
        )
    else:
        hint = ""

    def rows() -> Iterator[Row | RowError]:
        width = len(header)
        keys = [col.key for col in header]
        line = header_line
        for start, cells, raw, error in records:
            line += 1
            if error:
                yield RowError(line, f"cannot be read as CSV: {error}", _show(raw))
                continue
            if not cells or not any(c.strip(" \t" + _INVISIBLE) for c in cells):
                result.blank_rows += 1
                continue
            if len(cells) > width and not any(c.strip() for c in cells[width:]):
                cells = cells[:width]  # a delimiter at the end of the row: nothing is lost
            if len(cells) != width:
                reason = f"expected {width} cells as in the header, found {len(cells)}" + (
                    f" (a cell holding {_delimiter_name(dialect.delimiter)} must be in double quotes)"
                    if len(cells) > width
                    else ""
                )
                yield RowError(line, reason, _show(raw))
                continue
            # Undecodable bytes are rare: look at the cells only when the record has some.
            if _SURROGATE.search(raw):
                bad = [
                    col.original
                    for col, c in zip(header, cells, strict=True)
                    if _SURROGATE.search(c)
                ]
                if bad:
                    names = ", ".join(repr(b) for b in bad)
                    yield RowError(
                        line,
                        f"column {names}: bytes that are not valid {codec}{hint}",
                        _show(raw),
                    )
                    continue
            # A CR inside a quoted cell is a line break (a raw without one has none).
            yield Row(
                line=line,
                cells=dict(zip(keys, map(_cell, cells) if "\r" in raw else cells, strict=True)),
                raw=raw,
                physical_line=start,
            )

    result.records = rows()
    return result


def read(data: bytes, *, encoding: str | None = None, delimiter: str | None = None) -> ReadResult:
    """Read a whole CSV upload. Raises ``NotTextError`` for binary content; never loses a row."""
    text, codec, how, warnings = _decode(data, encoding)
    dialect = _dialect_for(text, codec, how, warnings, delimiter)
    stream = _start(io.StringIO(text, newline=""), dialect, delimiter)
    result = ReadResult(
        dialect,
        stream.header,
        header_errors=stream.header_errors,
        messages=stream.messages,
    )
    for record in stream.records:
        (result.rows if isinstance(record, Row) else result.errors).append(record)
    result.blank_rows = stream.blank_rows
    if stream.header and not result.rows and not result.errors:
        result.messages.append("the file has a header row but no data rows")
    if result.blank_rows:
        result.messages.append(f"{result.blank_rows} blank row(s) skipped")
    return result


class _Chain(io.RawIOBase):
    """The bytes already read for detection, then the rest of the file object."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        chunk = self._rest.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def read_stream(
    fileobj: BinaryIO,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    sample_size: int = 256 * 1024,
) -> StreamResult:
    """Read a big CSV in constant memory: dialect and header from a sample, then records lazily.

    The encoding is judged from the first ``sample_size`` bytes; every byte is still decoded
    once (an incremental decoder), and bytes the chosen codec cannot decode later in the file
    become row errors exactly as in ``read``.
    """
    sample = fileobj.read(sample_size)
    complete = len(sample) < sample_size
    codec, how, skip, warnings = _detect_encoding(sample, encoding, complete)
    head = sample[skip:]
    sample_text = codecs.getincrementaldecoder(codec)(errors="surrogateescape").decode(
        head, final=complete
    )
    dialect = _dialect_for(sample_text, codec, how, warnings, delimiter)
    text = io.TextIOWrapper(
        io.BufferedReader(_Chain(head, fileobj)),
        encoding=codec,
        errors="surrogateescape",
        newline="",
    )
    return _start(text, dialect, delimiter)
