"""One ordered story per profile: events, attribute changes, segment entries and exits,
journeys, messages, merges.

Newest first. The order is total and stable across reads and pages: (time, kind
rank, row id), all descending, and pages continue from an opaque cursor holding
that triple. Each item's ``at`` is when it happened (an event's own timestamp,
not when it was received; that is ``received_at``).
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from sqlalchemy import and_, literal, or_, select, union_all
from sqlalchemy.orm import Session

from lifecycle.campaigns.models import Campaign, CampaignVersion, Journey, JourneyLog
from lifecycle.clock import as_utc
from lifecycle.delivery.models import Message, MessageEvent
from lifecycle.errors import Invalid
from lifecycle.events.models import Event
from lifecycle.profiles.models import FIRST_VALUES, AttributeChange, Merge
from lifecycle.segments.models import Segment, SegmentMembership

# Higher rank sorts first among items at the same instant (a message after its journey entry).
RANKS = {
    "merge_undone": 0,
    "merge": 1,
    "attribute_change": 2,
    "profile_created": 2,  # a row of attribute_changes, as the changes
    "event": 3,
    "segment_exited": 4,  # after what moved the profile, before the journeys it starts
    "segment_entered": 5,
    "journey_entered": 6,
    "message": 7,
    "journey_left": 8,
}


def _sources(profile_id: int) -> list[Any]:
    def part(kind: str, id_col: Any, ts_col: Any, *where: Any) -> Any:
        return select(
            literal(kind).label("kind"),
            literal(RANKS[kind]).label("rank"),
            id_col.label("id"),
            ts_col.label("ts"),
        ).where(*where)

    return [
        part(
            "event",
            Event.id,
            Event.occurred_at,
            Event.profile_id == profile_id,
            Event.name.is_not(None),
        ),
        part(
            "attribute_change",
            AttributeChange.id,
            AttributeChange.changed_at,
            AttributeChange.profile_id == profile_id,
        ),
        part(
            "segment_entered",
            SegmentMembership.id,
            SegmentMembership.entered_at,
            SegmentMembership.profile_id == profile_id,
        ),
        part(
            "segment_exited",
            SegmentMembership.id,
            SegmentMembership.exited_at,
            SegmentMembership.profile_id == profile_id,
            SegmentMembership.exited_at.is_not(None),
        ),
        part("journey_entered", Journey.id, Journey.entered_at, Journey.profile_id == profile_id),
        part(
            "journey_left",
            Journey.id,
            Journey.ended_at,
            Journey.profile_id == profile_id,
            Journey.ended_at.is_not(None),
        ),
        part("message", Message.id, Message.created_at, Message.profile_id == profile_id),
        part(
            "merge",
            Merge.id,
            Merge.created_at,
            or_(Merge.survivor_id == profile_id, Merge.merged_id == profile_id),
        ),
        part(
            "merge_undone",
            Merge.id,
            Merge.undone_at,
            or_(Merge.survivor_id == profile_id, Merge.merged_id == profile_id),
            Merge.undone_at.is_not(None),
        ),
    ]


def encode_cursor(ts: datetime, rank: int, row_id: int) -> str:
    raw = json.dumps([as_utc(ts).isoformat(), rank, row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        ts, rank, row_id = json.loads(base64.urlsafe_b64decode(padded))
        moment, rank, row_id = as_utc(datetime.fromisoformat(ts)), int(rank), int(row_id)
        if not (abs(rank) < 2**31 and abs(row_id) < 2**63):  # beyond INTEGER / BIGINT
            raise ValueError("out of range")
        return moment, rank, row_id
    except (ValueError, TypeError) as err:
        raise Invalid("not a cursor this API gave out", field="cursor") from err


def timeline(
    session: Session, profile_id: int, *, limit: int = 50, cursor: str | None = None
) -> dict[str, Any]:
    if not 1 <= limit <= 500:
        raise Invalid("must be between 1 and 500", field="limit")
    story = union_all(*_sources(profile_id)).subquery("story")
    query = select(story.c.kind, story.c.rank, story.c.id, story.c.ts)
    if cursor:
        ts, rank, row_id = decode_cursor(cursor)
        query = query.where(
            or_(
                story.c.ts < ts,
                and_(story.c.ts == ts, story.c.rank < rank),
                and_(story.c.ts == ts, story.c.rank == rank, story.c.id < row_id),
            )
        )
    rows = session.execute(
        query.order_by(story.c.ts.desc(), story.c.rank.desc(), story.c.id.desc()).limit(limit + 1)
    ).all()
    page = rows[:limit]
    items = [_describe(session, kind, row_id) for kind, _rank, row_id, _ts in page]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor(last.ts, last.rank, last.id)
    return {"profile_id": profile_id, "items": items, "next_cursor": next_cursor}


def _describe(session: Session, kind: str, row_id: int) -> dict[str, Any]:
    if kind == "event":
        e = session.get(Event, row_id)
        assert e is not None
        return {
            "kind": kind,
            "id": e.id,
            "at": e.occurred_at,
            "received_at": e.received_at,
            "name": e.name,
            "properties": e.properties,
            "source": e.source,
            "backfill": e.backfill,
        }
    if kind == "attribute_change":
        c = session.get(AttributeChange, row_id)
        assert c is not None
        if c.name is FIRST_VALUES:  # the attributes the profile was made with
            return {
                "kind": "profile_created",
                "id": c.id,
                "at": c.changed_at,
                "recorded_at": c.recorded_at,
                "attributes": c.new_value,
                "source": c.source,
            }
        return {
            "kind": kind,
            "id": c.id,
            "at": c.changed_at,
            "recorded_at": c.recorded_at,
            "attribute": c.name,
            "old": c.old_value,
            "new": c.new_value,
            "source": c.source,
        }
    if kind in ("segment_entered", "segment_exited"):
        s = session.get(SegmentMembership, row_id)
        assert s is not None
        segment = session.get(Segment, s.segment_id)
        entered = kind == "segment_entered"
        return {
            "kind": kind,
            "id": s.id,
            "at": s.entered_at if entered else s.exited_at,
            "segment": segment.name if segment else None,
            "cause": s.entered_cause if entered else s.exited_cause,
            "entered_at": s.entered_at,
        }
    if kind in ("journey_entered", "journey_left"):
        j = session.get(Journey, row_id)
        assert j is not None
        campaign = session.get(Campaign, j.campaign_id)
        version = session.get(CampaignVersion, j.version_id)
        item: dict[str, Any] = {
            "kind": kind,
            "id": j.id,
            "campaign": campaign.name if campaign else None,
            "campaign_version": version.version if version else None,
        }
        if kind == "journey_entered":
            item.update(
                at=j.entered_at, entered_via=j.entered_via, trigger_event_id=j.trigger_event_id
            )
        else:
            item.update(
                at=j.ended_at, status=j.status, reason=j.exit_reason, goal_event_id=j.goal_event_id
            )
            item["log"] = [
                {"at": log.at, "kind": log.kind, "step": log.step_id, "detail": log.detail}
                for log in session.scalars(
                    select(JourneyLog).where(JourneyLog.journey_id == j.id).order_by(JourneyLog.id)
                )
            ]
        return item
    if kind == "message":
        m = session.get(Message, row_id)
        assert m is not None
        return {
            "kind": kind,
            "id": m.id,
            "at": m.created_at,
            "channel": m.channel,
            "template": m.template,
            "recipient": m.recipient,
            "status": m.status,
            "subject": m.subject,
            "campaign": m.campaign,
            "campaign_version": m.campaign_version,
            "step": m.step_id,
            "why": m.reason,
            "error": {"code": m.error_code, "message": m.error_message} if m.error_code else None,
            "attempts": m.attempts,
            "provider": m.provider,
            "provider_message_id": m.provider_message_id,
            "status_history": [
                {"status": ev.status, "at": ev.at, "detail": ev.detail}
                for ev in session.scalars(
                    select(MessageEvent)
                    .where(MessageEvent.message_id == m.id)
                    .order_by(MessageEvent.id)
                )
            ],
        }
    if kind in ("merge", "merge_undone"):
        g = session.get(Merge, row_id)
        assert g is not None
        item = {
            "kind": kind,
            "id": g.id,
            "survivor_id": g.survivor_id,
            "merged_id": g.merged_id,
        }
        if kind == "merge":
            item.update(at=g.created_at, reason=g.reason, by=g.actor, undone_at=g.undone_at)
        else:
            item.update(at=g.undone_at, reason=g.undo_reason, by=g.undone_by)
        return item
    raise AssertionError(kind)
