"""The dramatiq broker and actors, bound to one :class:`Runtime`.

``stub`` (embedded default): an in-process broker and worker threads; ``redis``:
the production broker, with ``lifecycle worker`` processes consuming it. Actors
are named ``domain.verb`` and stay thin: they call :mod:`lifecycle.workers.tasks`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from lifecycle import jobs
from lifecycle.runtime import Runtime
from lifecycle.workers import tasks

QUEUES = {
    "events.evaluate": "events",
    "delivery.send": "delivery",
    "journeys.resume": "journeys",
    "imports.run": "imports",
    "segments.recheck": "events",
}


@dataclass
class Bound:
    broker: dramatiq.Broker
    actors: dict[str, dramatiq.Actor[Any, Any]]
    worker: dramatiq.Worker | None = None

    def dispatch(self, name: str, kwargs: dict[str, Any]) -> None:
        self.actors[name].send(**kwargs)

    def start_worker(self, threads: int) -> dramatiq.Worker:
        self.worker = dramatiq.Worker(self.broker, worker_threads=threads, worker_timeout=100)
        self.worker.start()
        return self.worker

    def drain(self, rounds: int = 50) -> None:
        """Embedded broker only: wait until every queue is empty and every job done."""
        assert isinstance(self.broker, StubBroker) and self.worker is not None
        for _ in range(rounds):
            for queue in list(self.broker.queues):
                self.broker.join(queue, fail_fast=True)
            self.worker.join()
            if all(self.broker.queues[q].empty() for q in self.broker.queues) and not any(
                self.broker.queues[q].unfinished_tasks for q in self.broker.queues
            ):
                return

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        jobs.install(None)


def make_broker(runtime: Runtime) -> dramatiq.Broker:
    middleware = [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(max_retries=10, min_backoff=1000, max_backoff=300_000),
    ]
    if runtime.settings.broker == "redis":
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(
            url=runtime.settings.redis_url,
            namespace=runtime.settings.redis_namespace,
            middleware=middleware,
        )
    return StubBroker(middleware=middleware)


def bind(runtime: Runtime, broker: dramatiq.Broker | None = None) -> Bound:
    """Create the actors on a broker for ``runtime`` and make :mod:`lifecycle.jobs` use them."""
    broker = broker or make_broker(runtime)

    def evaluate(event_ids: list[int]) -> None:
        tasks.evaluate_events(runtime, event_ids)

    def send(message_id: int) -> None:
        tasks.send_message(runtime, message_id)

    def resume(journey_id: int) -> None:
        tasks.resume_journey(runtime, journey_id)

    def run_import(import_id: int) -> None:
        tasks.run_import(runtime, import_id)

    def recheck(changes: list[list[Any]]) -> None:
        tasks.recheck_profiles(runtime, changes)

    functions: dict[str, Callable[..., None]] = {
        "segments.recheck": recheck,
        "imports.run": run_import,
        "events.evaluate": evaluate,
        "delivery.send": send,
        "journeys.resume": resume,
    }
    actors = {
        name: dramatiq.actor(fn, actor_name=name, queue_name=QUEUES[name], broker=broker)
        for name, fn in functions.items()
    }
    bound = Bound(broker, actors)
    jobs.install(bound.dispatch)
    return bound
