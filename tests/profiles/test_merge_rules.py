"""Survivorship and the explicit-merge rules."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lifecycle import clock
from lifecycle.api.app import create_app
from lifecycle.campaigns.models import Journey
from lifecycle.errors import Conflict
from lifecycle.events.service import ingest
from lifecycle.profiles.merge import survive
from lifecycle.profiles.service import find_profile, merge
from tests.conftest import publish_directory
from tests.support import ADMIN_AUTH, WRITE_AUTH, at

T1, T2 = "2026-01-01T00:00:00.000000Z", "2026-02-01T00:00:00.000000Z"


def test_most_recent_non_empty_value_wins_per_attribute():
    attrs, times = survive(
        {"plan": "gold", "city": "Turin", "name": ""},
        {"plan": T1, "city": T2, "name": T2},
        {"plan": "basic", "city": "Rome", "name": "Lia", "zip": None},
        {"plan": T2, "city": T1, "name": T1, "zip": T2},
    )
    assert attrs == {"plan": "basic", "city": "Turin", "name": "Lia"}
    assert times["plan"] == T2


def test_lists_are_united_and_an_unsubscribe_on_either_side_carries_over():
    attrs, _ = survive(
        {"lists": ["news"], "unsubscribed": False},
        {"lists": T2, "unsubscribed": T2},
        {"lists": ["offers", "news"], "unsubscribed_sms": True, "unsubscribed": True},
        {"lists": T1, "unsubscribed": T1, "unsubscribed_sms": T1},
    )
    assert attrs == {"lists": ["news", "offers"], "unsubscribed": True, "unsubscribed_sms": True}


def _profile(runtime, body: dict) -> int:
    with runtime.session() as session:
        [r] = ingest(
            session, [body], now=clock.now(), options=runtime.ingest_options, call_type="identify"
        )
        return r.profile_id


def test_two_external_ids_need_force(runtime, db):
    clock.set_now(at("2026-03-01T09:00:00Z"))
    _profile(runtime, {"userId": "u-1", "traits": {"email": "a@example.com"}})
    _profile(runtime, {"userId": "u-2", "traits": {"email": "b@example.com"}})
    with pytest.raises(Conflict, match="force"):
        merge(db, "id:u-1", "id:u-2", reason="same person", actor="staff", now=clock.now())
    record = merge(
        db, "id:u-1", "id:u-2", reason="same person", actor="staff", now=clock.now(), force=True
    )
    assert find_profile(db, "id:u-2").id == record.survivor_id


def test_two_journeys_of_one_campaign_become_one_and_come_back_on_undo(runtime, inline, db):
    clock.set_now(at("2026-03-01T09:00:00Z"))
    publish_directory(runtime)
    client = TestClient(create_app(runtime))
    for user in ("a", "b"):
        client.post(
            "/v1/identify",
            json={"anonymousId": f"anon-{user}", "traits": {"email": f"{user}@example.com"}},
            headers=WRITE_AUTH,
        )
        client.post(
            "/v1/track",
            json={
                "anonymousId": f"anon-{user}",
                "event": "Product Added",
                "messageId": f"pa-{user}",
            },
            headers=WRITE_AUTH,
        )
    inline.drain()
    assert len(db.scalars(select(Journey).where(Journey.status == "active")).all()) == 2
    response = client.post(
        "/v1/profiles/anon:anon-a/merge",
        json={"other": "anon:anon-b", "reason": "same", "by": "ops"},
        headers=ADMIN_AUTH,
    )
    assert response.status_code == 201, response.text
    active = db.scalars(select(Journey).where(Journey.status == "active")).all()
    assert len(active) == 1
    inline.tick("2026-03-01T10:30:00Z")
    assert len(inline.runtime.providers["email"].calls) == 1  # one reminder, not two
    response = client.post(
        f"/v1/merges/{response.json()['merge_id']}/undo",
        json={"reason": "no", "by": "ops"},
        headers=ADMIN_AUTH,
    )
    assert response.status_code == 200
    b = find_profile(db, "anon:anon-b")
    assert db.scalar(select(Journey.status).where(Journey.profile_id == b.id)) == "active"


def test_merge_api_errors_name_the_problem(runtime, db):
    clock.set_now(at("2026-03-01T09:00:00Z"))
    _profile(runtime, {"anonymousId": "x", "traits": {"email": "x@example.com"}})
    client = TestClient(create_app(runtime))
    same = client.post(
        "/v1/profiles/anon:x/merge",
        json={"other": "email:x@example.com", "reason": "r"},
        headers=ADMIN_AUTH,
    )
    assert same.status_code == 409 and "same profile" in same.json()["error"]
    missing = client.post(
        "/v1/profiles/anon:x/merge",
        json={"other": "anon:nobody", "reason": "r"},
        headers=ADMIN_AUTH,
    )
    assert missing.status_code == 404
    no_reason = client.post(
        "/v1/profiles/anon:x/merge", json={"other": "anon:x", "reason": " "}, headers=ADMIN_AUTH
    )
    assert no_reason.status_code == 400 and no_reason.json()["field"] == "reason"
    assert (
        client.post("/v1/merges/999999/undo", json={"reason": "r"}, headers=ADMIN_AUTH).status_code
        == 404
    )


def test_alias_between_two_known_users_is_refused_and_flagged(runtime, db):
    from lifecycle.profiles.models import DuplicateCandidate

    clock.set_now(at("2026-03-01T09:00:00Z"))
    m1 = _profile(runtime, {"userId": "m1", "traits": {"email": "m1@example.com"}})
    m2 = _profile(runtime, {"userId": "m2", "traits": {"email": "m2@example.com"}})
    client = TestClient(create_app(runtime))
    answer = client.post(
        "/v1/alias",
        json={"userId": "m2", "previousId": "m1", "messageId": "al"},
        headers=WRITE_AUTH,
    ).json()
    assert answer["profile_id"] == m2 and any("id=m1" in w for w in answer["warnings"])
    assert find_profile(db, "id:m1").id == m1
    assert (
        db.scalar(select(DuplicateCandidate).where(DuplicateCandidate.profile_a == min(m1, m2)))
        is not None
    )


def test_replaying_history_reads_a_first_values_row_as_a_change_of_each():
    """Undoing a merge replays history: a profile's first values, one row, are each a
    change at that row's time (an older one never overwrites a newer value)."""
    from lifecycle.profiles.merge import _replay
    from lifecycle.profiles.models import AttributeChange

    first = AttributeChange(
        id=1,
        name=None,
        new_value={"city": "Oslo", "plan": "gold"},
        changed_at=at("2026-03-01T10:00:00Z"),
    )
    later = AttributeChange(
        id=2, name="city", new_value="Rome", changed_at=at("2026-03-02T10:00:00Z")
    )
    attributes, times = _replay(
        {"plan": "basic"}, {"plan": "2026-03-05T00:00:00.000000Z"}, [later, first]
    )
    assert attributes == {"city": "Rome", "plan": "basic"}
    assert times["city"] == "2026-03-02T10:00:00.000000Z"
