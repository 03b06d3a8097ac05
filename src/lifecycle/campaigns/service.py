"""Campaign and journey use cases: publish definitions, start, run, wake, add, remove.

Entrypoints own the transaction; these functions only flush. Journey runs happen
under a row lock (``FOR UPDATE``; the scheduler uses ``SKIP LOCKED``), so two
workers never advance the same journey at once, and every run re-checks goal and
exit before a step (see :mod:`.engine`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lifecycle.campaigns import engine
from lifecycle.campaigns.definition import CampaignDef
from lifecycle.campaigns.loader import LoadedCampaign
from lifecycle.campaigns.matching import properties_match
from lifecycle.campaigns.models import (
    Broadcast,
    Campaign,
    CampaignVersion,
    Journey,
    JourneyLog,
)
from lifecycle.db import is_postgres
from lifecycle.delivery.models import Message
from lifecycle.delivery.service import create_message, is_final
from lifecycle.errors import Conflict, NotFound
from lifecycle.events.models import Event
from lifecycle.profiles.models import Profile
from lifecycle.segments import service as segments
from lifecycle.segments.loader import LoadedSegment


@dataclass(frozen=True)
class Live:
    """A published campaign's current version, as plain data (safe to cache)."""

    campaign_id: int
    name: str
    version_id: int
    definition: CampaignDef

    def triggered_by(self, event: Event) -> bool:
        trigger = self.definition.trigger
        return (
            trigger.event is not None
            and trigger.event == event.name
            and properties_match(event.properties or {}, trigger.where)
        )


# Every evaluation needs the live campaigns; they change only on publish. Each
# process keeps them for LIVE_TTL seconds (and drops them at once when it publishes).
LIVE_TTL = 5.0
_live_cache: dict[str, tuple[float, list[Live]]] = {}


_definitions: dict[tuple[int, str], CampaignDef] = {}


def definition_of(version: CampaignVersion) -> CampaignDef:
    """The parsed definition; versions never change, so each is parsed once per process
    (keyed by id and checksum, so another database's version 1 is not mistaken for it)."""
    key = (version.id, version.checksum)
    found = _definitions.get(key)
    if found is None:
        found = _definitions[key] = CampaignDef.model_validate(version.definition)
    return found


def publish(session: Session, loaded: list[LoadedCampaign], *, now: datetime) -> list[str]:
    """Store each definition; a changed one becomes a new version. Returns what changed."""
    changed = []
    for item in loaded:
        name = item.definition.name
        campaign = session.scalar(select(Campaign).where(Campaign.name == name))
        if campaign is None:
            campaign = Campaign(name=name, status="active", created_at=now, updated_at=now)
            session.add(campaign)
            session.flush()
        current = (
            session.get(CampaignVersion, campaign.current_version_id)
            if campaign.current_version_id
            else None
        )
        if current is not None and current.checksum == item.checksum:
            continue
        number = (
            session.scalar(
                select(func.max(CampaignVersion.version)).where(
                    CampaignVersion.campaign_id == campaign.id
                )
            )
            or 0
        ) + 1
        version = CampaignVersion(
            campaign_id=campaign.id,
            version=number,
            definition=item.definition.model_dump(mode="json", by_alias=True),
            checksum=item.checksum,
            source_file=item.file,
            created_at=now,
        )
        session.add(version)
        session.flush()
        campaign.current_version_id = version.id
        campaign.status = "active"
        campaign.updated_at = now
        changed.append(f"{name} v{number}")
    if changed:
        forget_live_campaigns()
    return changed


def publish_project(
    session: Session,
    loaded: list[LoadedCampaign],
    segment_files: list[LoadedSegment],
    *,
    now: datetime,
    zone: str,
) -> list[str]:
    """Segments first (campaigns name them), the whole segments directory, then campaigns."""
    changed, _ = segments.publish(session, segment_files, now=now, zone=zone, complete=True)
    return [f"segment {c}" for c in changed] + publish(session, loaded, now=now)


def live_campaigns(session: Session) -> list[Live]:
    key = session.get_bind().engine.url.render_as_string()
    cached = _live_cache.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    rows = session.execute(
        select(Campaign.id, Campaign.name, CampaignVersion)
        .join(CampaignVersion, CampaignVersion.id == Campaign.current_version_id)
        .where(Campaign.status == "active")
        .order_by(Campaign.name)
    )
    live = [Live(cid, name, v.id, definition_of(v)) for cid, name, v in rows]
    _live_cache[key] = (time.monotonic() + LIVE_TTL, live)
    return live


def forget_live_campaigns() -> None:
    _live_cache.clear()


