"""Identity resolution, set-wise: many requests, a handful of queries.

Every way in (API, webhooks, CSV, replay) resolves identity through
:func:`resolve_many`. Rules (see ``docs/identity.md``):

- unknown identifiers create one new profile per request;
- identifiers owned by another profile are merged in only on certain evidence
  (:func:`can_auto_merge`); otherwise they are left off and reported;
- a profile holds at most one ``id`` and a few emails and phones.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from lifecycle.profiles import repository
from lifecycle.profiles.identifiers import Identifier
from lifecycle.profiles.merge import merge_profiles
from lifecycle.profiles.traits import TraitUpdate, initial_state

LIMITS = {"id": 1, "email": 5, "phone": 3}


@dataclass
class Resolution:
    profile_id: int
    created: bool = False
    warnings: list[str] = field(default_factory=list)


def can_auto_merge(other_idents: set[tuple[str, str]], request_keys: set[tuple[str, str]]) -> bool:
    """May the profile holding ``other_idents`` fold into the one this request names?

    Only on certain evidence: the other profile has no external id of its own, the
    link is not a phone alone (phones are shared), and it holds no email that the
    request contradicts.
    """
    other_kinds = {kind for kind, _ in other_idents}
    if "id" in other_kinds:
        return False
    evidence = {kind for kind, _ in other_idents & request_keys}
    if not evidence or evidence <= {"phone"}:
        return False
    request_emails = {k for k in request_keys if k[0] == "email"}
    other_emails = {k for k in other_idents if k[0] == "email"}
    return not (request_emails and other_emails - request_emails)


def resolve_many(
    session: Session,
    requests: list[list[Identifier]],
    *,
    source: str,
    now: datetime,
    actor: str = "system",
    limits: dict[str, int] | None = None,
) -> list[Resolution]:
    """Resolve each request's identifiers to one profile, creating and linking as needed."""
    all_keys = sorted({ident.key for req in requests for ident in req})
    owner = repository.owners(session, all_keys)
    idents = repository.identities_of(session, set(owner.values()))

    results: list[Resolution] = []
    new_rows: dict[tuple[str, str], dict] = {}
    next_temp = -1
    clashes: list[tuple[Resolution, int, list[tuple[str, str]], int]] = []
    merges: list[tuple[int, int, str]] = []
    suspects: list[tuple[int, int, list[str]]] = []
    limits = LIMITS if limits is None else limits

    for req in requests:
        keys = {i.key for i in req}
        found = list(dict.fromkeys(owner[k] for k in (i.key for i in req) if k in owner))
        primary = _choose_primary(req, owner, [p for p in found if compatible(idents[p], keys)])
        if primary is None:
            primary, next_temp = next_temp, next_temp - 1
        res = Resolution(profile_id=primary, created=primary < 0)
        for other in found:
            if other == primary:
                continue
            if can_auto_merge(idents[other], keys):
                merges.append((primary, other, "linked by " + _evidence(idents[other], keys)))
                for key in idents.pop(other):
                    owner[key] = primary
                    idents[primary].add(key)
            else:
                taken = sorted(k for k in keys if owner.get(k) == other)
                suspects.append(
                    (primary, other, [f"{source} call linked {k}={v}" for k, v in taken])
                )
                # The other profile may be one this batch makes: its id is known below.
                clashes.append((res, len(res.warnings), taken, other))
                res.warnings.append("")
        pid = res.profile_id
        for ident in req:
            if ident.key in owner:
                continue
            held = sum(1 for kind, _ in idents[pid] if kind == ident.kind)
            limit = limits.get(ident.kind)
            if limit is not None and held >= limit:
                res.warnings.append(
                    f"{ident.kind}={ident.display!r} left off: the profile already holds "
                    f"{held} {ident.kind} identifier(s) (limit {limit})"
                )
                continue
            owner[ident.key] = pid
            idents[pid].add(ident.key)
            new_rows[ident.key] = {
                "kind": ident.kind,
                "value": ident.value,
                "display": ident.display,
                "profile_id": pid,
                "source": source,
                "first_seen": now,
                "last_seen": now,
            }
        results.append(res)

    temp_ids = sorted({r.profile_id for r in results if r.profile_id < 0}, reverse=True)
    created = repository.create_profiles(session, len(temp_ids), now)
    real = dict(zip(temp_ids, created, strict=True))
    for res, at, taken, other in clashes:
        res.warnings[at] = (
            f"{', '.join(f'{k}={v}' for k, v in taken)} belongs to another person (profile"
            f" {real.get(other, other)}); left off, flagged as a possible duplicate"
        )
    for row in new_rows.values():
        row["profile_id"] = real.get(row["profile_id"], row["profile_id"])
    repository.record_candidates(
        session, [(real.get(a, a), real.get(b, b), why) for a, b, why in suspects], now
    )
    for survivor, merged, why in merges:
        merge_profiles(
            session, real.get(survivor, survivor), merged, reason=why, actor=actor, now=now
        )
    inserted = repository.insert_identities(session, list(new_rows.values()))
    raced = [k for k in new_rows if k not in inserted]
    winners = repository.owners(session, raced)
    for res in results:
        res.profile_id = real.get(res.profile_id, res.profile_id)
    for key in raced:
        # Another transaction took this identifier first: follow it rather than split.
        loser = new_rows[key]["profile_id"]
        for res in results:
            if res.profile_id == loser and res.created:
                res.profile_id, res.created = winners[key], False
    repository.touch_last_seen(session, [k for k in all_keys if k not in new_rows], now)
    return results


