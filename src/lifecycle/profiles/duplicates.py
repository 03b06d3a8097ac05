"""Duplicate finder: pairs of live profiles that may be one person, for a person to review.

:func:`scan` reads every live profile set-wise (one SELECT of the attributes it needs,
one of the email and phone identities) and finds pairs in two tiers:

(a) **exact**, score 1.0: the same normalised email or phone held by two profiles, as an
    identity on one and as an attribute (``email``/``phone``) on the other, or as
    attributes on both. Identities are unique, so one person's identifier can only live
    as an attribute elsewhere (typically a write whose identifier was left off).
(b) **fuzzy**, score below 1.0 (:func:`fuzzy_score`): similar names (rapidfuzz ratio on
    the folded full name, as written or token-sorted, with a first-name check against
    siblings and spouses) corroborated by the same phone (last 7 digits) or a similar
    address (postal code or city, and the street with its house number). Only pairs that
    share a blocking key are compared (:data:`FAMILIES`), so the scan is not quadratic;
    a block larger than ``max_block`` is skipped and reported.

Pairs scoring at least ``threshold`` are stored in ``duplicate_candidates`` with their
evidence (lines starting ``scan: ``): new pairs as ``open``; open pairs get the new score
and evidence (evidence from ingestion stays); a dismissed or merged pair is never
reopened; an open pair the scan no longer finds is left for a reviewer. Nothing here
merges: :func:`accept` (a reviewer's decision) does, through
:func:`lifecycle.profiles.merge.merge_profiles`; :func:`dismiss` is remembered.
On 100k profiles a full scan takes about 5 s (``bench/duplicates.py``).
"""

from __future__ import annotations

import gc
import re
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler
from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from lifecycle.errors import Conflict, Invalid, NotFound
from lifecycle.profiles.identifiers import NotAnIdentifier, normalize
from lifecycle.profiles.merge import merge_profiles
from lifecycle.profiles.models import DuplicateCandidate, Identity, Profile

EXACT_SCORE = 1.0
FUZZY_CEILING = 0.99  # a fuzzy pair always ranks below an exact one
THRESHOLD = 0.85  # a fuzzy pair scoring less is not stored
NAME_MIN = 0.75  # full-name similarity below this: not compared further
FIRST_NAME_MIN = 0.80  # first names (Jaro-Winkler): "John" and "Jane" Smith are two people
ADDRESS_MIN = 0.80  # a city or street this similar counts as the same
PLACE_ONLY = 0.8  # the same postal code, no street to compare: many people live there
CITY_ONLY = 0.5  # the same city, no postal code or street: even more do
PHONE_CONFLICT = 0.1  # both have phones and none is shared: less likely one person
MAX_BLOCK = 200  # a blocking key shared by more profiles is skipped and reported
SCAN_PREFIX = "scan: "  # evidence lines written by the scan (others come from ingestion)
STATUSES = ("open", "dismissed", "merged")
EXACT_KINDS = ("email", "phone")

# Where each field may live in ``attributes`` (snake_case, Segment's camelCase, nested
# Segment ``address``); the first present wins.
FIELDS: dict[str, tuple[str | tuple[str, ...], ...]] = {
    "first": ("first_name", "firstName", "firstname"),
    "last": ("last_name", "lastName", "lastname"),
    "name": ("name", "full_name", "fullName"),
    "email": ("email",),
    "phone": ("phone",),
    "city": ("city", ("address", "city")),
    "postal": (
        "postal_code",
        "postalCode",
        "zip",
        "zip_code",
        ("address", "postal_code"),
        ("address", "postalCode"),
        ("address", "zip"),
    ),
    "street": (
        "address1",
        "address_1",
        "street",
        ("address", "street"),
        ("address", "address1"),
        ("address", "line1"),
    ),
}


# --------------------------------------------------------------------------- pure helpers


_NOT_WORD = re.compile(r"[\W_]+")


def _fold(text: str) -> str:
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NOT_WORD.sub(" ", text.casefold()).split())


# Names and cities repeat; streets mostly do not and would only evict them from the cache.
_fold_common = lru_cache(maxsize=1 << 16)(_fold)


