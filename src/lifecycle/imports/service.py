"""Importing a CSV file of customers: read once, map, resolve through the identity layer.

Each row becomes an identify call, validated by :func:`lifecycle.events.service.parse_items`
and stored by :func:`lifecycle.events.service.ingest_parsed` (the same normalisation,
matching and history as the API), keyed by the file's checksum and the row's line, so
re-running a file changes nothing and an interrupted import resumes where it stopped.
Every rejected row is kept with its line, text and reason.

Speed: a big file's rows are mapped and validated (the costly, pure part) in worker
processes, a batch ahead of the main process, which only writes; batches of new people
are written set-wise (``IngestOptions.new_people_set_wise``).
"""

from __future__ import annotations

import bisect
import codecs
import csv
import dataclasses
import email.utils
import gc
import hashlib
import io
import json
import multiprocessing
import os
import re
import sys
import time
import types
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from lifecycle import jobs
from lifecycle.errors import Invalid, NotFound
from lifecycle.events.calls import Call
from lifecycle.events.service import Draft, IngestOptions, draft, ingest_parsed, parse_items
from lifecycle.imports import reader, values
from lifecycle.imports.models import Import, ImportRejection, ImportWarning
from lifecycle.profiles import service as profiles
from lifecycle.profiles.identifiers import Identifier, is_national_phone, phone_region

KEYS = ("email", "phone", "id")
CONSENT = {"accepts_email_marketing": "email", "accepts_sms_marketing": "sms"}
# Columns that say someone left a channel: "yes" (or "unsubscribed") means they did.
UNSUBSCRIBED = frozenset(
    ("unsubscribed", "unsubscribed_email", "unsubscribed_sms", "unsubscribed_push")
)
# Columns of comma-separated items added to what a person holds (as --list and --tag).
LIST_FIELDS = ("lists", "tags")
# An opt-out a file never undoes (an old export would re-subscribe people who left), with
# the consent that goes with it.
KEEP_OPT_OUTS = (
    ("unsubscribed", ()),
    *((f"unsubscribed_{channel}", (name,)) for name, channel in CONSENT.items()),
    ("unsubscribed_push", ()),
)
_AFFIRM = frozenset({"yes", "y", "true", "1", "x"})
_DENY = frozenset({"no", "n", "false", "0"})
_IN = frozenset({"subscribed", "opted in", "opt-in"})
_OUT = frozenset({"unsubscribed", "opted out", "opt-out", "not subscribed"})
YES, NO = _AFFIRM | _IN, _DENY | _OUT  # a consent column: yes means subscribed
UNSUBSCRIBED_YES, UNSUBSCRIBED_NO = _AFFIRM | _OUT, _DENY | _IN  # an unsubscribe column
BATCH = 5000  # rows per unit of work: one task for a worker process, one write
PARALLEL_MIN_BYTES = 2 << 20  # smaller files are prepared in the main process


@dataclass
class ImportOptions:
    key: str | None = None  # email | phone | id; default: the first of them the file has
    mapping: dict[str, str] = field(default_factory=dict)  # column header -> field
    encoding: str | None = None
    delimiter: str | None = None
    empty_clears: bool = False  # an empty cell clears the field (default: leaves it)
    missing_markers: tuple[str, ...] | None = None  # default: values.DEFAULT_MARKERS
    dry_run: bool = False
    existing: str = "update"  # update | fill_empty | skip (profiles that already exist)
    # Columns neither recognised nor mapped: refuse the import until decided, keep them
    # as attributes named after their header, or ignore them.
    unknown_columns: str = "refuse"
    lists: tuple[str, ...] = ()  # added to everyone imported (attribute "lists")
    tags: tuple[str, ...] = ()  # added to everyone imported (attribute "tags")
    # default: birthday and fields ending _date, _at or _time (those two: date-times too)
    date_fields: tuple[str, ...] | None = None
    date_order: str | None = None  # DMY | MDY | YMD; needed when day and month can swap
    excel_serials: bool = False  # read numbers like 31182 in date fields as spreadsheet dates
    year_required: bool = False  # reject dates without a year (15/05) instead of month-day
    # Processes that map and validate rows while the main one writes (0: the main process
    # does it); None: two for files over PARALLEL_MIN_BYTES on a machine of 2+ cores.
    workers: int | None = None
    # Region for phone numbers written without their country (0555 0100 123), unless the
    # row has a country column; default: the settings' default_phone_region.
    phone_region: str | None = None
    via: str = "cli"  # cli | http: how messages name the options (--map or map=)


@dataclass
class Report:
    import_id: int | None
    filename: str
    encoding: str
    delimiter: str
    key: str
    columns: list[dict[str, Any]]
    counts: dict[str, int]
    rejections: list[dict[str, Any]]
    preview: list[dict[str, Any]]
    status: str
    message: str = ""
    notes: list[str] = field(default_factory=list)  # the rules the import read cells by
    warnings: list[str] = field(default_factory=list)  # cells to look at before trusting it
    # Rows of a person read before ("into": that row's line, None: in an earlier batch).
    folded: list[dict[str, Any]] = field(default_factory=list)
    # Rows imported with warnings, the first 100: {"line", "warnings"} each.
    warned: list[dict[str, Any]] = field(default_factory=list)


UNDECIDED = "(not mapped)"


def _field_of(column: Any, mapping: dict[str, str], unknown: str) -> str:
    for name in (column.original, column.original.strip(), column.key):
        if name in mapping:
            return mapping[name]
    # "--map 'first name=given_name'" for a header "First Name": as headers are read.
    folded = {reader.normalise_header(name): field for name, field in mapping.items()}
    if column.key in folded:
        return folded[column.key]
    if column.field:
        return column.field
    return {"keep": column.key, "ignore": "ignore"}.get(unknown, UNDECIDED)


def _is_date_field(name: str, options: ImportOptions) -> bool:
    if options.date_fields is not None:
        return name in options.date_fields
    return name in ("birthday", "date_of_birth") or name.endswith(("_date", "_at", "_time"))


def _is_moment_field(name: str) -> bool:
    """A field for an instant ("Created At", "OPTIN_TIME"): a date-time or a date."""
    return name.endswith(("_at", "_time"))