class DbFacts:
    """What the engine may ask about one profile, answered from the store."""

    def __init__(self, session: Session, journey: Journey, *, now: datetime, zone: str) -> None:
        self.session = session
        self.journey = journey
        self.now = now
        self.zone = zone
        self._attributes: dict[str, Any] | None = None

    def in_segment(self, name: str) -> bool:
        return segments.is_member(
            self.session, name, self.journey.profile_id, now=self.now, zone=self.zone
        )

    def attributes(self) -> dict[str, Any]:
        if self._attributes is None:
            profile = self.session.get(Profile, self.journey.profile_id)
            self._attributes = dict(profile.attributes) if profile else {}
        return self._attributes

    def find_event(
        self, name: str, where: dict[str, Any], since: datetime, until: datetime | None
    ) -> tuple[int, datetime] | None:
        query = (
            select(Event.id, Event.occurred_at, Event.properties)
            .where(
                Event.profile_id == self.journey.profile_id,
                Event.name == name,
                Event.occurred_at >= since,
            )
            .order_by(Event.occurred_at, Event.id)
            .limit(200)
        )
        if until is not None:
            query = query.where(Event.occurred_at <= until)
        for event_id, occurred_at, properties in self.session.execute(query):
            if properties_match(properties or {}, where):
                return event_id, occurred_at
        return None

    def message_outcome(self, step_id: str) -> tuple[str, datetime] | None:
        row = self.session.execute(
            select(Message.status, Message.sent_at, Message.updated_at).where(
                Message.idempotency_key == message_key(self.journey.id, step_id)
            )
        ).first()
        if row is None or not is_final(row.status):
            return None
        return row.status, row.sent_at or row.updated_at


def message_key(journey_id: int, step_id: str) -> str:
    return f"journey:{journey_id}:{step_id}"


def _log(
    session: Session, journey: Journey, kind: str, step_id: str | None, detail: str, now: datetime
) -> None:
    session.add(
        JourneyLog(journey_id=journey.id, at=now, kind=kind, step_id=step_id, detail=detail)
    )


def run_journey(
    session: Session,
    journey: Journey,
    *,
    now: datetime,
    settle_window: timedelta,
    zone: str = "UTC",
) -> None:
    """Advance one (locked) journey as far as it can go now, and apply what it decided."""
    version = session.get(CampaignVersion, journey.version_id)
    campaign = session.get(Campaign, journey.campaign_id)
    assert version is not None and campaign is not None
    definition = definition_of(version)
    state = engine.State(
        status=journey.status,
        step_index=journey.step_index,
        waiting_on=journey.waiting_on,
        wake_at=journey.wake_at,
        anchor_at=journey.anchor_at,
        entered_at=journey.entered_at,
        data=dict(journey.state or {}),
    )
    actions = engine.advance(
        definition,
        state,
        DbFacts(session, journey, now=now, zone=zone),
        now=now,
        settle_window=settle_window,
    )
    for action in actions:
        if (
            isinstance(action, engine.Send)
            and journey.entered_via == "broadcast"
            and definition.trigger.broadcast
            and not segments.is_member(
                session, definition.trigger.broadcast, journey.profile_id, now=now, zone=zone
            )
        ):
            # Re-checked per person just before the send: who left since is not messaged.
            state.status, state.exit_reason = "exited", "left_segment"
            state.waiting_on, state.wake_at = None, None
            _log(
                session,
                journey,
                "exited",
                action.step_id,
                f"left_segment: no longer in {definition.trigger.broadcast} at send time",
                now,
            )
            break
        if isinstance(action, engine.Send):
            trigger = (
                session.get(Event, journey.trigger_event_id) if journey.trigger_event_id else None
            )
            message = create_message(
                session,
                idempotency_key=message_key(journey.id, action.step_id),
                profile_id=journey.profile_id,
                channel=action.channel,
                template=action.template,
                now=now,
                journey_id=journey.id,
                campaign=campaign.name,
                campaign_version=version.version,
                step_id=action.step_id,
                context={"trigger": dict(trigger.properties) if trigger else {}},
                reason=(
                    f"campaign {campaign.name} v{version.version}, step {action.step_id}; "
                    + (
                        f"entered on {trigger.name} at {trigger.occurred_at.isoformat()}"
                        if trigger
                        else f"entered via {journey.entered_via}"
                    )
                ),
            )
            state.data.setdefault("steps", {}).setdefault(action.step_id, {})["message_id"] = (
                message.id
            )
            _log(
                session,
                journey,
                "send",
                action.step_id,
                f"message {message.id} ({message.status})",
                now,
            )
        else:
            _log(session, journey, action.kind, action.step_id, action.detail, now)
    journey.status = state.status
    journey.step_index = state.step_index
    journey.waiting_on = state.waiting_on
    journey.wake_at = state.wake_at
    journey.anchor_at = state.anchor_at
    journey.state = state.data
    journey.exit_reason = state.exit_reason
    journey.goal_event_id = state.goal_event_id
    if state.status != "active" and journey.ended_at is None:
        # A conversion is shown when the order happened, not when the engine noticed.
        journey.ended_at = min(state.ended_at, now) if state.ended_at else now
    session.flush()
    # A message that settled at once (no address, say) lets the journey go on now.
    if journey.status == "active" and journey.waiting_on == "message":
        step_id = definition.steps[journey.step_index].id
        if DbFacts(session, journey, now=now, zone=zone).message_outcome(step_id) is not None:
            run_journey(session, journey, now=now, settle_window=settle_window, zone=zone)