def fold(text: str) -> str:
    """Accents off, case-folded, punctuation to spaces, whitespace collapsed (letters of
    any script are kept)."""
    return _fold_common(text) if len(text) <= 40 else _fold(text)


_SOUNDEX = {
    c: digit
    for letters, digit in (
        ("bfpv", "1"),
        ("cgjkqsxz", "2"),
        ("dt", "3"),
        ("l", "4"),
        ("mn", "5"),
        ("r", "6"),
    )
    for c in letters
}


def soundex(word: str) -> str:
    """American Soundex of a folded word ("robert" and "rupert" -> "R163"); "" if none."""
    letters = [c for c in word if "a" <= c <= "z"]
    if not letters:
        return ""
    out, last = letters[0].upper(), _SOUNDEX.get(letters[0], "")
    for c in letters[1:]:
        code = _SOUNDEX.get(c, "")
        if code and code != last:
            out += code
            if len(out) == 4:
                break
        if c not in "hw":
            last = code
    return out.ljust(4, "0")


_STREET_WORDS = {
    "street": "st",
    "avenue": "ave",
    "av": "ave",
    "road": "rd",
    "drive": "dr",
    "boulevard": "blvd",
    "lane": "ln",
    "court": "ct",
    "place": "pl",
    "apartment": "apt",
    "suite": "ste",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
}


def _street(text: str) -> str:
    return " ".join(sorted(_STREET_WORDS.get(w, w) for w in _fold(text).split()))


def _postal(text: str) -> str:
    code = re.sub(r"[^0-9a-z]", "", text.casefold())
    return code[:5] if code.isdigit() and len(code) == 9 else code  # ZIP+4 -> ZIP


def _digits7(text: str) -> str | None:
    digits = re.sub(r"\D", "", text)
    return digits[-7:] if len(digits) >= 7 else None


@dataclass(slots=True)
class Person:
    """What the fuzzy tier compares, folded once per profile."""

    id: int
    name: str = ""  # folded full name, tokens sorted (token_sort_ratio without re-sorting)
    display: str = ""  # folded full name in its own order, for evidence
    first: str = ""
    last: str = ""
    phones: frozenset[str] = frozenset()  # last 7 digits of each known phone
    city: str = ""
    postal: str = ""
    street: str = ""  # folded, abbreviated, tokens sorted
    house: str = ""  # the street's house number, if any


def person(
    pid: int,
    values: dict[str, str | None],
    phones: Iterable[str] = (),
) -> Person:
    """Fold one profile's attributes (``FIELDS`` names) and its phone identities."""
    first, last = fold(values.get("first") or ""), fold(values.get("last") or "")
    if first or last:
        full = f"{first} {last}".strip()
    else:
        full = fold(values.get("name") or "")
        tokens = full.split()
        if len(tokens) >= 2:
            first, last = tokens[0], tokens[-1]
        elif tokens:
            last = tokens[0]
    street = _street(values.get("street") or "")
    sevens = {d for d in (_digits7(p) for p in [*phones, values.get("phone") or ""]) if d}
    return Person(
        id=pid,
        name=" ".join(sorted(full.split())),
        display=full,
        first=first.split()[0] if first else "",
        last=last.split()[-1] if last else "",
        phones=frozenset(sevens),
        city=fold(values.get("city") or ""),
        postal=_postal(values.get("postal") or ""),
        street=street,
        house=next((w for w in street.split() if w.isdigit()), ""),
    )


def _place(p: Person) -> str:
    return p.postal or p.city


# Blocking key families: a pair is compared only if some family gives both the same key.
FAMILIES: dict[str, Callable[[Person], Iterable[str]]] = {
    # last-name prefix + postal code: robust to first-name typos
    "name+postal": lambda p: [f"{p.last[:3]}|{p.postal}"] if p.last and p.postal else [],
    # both name prefixes in either order + place: first and last name swapped
    "names+place": lambda p: (
        ["|".join(sorted((p.first[:3], p.last[:3]))) + "|" + _place(p)]
        if p.first and p.last and _place(p)
        else []
    ),
    # how the last name sounds + place: typos in the first letters ("Jonson", "Johnson")
    "sound+place": lambda p: (
        [f"{soundex(p.last)}|{_place(p)}"] if p.last and _place(p) and soundex(p.last) else []
    ),
    # first-name prefix + postal code: robust to last-name typos ("Smith", "Tmith")
    "first+postal": lambda p: [f"{p.first[:3]}|{p.postal}"] if p.first and p.postal else [],
    # house number + postal code, and + city: typos in both names, or one side without
    # a postal code (a place alone is too weak, so a missing postal code needs the street)
    "house+place": lambda p: (
        [f"{p.house}|{place}" for place in (p.postal, p.city) if place] if p.house else []
    ),
    # the same phone line (last 7 digits), whatever the name's spelling or order
    "phone": lambda p: sorted(p.phones),
}


