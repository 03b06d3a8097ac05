"""Profile use cases: find a profile by reference, and describe it for the read API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lifecycle.errors import Invalid, NotFound
from lifecycle.profiles.identifiers import NotAnIdentifier, normalize
from lifecycle.profiles.models import Identity, Profile

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
    """The address to reach a profile on ``channel`` (most recently seen identity)."""
    kind = {"email": "email", "sms": "phone", "push": "push_token"}.get(channel)
    if kind is None:
        return None
    return session.scalar(
        select(Identity.value)
        .where(Identity.profile_id == profile_id, Identity.kind == kind)
        .order_by(Identity.last_seen.desc(), Identity.id.desc())
        .limit(1)
    )
