"""What each job does, as plain functions over a :class:`Runtime` (actors stay thin).

Each function is one or more units of work; all are idempotent, so a duplicate
or retried queue message changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from lifecycle import clock, jobs
from lifecycle.campaigns import service as campaigns
from lifecycle.delivery import service as delivery
from lifecycle.errors import LifecycleError
from lifecycle.events import service as events
from lifecycle.imports import service as imports
from lifecycle.runtime import Runtime
from lifecycle.segments import service as segments


def evaluate_events(runtime: Runtime, event_ids: list[int]) -> int:
    with runtime.session() as session:
        return campaigns.evaluate_events(
            session,
            event_ids,
            now=clock.now(),
            max_age=runtime.max_age,
            settle_window=runtime.settle_window,
            zone=runtime.settings.workspace_timezone,
        )


def recheck_profiles(runtime: Runtime, changes: list[list[Any]]) -> int:
    """Attributes changed: ``[[profile id, [names], cause?], ...]`` (no names: every segment)."""
    with runtime.session() as session:
        return campaigns.profiles_changed(
            session,
            [(int(c[0]), list(c[1]), c[2] if len(c) > 2 else None) for c in changes],
            now=clock.now(),
            settle_window=runtime.settle_window,
            zone=runtime.settings.workspace_timezone,
        )


def send_message(runtime: Runtime, message_id: int) -> str | None:
    """Claim (commit), call the provider (no transaction open), record the outcome (commit)."""
    with runtime.session() as session:
        outgoing = delivery.claim(
            session, message_id, now=clock.now(), templates=runtime.templates, policy=runtime.policy
        )
    if outgoing is None:
        return None
    provider = runtime.providers[outgoing.channel]
    outcome = delivery.call_provider(provider, outgoing)
    with runtime.session() as session:
        message = delivery.record_outcome(
            session, message_id, outcome, now=clock.now(), policy=runtime.policy
        )
        return message.status


def resume_journey(runtime: Runtime, journey_id: int) -> None:
    with runtime.session() as session:
        campaigns.resume(
            session,
            journey_id,
            now=clock.now(),
            settle_window=runtime.settle_window,
            zone=runtime.settings.workspace_timezone,
        )


def next_due(runtime: Runtime) -> datetime | None:
    """The earliest moment the scheduler has work: a journey's wake time or a retry."""
    with runtime.session() as session:
        candidates = [
            campaigns.next_wake(session),
            delivery.next_retry(session),
            segments.next_refresh(session, now=clock.now(), every=runtime.segment_refresh),
            campaigns.next_broadcast(session),
        ]
    found = [t for t in candidates if t is not None]
    return min(found) if found else None


def tick(runtime: Runtime) -> dict[str, int]:
    """One scheduler pass: wake due journeys, recompute time-based segments that are due,
    re-queue due retries and lost work."""
    now = clock.now()
    woken = 0
    while True:
        with runtime.session() as session:
            batch = campaigns.wake_due(
                session,
                now=now,
                settle_window=runtime.settle_window,
                limit=runtime.settings.tick_batch_size,
                zone=runtime.settings.workspace_timezone,
            )
        woken += batch
        if batch < runtime.settings.tick_batch_size:
            break
    with runtime.session() as session:
        segment_starts = campaigns.refresh_segments(
            session,
            now=now,
            settle_window=runtime.settle_window,
            zone=runtime.settings.workspace_timezone,
            every=runtime.segment_refresh,
        )
    broadcast = 0
    while True:  # one batch of journeys per transaction: a long broadcast resumes
        with runtime.session() as session:
            batch = campaigns.run_broadcasts(
                session,
                now=now,
                settle_window=runtime.settle_window,
                zone=runtime.settings.workspace_timezone,
                batch=runtime.settings.tick_batch_size,
            )
        broadcast += batch
        if batch == 0:
            break
    with runtime.session() as session:
        retries = delivery.due_retries(session, now=now)
        for message_id in retries:
            jobs.enqueue(session, "delivery.send", message_id=message_id)
        uncertain = delivery.mark_uncertain(
            session,
            now=now,
            older_than=timedelta(seconds=runtime.settings.sending_timeout_seconds),
        )
        lost = events.unevaluated(session, now=now, older_than=timedelta(minutes=1))
        if lost:
            jobs.enqueue(session, "events.evaluate", event_ids=lost)
        resumed = imports.stalled(session, now=now)
        for import_id in resumed:
            jobs.enqueue(session, "imports.run", import_id=import_id)
    return {
        "woken": woken,
        "retries": len(retries),
        "uncertain": len(uncertain),
        "swept": len(lost),
        "imports_resumed": len(resumed),
        "segment_starts": segment_starts,
        "broadcast": broadcast,
    }


def run_import(runtime: Runtime, import_id: int) -> None:
    """Import an uploaded file, committing after each batch so its status shows progress;
    a crash part way leaves it resumable (rows already in are recognised)."""
    from lifecycle.imports.models import Import

    with runtime.session() as session:
        record = session.get(Import, import_id)
        if record is None or record.status not in ("queued", "running") or record.data is None:
            return
        try:
            imports.run(
                session,
                record.data,
                filename=record.filename,
                options=imports.options_of(record),
                ingest_options=runtime.ingest_options,
                now=clock.now(),
                record=record,
                on_batch=lambda _: session.commit(),
            )
        except LifecycleError as err:
            session.rollback()
            record = session.get(Import, import_id)
            assert record is not None
            record.status, record.message = "failed", f"{err.field}: {err.message}"
            return
        except Exception as err:
            # A fault of ours: the import says so rather than staying "queued" for ever;
            # the error goes on to the worker's log.
            session.rollback()
            record = session.get(Import, import_id)
            assert record is not None
            record.status = "failed"
            record.message = f"internal error ({type(err).__name__}); see the worker's log"
            session.commit()
            raise
        record.data = None  # imported: the upload is no longer needed
