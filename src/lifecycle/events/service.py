"""Ingestion: validate -> resolve identity -> write attributes and events, set-wise.

One call or a whole batch goes through :func:`ingest`, in the caller's transaction.
Each item gets its own result; one bad item does not sink the others. A retried
``messageId`` is a no-op. New track events are queued for evaluation
(``events.evaluate``) after commit; calls older than ``max_age`` or flagged
``backfill`` are stored and shown but start no journeys (evaluation decides).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from lifecycle import jobs
from lifecycle.db import is_postgres
from lifecycle.errors import Invalid
from lifecycle.events import repository
from lifecycle.events.calls import Call, parse_call
from lifecycle.profiles import service as profiles
from lifecycle.profiles.identifiers import Identifier, NotAnIdentifier, normalize
from lifecycle.profiles.repository import PersonRows
from lifecycle.profiles.resolution import create_drafted, draft_person, new_people, resolve_many
from lifecycle.profiles.traits import TraitUpdate, apply_traits


@dataclass(frozen=True)
class IngestOptions:
    source: str = "api"
    default_region: str = "US"
    max_age: timedelta = timedelta(hours=72)
    extra_junk: frozenset[str] = frozenset()
    limits: dict[str, int] | None = None
    phone_rules: frozenset[str] = frozenset()
    # Segment requires userId or anonymousId; a CSV row may be known by its email alone.
    require_user_or_anonymous: bool = True
    # What a write does to a profile that already existed: update it, only fill its
    # empty fields, or leave its attributes alone (skip).
    existing: str = "update"
    # Items added to list attributes of everyone written (e.g. an import's list or tag).
    add_to_lists: tuple[tuple[str, tuple[str, ...]], ...] = ()
    empty_clears: bool = True  # an empty string clears the attribute (else: ignored)
    # PostgreSQL: identify calls that name only people nobody knows yet are created
    # set-wise (see _store_new_people); a bulk import's fast path.
    new_people_set_wise: bool = False
    # Opt-outs a write may not undo (TraitUpdate.keep_opt_outs): an import's, not the API's
    # (an app's "subscribe again" is the person's own choice).
    keep_opt_outs: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # The source the attribute history names, where it can say more than ``source``
    # (an import: "csv import 12", so support staff see which file changed a field).
    history_source: str | None = None
    # Attributes whose list values are added to what the profile holds (an import's tags
    # column), where the API's identify replaces them.
    added_fields: tuple[str, ...] = ()


@dataclass
class ItemResult:
    index: int
    status: str  # accepted | duplicate | rejected
    message_id: str | None = None
    profile_id: int | None = None
    event_id: int | None = None
    field: str | None = None
    error: str | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    created: bool = False  # a new profile was made for it
    changed: bool = False  # it changed the profile's attributes

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "status": self.status}
        for key in ("message_id", "profile_id", "event_id", "field", "error"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.warnings:
            out["warnings"] = self.warnings
        return out


def _aliases_of_known_users(session: Session, aliases: list[Call]) -> None:
    """An alias's previousId is usually an anonymous id, but may be another user's id:
    then it is that user, so two people with different ids meet, and resolution refuses
    to glue them (a possible duplicate for review) instead of filing the id as anonymous."""
    if not aliases:
        return
    previous = [
        ident.key for call in aliases for ident in call.identifiers if ident.kind == "anonymous_id"
    ]
    known = profiles.holders(session, [("id", value) for _, value in previous])
    for call in aliases:
        call.identifiers = [
            Identifier("id", i.value, i.display)
            if i.kind == "anonymous_id" and ("id", i.value) in known
            else i
            for i in call.identifiers
        ]


def _keep_current_contacts(
    session: Session,
    calls: dict[int, Call],
    indexes: list[int],
    profile_of: dict[int, int],
    results: list[ItemResult],
    region: str,
) -> None:
    """A call without a user id that names one of a profile's earlier addresses (a form
    filled in with an old email) is matched through it, but does not make it current."""
    anonymous = [
        i
        for i in indexes
        if not any(ident.kind == "id" for ident in calls[i].identifiers)
        and any(k in calls[i].traits for k in ("email", "phone"))
    ]
    if not anonymous:
        return
    held = profiles.identifiers_of(session, {profile_of[i] for i in anonymous})
    current = profiles.attributes_of(session, sorted({profile_of[i] for i in anonymous}))
    for i in anonymous:
        pid = profile_of[i]
        for ident in calls[i].identifiers:
            if ident.kind not in ("email", "phone") or ident.kind not in calls[i].traits:
                continue
            now_value = current.get(pid, {}).get(ident.kind)
            if ident.key in held[pid] and _differs(ident, now_value, region):
                calls[i].traits = {k: v for k, v in calls[i].traits.items() if k != ident.kind}
                results[i].warnings.append(
                    f"traits.{ident.kind}: {ident.display!r} is an earlier {ident.kind} of this "
                    f"profile; it still finds the person, the current one ({now_value!r}) is kept"
                )


def _differs(ident: Identifier, value: Any, region: str) -> bool:
    """Whether the profile's current ``value`` is another address or number than
    ``ident`` (read, as the call's was, in ``region``: 07700 900123 is British there)."""
    if value is None or (isinstance(value, str) and value.strip() == ident.display.strip()):
        return False
    try:
        return normalize(ident.kind, value, default_region=region).value != ident.value
    except NotAnIdentifier:
        return True


def _empties(traits: dict[str, Any], *, clear: bool) -> dict[str, Any]:
    """Missing changes nothing and null clears; an empty string clears or is ignored,
    as the source's setting says."""
    if not any(v == "" for v in traits.values()):
        return traits
    if clear:
        return {k: (None if v == "" else v) for k, v in traits.items()}
    return {k: v for k, v in traits.items() if v != ""}


def ingest(
    session: Session,
    items: list[Any],
    *,
    now: datetime,
    options: IngestOptions,
    call_type: str | None = None,
    field_prefix: str = "",
) -> list[ItemResult]:
    """Store ``items`` (Segment calls); returns one result per item, in order."""
    results, calls = parse_items(
        items, now=now, options=options, call_type=call_type, field_prefix=field_prefix
    )
    return _store(session, calls, results, now=now, options=options)


def parse_items(
    items: list[Any],
    *,
    now: datetime,
    options: IngestOptions,
    call_type: str | None = None,
    field_prefix: str = "",
) -> tuple[list[ItemResult], dict[int, Call]]:
    """Validate ``items`` (pure: no database, so it can run in another process): one result
    per item (rejected ones final) and the parsed calls by index."""
    results = [ItemResult(index=i, status="accepted") for i in range(len(items))]
    calls: dict[int, Call] = {}
    for i, raw in enumerate(items):
        try:
            call = parse_call(
                raw,
                call_type=call_type,
                now=now,
                default_region=options.default_region,
                extra_junk=options.extra_junk,
                phone_rules=options.phone_rules,
                require_user_or_anonymous=options.require_user_or_anonymous,
            )
        except Invalid as err:
            results[i].status = "rejected"
            prefix = f"{field_prefix}[{i}]" if field_prefix else ""
            results[i].field = ".".join(p for p in (prefix, err.field or "") if p)
            results[i].error = err.message
            continue
        results[i].message_id = call.message_id
        results[i].warnings.extend(call.warnings)
        calls[i] = call
    return results, calls


def ingest_parsed(
    session: Session,
    calls: list[Call],
    *,
    now: datetime,
    options: IngestOptions,
    drafts: list[Draft | None] | None = None,
) -> list[ItemResult]:
    """Store calls already validated by :func:`parse_items` (e.g. in an import's worker
    processes); the same storing as :func:`ingest`, one result per call, in order.
    ``drafts``: each call's :func:`draft`, rendered ahead, or None (rendered if needed)."""
    results = [
        ItemResult(index=i, status="accepted", message_id=c.message_id, warnings=list(c.warnings))
        for i, c in enumerate(calls)
    ]
    given = {i: d for i, d in enumerate(drafts or ()) if d is not None}
    return _store(session, dict(enumerate(calls)), results, now=now, options=options, drafts=given)


def _store(
    session: Session,
    calls: dict[int, Call],
    results: list[ItemResult],
    *,
    now: datetime,
    options: IngestOptions,
    drafts: dict[int, Draft] | None = None,
) -> list[ItemResult]:
    keys = {i: _dedupe_key(c, options) for i, c in calls.items()}
    existing = repository.existing(session, sorted(set(keys.values())))
    first_seen: set[str] = set()
    for i in list(calls):
        key = keys[i]
        if key in existing or key in first_seen:
            results[i].status = "duplicate"
            results[i].event_id = existing.get(key)
            del calls[i]
        else:
            first_seen.add(key)
    if options.new_people_set_wise and len(calls) >= NEW_PEOPLE_MIN and is_postgres(session):
        _store_new_people(
            session, calls, keys, results, now=now, options=options, drafts=drafts or {}
        )
    if not calls:
        return results

    order = sorted(calls)
    _aliases_of_known_users(session, [calls[i] for i in order if calls[i].type == "alias"])
    resolutions = resolve_many(
        session,
        [calls[i].identifiers for i in order],
        source=options.source,
        now=now,
        limits=options.limits,
    )
    profile_of: dict[int, int] = {}
    for i, res in zip(order, resolutions, strict=True):
        profile_of[i] = res.profile_id
        results[i].profile_id = res.profile_id
        results[i].created = res.created
        results[i].warnings.extend(res.warnings)
    created = sorted({profile_of[i] for i in order if results[i].created})
    if created:
        # A new person is checked against every segment ("never opened" includes them).
        jobs.enqueue(
            session,
            "segments.recheck",
            extend="changes",
            changes=[[p, [], "new profile"] for p in created],
        )

    with_traits = [i for i in order if calls[i].traits]
    _keep_current_contacts(session, calls, with_traits, profile_of, results, options.default_region)
    if options.existing == "skip" and not options.add_to_lists and not options.added_fields:
        with_traits = [i for i in with_traits if results[i].created]
    updates = [
        _trait_update(calls[i], profile_of[i], created=results[i].created, options=options)
        for i in with_traits
    ]
    applied = apply_traits(
        session, updates, source=options.history_source or options.source, now=now
    )
    for index, warning in applied.warnings:
        results[with_traits[index]].warnings.append(warning)
    for index in applied.changed:
        results[with_traits[index]].changed = True

    rows = [_event_row(calls[i], profile_of[i], keys[i], now, options) for i in order]
    inserted = repository.insert_new(session, rows)
    to_evaluate: list[int] = []
    for i in order:
        event_id = inserted.get(keys[i])
        if event_id is None:  # a concurrent request stored the same messageId first
            results[i].status = "duplicate"
            continue
        results[i].event_id = event_id
        if calls[i].name:
            to_evaluate.append(event_id)
    if to_evaluate:
        jobs.enqueue(session, "events.evaluate", event_ids=to_evaluate)
    return results


NEW_PEOPLE_MIN = 50  # below this, the set-wise path's set-up costs more than it saves


def _trait_update(
    call: Call, profile_id: int, *, created: bool, options: IngestOptions
) -> TraitUpdate:
    traits = _empties(call.traits, clear=options.empty_clears)
    add = {name: list(items) for name, items in options.add_to_lists}
    if options.added_fields and any(name in traits for name in options.added_fields):
        traits = dict(traits)
        for name in options.added_fields:
            items = traits.pop(name, None)
            if isinstance(items, list):
                add[name] = list(dict.fromkeys([*add.get(name, []), *items]))
            elif items is not None:
                traits[name] = items
    if options.existing == "skip" and not created:
        traits = {}  # an existing person's attributes are left alone: only lists and tags
    return TraitUpdate(
        profile_id,
        traits,
        call.occurred_at,
        call.via,
        fill_only=options.existing == "fill_empty" and not created,
        add=add or None,
        created=created,
        keep_opt_outs=options.keep_opt_outs,
    )


class Draft(NamedTuple):
    """What storing a call as a new person writes, rendered ahead (:func:`draft`)."""

    person: PersonRows
    event: str | None  # its event's row, when the call is plain (no name, properties...)


def draft(call: Call, *, now: datetime, options: IngestOptions) -> Draft:
    """The rows the set-wise path writes for ``call`` if it names only people nobody
    knows yet. Pure: an import's worker processes render them for every row, so the
    writer only fills in ids; whether a row is new is decided at write time."""
    update = _trait_update(call, 0, created=True, options=options)
    person = draft_person(
        call.identifiers,
        update,
        source=options.source,
        history_source=options.history_source,
        now=now,
    )
    plain = not (call.name or call.properties or call.context or call.backfill)
    event = (
        repository.plain_row(
            _dedupe_key(call, options),
            call.occurred_at,
            call.via,
            kind=call.type,
            source=options.source,
            now=now,
        )
        if plain
        else None
    )
    return Draft(person, event)


def _dedupe_key(call: Call, options: IngestOptions) -> str:
    return f"{options.source}:{call.message_id}"


def _store_new_people(
    session: Session,
    calls: dict[int, Call],
    keys: dict[int, str],
    results: list[ItemResult],
    *,
    now: datetime,
    options: IngestOptions,
    drafts: dict[int, Draft],
) -> None:
    """Identify calls naming only people nobody knows yet (``new_people``: resolution
    would give each a new profile holding all its identifiers, with nothing to match,
    merge or flag, and its traits on an empty profile) are stored set-wise: their rows,
    rendered ahead (``drafts``, else here), COPYed into profiles, identities, attribute
    history and events. They leave ``calls``; the rest take the general way. Should
    another transaction take one of their identifiers or dedupe keys meanwhile, the
    savepoint is rolled back and they all take the general way."""
    order = sorted(calls)
    fresh = new_people(session, [calls[i].identifiers for i in order], limits=options.limits)
    chosen = [i for i, ok in zip(order, fresh, strict=True) if ok and calls[i].type == "identify"]
    if not chosen:
        return
    rendered = [drafts.get(i) or draft(calls[i], now=now, options=options) for i in chosen]
    savepoint = session.begin_nested()
    made = create_drafted(session, [d.person for d in rendered])
    stored = made is not None
    if made is not None:
        if all(d.event is not None for d in rendered):
            stored = repository.insert_drafted(
                session, [(pid, d.event) for pid, d in zip(made, rendered, strict=True) if d.event]
            )
        else:
            inserted = repository.insert_new(
                session,
                [
                    _event_row(calls[i], pid, keys[i], now, options)
                    for pid, i in zip(made, chosen, strict=True)
                ],
            )
            stored = len(inserted) == len(chosen)
    if made is None or not stored:
        savepoint.rollback()  # raced with another writer: the general way sorts it out
        return
    savepoint.commit()
    # As on the general way: every new person is checked against every segment.
    jobs.enqueue(
        session,
        "segments.recheck",
        extend="changes",
        changes=[[profile_id, [], "new profile"] for profile_id in made],
    )
    for profile_id, d, i in zip(made, rendered, chosen, strict=True):
        result = results[i]
        result.profile_id, result.created, result.changed = profile_id, True, d.person.changed
        del calls[i]


def _event_row(
    call: Call, profile_id: int, key: str, now: datetime, options: IngestOptions
) -> dict[str, Any]:
    return {
        "profile_id": profile_id,
        "type": call.type,
        "name": call.name,
        "properties": call.properties,
        "context": call.context,
        "occurred_at": call.occurred_at,
        "received_at": now,
        "source": options.source,
        "dedupe_key": key,
        "backfill": call.backfill,
        # Only track calls can start or move journeys; the rest need no evaluation.
        "evaluated_at": None if call.name else now,
        "via": call.via,
    }


def unevaluated(
    session: Session, *, now: datetime, older_than: timedelta, limit: int = 5000
) -> list[int]:
    """Track events whose evaluation job was lost (queue down, crash): the sweep re-queues them."""
    return repository.unevaluated(session, now=now, older_than=older_than, limit=limit)