def address_similarity(p: Person, q: Person) -> tuple[float, list[str]]:
    """0..1 and the reasons. A full address (place and street) counts fully; a place
    alone (postal code, else city) only partly, as many people share it."""
    reasons: list[str] = []
    if p.postal and q.postal:
        weight = PLACE_ONLY
        if p.postal == q.postal:
            place = 1.0
            reasons.append(f"same postal code {p.postal}")
        else:
            place = 0.5 if p.city and p.city == q.city else 0.0
    elif p.city and q.city:
        weight = CITY_ONLY
        place = fuzz.ratio(p.city, q.city) / 100
        if place >= ADDRESS_MIN:
            reasons.append(f"city {p.city!r} ~ {q.city!r} ({place:.2f})")
    else:
        return 0.0, []
    if p.street and q.street:
        # Another house number is another address, however alike the street names are.
        same_house = not (p.house and q.house and p.house != q.house)
        street = fuzz.ratio(p.street, q.street) / 100 if same_house else 0.0
        if street >= ADDRESS_MIN:
            reasons.append(f"street {p.street!r} ~ {q.street!r} ({street:.2f})")
        return (place + street) / 2, reasons
    return place * weight, reasons


def fuzzy_score(
    p: Person, q: Person, threshold: float = THRESHOLD
) -> tuple[float, list[str]] | None:
    """Score in [0, FUZZY_CEILING] with evidence, or None when below ``threshold``.

    ``0.6 * name + 0.4 * support + 0.1 * corroboration - 0.1 * (both have phones, none
    shared)``, where support is the better of phone (1 or 0) and address similarity and
    corroboration the other one.
    """
    if not p.name or not q.name:
        return None
    # As written ("Katherine Johnson" ~ "Catherine Jonson") or token-sorted (swapped order).
    cutoff = NAME_MIN * 100
    name = max(
        fuzz.ratio(p.display, q.display, score_cutoff=cutoff),
        fuzz.ratio(p.name, q.name, score_cutoff=cutoff),
    )
    name /= 100
    if not name:
        return None
    if p.first and q.first and p.last and q.last:
        same_order = JaroWinkler.normalized_similarity(p.first, q.first)
        swapped = min(
            JaroWinkler.normalized_similarity(p.first, q.last),
            JaroWinkler.normalized_similarity(p.last, q.first),
        )
        if max(same_order, swapped) < FIRST_NAME_MIN:
            return None
    shared = p.phones & q.phones
    phone = 1.0 if shared else 0.0
    address, why_address = address_similarity(p, q)
    support, corroboration = max(phone, address), min(phone, address)
    if not support:
        return None
    conflict = PHONE_CONFLICT if p.phones and q.phones and not shared else 0.0
    score = min(FUZZY_CEILING, 0.6 * name + 0.4 * support + 0.1 * corroboration - conflict)
    if score < threshold:
        return None
    evidence = [f"{SCAN_PREFIX}name {p.display!r} ~ {q.display!r} ({name:.2f})"]
    if shared:
        evidence.append(f"{SCAN_PREFIX}same phone ending {min(shared)}")
    elif conflict:
        evidence.append(f"{SCAN_PREFIX}different phones")
    if why_address:
        evidence.append(f"{SCAN_PREFIX}address: " + ", ".join(why_address))
    return round(score, 4), evidence


# --------------------------------------------------------------------------- scan