# An ISO-like date-time as exports write it: "2023-04-01 12:34:56 -0400",
# "2023-04-01T12:34:56Z", "2023-04-01 12:34".
_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE,
)
# "Sat, 01 Apr 2023 12:34:56 +0000" (RFC 2822, e-mail and HTTP dates): a month name.
_RFC_2822 = re.compile(r"(?:[A-Za-z]{3},\s*)?\d{1,2}\s+[A-Za-z]{3}\s+\d{4}\s+\d{1,2}:\d{2}.*")


_SERIAL_TIME = re.compile(r"(\d{1,7})\.(\d+)")
_SHEET_TIME = re.compile(r"(.+?)[ T](\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AP]M)?", re.IGNORECASE)


def _moment_text(text: str, name: str, options: ImportOptions, line: int) -> str:
    """ISO text for a date-time cell (UTC when it names its offset, else as written); a
    cell with a date only is read as :func:`_date_text` reads it."""
    cell = text.strip()
    serial = _SERIAL_TIME.fullmatch(cell)
    if serial is not None and options.excel_serials:
        # A spreadsheet's date-time: days since its epoch, the fraction the time of day.
        day = _date_text(serial[1], name, options, line)
        seconds = round(float(f"0.{serial[2]}") * 86400)
        if seconds >= 86400:  # .9999999 rounds up to midnight: the next day is the date's
            seconds = 86399
        return f"{day}T{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    match = _DATE_TIME.fullmatch(cell)
    if match is None and _RFC_2822.fullmatch(cell):
        try:
            # -0000 is UTC with the sender's zone unknown: the instant is known.
            moment = email.utils.parsedate_to_datetime(re.sub(r"-0000$", "+0000", cell))
        except (TypeError, ValueError):
            raise Invalid(
                f"column {name}: {text!r}: cannot read it as a date-time", field=f"row {line}"
            ) from None
        if moment.tzinfo is None:  # a zone it does not know: never read as some other
            raise Invalid(
                f"column {name}: {text!r}: its time zone is not known; write the offset (+0200)",
                field=f"row {line}",
            )
        return moment.astimezone(UTC).isoformat()
    if match is None:
        spreadsheet = _SHEET_TIME.fullmatch(cell)
        if spreadsheet is None:
            return _date_text(text, name, options, line)
        # "4/1/2023 12:34 PM": the date under the import's date rules, then the time.
        try:
            day = _date_text(spreadsheet[1], name, options, line)
        except Invalid as err:  # its reason quotes the whole cell, not its date alone
            raise Invalid(
                err.message.replace(repr(spreadsheet[1]), repr(text)), field=err.field
            ) from None
        hour, minute, second = int(spreadsheet[2]), int(spreadsheet[3]), int(spreadsheet[4] or 0)
        half = (spreadsheet[5] or "").upper()
        if half and not 1 <= hour <= 12:
            raise Invalid(f"column {name}: {text!r}: impossible time", field=f"row {line}")
        hour = hour % 12 + (12 if half == "PM" else 0) if half else hour
        if day.startswith("--") or hour > 23 or minute > 59 or second > 59:
            raise Invalid(f"column {name}: {text!r}: impossible date-time", field=f"row {line}")
        return f"{day}T{hour:02d}:{minute:02d}:{second:02d}"
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    zone = None
    if offset:
        offset = offset.upper()
        if offset in ("Z", "UTC", "GMT"):
            zone = UTC
        else:
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            hours, minutes = int(digits[:2]), int(digits[2:] or 0)
            if hours > 23 or minutes > 59:
                raise Invalid(
                    f"column {name}: {text!r}: impossible offset {offset} (-23:59 to +23:59)",
                    field=f"row {line}",
                )
            zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),  # .1234567 (.NET): microseconds
            tzinfo=zone,
        )
    except ValueError as err:
        raise Invalid(
            f"column {name}: {text!r}: impossible date-time ({err})", field=f"row {line}"
        ) from None
    return (moment.astimezone(UTC) if zone else moment).isoformat()


def _date_text(text: str, name: str, options: ImportOptions, line: int) -> str:
    """ISO text for a date cell read under the declared rule; never a guessed or stand-in
    date. A date without a year is stored as ``--MM-DD`` (ISO 8601)."""
    try:
        parsed = values.parse_date(
            text,
            order=options.date_order,  # type: ignore[arg-type]
            serials=options.excel_serials,
            year_required=options.year_required,
        )
    except ValueError as err:
        raise Invalid(f"column {name}: {text!r}: {err}", field=f"row {line}") from None
    if isinstance(parsed, values.MonthDay):
        return f"--{parsed.month:02d}-{parsed.day:02d}"
    return parsed.isoformat()


def _yes_or_no(
    text: str, name: str, yes: frozenset[str], no: frozenset[str], problems: list[str]
) -> bool:
    answer = text.strip().casefold()
    if answer not in yes | no:
        problems.append(f"column {name}: {text!r} is neither yes nor no")
    return answer in yes


def _items(text: str) -> list[str]:
    """The items of a tags or lists cell: "gold, silver", or quoted as Mailchimp writes
    them ('"Customer","VIP Club"'); once each, the first spelling kept (vip, VIP)."""
    if text.lstrip().startswith('"'):
        parts = next(csv.reader([text.strip()], skipinitialspace=True), [])
    else:
        parts = text.split(",")
    kept: dict[str, str] = {}
    for part in parts:
        item = part.strip()
        if item:
            kept.setdefault(item.casefold(), item)
    return list(kept.values())


_SHOWN_BYTE = re.compile(r"\\x[89a-f][0-9a-f]")  # how a rejected row shows a byte not decoded


