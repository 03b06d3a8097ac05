"""Identity cases from ../shared/cases (B14, B16, B17, B19, B20, B22, B25) through the API.

Steps that need the CSV import or the Shopify/Twilio webhooks (later issues) are
replayed as the equivalent API calls; each test says where it adapts the case.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from lifecycle import clock
from lifecycle.api.app import create_app
from lifecycle.events.models import Event
from lifecycle.profiles.models import AttributeChange, DuplicateCandidate, Identity, Merge, Profile
from lifecycle.profiles.service import attribute_history, find_profile
from tests.cases.harness import case_dir, steps
from tests.support import ADMIN_AUTH, WRITE_AUTH, at


def _post(client: TestClient, call: str, body: dict) -> dict:
    if body.get("timestamp"):
        clock.set_now(at(body["timestamp"]))
    response = client.post(f"/v1/{call}", json=body, headers=WRITE_AUTH)
    assert response.status_code == 200, response.text
    return response.json()


_baseline: dict[str, int] = {}


@pytest.fixture(autouse=True)
def _only_this_tests_profiles(db):
    # Other tests (the live SDK test) commit rows to the shared run database: count ours.
    _baseline["id"] = db.scalar(select(func.max(Profile.id))) or 0


def _live_profiles(db) -> int:
    return db.scalar(
        select(func.count())
        .select_from(Profile)
        .where(Profile.merged_into_id.is_(None), Profile.id > _baseline["id"])
    )


def _idents(db, profile_id: int) -> set[tuple[str, str]]:
    return {
        (k, v)
        for k, v in db.execute(
            select(Identity.kind, Identity.value).where(Identity.profile_id == profile_id)
        )
    }


def test_b19_junk_identifiers_never_link_anyone(runtime, db):
    client = TestClient(create_app(runtime))
    answers = {}
    for number, step in enumerate(steps(case_dir("B19")), start=1):
        body = step["body"]
        if body.get("anonymousId") == "undefined" and "userId" not in body:
            response = client.post(f"/v1/{step['call']}", json=body, headers=WRITE_AUTH)
            assert response.status_code == 400
            assert response.json()["field"] == "anonymousId"
            assert "undefined" in response.json()["error"]
            continue
        answers[number] = _post(client, step["call"], body)
    for number in range(3, 13):
        assert any(
            "userId" in w and "not used to identify" in w for w in answers[number]["warnings"]
        )
    assert _live_profiles(db) == 11
    assert db.scalar(select(func.count()).select_from(Merge)) == 0
    assert db.scalars(select(Identity.value).where(Identity.kind == "id")).all() == []
    p111 = find_profile(db, "anon:anon-111")
    p222 = find_profile(db, "anon:anon-222")
    assert p111.id != p222.id and p111.attributes == {"plan": "free"}
    for profile in (p111, p222):
        assert (
            db.scalar(
                select(Event.name).where(Event.profile_id == profile.id, Event.name.is_not(None))
            )
            == "Product Viewed"
        )
    rae = find_profile(db, "anon:anon-999")
    assert ("email", "null") not in _idents(db, rae.id) and rae.attributes["first_name"] == "Rae"
    assert any("traits.email" in w for w in answers[14]["warnings"])


def test_b19_the_refused_list_is_a_setting(runtime, db):
    runtime.ingest_options = type(runtime.ingest_options)(
        **{**runtime.ingest_options.__dict__, "extra_junk": frozenset({"test-user"})}
    )
    client = TestClient(create_app(runtime))
    answer = _post(
        client, "identify", {"userId": "Test-User ", "anonymousId": "a-1", "messageId": "x1"}
    )
    assert any("placeholder" in w for w in answer["warnings"])
    assert db.scalars(select(Identity.value).where(Identity.kind == "id")).all() == []


def test_b20_planted_id_never_chains_customers_and_undo_is_exact(runtime, db):
    client = TestClient(create_app(runtime))
    all_steps = steps(case_dir("B20"))
    merge_id = None
    snapshot = None
    for step in all_steps:
        if step["call"] == "merge":
            snapshot = _snapshot(db, ["anon:anon-lia", "anon:anon-lio"])
            opts = step["options"]
            response = client.post(
                f"/v1/profiles/anon:{opts['into']['anonymousId']}/merge",
                json={
                    "other": f"anon:{opts['from']['anonymousId']}",
                    "reason": opts["reason"],
                    "by": opts["by"],
                },
                headers=ADMIN_AUTH,
            )
            assert response.status_code == 201, response.text
            merge_id = response.json()["merge_id"]
            merged = find_profile(db, "anon:anon-lia")
            assert {v for k, v in _idents(db, merged.id) if k == "email"} == {
                "lia@example.com",
                "lio@example.com",
            }
            assert merged.attributes["plan"] == "basic"  # changed last
            history = [c.new_value for c in attribute_history(db, merged.id, "plan")]
            assert "gold" in history
        elif step["call"] == "unmerge":
            opts = step["options"]
            response = client.post(
                f"/v1/merges/{merge_id}/undo",
                json={"reason": opts["reason"], "by": opts["by"]},
                headers=ADMIN_AUTH,
            )
            assert response.status_code == 200, response.text
        else:
            _post(client, step["call"], step["body"])
        if step.get("body", {}).get("messageId") == "b20-0200":
            customers = [find_profile(db, f"id:cust-{n:03d}") for n in range(1, 101)]
            assert len({c.id for c in customers}) == 100
            for n, c in enumerate(customers, start=1):
                idents = _idents(db, c.id)
                assert {k for k, _ in idents if k == "id"} == {"id"}
                assert ("id", f"cust-{n:03d}") in idents and (
                    "anonymous_id",
                    f"anon-{n:03d}",
                ) in idents
            holders = db.scalars(
                select(Identity.profile_id).where(Identity.value == "test-user")
            ).all()
            assert len(holders) == 1
            assert _idents(db, holders[0]) == {("id", "test-user")}
            pairs = db.scalars(
                select(DuplicateCandidate).where(
                    (DuplicateCandidate.profile_a == holders[0])
                    | (DuplicateCandidate.profile_b == holders[0])
                )
            ).all()
            assert len(pairs) == 100 and all(p.status == "open" for p in pairs)
            assert db.scalar(select(func.count()).select_from(Merge)) == 0

    lia, lio = find_profile(db, "anon:anon-lia"), find_profile(db, "anon:anon-lio")
    assert lia.id != lio.id
    after = _snapshot(db, ["anon:anon-lia", "anon:anon-lio"])
    assert after["anon:anon-lia"] == snapshot["anon:anon-lia"]
    lio_before, lio_after = snapshot["anon:anon-lio"], after["anon:anon-lio"]
    assert lio_after["attributes"] == {**lio_before["attributes"], "city": "Rome"}
    assert lio_after["identities"] == lio_before["identities"]
    assert sorted(lio_after["events"]) == sorted([*lio_before["events"], "b20-0205"])
    record = db.get(Merge, merge_id)
    assert (record.actor, record.undone_by, record.undo_reason) == (
        "staff:ops-1",
        "staff:ops-1",
        "different people",
    )
    kinds = [
        i["kind"]
        for i in client.get("/v1/profiles/anon:anon-lio/timeline", headers=ADMIN_AUTH).json()[
            "items"
        ]
    ]
    assert "merge" in kinds and "merge_undone" in kinds


def _snapshot(db, refs: list[str]) -> dict:
    out = {}
    for ref in refs:
        profile = find_profile(db, ref)
        db.refresh(profile)
        out[ref] = {
            "id": profile.id,
            "attributes": dict(profile.attributes),
            "identities": _idents(db, profile.id),
            "events": [
                k.split(":", 1)[1]
                for k in db.scalars(
                    select(Event.dedupe_key).where(
                        Event.profile_id == profile.id, Event.name.is_not(None)
                    )
                )
            ],
        }
    return out


def test_b22_email_change_updates_in_place_and_the_old_address_still_finds_the_person(
    runtime, inline, db
):
    client = TestClient(create_app(runtime))
    for step in steps(case_dir("B22")):
        if step["call"] == "import":
            continue  # CSV import comes with its own issue
        _post(client, step["call"], step["body"])
    assert _live_profiles(db) == 1
    profile = find_profile(db, "id:u_1001")
    assert find_profile(db, "email:old.name@example.com").id == profile.id
    assert find_profile(db, "anon:anon-late").id == profile.id
    assert profile.attributes["email"] == "new.name@example.com"
    assert (
        profile.attributes["lists"] == ["news", "offers"]
        and profile.attributes["first_name"] == "Jun"
    )
    history = db.execute(
        select(AttributeChange.old_value, AttributeChange.new_value)
        .where(AttributeChange.profile_id == profile.id, AttributeChange.name == "email")
        .order_by(AttributeChange.id)
    ).all()
    assert history[-1] == ("old.name@example.com", "new.name@example.com")
    from lifecycle.profiles.service import contact_for

    assert contact_for(db, profile.id, "email") == "new.name@example.com"


def test_b25_older_updates_never_overwrite_newer_ones_compared_as_instants(runtime, db):
    """The Shopify webhooks of the case are replayed as identify calls with the same
    source times (offsets kept), in the same delivery order."""
    client = TestClient(create_app(runtime))
    case = case_dir("B25")

    def shopify(name: str, mid: str) -> None:
        c = json.loads((case / name).read_text())
        traits = {
            "email": c["email"],
            "last_name": c["last_name"],
            "city": c["default_address"]["city"],
        }
        if c.get("tags"):
            traits["tags"] = c["tags"]
        _post(
            client,
            "identify",
            {
                "userId": f"shopify-{c['id']}",
                "traits": traits,
                "timestamp": c["updated_at"],
                "messageId": mid,
            },
        )

    clock.set_now(at("2026-03-01T11:00:00Z"))
    shopify("customer-create.json", "w1")
    shopify("customer-update-newer.json", "w3")
    for step in steps(case):
        if step["call"] == "identify" and step["body"]["messageId"] == "b25-0001":
            _post(client, "identify", {**step["body"], "userId": "shopify-5555000000000000077"})
    shopify("customer-update-older.json", "w2")
    older = _post(
        client,
        "identify",
        {
            "userId": "shopify-5555000000000000077",
            "traits": {"last_name": "Ortiz"},
            "timestamp": "2026-03-01T09:59:00Z",
            "messageId": "b25-0002",
        },
    )
    assert any("last_name" in w and "older" in w for w in older["warnings"])

    assert _live_profiles(db) == 1
    profile = find_profile(db, "email:eva@example.com")
    assert (profile.attributes["last_name"], profile.attributes["city"]) == ("Lopez", "Madrid")
    assert profile.attributes["tags"] == "vip"  # per field: nothing newer set tags

    def history(name: str) -> list:
        return [c.new_value for c in attribute_history(db, profile.id, name)]

    assert history("last_name") == ["Ruiz", "Lopez"]
    assert history("city") == ["Valencia", "Sevilla", "Madrid"]


def test_b17_shared_phone_never_merges_people_with_different_emails(runtime, db):
    """The case's import rows are sent as identify calls (the import comes later)."""
    client = TestClient(create_app(runtime))
    rows = [
        ("amy@example.com", "Amy", "+1 201 555 0123"),
        ("ben@example.com", "Ben", "201-555-0123"),
        ("cal@example.com", "Cal", "(201) 555-0123"),
    ]
    answers = [
        _post(
            client,
            "identify",
            {
                "anonymousId": f"row-{i}",
                "traits": {"email": e, "first_name": n, "phone": p},
                "messageId": f"r{i}",
            },
        )
        for i, (e, n, p) in enumerate(rows)
    ]
    assert _live_profiles(db) == 3
    assert db.scalar(select(func.count()).select_from(Merge)) == 0
    assert (
        len(db.scalars(select(Identity.profile_id).where(Identity.value == "+12015550123")).all())
        == 1
    )
    for answer in answers[1:]:
        assert any("+12015550123" in w for w in answer["warnings"])
    amy = find_profile(db, "email:amy@example.com")
    amy_before = (dict(amy.attributes), _idents(db, amy.id))
    _post(
        client,
        "identify",
        {
            "userId": "c-dan",
            "traits": {"email": "dan@example.com", "phone": "+12015550123"},
            "messageId": "dan",
        },
    )
    assert _live_profiles(db) == 4
    db.refresh(amy)
    assert (dict(amy.attributes), _idents(db, amy.id)) == amy_before
    assert find_profile(db, "id:c-dan").id != amy.id
    assert (
        db.scalar(select(func.count()).select_from(DuplicateCandidate)) >= 3
    )  # flagged for review


