"""The real broker paths: the embedded stub broker on SQLite, Redis on PostgreSQL, and
several schedulers waking the same journeys at once."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from lifecycle import clock
from lifecycle.api.app import create_app
from lifecycle.campaigns import service as campaigns
from lifecycle.campaigns.models import Journey, JourneyLog
from lifecycle.delivery.models import Message
from lifecycle.delivery.providers.outbox import RecordingProvider
from lifecycle.runtime import build_runtime
from lifecycle.workers import tasks
from lifecycle.workers.broker import bind
from tests.conftest import publish_directory, settings_for
from tests.support import WRITE_AUTH, at


def _send_cart(client: TestClient, user: str, when: str) -> None:
    clock.set_now(at(when))
    identify = {
        "userId": user,
        "traits": {"email": f"{user}@example.com"},
        "messageId": f"i-{user}",
    }
    assert client.post("/v1/identify", json=identify, headers=WRITE_AUTH).status_code == 200
    track = {
        "userId": user,
        "event": "Product Added",
        "properties": {"brand": "acme", "price": 10},
        "timestamp": when,
        "messageId": f"t-{user}",
    }
    assert client.post("/v1/track", json=track, headers=WRITE_AUTH).status_code == 200


def test_ingestion_to_message_on_sqlite_with_the_embedded_broker(sqlite_runtime, recorder):
    runtime = sqlite_runtime
    clock.set_now(at("2026-03-01T09:00:00Z"))
    publish_directory(runtime)
    bound = bind(runtime)
    bound.start_worker(2)
    try:
        client = TestClient(create_app(runtime))
        _send_cart(client, "sq1", "2026-03-01T09:00:00Z")
        bound.drain()
        with runtime.session() as session:
            assert session.scalar(select(func.count()).select_from(Journey)) == 1
        clock.set_now(at("2026-03-01T10:00:01Z"))
        tasks.tick(runtime)
        bound.drain()
        assert [c.to for c in recorder.calls] == ["sq1@example.com"]
        clock.set_now(at("2026-03-02T09:00:02Z"))
        tasks.tick(runtime)
        bound.drain()
        clock.set_now(at("2026-03-02T09:00:02Z") + runtime.settle_window)
        tasks.tick(runtime)
        bound.drain()
        assert [c.channel for c in recorder.calls] == ["email"]  # no phone: SMS skipped
        with runtime.session() as session:
            statuses = session.scalars(select(Message.status).order_by(Message.id)).all()
            journey = session.scalar(select(Journey))
        assert statuses == ["sent", "skipped"] and journey.status == "completed"
    finally:
        bound.stop()


@pytest.fixture
def committed_runtime(pg_url, pg_engine):
    recorder = RecordingProvider()
    settings = settings_for(
        pg_url, broker="redis", redis_namespace=f"lifecycle-test-{uuid.uuid4().hex[:8]}"
    )
    runtime = build_runtime(
        settings, engine=pg_engine, providers={"email": recorder, "sms": recorder, "push": recorder}
    )
    runtime.extra["recorder"] = recorder
    return runtime


def test_send_through_the_real_redis_broker(committed_runtime):
    runtime = committed_runtime
    recorder = runtime.extra["recorder"]
    user = f"redis-{uuid.uuid4().hex[:8]}"
    clock.set_now(at("2026-03-01T09:00:00Z"))
    publish_directory(runtime)
    bound = bind(runtime)
    try:
        client = TestClient(create_app(runtime))
        _send_cart(client, user, "2026-03-01T09:00:00Z")
        bound.start_worker(2)
        bound.broker.join("events", timeout=20_000)
        clock.set_now(at("2026-03-01T10:00:01Z"))
        tasks.tick(runtime)
        bound.broker.join("delivery", timeout=20_000)
        bound.broker.join("journeys", timeout=20_000)
        bound.worker.join()
        assert [c.to for c in recorder.calls] == [f"{user}@example.com"]
    finally:
        bound.stop()
        bound.broker.flush_all()
        bound.broker.close()


def test_two_schedulers_never_advance_the_same_journey_twice(committed_runtime):
    runtime = committed_runtime
    recorder = runtime.extra["recorder"]
    clock.set_now(at("2026-03-01T09:00:00Z"))
    publish_directory(runtime)
    from tests.support import InlineJobs

    inline = InlineJobs(runtime)
    inline.install()
    tag = uuid.uuid4().hex[:8]
    client = TestClient(create_app(runtime))
    users = [f"race-{tag}-{i}" for i in range(40)]
    for user in users:
        _send_cart(client, user, "2026-03-01T09:00:00Z")
    inline.drain()
    clock.set_now(at("2026-03-01T10:00:01Z"))
    barrier = threading.Barrier(2)
    woken: list[int] = []

    def scheduler() -> None:
        barrier.wait()
        with runtime.session() as session:
            woken.append(
                campaigns.wake_due(
                    session, now=clock.now(), settle_window=timedelta(hours=1), limit=1000
                )
            )

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    inline.drain()
    with runtime.session() as session:
        mine = (
            select(Journey.id)
            .join(Message, Message.journey_id == Journey.id)
            .where(Message.recipient.like(f"race-{tag}-%"))
        )
        ids = session.scalars(mine).all()
        sends = session.scalar(
            select(func.count())
            .select_from(JourneyLog)
            .where(JourneyLog.journey_id.in_(ids), JourneyLog.kind == "send")
        )
    assert len(ids) == len(users) and sends == len(users)
    assert len([c for c in recorder.calls if c.to.startswith(f"race-{tag}-")]) == len(users)
    assert sum(woken) >= len(users)
