"""Test helpers: an inline job runner standing in for the broker, and small factories."""

from __future__ import annotations

import base64
from collections import deque
from datetime import UTC, datetime
from typing import Any

from lifecycle import clock, jobs
from lifecycle.runtime import Runtime
from lifecycle.workers import tasks

WRITE_KEY = "test-write-key"
ADMIN_KEY = "test-admin-key"
WRITE_AUTH = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class InlineJobs:
    """Collects jobs as a broker would and runs them, in order, when told to."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.queue: deque[tuple[str, dict[str, Any]]] = deque()
        self.ran: list[tuple[str, dict[str, Any]]] = []
        self.hold: set[str] = set()  # job names kept in the queue (a worker that is down)

    def dispatch(self, name: str, kwargs: dict[str, Any]) -> None:
        self.queue.append((name, kwargs))

    def drain(self) -> None:
        kept: deque[tuple[str, dict[str, Any]]] = deque()
        while self.queue:
            name, kwargs = self.queue.popleft()
            if name in self.hold:
                kept.append((name, kwargs))
                continue
            self.ran.append((name, kwargs))
            if name == "events.evaluate":
                tasks.evaluate_events(self.runtime, kwargs["event_ids"])
            elif name == "delivery.send":
                tasks.send_message(self.runtime, kwargs["message_id"])
            elif name == "journeys.resume":
                tasks.resume_journey(self.runtime, kwargs["journey_id"])
            elif name == "segments.recheck":
                tasks.recheck_profiles(self.runtime, kwargs["changes"])
            elif name == "imports.run":
                tasks.run_import(self.runtime, kwargs["import_id"])
            else:
                raise AssertionError(f"unknown job {name}")
        self.queue = kept

    def tick(self, when: datetime | str) -> None:
        """Let time pass until ``when``: the scheduler and workers do everything due by
        then, each thing at its own due moment (a retry due at 09:01 runs at 09:01)."""
        target = at(when) if isinstance(when, str) else when
        self.drain()
        for _ in range(10_000):
            due = tasks.next_due(self.runtime)
            if due is None or due > target:
                break
            clock.set_now(max(due, clock.now()))
            tasks.tick(self.runtime)
            self.drain()
        clock.set_now(target)
        tasks.tick(self.runtime)
        self.drain()

    def install(self) -> None:
        jobs.install(self.dispatch)
