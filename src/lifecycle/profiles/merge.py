"""Merging one profile into another, and undoing it exactly.

Rows of every table with a ``profile_id`` column move to the survivor; domains
that need more (one journey per campaign) register hooks with :func:`on_merge` and
:func:`on_unmerge`. Survivorship per attribute (:func:`survive`): the most
recently changed non-empty value wins and the other stays in history; lists are
united; an unsubscribe or suppression on either side carries over; the earliest
creation time is kept. The merged-away profile stays as a tombstone.

Undo puts both profiles back as they were, with what happened since: rows moved
by the merge go back; events and attribute changes that arrived while merged go to
the profile whose identifier they came through (``via``); the rest stays with the
survivor.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from lifecycle.clock import stamp
from lifecycle.db import Base
from lifecycle.errors import Conflict, Invalid, NotFound
from lifecycle.profiles.models import (
    FIRST_VALUES,
    AttributeChange,
    DuplicateCandidate,
    Identity,
    Merge,
    Profile,
)

MergeHook = Callable[[Session, int, int, datetime], dict[str, Any]]
UnmergeHook = Callable[[Session, dict[str, Any], datetime], None]
_hooks: list[MergeHook] = []
_unhooks: dict[str, UnmergeHook] = {}
STICKY_PREFIXES = ("unsubscribed", "suppressed")
# Tables whose rows written while merged follow their identifier back on undo.
VIA_TABLES = {"events": "received_at", "attribute_changes": "recorded_at"}


def on_merge(hook: MergeHook) -> MergeHook:
    """Register ``hook(session, survivor_id, merged_id, now)``; it runs before rows move,
    and what it returns is kept for its undo twin (same function name, :func:`on_unmerge`)."""
    _hooks.append(hook)
    return hook


def on_unmerge(name: str) -> Callable[[UnmergeHook], UnmergeHook]:
    def register(hook: UnmergeHook) -> UnmergeHook:
        _unhooks[name] = hook
        return hook

    return register


def _profile_tables() -> list[Any]:
    return [
        table
        for table in Base.metadata.sorted_tables
        if "profile_id" in table.c and table.name != "merges"
    ]


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def survive(
    ours: dict[str, Any],
    our_times: dict[str, str],
    theirs: dict[str, Any],
    their_times: dict[str, str],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Survivorship, per attribute (pure)."""
    attributes, times = dict(ours), dict(our_times)
    for name, value in theirs.items():
        mine = attributes.get(name)
        their_time, my_time = their_times.get(name, ""), times.get(name, "")
        if name.startswith(STICKY_PREFIXES) and (value is True or mine is True):
            merged_value: Any = True
        elif isinstance(mine, list) and isinstance(value, list):
            merged_value = list(mine)
            seen = {json.dumps(v, sort_keys=True) for v in mine}
            merged_value += [v for v in value if json.dumps(v, sort_keys=True) not in seen]
        elif _empty(value):
            continue
        elif _empty(mine) or their_time > my_time:
            merged_value = value
        else:
            continue
        if merged_value != mine or name not in attributes:
            attributes[name] = merged_value
            times[name] = max(their_time, my_time) or times.get(name, "")
    return attributes, times


def _keys(session: Session, profile_id: int) -> list[list[Any]]:
    return [
        [i.id, i.kind, i.value]
        for i in session.scalars(select(Identity).where(Identity.profile_id == profile_id))
    ]


def merge_profiles(
    session: Session,
    survivor_id: int,
    merged_id: int,
    *,
    reason: str,
    actor: str,
    now: datetime,
    force: bool = False,
) -> Merge:
    """Merge ``merged_id`` into ``survivor_id``. Two profiles with different external ids
    merge only with ``force``. Returns the merge record (its id undoes it)."""
    if survivor_id == merged_id:
        raise Invalid("a profile cannot be merged into itself", field="profile")
    first, second = sorted((survivor_id, merged_id))
    locked = {
        p.id: p
        for p in session.scalars(
            select(Profile)
            .where(Profile.id.in_((first, second)))
            .order_by(Profile.id)
            .with_for_update()
        )
    }
    survivor, merged = locked.get(survivor_id), locked.get(merged_id)
    if survivor is None or merged is None:
        raise NotFound(f"profile {survivor_id if survivor is None else merged_id} not found")
    if survivor.merged_into_id is not None or merged.merged_into_id is not None:
        gone = survivor if survivor.merged_into_id is not None else merged
        raise Conflict(f"profile {gone.id} was merged into {gone.merged_into_id}; use that one")
    survivor_keys, merged_keys = _keys(session, survivor_id), _keys(session, merged_id)
    ids = sorted(
        {v for _, k, v in survivor_keys if k == "id"} | {v for _, k, v in merged_keys if k == "id"}
    )
    if len(ids) > 1 and not force:
        raise Conflict(
            f"both profiles have an external id ({', '.join(ids)}); merging them needs force"
        )

    moved: dict[str, Any] = {
        "survivor_before": {
            "attributes": dict(survivor.attributes),
            "attribute_times": dict(survivor.attribute_times),
            "created_at": survivor.created_at.isoformat(),
        },
        "merged_before": {
            "attributes": dict(merged.attributes),
            "attribute_times": dict(merged.attribute_times),
        },
        "merged_identities": [f"{k}:{v}" for _, k, v in merged_keys],
        "hooks": {},
        "rows": {},
    }
    for hook in _hooks:
        moved["hooks"][hook.__name__] = hook(session, survivor_id, merged_id, now)
    for table in _profile_tables():
        row_ids = list(
            session.execute(select(table.c.id).where(table.c.profile_id == merged_id)).scalars()
        )
        if row_ids:
            session.execute(
                update(table).where(table.c.profile_id == merged_id).values(profile_id=survivor_id)
            )
            moved["rows"][table.name] = row_ids

    attributes, times = survive(
        survivor.attributes, survivor.attribute_times, merged.attributes, merged.attribute_times
    )
    _record_changes(session, survivor_id, survivor.attributes, attributes, "merge", now)
    survivor.attributes, survivor.attribute_times = attributes, times
    survivor.created_at = min(survivor.created_at, merged.created_at)
    survivor.updated_at = now
    merged.merged_into_id = survivor_id
    merged.updated_at = now
    session.execute(
        update(DuplicateCandidate)
        .where(DuplicateCandidate.profile_a == first, DuplicateCandidate.profile_b == second)
        .values(status="merged", decided_by=actor, updated_at=now)
    )
    record = Merge(
        survivor_id=survivor_id,
        merged_id=merged_id,
        reason=reason,
        actor=actor,
        moved=moved,
        created_at=now,
    )
    session.add(record)
    session.flush()
    return record


