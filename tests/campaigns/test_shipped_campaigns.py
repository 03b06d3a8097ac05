"""The shipped campaigns, end to end through the API, with the clock moved by hand."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from lifecycle import clock
from lifecycle.api.app import create_app
from lifecycle.campaigns.models import Journey
from lifecycle.delivery.models import Message
from tests.conftest import publish_directory
from tests.support import WRITE_AUTH, at


def _track(client: TestClient, user: str, event: str, when: str, mid: str, **props: object) -> None:
    clock.set_now(at(when))
    body = {
        "userId": user,
        "event": event,
        "properties": props,
        "timestamp": when,
        "messageId": mid,
    }
    response = client.post("/v1/track", json=body, headers=WRITE_AUTH)
    assert response.status_code == 200, response.text


def _identify(client: TestClient, user: str, when: str, **traits: object) -> None:
    clock.set_now(at(when))
    body = {"userId": user, "traits": traits, "timestamp": when, "messageId": f"id-{user}-{when}"}
    assert client.post("/v1/identify", json=body, headers=WRITE_AUTH).status_code == 200


def _messages(db, user_email: str) -> list[tuple[str, str, str]]:
    rows = db.execute(
        select(Message.template, Message.channel, Message.status, Message.sent_at)
        .where(Message.recipient.in_([user_email, "+12125550100"]))
        .order_by(Message.id)
    ).all()
    return [(t, c, s) for t, c, s, _ in rows]


def test_abandoned_cart_email_after_1h_then_sms_after_23h_more(runtime, inline, recorder, db):
    clock.set_now(at("2026-03-01T09:00:00Z"))
    publish_directory(runtime)
    client = TestClient(create_app(runtime))
    _identify(client, "u1", "2026-03-01T09:00:00Z", email="Ana@Example.com", phone="(212) 555-0100")
    _track(
        client,
        "u1",
        "Product Added",
        "2026-03-01T10:00:00Z",
        "m1",
        brand="acme",
        price=12.5,
        category="shoes",
    )
    inline.drain()

    inline.tick("2026-03-01T10:59:00Z")
    assert recorder.calls == []
    inline.tick("2026-03-01T11:00:30Z")
    assert [(c.channel, c.to) for c in recorder.calls] == [("email", "ana@example.com")]
    assert "acme" in recorder.calls[0].body and recorder.calls[0].subject

    inline.tick("2026-03-02T09:59:00Z")
    assert len(recorder.calls) == 1
    inline.tick("2026-03-02T10:00:30Z")
    assert [(c.channel, c.to) for c in recorder.calls] == [
        ("email", "ana@example.com"),
        ("sms", "+12125550100"),
    ]
    journey = db.scalar(select(Journey))
    assert journey.status == "completed"


def test_order_ends_abandoned_cart_as_converted_and_starts_post_purchase(
    runtime, inline, recorder, db
):
    clock.set_now(at("2026-03-01T09:00:00Z"))
    publish_directory(runtime)
    client = TestClient(create_app(runtime))
    _identify(client, "u2", "2026-03-01T09:00:00Z", email="bo@example.com")
    _track(client, "u2", "Product Added", "2026-03-01T10:00:00Z", "m1", brand="acme", price=3)
    inline.drain()
    inline.tick("2026-03-01T11:00:30Z")  # cart email goes out
    _track(
        client, "u2", "Order Completed", "2026-03-01T15:00:00Z", "m2", brand="acme", order_id="o1"
    )
    inline.drain()

    inline.tick("2026-03-02T10:00:30Z")  # the SMS would have been due: it must not go
    assert [c.channel for c in recorder.calls] == ["email"]
    statuses = {j.status for j in db.scalars(select(Journey).order_by(Journey.id))}
    assert statuses == {"converted", "active"}

    inline.tick("2026-03-04T14:59:00Z")
    assert len(recorder.calls) == 1
    inline.tick("2026-03-04T15:00:30Z")  # three days after the order: review request
    assert [c.channel for c in recorder.calls] == ["email", "email"]
    assert recorder.calls[1].subject == "How was your order?"