@dataclass
class ScanReport:
    profiles: int = 0
    identities: int = 0
    exact_pairs: int = 0  # tier (a)
    fuzzy_pairs: int = 0  # tier (b) at or above the threshold (not also exact)
    comparisons: int = 0  # fuzzy pair comparisons made (a pair in two blocks counts twice)
    blocks: int = 0  # blocks of two or more profiles compared
    oversized: list[dict[str, Any]] = field(default_factory=list)  # skipped, largest first
    oversized_total: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    decided: int = 0  # found again but dismissed or merged before: left alone
    seconds: dict[str, float] = field(default_factory=dict)  # per phase, and "total"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _attribute_columns() -> list[Any]:
    def text(path: str | tuple[str, ...]) -> Any:
        return Profile.attributes[path].as_string()

    return [
        (func.coalesce(*map(text, paths)) if len(paths) > 1 else text(paths[0])).label(name)
        for name, paths in FIELDS.items()
    ]


def _load(
    session: Session, limit: int | None
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    query = (
        select(Profile.id, *_attribute_columns())
        .where(Profile.merged_into_id.is_(None))
        .order_by(Profile.id)
    )
    if limit is not None:
        query = query.limit(limit)
    rows = [tuple(r) for r in session.execute(query)]
    idents = select(Identity.profile_id, Identity.kind, Identity.value, Identity.display).where(
        Identity.kind.in_(EXACT_KINDS)
    )
    live = select(Profile.id).where(Profile.merged_into_id.is_(None))
    if limit is not None:
        idents = idents.where(Identity.profile_id.in_(query.with_only_columns(Profile.id)))
    else:
        idents = idents.where(Identity.profile_id.in_(live))
    return rows, [tuple(r) for r in session.execute(idents)]


def _exact_pairs(
    rows: list[tuple[Any, ...]],
    idents: list[tuple[Any, ...]],
    normalizer: Callable[[str, str], str | None],
    max_block: int,
    report: ScanReport,
) -> dict[tuple[int, int], list[str]]:
    """Tier (a): keys (kind, normalised value) held by two or more live profiles."""
    # key -> the first holder (pid, or -pid for an attribute); a dict once there are two.
    first: dict[tuple[str, str], int] = {}
    shared: dict[tuple[str, str], dict[int, str]] = {}
    known: dict[tuple[str, str], str] = {}  # (kind, display) -> value: skips re-validation
    for pid, kind, value, display in idents:
        first[(kind, value)] = pid  # identities are unique: one holder each
        known[(kind, display.strip())] = value
    columns = {kind: 1 + list(FIELDS).index(kind) for kind in EXACT_KINDS}
    for row in rows:
        pid = row[0]
        for kind, column in columns.items():
            raw = row[column]
            if not raw or not raw.strip():
                continue
            value = known.get((kind, raw.strip())) or normalizer(kind, raw)
            if value is None:
                continue
            key = (kind, value)
            held = shared.get(key)
            if held is not None:
                held.setdefault(pid, "attribute")
                continue
            other = first.setdefault(key, -pid)
            if abs(other) != pid:
                shared[key] = {
                    abs(other): "identity" if other > 0 else "attribute",
                    pid: "attribute",
                }
    del first, known
    pairs: dict[tuple[int, int], list[str]] = {}
    for (kind, value), held in shared.items():
        if len(held) > max_block:
            report.oversized.append({"family": kind, "key": value, "profiles": len(held)})
            continue
        ids = sorted(held)
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                how = (
                    f"attribute of {a} and of {b}"
                    if held[a] == held[b]
                    else f"{held[a]} of {a}, {held[b]} of {b}"
                )
                pairs.setdefault((a, b), []).append(f"{SCAN_PREFIX}same {kind} {value} ({how})")
    return pairs


SMALL_BLOCK = 8  # up to this size every pair is scored; above, names are filtered in C


def _name_hits(block: list[Person]) -> Iterable[tuple[int, int]]:
    """Index pairs (i < j) of a block whose names could reach ``NAME_MIN``: all pairs of a
    small block; in a larger one, the pairs rapidfuzz finds (in C) above the cut-off, as
    written or token-sorted, so most pairs never reach Python."""
    n = len(block)
    if n <= SMALL_BLOCK:
        return ((i, j) for i in range(n - 1) for j in range(i + 1, n))
    cutoff = NAME_MIN * 100
    hits: set[tuple[int, int]] = set()
    for names in ([p.name for p in block], [p.display for p in block]):
        for i in range(n - 1):
            for _choice, _score, k in process.extract(
                names[i], names[i + 1 :], scorer=fuzz.ratio, score_cutoff=cutoff, limit=None
            ):
                hits.add((i, i + 1 + k))
    return sorted(hits)


def _fuzzy_pairs(
    people: list[Person], threshold: float, max_block: int, report: ScanReport
) -> dict[tuple[int, int], tuple[float, list[str]]]:
    """Tier (b): compare within blocks, one key family at a time (bounded memory)."""
    found: dict[tuple[int, int], tuple[float, list[str]]] = {}
    for family, keys_of in FAMILIES.items():
        blocks: dict[str, list[int]] = defaultdict(list)
        for index, p in enumerate(people):
            for key in keys_of(p):
                blocks[key].append(index)
        for key, members in blocks.items():
            n = len(members)
            if n < 2:
                continue
            if n > max_block:
                report.oversized.append({"family": family, "key": key, "profiles": n})
                continue
            report.blocks += 1
            report.comparisons += n * (n - 1) // 2
            block = [people[m] for m in members]
            for i, j in _name_hits(block):
                p, q = block[i], block[j]
                pair = (p.id, q.id) if p.id < q.id else (q.id, p.id)
                if pair not in found:
                    scored = fuzzy_score(p, q, threshold)
                    if scored is not None:
                        found[pair] = scored
        del blocks
    return found


def _normalizer(
    default_region: str, extra_junk: frozenset[str], phone_rules: frozenset[str]
) -> Callable[[str, str], str | None]:
    def run(kind: str, raw: str) -> str | None:
        try:
            return normalize(
                kind, raw, default_region=default_region, extra_junk=extra_junk, rules=phone_rules
            ).value
        except NotAnIdentifier:
            return None

    return run


def scan(
    session: Session,
    *,
    now: datetime,
    limit: int | None = None,
    threshold: float = THRESHOLD,
    max_block: int = MAX_BLOCK,
    default_region: str = "US",
    extra_junk: frozenset[str] = frozenset(),
    phone_rules: frozenset[str] = frozenset(),
) -> ScanReport:
    """Find candidate pairs among live profiles (the first ``limit`` by id, or all) and
    store them (see the module docstring). Normalisation options as for ingestion."""
    report = ScanReport()
    started = clock = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal clock
        now_ = time.perf_counter()
        report.seconds[name] = round(now_ - clock, 3)
        clock = now_

    rows, idents = _load(session, limit)
    report.profiles, report.identities = len(rows), len(idents)
    phase("load")
    normalizer = _normalizer(default_region, extra_junk, phone_rules)
    with _gc_paused():
        found = _find(rows, idents, normalizer, threshold, max_block, report, phase)
    del rows, idents
    _store(session, found, now, report)
    phase("store")

    report.oversized.sort(key=lambda o: -o["profiles"])
    report.oversized_total = len(report.oversized)
    del report.oversized[20:]
    report.seconds["total"] = round(time.perf_counter() - started, 3)
    return report


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The scan allocates millions of small objects and frees them together; the cyclic
    garbage collector's full passes over them would make it superlinear (none are cycles)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _find(
    rows: list[tuple[Any, ...]],
    idents: list[tuple[Any, ...]],
    normalizer: Callable[[str, str], str | None],
    threshold: float,
    max_block: int,
    report: ScanReport,
    phase: Callable[[str], None],
) -> dict[tuple[int, int], tuple[float, list[str]]]:
    exact = _exact_pairs(rows, idents, normalizer, max_block, report)
    report.exact_pairs = len(exact)
    phase("exact")

    phones: dict[int, list[str]] = defaultdict(list)
    for pid, kind, value, _display in idents:
        if kind == "phone":
            phones[pid].append(value)
    names = list(FIELDS)
    people = [
        person(row[0], dict(zip(names, row[1:], strict=True)), phones.get(row[0], ()))
        for row in rows
    ]
    phase("prepare")

    fuzzy = _fuzzy_pairs(people, threshold, max_block, report)
    del people
    phase("fuzzy")

    found: dict[tuple[int, int], tuple[float, list[str]]] = {}
    for pair, (score, evidence) in fuzzy.items():
        if pair not in exact:
            found[pair] = (score, evidence)
    report.fuzzy_pairs = len(found)
    for pair, evidence in exact.items():
        found[pair] = (EXACT_SCORE, evidence + fuzzy.get(pair, (0.0, []))[1])
    return found


