"""Segment entries and exits in a profile's timeline: name, time and cause, in order with
everything else, and the cursor pages still cover the story exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lifecycle import clock
from lifecycle.api.app import create_app
from lifecycle.timeline.service import RANKS, timeline
from tests.conftest import publish_directory
from tests.support import ADMIN_AUTH, WRITE_AUTH, at

T0 = "2026-03-10T12:00:00Z"
T1 = "2026-03-11T09:00:00Z"
T2 = "2026-03-12T09:00:00Z"


@pytest.fixture
def client(runtime, inline) -> TestClient:
    clock.set_now(at(T0))
    return TestClient(create_app(runtime))


def _post(client: TestClient, kind: str, body: dict) -> dict:
    response = client.post(f"/v1/{kind}", json=body, headers=WRITE_AUTH)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def story(client, runtime, inline, tmp_path: Path) -> int:
    """adults entered on publish (T0), buyers entered by an event (T1), adults left (T2)."""
    pid = _post(client, "identify", {"userId": "u-t", "traits": {"age": 30}, "messageId": "t-1"})[
        "profile_id"
    ]
    inline.drain()
    folder = tmp_path / "campaigns" / "segments"
    folder.mkdir(parents=True)
    (folder / "adults.yaml").write_text("where: {attribute: age, op: gte, value: 18}\n")
    (folder / "buyers.yaml").write_text("where: {event: Order Completed}\n")
    clock.set_now(at(T0))
    publish_directory(runtime, tmp_path / "campaigns")

    clock.set_now(at(T1))
    _post(client, "track", {"userId": "u-t", "event": "Order Completed", "messageId": "t-2"})
    inline.drain()
    clock.set_now(at(T2))
    _post(client, "identify", {"userId": "u-t", "traits": {"age": 17}, "messageId": "t-3"})
    inline.drain()
    return pid


def _all(client: TestClient, pid: int, limit: int) -> list[dict]:
    items, cursor = [], None
    for _ in range(100):
        params: dict[str, object] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = client.get(f"/v1/profiles/{pid}/timeline", params=params, headers=ADMIN_AUTH)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items
    raise AssertionError("pages never ended")


def test_entries_and_exits_appear_with_name_time_and_cause(client, story):
    items = _all(client, story, 50)
    segment_items = [
        (i["kind"], i["segment"], at(i["at"]), i["cause"])
        for i in items
        if i["kind"].startswith("segment_")
    ]
    assert segment_items == [
        ("segment_exited", "adults", at(T2), segment_items[0][3]),
        ("segment_entered", "buyers", at(T1), segment_items[1][3]),
        ("segment_entered", "adults", at(T0), "segment adults published"),
    ]
    assert "age" in segment_items[0][3]
    assert "Order Completed" in segment_items[1][3]
    exited = next(i for i in items if i["kind"] == "segment_exited")
    assert at(exited["entered_at"]) == at(T0)


def test_in_order_with_everything_else(client, story):
    items = _all(client, story, 50)
    keys = [(at(i["at"]), RANKS[i["kind"]], i["id"]) for i in items]
    assert keys == sorted(keys, reverse=True)
    kinds = [i["kind"] for i in items]
    # the entry an event caused comes after (above, newest first) the event, same instant
    entered = kinds.index("segment_entered")
    assert kinds[entered + 1] == "event" and items[entered]["at"] == items[entered + 1]["at"]
    # the exit an attribute change caused comes after the change
    exited = kinds.index("segment_exited")
    assert kinds[exited + 1] == "attribute_change"


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_cursor_pages_cover_every_item_once(client, story, limit):
    whole = _all(client, story, 500)
    paged = _all(client, story, limit)
    assert [(i["kind"], i["id"]) for i in paged] == [(i["kind"], i["id"]) for i in whole]
    assert sum(i["kind"].startswith("segment_") for i in whole) == 3


def test_service_pages_on_sqlite_too(sqlite_runtime, tmp_path):
    from lifecycle.events.service import ingest

    with sqlite_runtime.session() as session:
        (result,) = ingest(
            session,
            [{"type": "identify", "userId": "s-1", "messageId": "s-1", "traits": {"age": 40}}],
            now=at(T0),
            options=sqlite_runtime.ingest_options,
        )
    folder = tmp_path / "campaigns" / "segments"
    folder.mkdir(parents=True)
    (folder / "adults.yaml").write_text("where: {attribute: age, op: gte, value: 18}\n")
    clock.set_now(at(T1))
    publish_directory(sqlite_runtime, tmp_path / "campaigns")
    with sqlite_runtime.session() as session:
        first = timeline(session, result.profile_id, limit=1)
        assert first["items"][0]["kind"] == "segment_entered"
        assert first["items"][0]["segment"] == "adults"
        rest = timeline(session, result.profile_id, limit=10, cursor=first["next_cursor"])
        assert "segment_entered" not in [i["kind"] for i in rest["items"]]
        assert rest["items"]
