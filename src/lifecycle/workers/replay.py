"""The demo replay: a dataset goes in through ingestion, the simulated clock moves,
the scheduler and the in-process workers do the rest, and the figures come out.

Events enter in time order through :func:`lifecycle.events.service.ingest`, the
same code as ``/v1/batch``, with the clock pinned to each batch's time. After the
last event the clock jumps from one due moment (a journey's wake time, a retry)
to the next until the horizon, so days pass in seconds and no step fires early.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from lifecycle import clock
from lifecycle.events.service import IngestOptions, ingest
from lifecycle.replay.rees46 import Row
from lifecycle.runtime import Runtime
from lifecycle.workers import tasks
from lifecycle.workers.broker import Bound


@dataclass
class ReplayReport:
    rows: int = 0
    calls: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: list[str] = field(default_factory=list)
    ingest_seconds: float = 0.0
    wall_seconds: float = 0.0
    ticks: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None


def _tick(runtime: Runtime, bound: Bound, report: ReplayReport) -> None:
    tasks.tick(runtime)
    bound.drain()
    report.ticks += 1


def replay(
    runtime: Runtime,
    bound: Bound,
    rows: Iterable[Row],
    *,
    batch_size: int = 500,
    horizon: timedelta = timedelta(days=4),
    tick_every: timedelta = timedelta(minutes=5),
) -> ReplayReport:
    report = ReplayReport()
    options = IngestOptions(
        source="replay",
        default_region=runtime.ingest_options.default_region,
        max_age=runtime.ingest_options.max_age,
    )
    started = time.perf_counter()
    batch: list[dict] = []
    batch_at: datetime | None = None
    last_tick: datetime | None = None

    def flush() -> None:
        nonlocal batch, last_tick
        if not batch or batch_at is None:
            return
        clock.set_now(batch_at)
        t0 = time.perf_counter()
        with runtime.session() as session:
            results = ingest(session, batch, now=batch_at, options=options)
        report.ingest_seconds += time.perf_counter() - t0
        report.calls += len(batch)
        for r in results:
            if r.status == "accepted":
                report.accepted += 1
            elif r.status == "duplicate":
                report.duplicates += 1
            else:
                report.rejected += 1
                if len(report.rejections) < 20:
                    report.rejections.append(f"{r.field}: {r.error}")
        bound.drain()
        if last_tick is None or batch_at - last_tick >= tick_every:
            _tick(runtime, bound, report)
            last_tick = batch_at
        batch = []

    try:
        for row in sorted(rows, key=lambda r: (r.at, r.line)):
            report.rows += 1
            report.first_at = report.first_at or row.at
            report.last_at = row.at
            if batch and len(batch) + len(row.calls) > batch_size:
                flush()
            batch.extend(row.calls)
            batch_at = row.at
        flush()
        if report.last_at is not None:
            end = report.last_at + horizon
            now = report.last_at
            while True:
                due = tasks.next_due(runtime)
                if due is None or due > end:
                    break
                now = max(now, due)
                clock.set_now(now)
                _tick(runtime, bound, report)
            clock.set_now(end)
            _tick(runtime, bound, report)
    finally:
        clock.set_now(None)
    report.wall_seconds = time.perf_counter() - started
    return report