def start_journey(
    session: Session,
    live: Live,
    profile_id: int,
    *,
    now: datetime,
    settle_window: timedelta,
    trigger_event: Event | None = None,
    entered_via: str = "event",
    zone: str = "UTC",
) -> Journey | None:
    """Start a journey unless the re-entry rule forbids it; None when it does."""
    previous = session.scalar(
        select(Journey.status)
        .where(Journey.campaign_id == live.campaign_id, Journey.profile_id == profile_id)
        .order_by(Journey.id.desc())
        .limit(1)
    )
    if previous == "active" or (previous is not None and live.definition.reentry == "never"):
        return None
    anchor = trigger_event.occurred_at if trigger_event is not None else now
    journey = Journey(
        campaign_id=live.campaign_id,
        version_id=live.version_id,
        profile_id=profile_id,
        trigger_event_id=trigger_event.id if trigger_event is not None else None,
        entered_via=entered_via,
        status="active",
        step_index=0,
        anchor_at=min(anchor, now),
        entered_at=min(anchor, now),
        state={"trigger": dict(trigger_event.properties) if trigger_event else {}},
    )
    try:
        with session.begin_nested():
            session.add(journey)
            session.flush()
    except IntegrityError:
        return None  # started meanwhile by another worker, or already by this event
    _log(session, journey, "entered", None, f"via {entered_via}", now)
    run_journey(session, journey, now=now, settle_window=settle_window, zone=zone)
    return journey


def _lock(query: Any, session: Session, *, skip_locked: bool = False) -> Any:
    return query.with_for_update(skip_locked=skip_locked) if is_postgres(session) else query


def evaluate_events(
    session: Session,
    event_ids: list[int],
    *,
    now: datetime,
    max_age: timedelta,
    settle_window: timedelta,
    zone: str = "UTC",
) -> int:
    """Let new events move segments (re-checked for those people), journeys (goals,
    exits, waits) and start new ones (event and segment triggers).

    Idempotent: an event is evaluated once (``evaluated_at``); events older than
    ``max_age`` or flagged backfill move journeys but start none. Returns journeys started.
    """
    events = list(
        session.scalars(
            _lock(
                select(Event)
                .where(Event.id.in_(event_ids), Event.evaluated_at.is_(None))
                .order_by(Event.occurred_at, Event.id),
                session,
                skip_locked=True,
            )
        )
    )
    if not events:
        return 0
    live = live_campaigns(session)
    watching = {name for item in live for name in item.definition.watched_events()}
    triggers = {item.definition.trigger.event for item in live} - {None}
    segment_events = {n for e in segments.catalog(session).entries.values() for n in e.events}
    relevant = [
        e for e in events if e.name in watching or e.name in triggers or e.name in segment_events
    ]
    if relevant and is_postgres(session):
        # Lock the people concerned in id order: two evaluations of overlapping
        # profiles then queue instead of deadlocking on their journeys.
        session.execute(
            select(Profile.id)
            .where(Profile.id.in_(sorted({e.profile_id for e in relevant})))
            .order_by(Profile.id)
            .with_for_update()
        ).all()
    started = 0
    by_profile: dict[int, list[Event]] = {}
    for event in relevant:
        if event.name in segment_events:
            by_profile.setdefault(event.profile_id, []).append(event)
    transitions = segments.recheck_many(
        session,
        [
            segments.Change(
                profile_id,
                cause="event "
                + ", ".join(sorted({e.name for e in its_events if e.name}))
                + f" (#{its_events[-1].id})",
                attributes=frozenset(),
                events=frozenset(e.name for e in its_events if e.name),
            )
            for profile_id, its_events in by_profile.items()
        ],
        now=now,
        zone=zone,
    )
    started += apply_transitions(
        session, transitions, now=now, settle_window=settle_window, zone=zone
    )
    for event in relevant:
        if event.name in watching:
            journeys = session.scalars(
                _lock(
                    select(Journey).where(
                        Journey.profile_id == event.profile_id, Journey.status == "active"
                    ),
                    session,
                )
            )
            for journey in journeys:
                run_journey(session, journey, now=now, settle_window=settle_window, zone=zone)
        # Age is judged at arrival, so an evaluation delayed by a queue outage does not
        # turn a fresh event into history.
        if event.backfill or event.occurred_at < event.received_at - max_age:
            continue
        for item in live:
            if item.triggered_by(event):
                journey = start_journey(
                    session,
                    item,
                    event.profile_id,
                    now=now,
                    settle_window=settle_window,
                    trigger_event=event,
                    zone=zone,
                )
                started += journey is not None
    for event in events:
        event.evaluated_at = now
    session.flush()
    return started