def _call(
    line: int,
    cells: dict[str, str],
    fields: dict[str, str],
    key: str,
    options: ImportOptions,
    stamp: str,
    line_id: str,
    rule: values.MissingRule,
    stats: CellStats,
) -> dict[str, Any]:
    traits: dict[str, Any] = {}
    user_id = None
    problems: list[str] = []
    for column_key, text in cells.items():
        name = fields[column_key]
        if name in ("ignore", UNDECIDED):
            continue
        if "\\x" in text and _SHOWN_BYTE.search(text):
            # A byte a rejected row showed as \xe9 (0x80-0xFF: never an ASCII letter),
            # still in the file fixed from it (its notes columns kept or not): as text it
            # would be stored as a name. Written on purpose, such text is vanishingly rare.
            raise Invalid(
                f"column {column_key}: holds bytes shown as \\xNN (not valid in the first"
                " file's encoding, as its rejected rows show them): replace each with the"
                " letter it stands for",
                field=f"row {line}",
            )
        kind = rule.classify(text)
        if kind == "empty" or kind == "marker":
            stats.count(column_key, kind)
            if options.empty_clears:
                traits[name] = None
            continue
        if kind == "looks-missing":
            stats.looks_missing(line, column_key, text)
        if name == "id":
            user_id = text.strip()
            continue
        if _is_date_field(name, options):
            read = _moment_text if _is_moment_field(name) else _date_text
            try:
                traits[name] = read(text, name, options, line)
            except Invalid as err:
                problems.append(err.message)  # every bad cell of the row is named
            continue
        # Consent and unsubscribes are a yes or a no, stored as one, never text; anything
        # else is a question for a person.
        if name in UNSUBSCRIBED:
            traits[name] = _yes_or_no(text, name, UNSUBSCRIBED_YES, UNSUBSCRIBED_NO, problems)
            continue
        if name in CONSENT:
            consents = _yes_or_no(text, name, YES, NO, problems)
            traits[f"unsubscribed_{CONSENT[name]}"] = text.strip().casefold() in NO
            traits[name] = consents
            continue
        if name in LIST_FIELDS:  # "gold, silver": two tags, added to those held
            traits[name] = _items(text)
            continue
        # Spaces around an address are a spreadsheet's, not the person's: messages go to
        # the attribute, and " ava@example.com " would be an update of nothing.
        traits[name] = text.strip() if name == "email" else text
    if problems:
        raise Invalid("; ".join(problems), field=f"row {line}")
    if key == "id" and user_id is None:
        raise Invalid("the key column (id) is empty", field=f"row {line}")
    if key in ("email", "phone") and not traits.get(key):
        raise Invalid(f"the key column ({key}) is empty", field=f"row {line}")
    call: dict[str, Any] = {
        "type": "identify",
        "traits": traits,
        "messageId": line_id,
        "timestamp": stamp,
    }
    if user_id is not None:
        call["userId"] = user_id
    return call


