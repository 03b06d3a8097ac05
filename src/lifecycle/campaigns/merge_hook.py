"""When two profiles merge, two journeys of one campaign become one (nobody gets a message twice)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lifecycle.campaigns.models import Journey, JourneyLog
from lifecycle.profiles.merge import on_merge


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