def apply_transitions(
    session: Session,
    transitions: list[segments.Transition],
    *,
    now: datetime,
    settle_window: timedelta,
    zone: str = "UTC",
) -> int:
    """Start the journeys of campaigns triggered by entering or leaving a segment."""
    wanted = [t for t in transitions if t.triggers]
    if not wanted:
        return 0
    by_trigger: dict[tuple[str, bool], list[Live]] = {}
    for item in live_campaigns(session):
        trigger = item.definition.trigger
        if trigger.segment is not None:
            key = (trigger.segment, trigger.on != "exited")
            by_trigger.setdefault(key, []).append(item)
    started = 0
    for transition in wanted:
        for item in by_trigger.get((transition.segment, transition.entered), []):
            verb = "entered" if transition.entered else "left"
            journey = start_journey(
                session,
                item,
                transition.profile_id,
                now=now,
                settle_window=settle_window,
                entered_via=f"segment {transition.segment} {verb}"[:32],
                zone=zone,
            )
            if journey is not None:
                _log(
                    session,
                    journey,
                    "segment",
                    None,
                    f"{verb} {transition.segment}: {transition.cause}",
                    now,
                )
            started += journey is not None
    return started


def profiles_changed(
    session: Session,
    changes: list[tuple[int, list[str], str | None]],
    *,
    now: datetime,
    settle_window: timedelta,
    zone: str = "UTC",
) -> int:
    """Attributes changed for these profiles: re-check the segments that read them (no
    names: every segment, for a new or merged profile, with ``reason`` as the cause)."""
    transitions = segments.recheck_many(
        session,
        [
            segments.Change(
                profile_id,
                cause=reason or f"attribute {', '.join(sorted(names))} changed",
                attributes=frozenset(names) if names else None,
            )
            for profile_id, names, reason in changes
        ],
        now=now,
        zone=zone,
    )
    return apply_transitions(session, transitions, now=now, settle_window=settle_window, zone=zone)


def refresh_segments(
    session: Session, *, now: datetime, settle_window: timedelta, zone: str, every: timedelta
) -> int:
    """The scheduler's segment pass; campaigns start for whoever time moved in or out."""
    transitions = segments.refresh(session, now=now, zone=zone, every=every)
    return apply_transitions(session, transitions, now=now, settle_window=settle_window, zone=zone)


def run_broadcasts(
    session: Session,
    *,
    now: datetime,
    settle_window: timedelta,
    zone: str = "UTC",
    batch: int = 500,
) -> int:
    """Start the next ``batch`` journeys of every broadcast that is due; 0 when none is left.

    The audience is the segment's members at send time (the compiled query, in profile
    id order from the broadcast's cursor), and each send re-checks the person. A
    broadcast published after its time has passed is not sent.
    """
    started = 0
    for item in live_campaigns(session):
        trigger = item.definition.trigger
        if trigger.broadcast is None or trigger.at is None or trigger.at > now:
            continue
        row = session.scalar(
            _lock(
                select(Broadcast).where(
                    Broadcast.campaign_id == item.campaign_id,
                    Broadcast.scheduled_at == trigger.at,
                ),
                session,
                skip_locked=True,
            )
        )
        if row is None:
            published = session.scalar(
                select(CampaignVersion.created_at).where(CampaignVersion.id == item.version_id)
            )
            row = Broadcast(
                campaign_id=item.campaign_id,
                version_id=item.version_id,
                segment=trigger.broadcast,
                scheduled_at=trigger.at,
                started_at=now,
                cursor=0,
                audience=0,
                started=0,
                skipped=0,
            )
            if published is not None and published > trigger.at:
                row.finished_at = now  # its time had passed when it was published
            try:
                with session.begin_nested():
                    session.add(row)
                    session.flush()
            except IntegrityError:
                continue  # another scheduler took it
        if row.finished_at is not None:
            continue
        entry = segments.catalog(session).get(trigger.broadcast)
        query = segments.members_query(session, entry, now=now, zone=zone)
        ids = list(
            session.scalars(query.where(Profile.id > row.cursor).order_by(Profile.id).limit(batch))
        )
        for profile_id in ids:
            journey = start_journey(
                session,
                item,
                profile_id,
                now=now,
                settle_window=settle_window,
                entered_via="broadcast",
                zone=zone,
            )
            row.started += journey is not None
            row.skipped += journey is None
        row.audience += len(ids)
        started += len(ids)
        if ids:
            row.cursor = ids[-1]
        if len(ids) < batch:
            row.finished_at = now
        session.flush()
    return started