def test_b14_email_case_and_spaces_are_one_address_on_every_path(runtime, db):
    client = TestClient(create_app(runtime))
    _post(
        client,
        "identify",
        {
            "userId": "c-ava",
            "traits": {"email": "ava@example.com", "first_name": "Ava"},
            "messageId": "a1",
        },
    )
    _post(
        client,
        "identify",
        {
            "anonymousId": "x",
            "traits": {"email": "AVA@EXAMPLE.COM ", "city": "Porto"},
            "messageId": "a2",
        },
    )
    assert _live_profiles(db) == 1
    profile = (
        find_profile(db, " Ava@Example.COM")
        if False
        else find_profile(db, "email: Ava@Example.COM")
    )
    assert profile.attributes["city"] == "Porto" and profile.attributes["first_name"] == "Ava"
    assert {v for k, v in _idents(db, profile.id) if k == "email"} == {"ava@example.com"}
    response = client.get("/v1/profiles/email: Ava@Example.COM", headers=ADMIN_AUTH)
    assert response.status_code == 200 and response.json()["id"] == profile.id


def test_b16_phone_forms_and_the_ninth_digit_rule(runtime, db):
    from dataclasses import replace

    runtime.ingest_options = replace(
        runtime.ingest_options,
        default_region="BR",
        phone_rules=frozenset({"BR mobile ninth digit"}),
    )
    client = TestClient(create_app(runtime))
    first, _whatsapp, third = steps(case_dir("B16"))
    _post(client, "identify", first["body"])
    rita = find_profile(db, "id:c-rita")
    assert ("phone", "+5531955550100") in _idents(db, rita.id)
    # The inbound WhatsApp webhook comes with its issue; its sender, as the API sees it:
    _post(
        client,
        "track",
        {
            "anonymousId": "wa-1",
            "event": "Message Received",
            "context": {"traits": {"phone": "whatsapp:+553155550100"}},
            "messageId": "wa",
        },
    )
    assert find_profile(db, "anon:wa-1").id == rita.id
    _post(client, "identify", third["body"])
    assert find_profile(db, "anon:anon-r").id == rita.id
    assert _live_profiles(db) == 1


