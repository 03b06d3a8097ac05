"""Long-running processes: the worker, the scheduler, and everything in one (embedded)."""

from __future__ import annotations

import signal
import threading
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from lifecycle import migrate
from lifecycle.campaigns import service as campaigns
from lifecycle.campaigns.loader import Problem, load_project
from lifecycle.runtime import Runtime
from lifecycle.workers import tasks
from lifecycle.workers.broker import Bound, bind


def prepare(runtime: Runtime, *, migrate_schema: bool = True) -> tuple[list[str], list[Problem]]:
    """Migrate, then validate and publish the campaigns directory and its segments.
    Nothing is published when any file has a problem."""
    if migrate_schema:
        migrate.upgrade(runtime.engine)
    loaded, segment_files, problems = load_project(
        runtime.settings.campaigns_dir, runtime.templates
    )
    if problems:
        return [], problems
    from lifecycle import clock

    with runtime.session() as session:
        return campaigns.publish_project(
            session,
            loaded,
            segment_files,
            now=clock.now(),
            zone=runtime.settings.workspace_timezone,
        ), []


def start_scheduler(runtime: Runtime) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        tasks.tick,
        "interval",
        args=[runtime],
        seconds=runtime.settings.scheduler_interval_seconds,
        max_instances=1,
        coalesce=True,
        id="tick",
    )
    scheduler.start()
    return scheduler


def start_embedded(runtime: Runtime) -> tuple[Bound, BackgroundScheduler]:
    """In-process broker, worker threads and scheduler: the no-server default."""
    bound = bind(runtime)
    bound.start_worker(runtime.settings.worker_threads)
    return bound, start_scheduler(runtime)


def run_until_signal(*stoppables: Any) -> None:
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    for item in stoppables:
        item.stop() if hasattr(item, "stop") else item.shutdown()
