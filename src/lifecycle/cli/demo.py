"""``lifecycle demo``: the replay, printed for a person to read."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from lifecycle.campaigns.models import Campaign, Journey
from lifecycle.campaigns.stats import campaign_stats
from lifecycle.config import Settings
from lifecycle.errors import Invalid
from lifecycle.events.models import Event
from lifecycle.profiles.models import Profile
from lifecycle.replay import rees46
from lifecycle.runtime import build_runtime
from lifecycle.segments import service as segments
from lifecycle.segments.models import Segment, SegmentMembership
from lifecycle.timeline.service import timeline
from lifecycle.workers.broker import bind
from lifecycle.workers.processes import prepare
from lifecycle.workers.replay import replay


def run_demo(settings: Settings, events: Path | None, *, batch_size: int, console: Console) -> int:
    runtime = build_runtime(settings)
    changed, problems = prepare(runtime)
    for problem in problems:
        console.print(f"[red]{problem}[/red]")
    if problems:
        return 1
    console.print(
        f"database: {settings.database_url}  campaigns published: {', '.join(changed) or 'unchanged'}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        if events is None:
            events = rees46.generate(Path(tmp) / "generated-rees46.csv")
            console.print(
                f"events: generated REES46-format data ({events.name}); use --events PATH for a real file"
            )
        else:
            console.print(f"events: {events}")
        try:
            with events.open(encoding="utf-8", newline="") as handle:
                parsed = list(rees46.read(handle))
        except (OSError, UnicodeDecodeError) as err:
            console.print(f"[red]cannot read {events}: {err}[/red]")
            return 1
        except Invalid as err:
            console.print(f"[red]{events}: {err.field}: {err.message}[/red]")
            return 1
    rows = [r for r in parsed if isinstance(r, rees46.Row)]
    bad = [r for r in parsed if isinstance(r, rees46.Rejected)]
    for rejected in bad[:20]:
        console.print(f"[yellow]{events}: line {rejected.line}: {rejected.reason}[/yellow]")
    if bad:
        console.print(f"[yellow]{len(bad)} row(s) rejected, {len(rows)} replayed[/yellow]")
    if not rows:
        console.print(f"[red]{events}: no usable rows[/red]")
        return 1
    bound = bind(runtime)
    bound.start_worker(runtime.settings.worker_threads)
    try:
        report = replay(runtime, bound, rows, batch_size=batch_size)
    finally:
        bound.stop()

    with runtime.session() as session:
        stats = campaign_stats(session)
        total_events = session.scalar(
            select(func.count()).select_from(Event).where(Event.name.is_not(None))
        )
        profiles = session.scalar(
            select(func.count()).select_from(Profile).where(Profile.merged_into_id.is_(None))
        )
        converted = session.scalar(
            select(Journey.profile_id)
            .join(Campaign, Campaign.id == Journey.campaign_id)
            .where(Journey.status == "converted", Campaign.name == "abandoned_cart")
            .order_by(Journey.id)
            .limit(1)
        ) or session.scalar(
            select(Journey.profile_id).where(Journey.status == "converted").limit(1)
        )
        story = timeline(session, converted, limit=30) if converted else None
        segment_rows = segments.summary(session)
        movements = dict(
            session.execute(
                select(SegmentMembership.segment_id, func.count()).group_by(
                    SegmentMembership.segment_id
                )
            ).all()
        )
        exits = dict(
            session.execute(
                select(SegmentMembership.segment_id, func.count())
                .where(SegmentMembership.exited_at.is_not(None))
                .group_by(SegmentMembership.segment_id)
            ).all()
        )
        segment_ids = {row.name: row.id for row in session.scalars(select(Segment))}

    rate = report.calls / report.ingest_seconds if report.ingest_seconds else 0.0
    summary = Table(title="Replay", show_header=False)
    summary.add_row(
        "rows replayed",
        f"{report.rows} of {report.rows + len(bad)} ({report.first_at} .. {report.last_at})",
    )
    summary.add_row(
        "calls this run",
        f"{report.calls}: {report.accepted} new, {report.duplicates} already stored, {report.rejected} rejected",
    )
    summary.add_row("in the database now", f"{total_events} track events, {profiles} profiles")
    summary.add_row("scheduler ticks", str(report.ticks))
    summary.add_row("ingestion", f"{report.ingest_seconds:.2f} s, {rate:,.0f} calls/s")
    summary.add_row(
        "wall time",
        f"{report.wall_seconds:.2f} s, {report.rows / report.wall_seconds if report.wall_seconds else 0:,.0f} events/s end to end",
    )
    console.print(summary)
    console.print(
        "messages: 'skipped' means the profile has no address for that channel; "
        "'failed' carries the provider's reason (see the timeline)."
    )
    for line in report.rejections:
        console.print(f"[yellow]rejected {line}[/yellow]")

    table = Table(title="Campaigns (everything in the database, all runs)")
    for column in (
        "campaign",
        "journeys started",
        "by status",
        "messages (channel/step: status)",
        "conversions",
    ):
        table.add_column(column)
    for name, s in sorted(stats.items()):
        messages = "; ".join(
            f"{key}: " + ", ".join(f"{st} {n}" for st, n in sorted(by.items()))
            for key, by in sorted(s["messages"].items())
        )
        table.add_row(
            name,
            str(s["started"]),
            ", ".join(f"{k} {v}" for k, v in sorted(s["journeys"].items())),
            messages or "-",
            str(s["converted"]),
        )
    console.print(table)

    if segment_rows:
        kept = Table(title="Segments (kept current as events arrived and time passed)")
        for column in ("segment", "members now", "entries", "exits", "time-based", "description"):
            kept.add_column(column)
        for row in segment_rows:
            sid = segment_ids.get(row["name"])
            kept.add_row(
                row["name"],
                str(row["size"]),
                str(movements.get(sid, 0)),
                str(exits.get(sid, 0)),
                "yes" if row["time_based"] else "no",
                row["description"],
            )
        console.print(kept)

    if story is not None:
        console.print(f"\nTimeline of converted profile {converted} (newest first):")
        for item in story["items"]:
            console.print(_line(item), highlight=False, markup=False)
    return 0


def _line(item: dict) -> str:
    at = item["at"].isoformat() if item.get("at") else "?"
    kind = item["kind"]
    if kind == "event":
        props = item["properties"] or {}
        return (
            f"{at}  event    {item['name']}  {props.get('brand') or ''} {props.get('price') or ''}"
        )
    if kind == "profile_created":
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in item["attributes"].items())
        return f"{at}  created  {shown} ({item['source']})"
    if kind == "attribute_change":
        return f"{at}  changed  {item['attribute']}: {json.dumps(item['old'])} -> {json.dumps(item['new'])} ({item['source']})"
    if kind == "journey_entered":
        return f"{at}  entered  {item['campaign']} v{item['campaign_version']} via {item['entered_via']}"
    if kind == "journey_left":
        return (
            f"{at}  left     {item['campaign']}: {item['status']} ({item['reason'] or 'finished'})"
        )
    if kind in ("segment_entered", "segment_exited"):
        verb = "joined  " if kind == "segment_entered" else "left    "
        return f"{at}  {verb} segment {item['segment']} ({item.get('cause') or ''})"
    if kind == "message":
        history = " > ".join(h["status"] for h in item["status_history"])
        return f"{at}  message  {item['channel']} {item['template']} to {item['recipient']}: {history}  [{item['why']}]"
    return f"{at}  {kind}"
