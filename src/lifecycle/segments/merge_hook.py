"""When two profiles merge, a segment both were in keeps one current membership."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lifecycle import jobs
from lifecycle.profiles.merge import on_merge, on_unmerge
from lifecycle.segments.models import SegmentMembership


@on_merge
def fold_memberships(
    session: Session, survivor_id: int, merged_id: int, now: datetime
) -> dict[str, Any]:
    """The merged profile's stay ends where the survivor is already a member (rows then move)."""
    current = SegmentMembership.exited_at.is_(None)
    survivors = set(
        session.scalars(
            select(SegmentMembership.segment_id).where(
                SegmentMembership.profile_id == survivor_id, current
            )
        )
    )
    closed = []
    for row in session.scalars(
        select(SegmentMembership).where(SegmentMembership.profile_id == merged_id, current)
    ):
        if row.segment_id in survivors:
            row.exited_at, row.exited_cause = now, f"merged into profile {survivor_id}"
            closed.append(row.id)
    session.flush()
    # The survivor now holds both records: every segment is re-checked for it after commit.
    jobs.enqueue(
        session,
        "segments.recheck",
        extend="changes",
        changes=[[survivor_id, [], f"merged with profile {merged_id}"]],
    )
    return {"memberships_closed": closed, "profiles": [survivor_id, merged_id]}


@on_unmerge("fold_memberships")
def unfold_memberships(session: Session, saved: dict[str, Any], now: datetime) -> None:
    """Stays the merge ended are current again (their rows have moved back by then)."""
    for row_id in saved.get("memberships_closed", []):
        row = session.get(SegmentMembership, row_id)
        if row is None or row.exited_cause is None or not row.exited_cause.startswith("merged"):
            continue
        clash = session.scalar(
            select(SegmentMembership.id).where(
                SegmentMembership.segment_id == row.segment_id,
                SegmentMembership.profile_id == row.profile_id,
                SegmentMembership.exited_at.is_(None),
            )
        )
        if clash is None:
            row.exited_at, row.exited_cause = None, None
    session.flush()
    profiles = saved.get("profiles", [])
    if profiles:
        jobs.enqueue(
            session,
            "segments.recheck",
            extend="changes",
            changes=[[p, [], "merge undone"] for p in profiles],
        )