def test_b16_without_the_rule_the_old_form_is_flagged_not_lost(runtime, db):
    from dataclasses import replace

    runtime.ingest_options = replace(runtime.ingest_options, default_region="BR")
    client = TestClient(create_app(runtime))
    first, _whatsapp, third = steps(case_dir("B16"))
    _post(client, "identify", first["body"])
    _post(
        client,
        "identify",
        {"anonymousId": "wa-1", "traits": {"phone": "whatsapp:+553155550100"}, "messageId": "wa"},
    )
    _post(client, "identify", third["body"])
    rita = find_profile(db, "id:c-rita")
    assert find_profile(db, "anon:anon-r").id == rita.id
    assert find_profile(db, "anon:wa-1").id != rita.id


def test_b24_api_null_clears_missing_leaves_and_empty_follows_the_source_setting(runtime, db):
    """The API steps of B24 (the CSV runs come with the import)."""
    from dataclasses import replace

    client = TestClient(create_app(runtime))
    for step in steps(case_dir("B24")):
        _post(client, step["call"], step["body"])
    iris, omar = find_profile(db, "id:c-iris"), find_profile(db, "id:c-omar")
    assert "city" not in omar.attributes and omar.attributes["name"] == "Omar Reyes"
    assert (iris.attributes["name"], iris.attributes["city"]) == ("Iris Lane", "Porto")
    assert iris.attributes["email"] == "iris@example.com"
    cleared = db.scalar(
        select(AttributeChange)
        .where(AttributeChange.profile_id == omar.id, AttributeChange.name == "city")
        .order_by(AttributeChange.id.desc())
    )
    assert (cleared.old_value, cleared.new_value) == ("Oslo", None)
    # An empty string clears by default on the API; a source can declare it ignored.
    _post(client, "identify", {"userId": "c-iris", "traits": {"city": ""}, "messageId": "e1"})
    db.refresh(iris)
    assert "city" not in iris.attributes
    runtime.ingest_options = replace(runtime.ingest_options, empty_clears=False)
    client = TestClient(create_app(runtime))
    _post(client, "identify", {"userId": "c-omar", "traits": {"name": ""}, "messageId": "e2"})
    db.refresh(omar)
    assert omar.attributes["name"] == "Omar Reyes"