def _store(
    session: Session,
    found: dict[tuple[int, int], tuple[float, list[str]]],
    now: datetime,
    report: ScanReport,
) -> None:
    """Set-wise upsert: one SELECT of the stored pairs, one multi-row INSERT (a pair stored
    meanwhile by ingestion is skipped), one executemany UPDATE of open pairs."""
    table = DuplicateCandidate.__table__
    stored = {
        (a, b): (cid, status, score, evidence)
        for cid, a, b, status, score, evidence in session.execute(
            select(
                DuplicateCandidate.id,
                DuplicateCandidate.profile_a,
                DuplicateCandidate.profile_b,
                DuplicateCandidate.status,
                DuplicateCandidate.score,
                DuplicateCandidate.evidence,
            )
        )
    }
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for (a, b), (score, evidence) in sorted(found.items()):
        old = stored.get((a, b))
        if old is None:
            new.append(
                {
                    "profile_a": a,
                    "profile_b": b,
                    "score": score,
                    "evidence": evidence,
                    "status": "open",
                    "created_at": now,
                    "updated_at": now,
                }
            )
            continue
        cid, status, old_score, old_evidence = old
        if status != "open":
            report.decided += 1
            continue
        # Evidence from ingestion ("api call linked ...") stays; the scan's own is replaced.
        kept = [e for e in old_evidence or [] if not e.startswith(SCAN_PREFIX)]
        merged_evidence = kept + [e for e in evidence if e not in kept]
        merged_score = max(score, old_score) if kept else score
        if merged_evidence == old_evidence and abs(merged_score - old_score) < 1e-9:
            report.unchanged += 1
            continue
        changed.append(
            {"b_id": cid, "b_score": merged_score, "b_evidence": merged_evidence, "b_now": now}
        )
    if new:
        if session.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        stmt = (
            dialect_insert(table)
            .on_conflict_do_nothing(index_elements=["profile_a", "profile_b"])
            .returning(table.c.id)
        )
        for start in range(0, len(new), 5000):
            report.inserted += len(session.execute(stmt, new[start : start + 5000]).all())
    if changed:
        session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"), table.c.status == "open")
            .values(
                score=bindparam("b_score"),
                evidence=bindparam("b_evidence", type_=table.c.evidence.type),
                updated_at=bindparam("b_now", type_=table.c.updated_at.type),
            ),
            changed,
        )
        report.updated = len(changed)
    session.flush()