def compatible(held: set[tuple[str, str]], request_keys: set[tuple[str, str]]) -> bool:
    """Can this request be about the profile holding ``held``?

    Not when both carry an external id and the ids differ, nor when the request's
    only link to it is a shared phone while their emails differ (B17).
    """
    request_ids = {k for k in request_keys if k[0] == "id"}
    held_ids = {k for k in held if k[0] == "id"}
    if request_ids and held_ids and not request_ids & held_ids:
        return False
    evidence = {kind for kind, _ in held & request_keys}
    if evidence <= {"phone"}:
        request_emails = {k for k in request_keys if k[0] == "email"}
        held_emails = {k for k in held if k[0] == "email"}
        if request_emails and held_emails and not request_emails & held_emails:
            return False
        if request_ids and held_ids:
            return False
    return True


def _choose_primary(
    req: list[Identifier], owner: dict[tuple[str, str], int], candidates: list[int]
) -> int | None:
    """The profile this request is about: by id, then email, anonymous id, phone."""
    for kind in ("id", "email", "anonymous_id", "phone"):
        for ident in req:
            if ident.kind == kind and owner.get(ident.key) in candidates:
                return owner[ident.key]
    return candidates[0] if candidates else None


def _evidence(other: set[tuple[str, str]], keys: set[tuple[str, str]]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(other & keys))


def new_people(
    session: Session, requests: list[list[Identifier]], *, limits: dict[str, int] | None = None
) -> list[bool]:
    """Which requests :func:`resolve_many` would answer with a new profile of their own,
    holding all their identifiers: none of their identifiers is held by a profile or named
    by another request of the batch, and no kind exceeds its limit. Such requests need no
    matching, merging or flagging, so they can be created set-wise (:func:`create_drafted`)."""
    keys = [{ident.key for ident in req} for req in requests]
    named = Counter(key for held in keys for key in held)
    owner = repository.owners(session, list(named))
    limits = LIMITS if limits is None else limits
    answer = []
    for req, held in zip(requests, keys, strict=True):
        # A kind over its limit shows as fewer distinct kinds than identifiers (most
        # people name one email and one phone): only then are they counted.
        kinds = {ident.kind for ident in req}
        answer.append(
            bool(req)
            and all(named[key] == 1 and key not in owner for key in held)
            and (
                len(kinds) == len(req)
                or all(
                    n <= limits.get(kind, n)
                    for kind, n in Counter(ident.kind for ident in req).items()
                )
            )
        )
    return answer


def draft_person(
    identifiers: list[Identifier],
    update: TraitUpdate,
    *,
    source: str,
    now: datetime,
    history_source: str | None = None,
) -> repository.PersonRows:
    """The rows of a new profile holding ``identifiers`` with what ``update`` gives an
    empty profile (and its history), for :func:`create_drafted`. Pure: an import renders
    them in its worker processes, ahead of the writer."""
    attributes, times, changes = initial_state(update)
    return repository.person_rows(
        attributes,
        times,
        changes,
        [(i.kind, i.value, i.display) for i in identifiers],
        changed_at=update.at,
        via=update.via,
        source=source,
        history_source=history_source,
        now=now,
    )


def create_drafted(session: Session, people: list[repository.PersonRows]) -> list[int] | None:
    """Create one profile per person that :func:`new_people` accepted, from its drafted
    rows, set-wise (PostgreSQL). Returns the profile ids in order, or None when another
    transaction took one of the identifiers meanwhile: the caller then rolls back (a
    savepoint) and resolves those people one by one as usual."""
    return repository.insert_drafted(session, people)
