"""Segments over HTTP: catalog with sizes, one segment, members, a profile's memberships
and history, and the preview of definitions not yet deployed (which writes nothing)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from lifecycle import clock
from lifecycle.api.app import create_app
from lifecycle.events.models import Event
from lifecycle.profiles.models import Profile
from lifecycle.segments.models import Segment, SegmentMembership
from tests.conftest import publish_directory
from tests.support import ADMIN_AUTH, WRITE_AUTH, at

T0 = "2026-03-10T12:00:00Z"
ADULTS = "name: adults\ndescription: Old enough\nwhere: {attribute: age, op: gte, value: 18}\n"
BUYERS = "name: buyers\nwhere: {event: Order Completed, within_last: 30d}\n"
HOSTILE = "x'; drop table profiles;--"


@pytest.fixture
def client(runtime, inline) -> TestClient:
    clock.set_now(at(T0))
    return TestClient(create_app(runtime))


def _identify(client: TestClient, user: str, **traits: object) -> int:
    body = {"userId": user, "traits": traits, "messageId": f"id-{user}-{len(traits)}"}
    response = client.post("/v1/identify", json=body, headers=WRITE_AUTH)
    assert response.status_code == 200, response.text
    return response.json()["profile_id"]


def _track(client: TestClient, user: str, event: str, message_id: str) -> None:
    body = {"userId": user, "event": event, "messageId": message_id}
    response = client.post("/v1/track", json=body, headers=WRITE_AUTH)
    assert response.status_code == 200, response.text


def _deploy(runtime, tmp_path: Path, **files: str) -> None:
    folder = tmp_path / "campaigns" / "segments"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text)
    publish_directory(runtime, tmp_path / "campaigns")


@pytest.fixture
def people(client, runtime, inline, tmp_path) -> dict[str, int]:
    ids = {
        "ann": _identify(client, "u-ann", email="ann@example.com", age=34),
        "bob": _identify(client, "u-bob", email="bob@example.com", phone="+12125550142", age="19"),
        "cid": _identify(client, "u-cid", age=12),
        "dee": _identify(client, "u-dee", age="n/a"),
    }
    _deploy(runtime, tmp_path, adults=ADULTS, buyers=BUYERS)
    inline.drain()
    return ids


def _get(client: TestClient, path: str, **params: object):
    return client.get(path, params=params, headers=ADMIN_AUTH)


# --- catalog ----------------------------------------------------------------------------------


def test_list_segments_with_size_and_dependencies(client, people):
    response = _get(client, "/v1/segments")
    assert response.status_code == 200, response.text
    found = {s["name"]: s for s in response.json()["segments"]}
    assert set(found) == {"adults", "buyers"}
    adults = found["adults"]
    assert adults["size"] == 2
    assert adults["description"] == "Old enough"
    assert adults["version"] == 1
    assert adults["time_based"] is False
    assert adults["depends_on"] == {"attributes": ["age"], "events": []}
    assert at(adults["computed_at"]) == at(T0)
    assert found["buyers"]["time_based"] is True
    assert found["buyers"]["size"] == 0


def test_one_segment_with_its_definition_as_written(client, people):
    response = _get(client, "/v1/segments/adults")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["definition"]["where"] == {"attribute": "age", "op": "gte", "value": 18}
    assert "op: gte" in body["definition_yaml"]
    assert body["size"] == 2


def test_admin_key_is_required(client, people):
    for path in ("/v1/segments", "/v1/segments/adults", "/v1/segments/adults/members"):
        assert client.get(path).status_code == 401
    assert client.post("/v1/segments/preview", content=ADULTS).status_code == 401


# --- members ----------------------------------------------------------------------------------


def test_members_sample_with_identifiers_time_and_cause(client, people):
    response = _get(client, "/v1/segments/adults/members")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["size"] == 2
    by_id = {m["profile_id"]: m for m in body["members"]}
    assert set(by_id) == {people["ann"], people["bob"]}
    bob = by_id[people["bob"]]
    assert bob["id"] == "u-bob" and bob["email"] == "bob@example.com"
    assert bob["phone"] == "+12125550142"
    assert at(bob["entered_at"]) == at(T0)
    assert bob["cause"] == "segment adults published"

    one = _get(client, "/v1/segments/adults/members", limit=1).json()
    assert len(one["members"]) == 1 and one["size"] == 2


@pytest.mark.parametrize("limit", ["0", "-1", "501", "100000000000000000000000"])
def test_members_limit_out_of_range_is_a_clear_4xx(client, people, limit):
    response = _get(client, "/v1/segments/adults/members", limit=limit)
    assert response.status_code in (400, 422), response.text
    assert "limit" in response.text


def test_members_limit_not_a_number(client, people):
    response = _get(client, "/v1/segments/adults/members", limit="ten")
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == "limit" and body["error"].startswith("limit: ")  # our shape


@pytest.mark.parametrize("name", ["nope", HOSTILE, "ünïcode", "a" * 300, "adults'--"])
def test_unknown_or_hostile_segment_names_are_404_naming_the_segment(client, people, runtime, name):
    before = _counts(runtime)
    for path in (f"/v1/segments/{quote(name)}", f"/v1/segments/{quote(name)}/members"):
        response = _get(client, path)
        assert response.status_code == 404, response.text
        assert response.json()["error"] == f"no segment named {name!r}"
    assert _counts(runtime) == before  # profiles still there


# --- a profile's memberships ------------------------------------------------------------------


def test_profile_memberships_current_and_history(client, people, inline):
    clock.set_now(at("2026-03-11T09:00:00Z"))
    _track(client, "u-bob", "Order Completed", "o-1")
    inline.drain()
    clock.set_now(at("2026-03-12T09:00:00Z"))
    _identify(client, "u-bob", age=17)  # leaves adults
    inline.drain()

    response = _get(client, "/v1/profiles/id:u-bob/segments")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["profile_id"] == people["bob"]
    assert [c["segment"] for c in body["current"]] == ["buyers"]
    assert body["current"][0]["cause"].startswith("event")
    history = body["history"]
    assert [(h["segment"], h["current"]) for h in history] == [
        ("buyers", True),
        ("adults", False),
    ]
    adults = history[1]
    assert at(adults["entered_at"]) == at(T0)
    assert adults["entered_cause"] == "segment adults published"
    assert at(adults["exited_at"]) == at("2026-03-12T09:00:00Z")
    assert "age" in adults["exited_cause"]


def test_profile_memberships_of_unknown_or_bad_reference(client, people):
    assert _get(client, "/v1/profiles/id:nobody/segments").status_code == 404
    assert _get(client, f"/v1/profiles/{quote(HOSTILE)}/segments").status_code == 400
    empty = _get(client, "/v1/profiles/id:u-cid/segments").json()
    assert empty["current"] == [] and empty["history"] == []


# --- preview ----------------------------------------------------------------------------------


def _counts(runtime) -> tuple[int, ...]:
    with runtime.session() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model))
            for model in (Segment, SegmentMembership, Profile, Event)
        )


def _preview(client: TestClient, text: str, content_type: str = "application/yaml", **params):
    return client.post(
        "/v1/segments/preview",
        content=text.encode(),
        params=params,
        headers={**ADMIN_AUTH, "Content-Type": content_type},
    )


def test_preview_gives_size_sample_and_unreadable_values_and_writes_nothing(
    client, people, runtime
):
    before = _counts(runtime)
    text = (
        "name: teens\nwhere: {attribute: age, op: between, value: [13, 19]}\n"
        "---\n"
        "name: adult_buyers\nwhere:\n  all:\n    - {segment: adults}\n    - {segment: teens}\n"
    )
    response = _preview(client, text)
    assert response.status_code == 200, response.text
    teens, both = response.json()["segments"]
    assert teens["name"] == "teens" and teens["size"] == 1
    assert teens["sample"] == [
        {
            "profile_id": people["bob"],
            "id": "u-bob",
            "email": "bob@example.com",
            "phone": "+12125550142",
        }
    ]
    assert teens["not_comparable"] == {"age": 1}
    assert both["size"] == 1 and both["not_comparable"] == {"age": 1}
    assert _counts(runtime) == before
    with runtime.session() as session:
        assert session.scalar(select(Segment).where(Segment.name == "teens")) is None


def test_preview_accepts_json_one_or_a_list(client, people):
    one = '{"name": "adults2", "where": {"attribute": "age", "op": "gte", "value": 18}}'
    response = _preview(client, one, "application/json")
    assert response.status_code == 200, response.text
    assert response.json()["segments"][0]["size"] == 2
    many = f'[{one}, {{"name": "kids", "where": {{"attribute": "age", "op": "lt", "value": 18}}}}]'
    response = _preview(client, many, "application/json")
    assert [s["size"] for s in response.json()["segments"]] == [2, 1]


def test_preview_of_a_published_name_shows_the_draft(client, people):
    response = _preview(client, "name: adults\nwhere: {attribute: age, op: gte, value: 30}\n")
    assert response.status_code == 200
    assert response.json()["segments"][0]["size"] == 1


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("name: a\nwhere:\n  attribute: age\n  op: [gte\n", 5, "YAML"),
        ("name: a\nwhere:\n  attribute: age\n  op: bigger\n  value: 3\n", 4, "op"),
        ("name: a\nwhere: {attribute: age, op: gte, value: 1}\ncolour: red\n", 3, "colour"),
        ("where: {attribute: age, op: gte, value: 1}\n", 1, "name"),
        (f"name: {HOSTILE!r}\nwhere: {{attribute: age, op: gte, value: 1}}\n", 1, "name"),
        ("name: a\nwhere: {segment: nowhere}\n", 1, "no segment named 'nowhere'"),
        ("name: a\nwhere: {segment: b}\n---\nname: b\nwhere: {segment: a}\n", 1, "loop"),
        (
            "name: a\nwhere: {segment: adults}\n---\nname: a\nwhere: {segment: adults}\n",
            4,
            "twice",
        ),
        ("", 1, "no segment"),
        ("- 1\n- 2\n", 1, "mapping"),
        (
            "name: a\nwhere:\n  attribute: since\n  op: after\n  value: 2026-02-30\n",
            5,
            "2026-02-30",
        ),
        ("name: a\nwhere: {attribute: since, op: after, value: 2026-02-30}\n", 2, "quotes"),
    ],
)
def test_preview_problems_are_422_with_their_line(client, people, runtime, text, line, words):
    before = _counts(runtime)
    response = _preview(client, text)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == "body"
    first = body["problems"][0]
    assert first["line"] == line, body
    assert first["problem"].startswith(f"body:{line}: ")
    assert words in body["error"]
    assert _counts(runtime) == before


def test_preview_bad_json_names_its_line(client, people):
    response = _preview(client, '{"name": "a",\n "where": }', "application/json")
    assert response.status_code == 422
    assert response.json()["problems"][0]["line"] == 2


def test_preview_hostile_values_are_data(client, people, runtime):
    before = _counts(runtime)
    text = f'name: odd\nwhere: {{attribute: "{HOSTILE}", op: equals, value: "{HOSTILE}"}}\n'
    response = _preview(client, text)
    assert response.status_code == 200, response.text
    assert response.json()["segments"][0]["size"] == 0
    assert _counts(runtime) == before
    with runtime.session() as session:
        assert session.get(Profile, people["ann"]) is not None


def test_preview_body_not_text_or_too_large(client, people):
    response = client.post("/v1/segments/preview", content=b"\xff\xfe", headers={**ADMIN_AUTH})
    assert response.status_code == 400
    response = _preview(client, "# " + "x" * (1024 * 1024 + 1))
    assert response.status_code == 413
    assert _preview(client, ADULTS, limit=0).status_code == 400


def test_openapi_lists_the_segment_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert paths["/v1/segments"]["get"]["summary"]
    assert paths["/v1/segments/preview"]["post"]["summary"]
    assert paths["/v1/profiles/{ref}/segments"]["get"]["summary"]


def test_preview_json_values_are_json_and_lines_survive_tabs(client, people):
    # YAML would read 1.8e1 as text; JSON reads it as 18.
    text = '{"name": "n", "where": {"attribute": "age", "op": "gte", "value": 1.8e1}}'
    response = _preview(client, text, "application/json")
    assert response.status_code == 200, response.text
    assert response.json()["segments"][0]["size"] == 2
    tabbed = '{\n\t"name": "n",\n\t"where": {"attribute": "age", "op": "big", "value": 1}\n}'
    response = _preview(client, tabbed, "application/json")
    assert response.status_code == 422
    assert "op" in response.json()["error"]
    lined = '{\n  "name": "n",\n  "where": {\n    "attribute": "age",\n    "op": "big"\n  }\n}'
    response = _preview(client, lined, "application/json")
    assert response.status_code == 422
    assert response.json()["problems"][0]["line"] == 5


def test_list_and_preview_on_sqlite(sqlite_runtime, tmp_path):
    from lifecycle.events.service import ingest

    clock.set_now(at(T0))
    with sqlite_runtime.session() as session:
        ingest(
            session,
            [
                {"type": "identify", "userId": f"s-{age}", "messageId": f"s-{age}", "traits": t}
                for age, t in ((1, {"age": 40}), (2, {"age": "x"}))
            ],
            now=clock.now(),
            options=sqlite_runtime.ingest_options,
        )
    _deploy(sqlite_runtime, tmp_path, adults=ADULTS)
    client = TestClient(create_app(sqlite_runtime))
    found = _get(client, "/v1/segments").json()["segments"]
    assert [(s["name"], s["size"]) for s in found] == [("adults", 1)]
    response = _preview(client, "name: kids\nwhere: {attribute: age, op: lt, value: 18}\n")
    assert response.status_code == 200, response.text
    (kids,) = response.json()["segments"]
    assert kids["size"] == 0 and kids["not_comparable"] == {"age": 1}
    with sqlite_runtime.session() as session:
        assert session.scalar(select(func.count()).select_from(Segment)) == 1