# --------------------------------------------------------------------------- review


def _profiles_shown(session: Session, ids: set[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    columns = _attribute_columns()
    shown: dict[int, dict[str, Any]] = {}
    for row in session.execute(
        select(Profile.id, Profile.created_at, Profile.merged_into_id, *columns).where(
            Profile.id.in_(sorted(ids))
        )
    ):
        values = dict(zip(FIELDS, row[3:], strict=True))
        name = " ".join(v for v in (values["first"], values["last"]) if v) or values["name"]
        shown[row[0]] = {
            "id": row[0],
            "name": name,
            "emails": [values["email"]] if values["email"] else [],
            "phones": [values["phone"]] if values["phone"] else [],
            "external_ids": [],
            "city": values["city"],
            "postal_code": values["postal"],
            "created_at": row[1],
            "merged_into_id": row[2],
        }
    for pid, kind, value, display in session.execute(
        select(Identity.profile_id, Identity.kind, Identity.value, Identity.display)
        .where(Identity.profile_id.in_(sorted(ids)), Identity.kind.in_(("email", "phone", "id")))
        .order_by(Identity.id)
    ):
        listed = shown[pid][{"email": "emails", "phone": "phones", "id": "external_ids"}[kind]]
        if display not in listed and value not in listed:
            listed.append(display if kind != "email" else value)
    return shown


def list_candidates(
    session: Session, *, status: str = "open", limit: int = 50, offset: int = 0
) -> dict[str, Any]:
    """Candidates with ``status``, best score first, with both profiles for display.

    Open pairs where a profile has since been merged into another are left out: they
    cannot be accepted as they are (a later scan finds the survivor if it still matches).
    """
    if status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}", field="status")
    if not 1 <= limit <= 500:
        raise Invalid("limit must be between 1 and 500", field="limit")
    if offset < 0:
        raise Invalid("offset must not be negative", field="offset")
    a, b = aliased(Profile), aliased(Profile)
    where = [DuplicateCandidate.status == status]
    base = select(DuplicateCandidate)
    if status == "open":
        base = base.join(a, a.id == DuplicateCandidate.profile_a).join(
            b, b.id == DuplicateCandidate.profile_b
        )
        where += [a.merged_into_id.is_(None), b.merged_into_id.is_(None)]
    base = base.where(and_(*where))
    total = session.scalar(select(func.count()).select_from(base.subquery()))
    page = list(
        session.scalars(
            base.order_by(DuplicateCandidate.score.desc(), DuplicateCandidate.id)
            .limit(limit)
            .offset(offset)
        )
    )
    shown = _profiles_shown(session, {c.profile_a for c in page} | {c.profile_b for c in page})
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "items": [describe(c, shown) for c in page],
    }


