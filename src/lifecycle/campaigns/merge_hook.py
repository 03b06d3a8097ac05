"""When two profiles merge, two journeys of one campaign become one (nobody gets a message twice)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lifecycle.campaigns.models import Journey, JourneyLog
from lifecycle.profiles.merge import on_merge, on_unmerge


@on_merge
def fold_journeys(
    session: Session, survivor_id: int, merged_id: int, now: datetime
) -> dict[str, Any]:
    survivors = set(
        session.scalars(
            select(Journey.campaign_id).where(
                Journey.profile_id == survivor_id, Journey.status == "active"
            )
        )
    )
    ended = []
    for journey in session.scalars(
        select(Journey).where(Journey.profile_id == merged_id, Journey.status == "active")
    ):
        if journey.campaign_id in survivors:
            ended.append(
                {
                    "id": journey.id,
                    "wake_at": journey.wake_at.isoformat() if journey.wake_at else None,
                }
            )
            journey.status = "exited"
            journey.exit_reason = "merged"
            journey.wake_at = None
            journey.ended_at = now
            session.add(
                JourneyLog(
                    journey_id=journey.id,
                    at=now,
                    kind="exited",
                    step_id=None,
                    detail=f"merged into profile {survivor_id}, which is already in this campaign",
                )
            )
    session.flush()
    return {"journeys_ended": ended}


@on_unmerge("fold_journeys")
def unfold_journeys(session: Session, saved: dict[str, Any], now: datetime) -> None:
    """Journeys the merge ended come back, where the other profile did not start anew."""
    for item in saved.get("journeys_ended", []):
        journey = session.get(Journey, item["id"])
        if journey is None or journey.status != "exited" or journey.exit_reason != "merged":
            continue
        clash = session.scalar(
            select(Journey.id).where(
                Journey.campaign_id == journey.campaign_id,
                Journey.profile_id == journey.profile_id,
                Journey.status == "active",
            )
        )
        if clash is not None:
            continue
        journey.status, journey.exit_reason, journey.ended_at = "active", None, None
        journey.wake_at = datetime.fromisoformat(item["wake_at"]) if item["wake_at"] else now
        session.add(
            JourneyLog(
                journey_id=journey.id,
                at=now,
                kind="resumed",
                step_id=None,
                detail="the merge that ended it was undone",
            )
        )
    session.flush()
