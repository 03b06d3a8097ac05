"""Admin read API: profiles by reference, and the timeline (order, pagination, messages)."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lifecycle import clock
from lifecycle.api.app import create_app
from lifecycle.campaigns.models import Journey
from lifecycle.delivery.models import Message
from lifecycle.events.models import Event
from lifecycle.profiles.models import Identity
from lifecycle.timeline.service import RANKS
from tests.conftest import publish_directory
from tests.support import ADMIN_AUTH, WRITE_AUTH, at

T0 = "2026-03-10T12:00:00Z"


@pytest.fixture
def client(runtime) -> TestClient:
    clock.set_now(at(T0))
    return TestClient(create_app(runtime))


def _post(client: TestClient, kind: str, body: dict) -> dict:
    response = client.post(f"/v1/{kind}", json=body, headers=WRITE_AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def _get(client: TestClient, path: str, **params: object) -> dict:
    response = client.get(path, params=params, headers=ADMIN_AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def _ref(ref: str) -> str:
    return quote(ref, safe=":@")


# --- profiles ---------------------------------------------------------------------------------


def _person(client: TestClient) -> int:
    body = {
        "userId": "u-ref",
        "anonymousId": "anon-ref",
        "traits": {"email": "Ref.Person@Example.com", "phone": "(212) 555-0142", "tier": "gold"},
        "messageId": "ref-1",
    }
    return _post(client, "identify", body)["profile_id"]


def test_profile_lookup_by_each_kind_of_reference(client):
    pid = _person(client)
    refs = [
        str(pid),
        "id:u-ref",
        "email:ref.person@example.com",
        "email:REF.PERSON@example.COM",
        "phone:+12125550142",
        "phone:(212) 555-0142",
        "phone:212.555.0142",
        "anon:anon-ref",
    ]
    for ref in refs:
        profile = _get(client, f"/v1/profiles/{_ref(ref)}")
        assert profile["id"] == pid, ref


def test_profile_shows_every_identifier_with_source_and_first_and_last_seen(client):
    pid = _person(client)
    clock.set_now(at("2026-03-11T08:00:00Z"))
    _post(client, "track", {"userId": "u-ref", "event": "Viewed", "messageId": "ref-2"})

    profile = _get(client, f"/v1/profiles/{pid}")
    assert profile["attributes"]["tier"] == "gold"
    by_kind = {i["kind"]: i for i in profile["identities"]}
    assert {k: i["value"] for k, i in by_kind.items()} == {
        "id": "u-ref",
        "anonymous_id": "anon-ref",
        "email": "ref.person@example.com",
        "phone": "+12125550142",
    }
    assert by_kind["email"]["display"] == "Ref.Person@Example.com"
    assert by_kind["phone"]["display"] == "(212) 555-0142"
    for ident in profile["identities"]:
        assert ident["source"] == "api"
        assert at(ident["first_seen"]) == at(T0)
    # only the user id came back the next day
    assert at(by_kind["id"]["last_seen"]) == at("2026-03-11T08:00:00Z")
    assert at(by_kind["email"]["last_seen"]) == at(T0)


@pytest.mark.parametrize(
    "ref", ["999999999", "id:nobody", "email:nobody@example.com", "phone:+12125559999", "anon:zz"]
)
def test_an_unknown_profile_is_404(client, ref):
    _person(client)
    response = client.get(f"/v1/profiles/{_ref(ref)}", headers=ADMIN_AUTH)
    assert response.status_code == 404, response.text
    response = client.get(f"/v1/profiles/{_ref(ref)}/timeline", headers=ADMIN_AUTH)
    assert response.status_code == 404, response.text


@pytest.mark.parametrize(
    "ref", ["abc", "-3", "email:not-an-email", "phone:abc", "color:blue", "id:null", "email:"]
)
def test_a_malformed_reference_is_400(client, ref):
    response = client.get(f"/v1/profiles/{_ref(ref)}", headers=ADMIN_AUTH)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "ref"


def test_a_merged_away_profile_resolves_to_its_survivor(client, db):
    anon_pid = _post(client, "track", {"anonymousId": "anon-m", "event": "V", "messageId": "m1"})[
        "profile_id"
    ]
    user_pid = _post(client, "identify", {"userId": "user-m", "messageId": "m2"})["profile_id"]
    _post(client, "alias", {"previousId": "anon-m", "userId": "user-m", "messageId": "m3"})
    assert anon_pid != user_pid
    assert _get(client, f"/v1/profiles/{anon_pid}")["id"] == user_pid
    items = _get(client, f"/v1/profiles/{anon_pid}/timeline")["items"]
    assert [i["kind"] for i in items].count("merge") == 1
    [merge] = [i for i in items if i["kind"] == "merge"]
    assert (merge["survivor_id"], merge["merged_id"]) == (user_pid, anon_pid)


# --- timeline order and pagination ------------------------------------------------------------


def _key(item: dict) -> tuple[datetime, int, int]:
    return (at(item["at"]), RANKS[item["kind"]], item["id"])


def _walk(client: TestClient, ref: str, limit: int) -> tuple[list[dict], int]:
    items: list[dict] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        page = _get(client, f"/v1/profiles/{ref}/timeline", **params)
        pages += 1
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items, pages
        assert page["items"], "a page with a next_cursor must not be empty"
        assert pages < 100


def _busy_profile(client: TestClient) -> int:
    """A profile with many items, several of them at the very same instant."""
    same = "2026-03-10T10:00:00.123456Z"
    pid = _post(
        client,
        "identify",
        {
            "userId": "u-tl",
            "traits": {"email": "tl@example.com", "a": 1, "b": 2, "c": 3},
            "timestamp": same,
            "messageId": "tl-ident",
        },
    )["profile_id"]
    for n in range(5):
        body = {"userId": "u-tl", "event": f"Tie {n}", "timestamp": same, "messageId": f"tl-{n}"}
        _post(client, "track", body)
    # received later than the ties, but happened earlier: placed by its own timestamp
    _post(
        client,
        "track",
        {
            "userId": "u-tl",
            "event": "Early",
            "timestamp": "2026-03-09T09:00:00Z",
            "messageId": "tl-early",
        },
    )
    _post(
        client,
        "track",
        {
            "userId": "u-tl",
            "event": "Late",
            "timestamp": "2026-03-10T11:00:00Z",
            "messageId": "tl-late",
        },
    )
    clock.set_now(at("2026-03-10T12:30:00Z"))
    _post(
        client,
        "identify",
        {"userId": "u-tl", "traits": {"a": 10}, "messageId": "tl-ident2"},
    )
    # another person's items never show up
    _post(client, "track", {"userId": "someone-else", "event": "Tie 0", "messageId": "tl-x"})
    return pid


def test_timeline_is_newest_first_by_the_events_own_time(client, db):
    pid = _busy_profile(client)
    page = _get(client, f"/v1/profiles/{pid}/timeline", limit=500)
    assert page["profile_id"] == pid and page["next_cursor"] is None
    items = page["items"]
    events = [i for i in items if i["kind"] == "event"]
    assert [e["name"] for e in events] == [
        "Late",
        "Tie 4",
        "Tie 3",
        "Tie 2",
        "Tie 1",
        "Tie 0",
        "Early",
    ]
    early = events[-1]
    assert at(early["at"]) == at("2026-03-09T09:00:00Z")
    assert at(early["received_at"]) == at(T0)
    changes = [
        (i["attribute"], i["old"], i["new"]) for i in items if i["kind"] == "attribute_change"
    ]
    assert changes == [("a", 1, 10)]  # the later identify
    # The first identify made the profile: its values are one entry.
    [created] = [i for i in items if i["kind"] == "profile_created"]
    assert created["attributes"] == {"a": 1, "b": 2, "c": 3, "email": "tl@example.com"}
    # a strict, total order: (time, kind rank, row id), all descending
    keys = [_key(i) for i in items]
    assert keys == sorted(keys, reverse=True)
    assert len(set(keys)) == len(keys)
    assert len(items) == 7 + 2  # 7 track events, the creation, a change; identify calls are not
    # read again: identical
    assert _get(client, f"/v1/profiles/{pid}/timeline", limit=500)["items"] == items


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 6, 12])
def test_pagination_walks_every_item_once_in_the_same_order(client, limit):
    pid = _busy_profile(client)
    whole = _get(client, f"/v1/profiles/{pid}/timeline", limit=500)["items"]
    walked, pages = _walk(client, str(pid), limit)
    assert [(i["kind"], i["id"]) for i in walked] == [(i["kind"], i["id"]) for i in whole]
    assert walked == whole
    assert pages == -(-len(whole) // limit)  # no empty trailing page


def test_pagination_by_a_reference_is_the_same_story(client):
    pid = _busy_profile(client)
    by_id, _ = _walk(client, str(pid), 5)
    by_email, _ = _walk(client, _ref("email:TL@example.com"), 5)
    assert by_email == by_id


def test_items_arriving_between_pages_do_not_shift_the_walk(client):
    pid = _busy_profile(client)
    first = _get(client, f"/v1/profiles/{pid}/timeline", limit=4)
    clock.set_now(at("2026-03-10T13:00:00Z"))
    _post(client, "track", {"userId": "u-tl", "event": "Newer", "messageId": "tl-new"})
    rest, _ = _walk_from(client, pid, first["next_cursor"], 4)
    before = _get(client, f"/v1/profiles/{pid}/timeline", limit=500)["items"][1:]
    assert first["items"] + rest == before


def _walk_from(client: TestClient, pid: int, cursor: str, limit: int) -> tuple[list[dict], int]:
    items: list[dict] = []
    pages = 0
    while cursor:
        page = _get(client, f"/v1/profiles/{pid}/timeline", limit=limit, cursor=cursor)
        items.extend(page["items"])
        cursor = page["next_cursor"]
        pages += 1
    return items, pages


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WzEsMl0"}, "cursor"),  # valid base64 JSON, wrong shape
    ],
)
def test_bad_limit_or_cursor_is_400(client, params, field):
    pid = _busy_profile(client)
    response = client.get(f"/v1/profiles/{pid}/timeline", params=params, headers=ADMIN_AUTH)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field


# --- journeys and messages in the timeline ----------------------------------------------------


def test_timeline_shows_journeys_and_messages_with_status_history(runtime, inline, client, db):
    publish_directory(runtime)
    pid = _post(
        client,
        "identify",
        {"userId": "u-msg", "traits": {"email": "Msg@Example.com"}, "messageId": "msg-0"},
    )["profile_id"]
    added = _post(
        client,
        "track",
        {
            "userId": "u-msg",
            "event": "Product Added",
            "properties": {"brand": "acme", "price": 5},
            "timestamp": T0,
            "messageId": "msg-1",
        },
    )
    inline.drain()
    inline.tick("2026-03-10T13:00:30Z")  # one hour later: the cart email goes out
    [message] = db.scalars(select(Message).where(Message.profile_id == pid))
    assert message.status == "sent" and message.recipient == "msg@example.com"

    clock.set_now(at("2026-03-10T15:00:00Z"))
    _post(
        client,
        "track",
        {"userId": "u-msg", "event": "Order Completed", "messageId": "msg-2"},
    )
    inline.drain()

    items = _get(client, f"/v1/profiles/{pid}/timeline", limit=500)["items"]
    keys = [_key(i) for i in items]
    assert keys == sorted(keys, reverse=True)
    story = [(i["kind"], i.get("campaign") or i.get("name") or i.get("attribute")) for i in items]
    assert story == [
        # same instant: ranked journey left > journey entered > event, newest first
        ("journey_left", "abandoned_cart"),
        ("journey_entered", "post_purchase"),
        ("event", "Order Completed"),
        ("message", "abandoned_cart"),
        ("journey_entered", "abandoned_cart"),
        ("event", "Product Added"),
        ("profile_created", None),
    ]
    by_kind = {(i["kind"], i.get("campaign")): i for i in items}
    entered = by_kind[("journey_entered", "abandoned_cart")]
    assert entered["trigger_event_id"] == added["event_id"]
    assert at(entered["at"]) == at(T0)
    left = by_kind[("journey_left", "abandoned_cart")]
    assert left["status"] == "converted"
    assert at(left["at"]) == at("2026-03-10T15:00:00Z")
    assert left["log"] and left["log"][0]["kind"] == "entered"

    shown = by_kind[("message", "abandoned_cart")]
    assert shown["id"] == message.id
    assert (shown["channel"], shown["status"], shown["recipient"]) == (
        "email",
        "sent",
        "msg@example.com",
    )
    history = shown["status_history"]
    assert [h["status"] for h in history] == ["queued", "sending", "sent"]
    times = [at(h["at"]) for h in history]
    assert times == sorted(times)
    assert at("2026-03-10T13:00:00Z") <= times[0] and times[-1] <= at("2026-03-10T13:00:30Z")
    assert at(shown["at"]) == message.created_at and times[-1] == message.sent_at
    assert shown["attempts"] == 1 and shown["error"] is None

    journeys = {j.id for j in db.scalars(select(Journey).where(Journey.profile_id == pid))}
    assert {i["id"] for i in items if i["kind"].startswith("journey")} == journeys
    assert {i["id"] for i in items if i["kind"] == "event"} == set(
        db.scalars(select(Event.id).where(Event.profile_id == pid, Event.name.is_not(None)))
    )
    assert (
        db.scalar(
            select(Identity.value).where(Identity.profile_id == pid, Identity.kind == "email")
        )
        == "msg@example.com"
    )


@pytest.mark.parametrize("ref", ["99999999999999999999", "9223372036854775808", "9" * 5000])
def test_an_internal_id_beyond_any_row_is_404_not_an_error(client, ref):
    response = client.get(f"/v1/profiles/{ref}", headers=ADMIN_AUTH)
    assert response.status_code == 404, response.text


@pytest.mark.parametrize("ref", ["²", "٣"])
def test_non_ascii_digits_are_not_an_internal_id(client, ref):
    response = client.get(f"/v1/profiles/{_ref(ref)}", headers=ADMIN_AUTH)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "ref"


def _cursor(raw: object) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "raw",
    [
        ["2026-03-10T10:00:00.123456", 3, 1],  # no offset
        ["2026-03-10T10:00:00+00:00", 3, 10**20],
        ["2026-03-10T10:00:00+00:00", 10**20, 1],
        [None, 3, 1],
    ],
)
def test_a_forged_cursor_is_400_or_read_as_utc_never_a_500(client, raw):
    pid = _busy_profile(client)
    response = client.get(
        f"/v1/profiles/{pid}/timeline", params={"cursor": _cursor(raw)}, headers=ADMIN_AUTH
    )
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["field"] == "cursor"
    else:  # a cursor without an offset is read as UTC, like timestamps sent without one
        items = response.json()["items"]
        start = (at("2026-03-10T10:00:00.123456Z"), 3, 1)
        assert items and all(_key(i) < start for i in items)