def describe(
    candidate: DuplicateCandidate, shown: dict[int, dict[str, Any]] | None = None
) -> dict[str, Any]:
    shown = shown or {}
    return {
        "id": candidate.id,
        "score": candidate.score,
        "evidence": candidate.evidence,
        "status": candidate.status,
        "decided_by": candidate.decided_by,
        "created_at": candidate.created_at,
        "updated_at": candidate.updated_at,
        "profiles": [
            shown.get(candidate.profile_a, {"id": candidate.profile_a}),
            shown.get(candidate.profile_b, {"id": candidate.profile_b}),
        ],
    }


def _candidate(session: Session, candidate_id: int) -> DuplicateCandidate:
    candidate = session.get(DuplicateCandidate, candidate_id, with_for_update=True)
    if candidate is None:
        raise NotFound(f"duplicate candidate {candidate_id} not found")
    return candidate


def dismiss(
    session: Session, candidate_id: int, *, actor: str, now: datetime
) -> DuplicateCandidate:
    """Not the same person: remembered, so no later scan shows the pair again."""
    candidate = _candidate(session, candidate_id)
    if candidate.status == "merged":
        raise Conflict(f"duplicate candidate {candidate_id} was merged; undo the merge instead")
    if candidate.status == "open":
        candidate.status, candidate.decided_by, candidate.updated_at = "dismissed", actor, now
        session.flush()
    return candidate


def accept(
    session: Session,
    candidate_id: int,
    *,
    actor: str,
    reason: str,
    now: datetime,
    force: bool = False,
) -> dict[str, Any]:
    """The same person: merge the younger profile into the older one (earlier creation,
    then lower id). Two external ids need ``force`` (:class:`Conflict` otherwise)."""
    if not reason.strip():
        raise Invalid("accepting a duplicate needs a reason", field="reason")
    candidate = _candidate(session, candidate_id)
    if candidate.status != "open":
        raise Conflict(
            f"duplicate candidate {candidate_id} is already {candidate.status}"
            + (f" (by {candidate.decided_by})" if candidate.decided_by else "")
        )
    ages = dict(
        session.execute(
            select(Profile.id, Profile.created_at).where(
                or_(Profile.id == candidate.profile_a, Profile.id == candidate.profile_b)
            )
        ).all()
    )
    if len(ages) < 2:
        raise NotFound(f"a profile of duplicate candidate {candidate_id} no longer exists")
    survivor, merged = sorted(ages, key=lambda pid: (ages[pid], pid))
    record = merge_profiles(
        session, survivor, merged, reason=reason, actor=actor, now=now, force=force
    )
    # merge_profiles marks the pair merged; keep the loaded object in step.
    candidate.status, candidate.decided_by, candidate.updated_at = "merged", actor, now
    session.flush()
    return {
        "candidate_id": candidate.id,
        "merge_id": record.id,
        "survivor_id": survivor,
        "merged_id": merged,
    }


__all__ = [
    "FAMILIES",
    "THRESHOLD",
    "Person",
    "ScanReport",
    "accept",
    "address_similarity",
    "dismiss",
    "fuzzy_score",
    "list_candidates",
    "person",
    "scan",
    "soundex",
]
