"""Bodies as SDKs send them: gzip-compressed, and over the limits (413, naming the body)."""

from __future__ import annotations

import gzip
import json

from fastapi.testclient import TestClient
from sqlalchemy import select

from lifecycle.api.app import create_app
from lifecycle.events.models import Event
from tests.support import WRITE_AUTH


def test_gzip_batch_is_read_like_a_plain_one(runtime, db):
    client = TestClient(create_app(runtime))
    body = {"batch": [{"type": "track", "userId": "gz", "event": "Zipped", "messageId": "gz-1"}]}
    response = client.post(
        "/v1/batch",
        content=gzip.compress(json.dumps(body).encode()),
        headers={**WRITE_AUTH, "content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert db.scalar(select(Event.name).where(Event.dedupe_key == "api:gz-1")) == "Zipped"


def test_gzip_bomb_and_broken_gzip_are_refused(runtime):
    client = TestClient(create_app(runtime))
    headers = {**WRITE_AUTH, "content-type": "application/json", "content-encoding": "gzip"}
    bomb = gzip.compress(b" " * (runtime.settings.max_body_bytes + 10))
    response = client.post("/v1/batch", content=bomb, headers=headers)
    assert response.status_code == 413 and response.json()["field"] == "body"
    response = client.post("/v1/batch", content=b"not gzip", headers=headers)
    assert response.status_code == 400 and "gzip" in response.json()["error"]


def test_too_large_body_and_batch_are_413(runtime):
    runtime.settings.max_body_bytes = 1000
    runtime.settings.max_batch_items = 2
    client = TestClient(create_app(runtime))
    big = {"userId": "x", "event": "E", "properties": {"pad": "x" * 2000}}
    assert client.post("/v1/track", json=big, headers=WRITE_AUTH).status_code == 413
    items = [{"type": "track", "userId": "x", "event": "E"}] * 3
    response = client.post("/v1/batch", json={"batch": items}, headers=WRITE_AUTH)
    assert response.status_code == 413 and response.json()["field"] == "batch"


def test_bad_values_reject_their_own_item_only(runtime, db):
    from lifecycle import clock
    from tests.support import at

    clock.set_now(at("2026-03-01T09:00:00Z"))
    client = TestClient(create_app(runtime))
    raw = (
        '{"batch": ['
        '{"type": "track", "userId": "s1", "event": "E", "properties": {"s": "\\ud800"}, "messageId": "sur-1"},'
        '{"type": "track", "userId": "s2", "event": "E", "context": "str", "messageId": "sur-2"},'
        '{"type": "track", "userId": "s3", "event": "E", "timestamp": "2999-01-01T00:00:00Z", "messageId": "sur-3"},'
        '{"type": "track", "userId": "s4", "event": "Good", "messageId": "sur-4"}'
        '], "context": {"library": {"name": "x"}}}'
    )
    response = client.post(
        "/v1/batch", content=raw, headers={**WRITE_AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected", "rejected", "accepted"]
    assert results[0]["field"] == "batch[0].properties.s" and "surrogate" in results[0]["error"]
    assert results[1]["field"] == "batch[1].context"
    assert results[2]["field"] == "batch[2].timestamp" and "ahead" in results[2]["error"]
    assert db.scalar(select(Event.name).where(Event.dedupe_key == "api:sur-4")) == "Good"


def test_write_key_in_the_body_as_segment_allows(runtime, db):
    client = TestClient(create_app(runtime))
    body = {
        "writeKey": "test-write-key",
        "batch": [{"type": "track", "userId": "wk", "event": "E", "messageId": "wk-1"}],
    }
    assert client.post("/v1/batch", json=body).status_code == 200
    assert client.post("/v1/batch", json={**body, "writeKey": "nope"}).status_code == 401
    assert client.post("/v1/track", json={"userId": "wk", "event": "E"}).status_code == 401
    track = {"writeKey": "test-write-key", "userId": "wk", "event": "E", "messageId": "wk-2"}
    assert client.post("/v1/track", json=track).status_code == 200
    assert db.scalar(select(Event.name).where(Event.dedupe_key == "api:wk-2")) == "E"
