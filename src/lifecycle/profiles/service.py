"""Profile use cases: find a profile by reference, describe it, merge and unmerge by hand."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from lifecycle.errors import Conflict, Invalid, NotFound
from lifecycle.profiles import repository
from lifecycle.profiles.identifiers import NotAnIdentifier, normalize
from lifecycle.profiles.merge import merge_profiles, unmerge
from lifecycle.profiles.models import FIRST_VALUES, AttributeChange, Identity, Merge, Profile

REF_KINDS = {"id": "id", "email": "email", "phone": "phone", "anon": "anonymous_id"}


def find_profile(session: Session, ref: str, *, default_region: str = "US") -> Profile:
    """Resolve ``ref`` (internal id, ``id:…``, ``email:…``, ``phone:…``, ``anon:…``).

    A merged-away profile resolves to its survivor.
    """
    kind, sep, raw = ref.partition(":")
    profile: Profile | None
    if not sep:
        if not (ref.isascii() and ref.isdigit()):  # "²".isdigit() is true, int("²") fails
            raise Invalid(
                f"profile reference {ref!r}: use an internal id or id:, email:, phone:, anon:",
                field="ref",
            )
        # ids are BIGINT: a larger number names no row (and must not reach the database)
        profile = session.get(Profile, int(ref)) if len(ref) < 20 and int(ref) < 2**63 else None
    else:
        if kind not in REF_KINDS:
            raise Invalid(f"profile reference kind {kind!r} is unknown", field="ref")
        try:
            ident = normalize(REF_KINDS[kind], raw, default_region=default_region)
        except NotAnIdentifier as err:
            raise Invalid(str(err), field="ref") from None
        pid = session.scalar(
            select(Identity.profile_id).where(
                Identity.kind == ident.kind, Identity.value == ident.value
            )
        )
        profile = session.get(Profile, pid) if pid is not None else None
    if profile is None:
        raise NotFound(f"no profile for {ref!r}")
    seen = {profile.id}
    while profile.merged_into_id is not None:
        nxt = session.get(Profile, profile.merged_into_id)
        if nxt is None or nxt.id in seen:
            break
        seen.add(nxt.id)
        profile = nxt
    return profile


def describe(session: Session, profile: Profile) -> dict[str, Any]:
    idents = session.scalars(
        select(Identity).where(Identity.profile_id == profile.id).order_by(Identity.id)
    )
    return {
        "id": profile.id,
        "attributes": profile.attributes,
        "timezone": profile.timezone,
        "created_at": profile.created_at,
        "updated_at": profile.updated_at,
        "identities": [
            {
                "kind": i.kind,
                "value": i.value,
                "display": i.display,
                "source": i.source,
                "first_seen": i.first_seen,
                "last_seen": i.last_seen,
            }
            for i in idents
        ],
    }


def contact_for(session: Session, profile_id: int, channel: str) -> str | None:
    """The address to reach a profile on ``channel``: the one its ``email``/``phone``
    attribute names (an old address still identifies the person but is not written to),
    else the most recently seen identity of that kind."""
    kind = {"email": "email", "sms": "phone", "push": "push_token"}.get(channel)
    if kind is None:
        return None
    held = list(
        session.scalars(
            select(Identity.value)
            .where(Identity.profile_id == profile_id, Identity.kind == kind)
            .order_by(Identity.last_seen.desc(), Identity.id.desc())
        )
    )
    if not held:
        return None
    profile = session.get(Profile, profile_id)
    current = (profile.attributes or {}).get(kind) if profile else None
    if isinstance(current, str):
        try:
            wanted = normalize(kind, current).value
        except NotAnIdentifier:
            wanted = None
        if wanted in held:
            return wanted
    return held[0]


def merge(
    session: Session,
    into: str,
    other: str,
    *,
    reason: str,
    actor: str,
    now: datetime,
    force: bool = False,
    default_region: str = "US",
) -> Merge:
    """Merge the profile ``other`` names into the one ``into`` names (explicit, by staff)."""
    if not reason.strip():
        raise Invalid("a merge needs a reason", field="reason")
    survivor = find_profile(session, into, default_region=default_region)
    merged = find_profile(session, other, default_region=default_region)
    if survivor.id == merged.id:
        raise Conflict(f"{into!r} and {other!r} are already the same profile ({survivor.id})")
    return merge_profiles(
        session, survivor.id, merged.id, reason=reason, actor=actor, now=now, force=force
    )


def undo_merge(session: Session, merge_id: int, *, reason: str, actor: str, now: datetime) -> Merge:
    if not reason.strip():
        raise Invalid("an undo needs a reason", field="reason")
    return unmerge(session, merge_id, actor=actor, reason=reason, now=now)


def merges_of(session: Session, profile_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Merge)
        .where((Merge.survivor_id == profile_id) | (Merge.merged_id == profile_id))
        .order_by(Merge.id)
    )
    return [
        {
            "id": m.id,
            "survivor_id": m.survivor_id,
            "merged_id": m.merged_id,
            "reason": m.reason,
            "by": m.actor,
            "at": m.created_at,
            "undone_at": m.undone_at,
            "undone_by": m.undone_by,
            "undo_reason": m.undo_reason,
        }
        for m in rows
    ]


def identifiers_of(session: Session, profile_ids: set[int]) -> dict[int, set[tuple[str, str]]]:
    """The (kind, value) identifiers each profile holds."""
    return repository.identities_of(session, profile_ids)


def attributes_of(session: Session, profile_ids: list[int]) -> dict[int, dict[str, Any]]:
    return {
        pid: attrs
        for pid, (attrs, _times) in repository.attribute_state(session, profile_ids).items()
    }


def holders(session: Session, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Which profile holds each (kind, value)."""
    return repository.owners(session, keys)


def attribute_history(session: Session, profile_id: int, name: str) -> list[AttributeChange]:
    """The changes of one attribute of a profile, oldest first, its first value included
    (stored in the profile's first-values row, shown here as a change of its own)."""
    rows = session.scalars(
        select(AttributeChange)
        .where(
            AttributeChange.profile_id == profile_id,
            or_(AttributeChange.name == name, AttributeChange.name.is_(FIRST_VALUES)),
        )
        .order_by(AttributeChange.id)
    ).all()
    out = []
    for row in rows:
        if row.name is not FIRST_VALUES:
            out.append(row)
        elif name in (row.new_value or {}):
            first = AttributeChange(
                id=row.id,
                profile_id=row.profile_id,
                name=name,
                old_value=None,
                new_value=row.new_value[name],
                source=row.source,
                changed_at=row.changed_at,
                recorded_at=row.recorded_at,
                via=row.via,
            )
            out.append(first)
    return out