def _record_changes(
    session: Session,
    profile_id: int,
    before: dict[str, Any],
    after: dict[str, Any],
    source: str,
    now: datetime,
) -> None:
    rows = [
        {
            "profile_id": profile_id,
            "name": name,
            "old_value": before.get(name),
            "new_value": after.get(name),
            "source": source,
            "changed_at": now,
            "recorded_at": now,
        }
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name) or (name in before) != (name in after)
    ]
    if rows:
        session.execute(insert(AttributeChange), rows)


def _replay(
    base: dict[str, Any], base_times: dict[str, str], changes: list[AttributeChange]
) -> tuple[dict[str, Any], dict[str, str]]:
    attributes, times = dict(base), dict(base_times)
    for change in sorted(changes, key=lambda c: (c.changed_at, c.id)):
        at = stamp(change.changed_at)
        # A profile's first values are one row: each is a change of its own here.
        each = (
            (change.new_value or {}).items()
            if change.name is FIRST_VALUES
            else [(change.name, change.new_value)]
        )
        for name, value in each:
            if times.get(name, "") > at:
                continue
            if value is None:
                attributes.pop(name, None)
            else:
                attributes[name] = value
            times[name] = at
    return attributes, times


def unmerge(session: Session, merge_id: int, *, actor: str, reason: str, now: datetime) -> Merge:
    """Undo a merge exactly (see the module docstring)."""
    record = session.get(Merge, merge_id, with_for_update=True)
    if record is None:
        raise NotFound(f"merge {merge_id} not found")
    if record.undone_at is not None:
        raise Conflict(f"merge {merge_id} was already undone at {record.undone_at.isoformat()}")
    survivor = session.get(Profile, record.survivor_id, with_for_update=True)
    merged = session.get(Profile, record.merged_id, with_for_update=True)
    assert survivor is not None and merged is not None
    if survivor.merged_into_id is not None:
        raise Conflict(
            f"profile {survivor.id} was merged into {survivor.merged_into_id} since; undo that merge first"
        )
    moved = record.moved
    tables = {t.name: t for t in _profile_tables()}
    for name, row_ids in moved["rows"].items():
        table = tables.get(name)
        if table is not None:
            session.execute(
                update(table)
                .where(table.c.id.in_(row_ids), table.c.profile_id == survivor.id)
                .values(profile_id=merged.id)
            )
    via_keys = moved.get("merged_identities", [])
    for name, time_column in VIA_TABLES.items():
        table = tables[name]
        session.execute(
            update(table)
            .where(
                table.c.profile_id == survivor.id,
                table.c.via.in_(via_keys),
                table.c[time_column] >= record.created_at,
            )
            .values(profile_id=merged.id)
        )
    for hook_name, saved in moved.get("hooks", {}).items():
        if hook_name in _unhooks:
            _unhooks[hook_name](session, saved, now)

    def since_merge(profile_id: int) -> list[AttributeChange]:
        return list(
            session.scalars(
                select(AttributeChange).where(
                    AttributeChange.profile_id == profile_id,
                    AttributeChange.recorded_at >= record.created_at,
                    AttributeChange.source.not_in(("merge", "unmerge")),
                )
            )
        )

    before = moved["merged_before"]
    merged.attributes, merged.attribute_times = _replay(
        before["attributes"], before["attribute_times"], since_merge(merged.id)
    )
    before = moved["survivor_before"]
    current = dict(survivor.attributes)
    survivor.attributes, survivor.attribute_times = _replay(
        before["attributes"], before["attribute_times"], since_merge(survivor.id)
    )
    _record_changes(session, survivor.id, current, survivor.attributes, "unmerge", now)
    survivor.created_at = datetime.fromisoformat(before["created_at"])
    survivor.updated_at = merged.updated_at = now
    merged.merged_into_id = None
    record.undone_at, record.undone_by, record.undo_reason = now, actor, reason
    first, second = sorted((survivor.id, merged.id))
    session.execute(
        update(DuplicateCandidate)
        .where(DuplicateCandidate.profile_a == first, DuplicateCandidate.profile_b == second)
        .values(status="dismissed", decided_by=actor, updated_at=now)
    )
    session.flush()
    return record