def next_broadcast(session: Session) -> datetime | None:
    """The earliest time of a broadcast not yet finished."""
    pending = []
    for item in live_campaigns(session):
        at = item.definition.trigger.at
        if item.definition.trigger.broadcast is None or at is None:
            continue
        finished = session.scalar(
            select(Broadcast.finished_at).where(
                Broadcast.campaign_id == item.campaign_id, Broadcast.scheduled_at == at
            )
        )
        if finished is None:
            pending.append(at)
    return min(pending) if pending else None


def wake_due(
    session: Session,
    *,
    now: datetime,
    settle_window: timedelta,
    limit: int = 500,
    zone: str = "UTC",
) -> int:
    """Run journeys whose wake time has come; locked rows are left to their worker."""
    due = list(
        session.scalars(
            _lock(
                select(Journey)
                .where(Journey.status == "active", Journey.wake_at <= now)
                .order_by(Journey.wake_at, Journey.id)
                .limit(limit),
                session,
                skip_locked=True,
            )
        )
    )
    for journey in due:
        run_journey(session, journey, now=now, settle_window=settle_window, zone=zone)
    return len(due)


def resume(
    session: Session,
    journey_id: int,
    *,
    now: datetime,
    settle_window: timedelta,
    zone: str = "UTC",
) -> None:
    journey = session.scalar(_lock(select(Journey).where(Journey.id == journey_id), session))
    if journey is not None and journey.status == "active":
        run_journey(session, journey, now=now, settle_window=settle_window, zone=zone)


def _live_by_name(session: Session, name: str) -> Live:
    for item in live_campaigns(session):
        if item.name == name:
            return item
    raise NotFound(f"no active campaign named {name!r}")


def add_member(
    session: Session,
    campaign_name: str,
    profile_id: int,
    *,
    now: datetime,
    settle_window: timedelta,
    actor: str,
    zone: str = "UTC",
) -> Journey:
    """Put a profile into a campaign by hand; it then behaves as any other entry."""
    journey = start_journey(
        session,
        _live_by_name(session, campaign_name),
        profile_id,
        now=now,
        settle_window=settle_window,
        entered_via=f"admin:{actor}",
        zone=zone,
    )
    if journey is None:
        raise Conflict(f"profile {profile_id} is already in {campaign_name!r} or may not re-enter")
    return journey


def remove_member(
    session: Session, campaign_name: str, profile_id: int, *, now: datetime, actor: str
) -> Journey:
    live = _live_by_name(session, campaign_name)
    journey = session.scalar(
        _lock(
            select(Journey).where(
                Journey.campaign_id == live.campaign_id,
                Journey.profile_id == profile_id,
                Journey.status == "active",
            ),
            session,
        )
    )
    if journey is None:
        raise NotFound(f"profile {profile_id} has no active journey in {campaign_name!r}")
    journey.status = "exited"
    journey.exit_reason = "member_exited"
    journey.waiting_on = None
    journey.wake_at = None
    journey.ended_at = now
    _log(session, journey, "exited", None, f"member_exited: removed by {actor}", now)
    session.flush()
    return journey


def next_wake(session: Session) -> datetime | None:
    return session.scalar(select(func.min(Journey.wake_at)).where(Journey.status == "active"))


def stuck_journeys(session: Session, *, now: datetime, grace: timedelta) -> list[Journey]:
    """Active journeys whose wake time passed more than ``grace`` ago: the scheduler is behind."""
    return list(
        session.scalars(
            select(Journey)
            .where(Journey.status == "active", Journey.wake_at < now - grace)
            .order_by(Journey.id)
        )
    )
