"""Merging one profile into another, recording what moved so it can be undone.

Rows of every table with a ``profile_id`` column move to the survivor; domains
that need more (one journey per campaign) register a hook with :func:`on_merge`.
Attributes: per attribute, the most recently changed non-empty value wins; the
other stays in history. The merged-away profile stays as a tombstone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from lifecycle.clock import stamp
from lifecycle.db import Base
from lifecycle.errors import Invalid, NotFound
from lifecycle.profiles.models import AttributeChange, Merge, Profile

MergeHook = Callable[[Session, int, int, datetime], dict[str, Any]]
_hooks: list[MergeHook] = []


def on_merge(hook: MergeHook) -> MergeHook:
    """Register ``hook(session, survivor_id, merged_id, now)``; it runs before rows move."""
    _hooks.append(hook)
    return hook


def _profile_tables() -> list[Any]:
    return [
        table
        for table in Base.metadata.sorted_tables
        if "profile_id" in table.c and table.name != "merges"
    ]


def merge_profiles(
    session: Session,
    survivor_id: int,
    merged_id: int,
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> Merge:
    if survivor_id == merged_id:
        raise Invalid("a profile cannot be merged into itself", field="profile")
    survivor = session.get(Profile, survivor_id, with_for_update=True)
    merged = session.get(Profile, merged_id, with_for_update=True)
    if survivor is None or merged is None:
        raise NotFound(f"profile {survivor_id if survivor is None else merged_id} not found")
    if survivor.merged_into_id is not None or merged.merged_into_id is not None:
        raise Invalid("a profile that was merged away cannot take part in a merge")

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
        "hooks": {},
        "rows": {},
    }
    for hook in _hooks:
        moved["hooks"][hook.__name__] = hook(session, survivor_id, merged_id, now)
    for table in _profile_tables():
        ids = list(
            session.execute(select(table.c.id).where(table.c.profile_id == merged_id)).scalars()
        )
        if ids:
            session.execute(
                update(table).where(table.c.profile_id == merged_id).values(profile_id=survivor_id)
            )
            moved["rows"][table.name] = ids

    attributes = dict(survivor.attributes)
    times = dict(survivor.attribute_times)
    changes = []
    for name, value in merged.attributes.items():
        theirs = merged.attribute_times.get(name, "")
        ours = times.get(name, "")
        if value in (None, "") or (
            name in attributes and attributes[name] not in (None, "") and ours >= theirs
        ):
            continue
        if attributes.get(name) == value:
            continue
        changes.append(
            {
                "profile_id": survivor_id,
                "name": name,
                "old_value": attributes.get(name),
                "new_value": value,
                "source": "merge",
                "changed_at": now,
                "recorded_at": now,
            }
        )
        attributes[name] = value
        times[name] = theirs or stamp(now)
    if changes:
        session.execute(insert(AttributeChange), changes)
    survivor.attributes = attributes
    survivor.attribute_times = times
    survivor.created_at = min(survivor.created_at, merged.created_at)
    survivor.updated_at = now
    merged.merged_into_id = survivor_id
    merged.updated_at = now
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