def run(
    session: Session,
    data: bytes | BinaryIO,
    *,
    filename: str,
    options: ImportOptions,
    ingest_options: IngestOptions,
    now: datetime,
    record: Import | None = None,
    on_batch: Callable[[Import], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Report:
    """Import (or, with ``dry_run``, only preview and count) one file.

    ``record``: an import queued earlier (the API's), else one is made. ``on_batch``
    is called after each batch of rows, so an entrypoint may commit progress; rows
    already imported are recognised on a re-run, so committing part way is safe (it is
    not called in a dry run). ``on_progress`` gets the rows read after each batch, in a
    dry run too: for a progress bar.
    """
    if options.dry_run:  # everything is rolled back: so are the jobs it would send
        with jobs.held_back(session):
            return _run(
                session,
                data,
                filename=filename,
                options=options,
                ingest_options=ingest_options,
                now=now,
                record=record,
                on_batch=on_batch,
                on_progress=on_progress,
            )
    return _run(
        session,
        data,
        filename=filename,
        options=options,
        ingest_options=ingest_options,
        now=now,
        record=record,
        on_batch=on_batch,
        on_progress=on_progress,
    )


_CHOICES = {
    "key": (None, *KEYS),
    "existing": ("update", "fill_empty", "skip"),
    "unknown_columns": ("refuse", "keep", "ignore"),
    "date_order": (None, "DMY", "MDY", "YMD"),
}
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,99}")
_DELIMITER_WORDS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def checked(options: ImportOptions) -> ImportOptions:
    """The options, or Invalid naming the first that is not one of its choices."""
    for name, allowed in _CHOICES.items():
        value = getattr(options, name)
        if value not in allowed:
            shown = ", ".join(a for a in allowed if a is not None)
            raise Invalid(f"{value!r} is not one of {shown}", field=name)
    if options.encoding is not None:
        try:
            info = codecs.lookup(options.encoding)
        except LookupError:
            raise Invalid(f"unknown encoding {options.encoding!r}", field="encoding") from None
        if not getattr(info, "_is_text_encoding", True):  # rot13, base64, zlib...
            raise Invalid(f"{options.encoding!r} is not a text encoding", field="encoding")
    delimiter = options.delimiter
    if delimiter is not None:
        delimiter = _DELIMITER_WORDS.get(delimiter.casefold(), delimiter)
        if len(delimiter) != 1 or delimiter in ('"', "\r", "\n") or delimiter.isalnum():
            raise Invalid(
                f"{options.delimiter!r} is not a delimiter: give one character such as , ; |"
                " or the word tab",
                field="delimiter",
            )
    targets: dict[str, str] = {}
    for column, target in options.mapping.items():
        if target == "ignore":
            continue
        if not _FIELD_NAME.fullmatch(target):
            raise Invalid(
                f"column {column!r} is mapped to {target!r}: a field name is letters, digits,"
                " _ . or -, starting with a letter or _",
                field="mapping",
            )
        if target in targets:
            raise Invalid(
                f"columns {targets[target]!r} and {column!r} are both mapped to {target}:"
                " map one elsewhere or to ignore",
                field="mapping",
            )
        targets[target] = column
    return dataclasses.replace(options, delimiter=delimiter)


def _run(
    session: Session,
    data: bytes | BinaryIO,
    *,
    filename: str,
    options: ImportOptions,
    ingest_options: IngestOptions,
    now: datetime,
    record: Import | None,
    on_batch: Callable[[Import], None] | None,
    on_progress: Callable[[int], None] | None = None,
) -> Report:
    options = checked(options)
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    # Streaming: constant memory whatever the file's size.
    checksum, size = _checksum(stream)
    read = _open(stream, filename, options)
    fields, key, refusal = _plan(read, filename, options)
    savepoint = session.begin_nested() if options.dry_run else None
    if record is None:
        record = Import(filename=filename, created_at=now, counts={})
        session.add(record)
    record.checksum = checksum
    record.status = "running"
    record.started_at = now
    started = time.monotonic()
    record.options = _saved(options)
    record.encoding = f"{read.dialect.encoding} ({read.dialect.encoding_source})"
    record.delimiter = read.dialect.delimiter
    record.columns = [{"header": c.original, "field": fields[c.key]} for c in read.header]
    record.updated_at = now
    session.flush()
    counts = {
        k: 0
        for k in (
            "read",
            "created",
            "updated",
            "unchanged",
            "rejected",
            "repeated_in_file",
            "warned",
        )
    }
    rejections: list[dict[str, Any]] = []
    folded: list[dict[str, Any]] = []  # rows of a person already read: the first 100
    warned: list[dict[str, Any]] = []  # rows imported with warnings: the first 100
    preview: list[dict[str, Any]] = []
    region = ingest_options.default_region
    if options.phone_region:
        try:
            region = phone_region(options.phone_region)
        except ValueError as err:
            raise Invalid(str(err), field="phone_region") from None
    opts = IngestOptions(
        **{
            **ingest_options.__dict__,
            "default_region": region,
            "source": "csv",
            "empty_clears": options.empty_clears,
            "require_user_or_anonymous": False,
            "existing": options.existing,
            "new_people_set_wise": True,
            "keep_opt_outs": KEEP_OPT_OUTS,
            "history_source": f"csv import {record.id}",
            "added_fields": LIST_FIELDS,
            "add_to_lists": tuple(
                (name, tuple(items))
                for name, items in (("lists", options.lists), ("tags", options.tags))
                if items
            ),
        }
    )
    seen_keys = SeenKeys()
    header_of = {c["field"]: c["header"] for c in record.columns}  # for warnings
    created: set[int] = set()
    already = 0  # rows this same file, read the same way, imported before

    def reject(line: int, raw: str, reason: str) -> None:
        reason = _in_file_terms(reason, header_of)
        counts["rejected"] += 1
        if len(rejections) < 100:  # all of them are stored; the report shows the first
            rejections.append({"line": line, "raw": raw, "reason": reason})
        session.add(ImportRejection(import_id=record.id, line=line, raw=raw, reason=reason))

    def store(prepared: list[Prepared]) -> None:
        # The rows of one person in a batch are folded into the first (later non-empty
        # values win) and written once: one change in the history, not A -> B -> A. A
        # person's rows in different batches are applied in turn, the later on top.
        nonlocal already
        batch: list[tuple[int, str, Call]] = []
        drafts: list[Draft | None] = []  # each row's rows as a new person, made ahead
        first_of: dict[str, int] = {}  # a person's key -> their row's index in the batch
        folded_into: dict[int, list[tuple[int, str]]] = {}  # index -> rows folded into it
        earlier_batch: set[int] = set()  # indexes of people seen in an earlier batch
        for item in prepared:
            counts["read"] += 1
            if item[0] == "rejected":
                reject(item[1], item[2], item[3])
                continue
            _, line, raw, packed, identity, drafted = item
            call = _unpack(packed, now)
            index = first_of.get(identity) if identity else None
            if index is not None:
                first_line, first_raw, first_call = batch[index]
                batch[index] = (first_line, first_raw, _fold(first_call, call))
                drafts[index] = None  # the fold's rows differ: made again if it is new
                folded_into.setdefault(index, []).append((line, raw))
                continue
            if identity:
                first_of[identity] = len(batch)
            if seen_keys.seen(hash(identity)):
                earlier_batch.add(len(batch))
            batch.append((line, raw, call))
            drafts.append(drafted)
        results = ingest_parsed(
            session, [c for _, _, c in batch], now=now, options=opts, drafts=drafts
        )
        created.clear()  # a person made by an earlier batch is found, not made, by a later one
        for index, ((line, raw, call), result) in enumerate(zip(batch, results, strict=True)):
            rows = folded_into.get(index, [])
            if result.status == "rejected":
                for each_line, each_raw in [(line, raw), *rows]:  # nothing folded is lost
                    reject(each_line, each_raw, _reason(result.field, result.error))
                continue
            for each_line, _ in rows:
                counts["repeated_in_file"] += 1
                if len(folded) < 100:
                    folded.append({"line": each_line, "into": line})
            if index in earlier_batch:  # its outcome is the earlier row's, updated
                counts["repeated_in_file"] += 1
                if len(folded) < 100:
                    folded.append({"line": line, "into": None})
            elif result.created and result.profile_id not in created:
                created.add(result.profile_id)  # a person twice in one batch is made once
                counts["created"] += 1
            elif result.status == "duplicate":
                already += 1
                counts["unchanged"] += 1
            elif not result.changed:
                counts["unchanged"] += 1
            else:
                counts["updated"] += 1
            said = [_in_file_terms(text, header_of) for text in result.warnings]
            if said:  # every one kept, as rejected rows are
                counts["warned"] += 1
                if len(warned) < 100:
                    warned.append({"line": line, "warnings": said})
                session.add_all(
                    ImportWarning(import_id=record.id, line=line, warning=text) for text in said
                )
            if len(preview) < 10 and result.status != "rejected":
                preview.append(
                    {
                        "line": line,
                        "traits": call.traits,  # what the row says
                        "warnings": said,
                        "profile_id": result.profile_id,
                    }
                )
        record.rows_done = counts["read"]
        record.counts = dict(counts)
        record.updated_at = now + timedelta(seconds=time.monotonic() - started)
        if on_batch is not None and not options.dry_run:
            on_batch(record)
        if on_progress is not None:
            on_progress(counts["read"])

    # A row's country (a code or a name) gives the region of its national phone numbers.
    countries = tuple(
        k for f in ("country_code", "country") for k, name in fields.items() if name == f
    )
    markers = values.DEFAULT_MARKERS if options.missing_markers is None else options.missing_markers
    context = Context(
        fields,
        key,
        options,
        now.isoformat(),
        f"{checksum[:24]}:{_recipe(options, key)}",
        opts,
        now,
        countries,
        values.MissingRule(markers),
    )
    stats = CellStats()
    workers = options.workers
    if workers is None:
        # Two processes keep ahead of the writer (measured on two cores, 200,000 rows:
        # 41.9 s with one, 30.9 s with two); past two, the writer and PostgreSQL are the
        # slower part, and more would only compete with them for cores.
        cores = os.cpu_count() or 1
        workers = min(2, cores) if size >= PARALLEL_MIN_BYTES and cores > 1 else 0
    with _young_collections_only():
        for n, (prepared, chunk_stats) in enumerate(
            _prepared(_chunks(read.records), context, workers), 1
        ):
            stats.add(chunk_stats)
            store(prepared)
            if n % 10 == 0:  # its cost is the batches alive, not those since the last
                gc.collect(1)
    # The first rows as they are (or, in a dry run, would be) stored: the profile after
    # the row, its existing values, kept opt-outs and added tags included.
    shown = profiles.attributes_of(
        session, sorted({p["profile_id"] for p in preview if p["profile_id"]})
    )
    for row in preview:
        row["stored"] = shown.get(row.pop("profile_id"))
    record.columns = [
        {**column, "missing": sum(stats.missing.get(c.key, {}).values())}
        for c, column in zip(read.header, record.columns, strict=True)
    ]
    notes, warnings = _missing_notes(read.header, stats, markers, options)
    # How the file was read: a given encoding the bytes contradict, a field claimed twice.
    warnings = [*read.dialect.warnings, *read.messages, *warnings]
    if already:
        warnings.append(
            f"{already} row(s) were imported before from this same file read with these same"
            " options (an earlier or interrupted run) and were not applied again; counted as"
            " unchanged"
        )
    imported = counts["created"] + counts["updated"] + counts["unchanged"]
    if counts["read"] and imported == 0:
        status, message = "failed", f"0 of {counts['read']} rows imported: see the rejected rows"
    elif counts["read"] == 0:
        status, message = "failed", "the file has a header but no rows"
    else:
        status, message = "done", ""
    if refusal:  # a dry run reads on to show the rest, but says the real run would not
        status, message = "refused", f"a real run would be refused: {refusal}"
    record.status, record.message, record.counts = status, message, counts
    record.updated_at = now + timedelta(seconds=time.monotonic() - started)
    if not options.dry_run:
        _close_interrupted(session, record)
    session.flush()
    report = Report(
        import_id=None if options.dry_run else record.id,
        filename=filename,
        encoding=record.encoding or "",
        delimiter=read.dialect.delimiter,
        key=key,
        columns=record.columns,
        counts=counts,
        rejections=rejections,
        folded=folded,
        warned=warned,
        preview=preview,
        status=status,
        message=message,
        notes=notes,
        warnings=warnings,
    )
    if savepoint is not None:
        savepoint.rollback()
    return report


def _open(stream: BinaryIO, filename: str, options: ImportOptions) -> reader.StreamResult:
    """The file's header and dialect read, its rows to stream; or why it cannot be read."""
    try:
        return reader.read_stream(stream, encoding=options.encoding, delimiter=options.delimiter)
    except reader.AmbiguousEncoding as err:
        raise Invalid(f"{filename}: {err}", field="encoding") from None
    except (reader.NotTextError, LookupError, UnicodeError) as err:
        # UnicodeError: a given encoding the bytes are not in (utf-16 without its BOM).
        raise Invalid(f"{filename}: {err}", field="file") from None


def _plan(
    read: reader.StreamResult, filename: str, options: ImportOptions
) -> tuple[dict[str, str], str, str]:
    """Each column's field, the key people are matched on, and why a real run would be
    refused ("" if it would not: a dry run reads on to show the rest); raises Invalid
    for a header that cannot be imported."""
    if read.header_errors:
        raise Invalid(f"{filename}: " + "; ".join(read.header_errors), field="header")
    if not read.header:
        raise Invalid(f"{filename}: the file is empty: no header row and no data", field="file")
    named = {n for c in read.header for n in (c.original, c.original.strip(), c.key)}
    strays = [
        column
        for column in options.mapping
        if column not in named and reader.normalise_header(column) not in named
    ]
    if strays:
        raise Invalid(
            f"the file has no column {strays[0]!r} to map (its columns: "
            + ", ".join(repr(c.original) for c in read.header)
            + ")",
            field="mapping",
        )
    fields = {c.key: _field_of(c, options.mapping, options.unknown_columns) for c in read.header}
    claimed: dict[str, str] = {}
    for column in read.header:
        target = fields[column.key]
        if target in ("ignore", UNDECIDED):
            continue
        if target in claimed:  # one would silently overwrite the other, row by row
            raise Invalid(
                f"columns {claimed[target]!r} and {column.original!r} are both mapped to"
                f" {target}: map one elsewhere or to ignore (--map 'COLUMN=ignore')",
                field="mapping",
            )
        claimed[target] = column.original
    undecided = [c.original for c in read.header if fields[c.key] == UNDECIDED]
    refusal = _unmapped(undecided, options.via) if undecided else ""
    if refusal and not options.dry_run:
        # A column nobody decided about is never dropped, nor imported unseen (B10).
        raise Invalid(refusal, field="mapping")
    present = set(fields.values())
    key = options.key or next((k for k in KEYS if k in present), "")
    if key not in KEYS:
        raise Invalid(
            "no column to match people on: map one to email, phone or id "
            f"(columns: {', '.join(c.original for c in read.header) or 'none'})",
            field="key",
        )
    if key not in present:
        raise Invalid(f"the file has no {key} column to match on", field="key")
    return fields, key, refusal


STALLED_AFTER = timedelta(minutes=10)  # a running import saves progress every few seconds
LOST_AFTER = timedelta(hours=1)  # an upload still queued: its job was lost (a restart)


def stalled(session: Session, *, now: datetime) -> list[int]:
    """Uploads whose worker stopped part way (killed, restarted) or whose job was lost:
    the scheduler's sweep queues them again, and the run resumes where they stopped
    (rows already in are recognised). Each is stamped, so it is queued once a period."""
    found = list(
        session.scalars(
            select(Import).where(
                Import.data.is_not(None),
                ((Import.status == "running") & (Import.updated_at < now - STALLED_AFTER))
                | ((Import.status == "queued") & (Import.updated_at < now - LOST_AFTER)),
            )
        )
    )
    for record in found:
        record.updated_at = now
    return [record.id for record in found]


def mark_interrupted(session: Session, import_id: int) -> None:
    """A run stopped part way by its user (Ctrl-C, a kill signal): the batches done stay,
    and the same command resumes it."""
    record = session.get(Import, import_id)
    if record is not None and record.status == "running":
        record.status = "interrupted"
        record.message = f"stopped after {record.rows_done} rows; the same command resumes it"


def _close_interrupted(session: Session, record: Import) -> None:
    """Earlier runs of this same file that stopped part way (interrupted, killed) no
    longer show as running: this run took over from where they stopped."""
    stale = session.scalars(
        select(Import).where(
            Import.checksum == record.checksum,
            Import.status == "running",
            Import.id != record.id,
        )
    )
    for earlier in stale:
        earlier.status = "interrupted"
        earlier.message = (
            f"stopped after {earlier.rows_done} rows; import {record.id} ran the file again"
            " and took over"
        )


def _unmapped(columns: list[str], via: str) -> str:
    if via == "http":
        how = (
            "map each (query map=COLUMN=field), ignore it (map=COLUMN=ignore),"
            " or keep all unknown columns as attributes (unknown_columns=keep)"
        )
    else:
        how = (
            "map each (--map 'COLUMN=field'), ignore it (--map 'COLUMN=ignore'),"
            " or keep all unknown columns as attributes (--unknown-columns keep)"
        )
    return f"columns not mapped: {', '.join(repr(c) for c in columns)}; {how}"


class SeenKeys:
    """The keys of the rows read so far, to report a person repeated in the file, in 8
    bytes a row (a Python set of ints takes about 70): sorted runs of 64-bit hashes,
    merged as they grow (each run at least twice the next), searched by bisection, plus
    the keys of the current run in a small set. A million rows take about 8 MB."""

    RUN = 5000

    def __init__(self) -> None:
        self._runs: list[array[int]] = []
        self._fresh: set[int] = set()

    def seen(self, key: int) -> bool:
        """Whether ``key`` came before; remembers it either way."""
        if key in self._fresh:
            return True
        for run in self._runs:
            i = bisect.bisect_left(run, key)
            if i < len(run) and run[i] == key:
                return True
        self._fresh.add(key)
        if len(self._fresh) >= self.RUN:
            self._settle()
        return False

    def _settle(self) -> None:
        run = array("q", sorted(self._fresh))
        self._fresh.clear()
        while self._runs and len(self._runs[-1]) <= 2 * len(run):
            run = array("q", sorted([*self._runs.pop(), *run]))
        self._runs.append(run)


@contextmanager
def _young_collections_only() -> Iterator[None]:
    """Python's automatic collections repeatedly walked every long-lived object (a
    third of the main process's time on a big file); while rows are imported, only the
    young objects are collected, every ten batches (the caller's ``gc.collect(1)``)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _missing_notes(
    header: list[Any], stats: CellStats, markers: tuple[str, ...], options: ImportOptions
) -> tuple[list[str], list[str]]:
    """The missing-value rule in words, the cells read as missing per column, and a warning
    per column holding words that look like a missing value but are kept as text."""
    effect = "clear the stored value" if options.empty_clears else "leave stored values unchanged"
    shown = ", ".join(markers)
    notes = [
        f"empty cells and the missing-value markers ({shown}) {effect}"
        if markers
        else f"empty cells {effect}; no missing-value markers: NULL and the like are text"
    ]
    originals = {c.key: c.original for c in header}
    for column, counts in stats.missing.items():
        if not counts["empty"] and not counts["marker"]:
            continue
        notes.append(
            f"column {originals[column]!r}: {counts['empty'] + counts['marker']} cell(s) read as"
            f" missing ({counts['empty']} empty, {counts['marker']} marker(s))"
        )
    warnings = []
    for column, n in stats.looking.items():
        cells = [s for s in stats.samples if s[1] == column]
        where = "; ".join(f"row {line}: {text!r}" for line, _, text in cells)
        more = f" and {n - len(cells)} more" if n > len(cells) else ""
        warnings.append(
            f"column {originals[column]!r} holds {n} cell(s) that look like a missing value but"
            f" are not among this import's markers, so are stored as text ({where}{more});"
            " declare them markers to read them as missing"
        )
    return notes, warnings


def _checksum(stream: BinaryIO) -> tuple[str, int]:
    """The SHA-256 of the rest of the stream, and its size; the stream is rewound."""
    digest = hashlib.sha256()
    start = stream.tell()
    size = 0
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    stream.seek(start)
    return digest.hexdigest(), size


# --------------------------------------------------------------------------- preparing rows

# A row read: ("row", line, raw, cells) or ("error", line, raw, reason).
Read = tuple[str, int, str, Any]
# A row prepared: ("ok", line, raw, call, identity, draft) or ("rejected", line, raw, reason).
Prepared = tuple[Any, ...]


@dataclass
class CellStats:
    """What the preview tells about missing values: per column, the cells read as missing
    (empty, or a marker), and the cells kept as text that look like a missing value."""

    missing: dict[str, dict[str, int]] = field(default_factory=dict)  # column key -> kind -> n
    looking: dict[str, int] = field(default_factory=dict)  # column key -> cells
    samples: list[tuple[int, str, str]] = field(default_factory=list)  # (line, column, text)

    def count(self, column: str, kind: str) -> None:
        counts = self.missing.setdefault(column, {"empty": 0, "marker": 0})
        counts[kind] += 1

    def looks_missing(self, line: int, column: str, text: str) -> None:
        self.looking[column] = self.looking.get(column, 0) + 1
        if self.looking[column] <= 3:
            self.samples.append((line, column, text))

    def add(self, other: CellStats) -> None:
        for column, counts in other.missing.items():
            for kind, n in counts.items():
                self.missing.setdefault(column, {"empty": 0, "marker": 0})[kind] += n
        for column, n in other.looking.items():
            room = max(0, 3 - self.looking.get(column, 0))
            self.samples.extend([s for s in other.samples if s[1] == column][:room])
            self.looking[column] = self.looking.get(column, 0) + n


@dataclass(frozen=True)
class Context:
    """What preparing a row needs; sent once to each worker process."""

    fields: dict[str, str]
    key: str
    options: ImportOptions
    stamp: str
    checksum: str
    ingest: IngestOptions
    now: datetime
    countries: tuple[str, ...] = ()  # column keys of the country code and name columns
    rule: values.MissingRule = field(default_factory=values.MissingRule)
    by_region: dict[str, IngestOptions] = field(default_factory=dict, compare=False)

    def ingest_for(self, cells: dict[str, str], line: int) -> IngestOptions:
        """The ingest options for a row: its country's phone region, if it names one."""
        for column in self.countries:
            country = cells.get(column, "")
            if values.is_missing(country):
                continue
            try:
                region = phone_region(country)
            except ValueError as err:
                phones = [
                    text
                    for k, text in cells.items()
                    if self.fields.get(k) == "phone" and text.strip() and is_national_phone(text)
                ]
                if phones:
                    raise Invalid(
                        f"column {column}: {err}, and the phone {phones[0]!r} is written"
                        " without its country code: give a country or an international number",
                        field=f"row {line}",
                    ) from None
                return self.ingest
            if region == self.ingest.default_region:
                return self.ingest
            if region not in self.by_region:
                self.by_region[region] = dataclasses.replace(self.ingest, default_region=region)
            return self.by_region[region]
        return self.ingest


def _chunks(records: Iterator[Any]) -> Iterator[list[Read]]:
    chunk: list[Read] = []
    for row in records:
        if isinstance(row, reader.RowError):
            chunk.append(("error", row.line, row.raw, row.reason))
        else:
            chunk.append(("row", row.line, row.raw, row.cells))
        if len(chunk) >= BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def prepare(chunk: list[Read], context: Context) -> tuple[list[Prepared], CellStats]:
    """Map and validate rows (pure: no database), in order: each becomes an identify call
    parsed as the API parses it, or a rejection with its reason; and what the cells held."""
    out: list[Prepared] = []
    stats = CellStats()
    key = context.key
    for kind, line, raw, cells in chunk:
        if kind == "error":
            out.append(("rejected", line, raw, cells))
            continue
        try:
            body = _call(
                line,
                cells,
                context.fields,
                key,
                context.options,
                context.stamp,
                f"import:{context.checksum}:{line}",
                context.rule,
                stats,
            )
            ingest = context.ingest_for(cells, line)
        except Invalid as err:
            out.append(("rejected", line, raw, err.message))
            continue
        [result], calls = parse_items([body], now=context.now, options=ingest)
        if result.status == "rejected":
            out.append(("rejected", line, raw, _reason(result.field, result.error)))
            continue
        try:
            _leave_out_unusable_contacts(calls[0], key, line)
        except Invalid as err:
            out.append(("rejected", line, raw, err.message))
            continue
        # The person's key as matching reads it (+16465550100 for (646) 555-0100), so
        # their rows fold however each spelled it.
        identity = next(
            (f"{i.kind}:{i.value}" for i in calls[0].identifiers if i.kind == key),
            str(body.get("userId") or body["traits"].get(key, "")).strip().casefold(),
        )
        # Its rows as a new person, rendered here, where it costs the writer nothing.
        drafted = draft(calls[0], now=context.now, options=ingest)
        out.append(("ok", line, raw, _pack(calls[0], context.now), identity, drafted))
    return out, stats


def _leave_out_unusable_contacts(call: Call, key: str, line: int) -> None:
    """An email or phone cell that is not a valid address or number is not stored (a
    message would go nowhere, or to the wrong person): the row is imported without it,
    with a warning; unless it is the key column, which rejects the row."""
    for where, reason in call.refused:
        name = where.removeprefix("traits.")
        if name not in ("email", "phone") or name not in call.traits:
            continue
        why = reason.removeprefix(f"{name}: ")
        if name == key:
            raise Invalid(f"column {name}: {why}", field=f"row {line}")
        del call.traits[name]
        call.warnings[:] = [w for w in call.warnings if not w.startswith(f"{where}:")]
        call.warnings.append(f"column {name}: {why}; left out, the rest of the row imported")


_TRAIT_PREFIX = re.compile(r"traits\.([^:]+): ")
_BARE_COLUMN = re.compile(r"\bcolumn (\w+):")  # "column birthday:": a field, not a header


def _in_file_terms(text: str, header_of: dict[str, str]) -> str:
    """A row's warning or error as the file says it: "column 'Phone': ..." for the API's
    "traits.phone: ..." and for "column phone: ...", the attribute's name alone where no
    column is its own."""
    match = _TRAIT_PREFIX.match(text)
    if match is not None:
        name = match[1]
        where = f"column {header_of[name]!r}" if name in header_of else name
        text = f"{where}: {text[match.end() :]}"
    return _BARE_COLUMN.sub(
        lambda m: f"column {header_of[m[1]]!r}:" if m[1] in header_of else m[0], text
    )


def _reason(where: str | None, error: str | None) -> str:
    """An ingestion error in a marketer's words: the column, not the API's field path."""
    text = (error or "").replace("; the call names nobody", "; the row names nobody")
    if where and where.startswith("traits."):
        name = where.removeprefix("traits.")
        return text if text.startswith(f"{name}:") else f"column {name}: {text}"
    return f"{where}: {text}" if where else text


def _fold(first: Call, later: Call) -> Call:
    """One call for two rows of one person: the later row's values win (its empty cells
    are not in it, unless empty cells clear); the identifiers of both are kept (as two
    calls would keep them: an earlier email stays the person's, as an identity)."""
    keys = {i.key for i in first.identifiers}
    return dataclasses.replace(
        first,
        identifiers=[*first.identifiers, *(i for i in later.identifiers if i.key not in keys)],
        traits={**first.traits, **later.traits},
        warnings=[*first.warnings, *later.warnings],
    )


def _pack(call: Call, now: datetime) -> tuple[Any, ...]:
    """A call as plain values: they cross between processes several times faster than
    the dataclasses (whose unpickling runs Python code per object). The usual time (the
    import's) is left out."""
    return (
        call.type,
        call.name,
        call.message_id,
        None if call.occurred_at == now else call.occurred_at,
        tuple((i.kind, i.value, i.display) for i in call.identifiers),
        call.traits,
        call.properties,
        call.context,
        call.backfill,
        call.warnings,
    )


def _unpack(packed: tuple[Any, ...], now: datetime) -> Call:
    kind, name, message_id, at, idents, traits, properties, context, backfill, warnings = packed
    return Call(
        type=kind,
        name=name,
        message_id=message_id,
        occurred_at=now if at is None else at,
        identifiers=[Identifier(*ident) for ident in idents],
        traits=traits,
        properties=properties,
        context=context,
        backfill=backfill,
        warnings=warnings,
    )


_CONTEXT: Context | None = None


def _start_worker(context: Context) -> None:
    global _CONTEXT
    _CONTEXT = context
    # As in the main process (_young_collections_only): a chunk makes hundreds of
    # thousands of objects, and each automatic collection walked all of them; measured,
    # a third of a worker's time went to packing and pickling under it. The young
    # objects are collected once a chunk instead, before the next is prepared.
    gc.disable()


def _prepare_in_worker(chunk: list[Read]) -> tuple[list[Prepared], CellStats]:
    assert _CONTEXT is not None
    gc.collect(1)  # the previous chunk's objects are gone by now: little left to walk
    return prepare(chunk, _CONTEXT)


def _prepared(
    chunks: Iterator[list[Read]], context: Context, workers: int
) -> Iterator[tuple[list[Prepared], CellStats]]:
    """The chunks prepared, in file order: in this process, or by ``workers`` processes
    working ahead of the caller (at most two chunks each in flight: memory stays flat)."""
    if workers < 1:
        for chunk in chunks:
            yield prepare(chunk, context)
        return
    # spawn, not fork: the caller holds database connections and may run threads. A
    # worker that dies fails the import (BrokenProcessPool) instead of hanging it.
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(context,),
    )
    try:
        pending: deque[Future[tuple[list[Prepared], CellStats]]] = deque()
        for chunk in chunks:
            with _main_hidden():
                pending.append(pool.submit(_prepare_in_worker, chunk))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _main_hidden() -> Iterator[None]:
    """While worker processes start: spawn would re-run the caller's main script in each
    (it may lack a ``__main__`` guard, and would then start an import of its own); the
    workers need only this module."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


REJECTED_COLUMNS = ("rejected_line", "rejected_reason")  # read back as "ignore"


def rejected_csv(session: Session, import_id: int) -> str:
    """The rejected rows as a CSV to fix and import again: the row's line and the reason,
    then the file's own columns with the row's cells as they were. Importing it again
    (with the same options) reads the two first columns as notes, not data."""
    record = session.get(Import, import_id)
    if record is None:
        raise NotFound(f"import {import_id} not found")
    delimiter = record.delimiter or ","
    headers = [c["header"] for c in record.columns or []]
    # A file of rejected rows, fixed and imported again: its notes are replaced, not
    # repeated, and a row keeps the line it had in the first file.
    notes = {
        name: i
        for i, header in enumerate(headers)
        if (name := reader.normalise_header(header)) in REJECTED_COLUMNS
    }
    kept = [i for i in range(len(headers)) if i not in notes.values()]
    out = io.StringIO()
    # A byte-order mark: a spreadsheet opens it as UTF-8, and so does the import, whatever
    # encoding the first file had (or was given).
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow([*REJECTED_COLUMNS, *(headers[i] for i in kept)])
    for rejection in session.scalars(
        select(ImportRejection)
        .where(ImportRejection.import_id == import_id)
        .order_by(ImportRejection.line)
    ):
        cells = next(csv.reader(io.StringIO(rejection.raw), delimiter=delimiter), [])
        line: int | str = rejection.line
        at = notes.get("rejected_line")
        if at is not None and at < len(cells) and cells[at].strip().isdigit():
            line = cells[at].strip()
        rest = [c for i, c in enumerate(cells) if i not in notes.values()] if notes else cells
        writer.writerow([line, rejection.reason, *rest])
    return out.getvalue()


def queue(
    session: Session, data: bytes, *, filename: str, options: ImportOptions, now: datetime
) -> Import:
    """Store an uploaded file for a worker to import (job ``imports.run``): what can be
    told now (the header, the mapping, the key, the options) is answered now, not by a
    worker later."""
    options = checked(options)
    if options.phone_region:
        try:
            phone_region(options.phone_region)
        except ValueError as err:
            raise Invalid(str(err), field="phone_region") from None
    read = _open(io.BytesIO(data), filename, options)
    _plan(read, filename, options)
    if next(read.records, None) is None:  # a header and nothing under it (blank lines)
        raise Invalid(f"{filename}: the file has a header but no rows", field="file")
    record = Import(
        filename=filename,
        checksum=hashlib.sha256(data).hexdigest(),
        status="queued",
        options=_saved(options),
        data=data,
        counts={},
        created_at=now,
        updated_at=now,
    )
    session.add(record)
    session.flush()
    jobs.enqueue(session, "imports.run", import_id=record.id)
    return record


def options_of(record: Import) -> ImportOptions:
    saved = dict(record.options)
    markers = saved.pop("missing_markers", None)
    for name in ("lists", "tags", "date_fields"):
        if saved.get(name) is not None:
            saved[name] = tuple(saved[name])
    # None: the default markers; [] (none on purpose) stays none.
    return ImportOptions(**saved, missing_markers=None if markers is None else tuple(markers))


def _recipe(options: ImportOptions, key: str) -> str:
    """What decides how rows read: the same file imported with other options (a column
    mapped that was ignored, other missing markers) is new work, not a re-run."""
    saved = {k: v for k, v in _saved(options).items() if k not in ("dry_run", "workers", "via")}
    text = json.dumps({**saved, "key": key}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _saved(options: ImportOptions) -> dict[str, Any]:
    markers = options.missing_markers
    return {**options.__dict__, "missing_markers": None if markers is None else list(markers)}


def status(session: Session, import_id: int) -> dict[str, Any]:
    record = session.get(Import, import_id)
    if record is None:
        raise NotFound(f"import {import_id} not found")
    seconds = (record.updated_at - (record.started_at or record.created_at)).total_seconds()
    warnings = session.scalars(
        select(ImportWarning)
        .where(ImportWarning.import_id == import_id)
        .order_by(ImportWarning.line, ImportWarning.id)
        .limit(100)
    )
    return {
        "id": record.id,
        "filename": record.filename,
        "status": record.status,
        "message": record.message,
        "encoding": record.encoding,
        "delimiter": record.delimiter,
        "columns": record.columns,
        "counts": record.counts,
        "rows_done": record.rows_done,
        "rows_per_second": round(record.rows_done / seconds, 1) if seconds > 0 else None,
        # The first 100 warnings of rows imported with one (counts.warned: how many rows).
        "row_warnings": [{"line": w.line, "warning": w.warning} for w in warnings],
        "started_at": record.started_at,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }
