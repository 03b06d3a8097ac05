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
from typing import Any

from sqlalchemy.orm import Session

from lifecycle import jobs
from lifecycle.errors import Invalid
from lifecycle.events import repository
from lifecycle.events.calls import Call, parse_call
from lifecycle.profiles import service as profiles
from lifecycle.profiles.identifiers import Identifier, NotAnIdentifier, normalize
from lifecycle.profiles.resolution import resolve_many
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
            if ident.key in held[pid] and _differs(ident, now_value):
                calls[i].traits = {k: v for k, v in calls[i].traits.items() if k != ident.kind}
                results[i].warnings.append(
                    f"traits.{ident.kind}: {ident.display!r} is an earlier {ident.kind} of this "
                    f"profile; it still finds the person, the current one ({now_value!r}) is kept"
                )


def _differs(ident: Identifier, value: Any) -> bool:
    if value is None:
        return False
    try:
        return normalize(ident.kind, value).value != ident.value
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

    keys = {i: f"{options.source}:{c.message_id}" for i, c in calls.items()}
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
    _keep_current_contacts(session, calls, with_traits, profile_of, results)
    if options.existing == "skip":
        with_traits = [i for i in with_traits if results[i].created]
    updates = [
        TraitUpdate(
            profile_of[i],
            _empties(calls[i].traits, clear=options.empty_clears),
            calls[i].occurred_at,
            calls[i].via,
            fill_only=options.existing == "fill_empty" and not results[i].created,
            add={name: list(items) for name, items in options.add_to_lists} or None,
        )
        for i in with_traits
    ]
    applied = apply_traits(session, updates, source=options.source, now=now)
    for index, warning in applied.warnings:
        results[with_traits[index]].warnings.append(warning)
    for index in applied.changed:
        results[with_traits[index]].changed = True

    rows = [
        {
            "profile_id": profile_of[i],
            "type": calls[i].type,
            "name": calls[i].name,
            "properties": calls[i].properties,
            "context": calls[i].context,
            "occurred_at": calls[i].occurred_at,
            "received_at": now,
            "source": options.source,
            "dedupe_key": keys[i],
            "backfill": calls[i].backfill,
            # Only track calls can start or move journeys; the rest need no evaluation.
            "evaluated_at": None if calls[i].name else now,
            "via": calls[i].via,
        }
        for i in order
    ]
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


def unevaluated(
    session: Session, *, now: datetime, older_than: timedelta, limit: int = 5000
) -> list[int]:
    """Track events whose evaluation job was lost (queue down, crash): the sweep re-queues them."""
    return repository.unevaluated(session, now=now, older_than=older_than, limit=limit)
