"""Duplicate finder: exact and fuzzy tiers, ranking, blocking, review (dismiss, accept),
the admin API and the CLI."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from lifecycle.api.app import create_app
from lifecycle.api.duplicates import router
from lifecycle.cli.duplicates import app as cli_app
from lifecycle.config import get_settings
from lifecycle.errors import Conflict, Invalid, NotFound
from lifecycle.events.service import ingest
from lifecycle.profiles import duplicates
from lifecycle.profiles.duplicates import fuzzy_score, person, soundex
from lifecycle.profiles.models import DuplicateCandidate, Identity, Merge, Profile
from lifecycle.profiles.repository import record_candidates
from tests.support import ADMIN_AUTH, at

T0 = at("2026-01-10T09:00:00Z")
NOW = at("2026-02-01T12:00:00Z")


def make(db: Any, attributes: dict[str, Any], *idents: tuple[str, str], created=T0) -> int:
    """A profile row with ``attributes`` and identities (kind, normalised value)."""
    profile = Profile(
        attributes=attributes, attribute_times={}, created_at=created, updated_at=created
    )
    db.add(profile)
    db.flush()
    for kind, value in idents:
        db.add(
            Identity(
                kind=kind,
                value=value,
                display=value,
                profile_id=profile.id,
                source="test",
                first_seen=created,
                last_seen=created,
            )
        )
    db.flush()
    return profile.id


def pair(a: int, b: int) -> tuple[int, int]:
    return (min(a, b), max(a, b))


def stored(db: Any) -> dict[tuple[int, int], DuplicateCandidate]:
    db.expire_all()
    return {(c.profile_a, c.profile_b): c for c in db.scalars(select(DuplicateCandidate))}


# --------------------------------------------------------------------------- pure parts


def test_soundex_and_folding():
    assert soundex("robert") == soundex("rupert") == "R163"
    assert soundex("johnson") == soundex("jonson") == "J525"
    assert soundex("tymczak") == "T522" and soundex("") == ""
    p = person(
        1, {"name": "  José  GARCÍA-López ", "postal": "10001-1234", "phone": "212 555 0142"}
    )
    assert (p.first, p.last, p.display) == ("jose", "lopez", "jose garcia lopez")
    assert p.postal == "10001" and p.phones == {"5550142"}
    assert duplicates.fold("Иван  Петров!") == "иван петров"  # other scripts are kept
    assert (
        person(2, {"street": "12 Main Street"}).street == person(3, {"street": "main st 12"}).street
    )


def test_fuzzy_score_needs_a_similar_name_and_a_phone_or_address():
    john = person(1, {"first": "John", "last": "Smith", "postal": "10001"}, ["+12125550142"])
    typo = person(2, {"first": "Jon", "last": "Smith", "postal": "94110"}, ["+16465550142"])
    score, evidence = fuzzy_score(john, typo)
    assert 0.85 <= score < 1.0
    assert any("same phone ending 5550142" in e for e in evidence)
    # Siblings or spouses at one address: similar full names, different first names.
    jane = person(3, {"first": "Jane", "last": "Smith", "postal": "10001"}, ["+12125550142"])
    assert fuzzy_score(john, jane) is None
    # Same name, nothing else in common: not enough.
    elsewhere = person(4, {"first": "John", "last": "Smith", "postal": "60601"})
    assert fuzzy_score(john, elsewhere) is None
    # Swapped order in a full-name attribute still matches.
    swapped = person(5, {"name": "Smith John", "postal": "10001"})
    assert fuzzy_score(john, swapped) is not None


def test_large_blocks_filter_names_in_c_without_losing_pairs():
    firsts = ["John", "Jon", "Johnny", "Jane", "Mary", "Maria", "Marie", "Ann", "Anna", "Anne"]
    lasts = ["Smith", "Smyth", "Smith", "Smit", "Smithe", "Smith", "Smith", "Smiht", "Smith"]
    block = [
        person(i, {"first": f, "last": last, "postal": "10001"}, ["+12125550100"])
        for i, (f, last) in enumerate((f, last) for f in firsts for last in lasts)
    ]
    assert len(block) > duplicates.SMALL_BLOCK
    every = {
        (i, j)
        for i in range(len(block))
        for j in range(i + 1, len(block))
        if fuzzy_score(block[i], block[j]) is not None
    }
    assert every and every <= set(duplicates._name_hits(block))


# --------------------------------------------------------------------------- tiers


def test_exact_tier_identity_against_attribute_and_attribute_against_attribute(db):
    alice = make(db, {"email": "alice@example.com"}, ("email", "alice@example.com"))
    alias = make(db, {"email": "  Alice@Example.COM ", "first_name": "Zed"})
    phone_owner = make(db, {}, ("phone", "+12125550142"))
    phone_attr = make(db, {"phone": "(212) 555-0142"})
    both_a = make(db, {"email": "shared@example.org"})
    both_b = make(db, {"email": "SHARED@example.org"})
    junk_a = make(db, {"email": "n/a"})
    junk_b = make(db, {"email": "n/a"})

    report = duplicates.scan(db, now=NOW)

    found = stored(db)
    assert report.exact_pairs == 3 and report.inserted == 3
    assert set(found) == {pair(alice, alias), pair(phone_owner, phone_attr), pair(both_a, both_b)}
    assert pair(junk_a, junk_b) not in found  # placeholders never link anyone
    c = found[pair(alice, alias)]
    assert c.score == 1.0 and c.status == "open"
    assert c.evidence == [
        f"scan: same email alice@example.com (identity of {alice}, attribute of {alias})"
    ]
    assert found[pair(both_a, both_b)].evidence == [
        f"scan: same email shared@example.org (attribute of {both_a} and of {both_b})"
    ]
    assert "same phone +12125550142" in found[pair(phone_owner, phone_attr)].evidence[0]


def test_fuzzy_tier_by_phone_and_by_address_below_exact(db):
    john = make(db, {"first_name": "John", "last_name": "Smith"}, ("phone", "+12125550142"))
    jon = make(db, {"firstName": "Jon", "lastName": "Smith", "phone": "+1 646 555 0142"})
    kath = make(
        db,
        {
            "first_name": "Katherine",
            "last_name": "Johnson",
            "address": {"city": "Oakland", "postalCode": "94607", "street": "12 Main Street"},
        },
    )
    cath = make(
        db,
        {
            "name": "Catherine Jonson",
            "postal_code": "94607",
            "city": "oakland",
            "address1": "12 Main St",
        },
    )
    # Similar names at one address but no shared key family apart from place: not a pair.
    make(db, {"first_name": "Walter", "last_name": "Brown", "postal_code": "94607"})

    report = duplicates.scan(db, now=NOW)

    found = stored(db)
    assert set(found) == {pair(john, jon), pair(kath, cath)}
    assert report.fuzzy_pairs == 2 and report.exact_pairs == 0
    by_phone, by_address = found[pair(john, jon)], found[pair(kath, cath)]
    assert 0.85 <= by_phone.score < 1.0 and 0.85 <= by_address.score < 1.0
    assert "scan: same phone ending 5550142" in by_phone.evidence
    assert any("same postal code 94607" in e and "street" in e for e in by_address.evidence)
    assert any(
        e.startswith("scan: name 'katherine johnson' ~ 'catherine jonson'")
        for e in by_address.evidence
    )


def test_ranking_exact_first_then_by_score(db):
    exact_a = make(db, {"email": "x@example.com", "first_name": "Ann"}, ("email", "x@example.com"))
    exact_b = make(db, {"email": "X@example.com", "first_name": "Bob"})
    strong_a = make(
        db,
        {
            "first_name": "Maria",
            "last_name": "Garcia",
            "postal_code": "10001",
            "address1": "5 Elm St",
        },
        ("phone", "+12125550001"),
    )
    strong_b = make(
        db,
        {
            "first_name": "Maria",
            "last_name": "Garcia",
            "postal_code": "10001",
            "address1": "5 Elm Street",
            "phone": "+1 718 555 0001",
        },
    )
    weak_a = make(db, {"first_name": "Peter", "last_name": "Novak", "postal_code": "60601"})
    weak_b = make(db, {"first_name": "Petr", "last_name": "Novak", "postal_code": "60601"})
    duplicates.scan(db, now=NOW)

    page = duplicates.list_candidates(db, status="open", limit=10, offset=0)

    pairs = [tuple(p["id"] for p in item["profiles"]) for item in page["items"]]
    assert pairs == [pair(exact_a, exact_b), pair(strong_a, strong_b), pair(weak_a, weak_b)]
    scores = [item["score"] for item in page["items"]]
    assert scores[0] == 1.0 and scores[1] > scores[2] >= 0.85
    assert page["total"] == 3
    shown = page["items"][0]["profiles"]
    assert shown[0]["emails"] == ["x@example.com"] and shown[0]["name"] == "Ann"
    second = duplicates.list_candidates(db, status="open", limit=1, offset=1)
    assert [i["id"] for i in second["items"]] == [page["items"][1]["id"]]


def test_blocking_compares_only_pairs_that_share_a_key(db):
    base = {"first_name": "Maria", "last_name": "Garcia", "address1": "12 Main Street"}
    a = make(db, {**base, "city": "San Francisco"})
    b = make(db, {**base, "city": "San Fransisco"})  # a typo: another blocking key
    fields = {"first": "Maria", "last": "Garcia", "street": "12 Main Street"}
    pa = person(a, {**fields, "city": "San Francisco"})
    pb = person(b, {**fields, "city": "San Fransisco"})
    assert fuzzy_score(pa, pb) is not None  # they would match if compared...
    assert not any(set(keys(pa)) & set(keys(pb)) for keys in duplicates.FAMILIES.values())

    report = duplicates.scan(db, now=NOW)

    assert report.comparisons == 0 and report.blocks == 0  # ...but are never compared
    assert stored(db) == {}
    # Give them a shared key (the same postal code) and they are.
    for pid in (a, b):
        profile = db.get(Profile, pid)
        profile.attributes = {**profile.attributes, "postal_code": "94110"}
    db.flush()
    report = duplicates.scan(db, now=NOW)
    assert report.comparisons >= 1 and set(stored(db)) == {pair(a, b)}


def test_oversized_blocks_are_skipped_and_reported(db):
    for first in ("Anna", "Anne", "Ann"):
        make(db, {"first_name": first, "last_name": "Kowalski", "postal_code": "11211"})

    report = duplicates.scan(db, now=NOW, max_block=2)

    assert stored(db) == {}
    families = {o["family"]: o for o in report.oversized}
    assert families["name+postal"] == {"family": "name+postal", "key": "kow|11211", "profiles": 3}
    assert report.oversized_total == len(report.oversized) >= 1
    assert len(stored(db)) == 0
    report = duplicates.scan(db, now=NOW)  # the default cap compares them
    assert report.oversized_total == 0 and len(stored(db)) == 3


def test_limit_scans_the_first_profiles_only(db):
    a = make(db, {"email": "one@example.com"}, ("email", "one@example.com"))
    b = make(db, {"email": "one@example.com"})
    make(db, {"email": "one@example.com"})
    report = duplicates.scan(db, now=NOW, limit=2)
    assert report.profiles == 2 and set(stored(db)) == {pair(a, b)}


# --------------------------------------------------------------------------- review


def test_dismissed_pair_is_remembered_across_rescans(db):
    a = make(db, {"email": "dee@example.com"}, ("email", "dee@example.com"))
    b = make(db, {"email": "dee@example.com"})
    duplicates.scan(db, now=NOW)
    candidate = stored(db)[pair(a, b)]

    duplicates.dismiss(db, candidate.id, actor="reviewer@shop", now=NOW)
    # New evidence arrives; the pair is found again but stays dismissed and unchanged.
    db.get(Profile, b).attributes = {"email": "dee@example.com", "phone": "+1 212 555 0199"}
    db.get(Profile, a).attributes = {"email": "dee@example.com", "phone": "+12125550199"}
    db.flush()
    report = duplicates.scan(db, now=NOW + timedelta(days=1))

    again = stored(db)[pair(a, b)]
    assert report.decided == 1 and report.inserted == 0 and report.updated == 0
    assert again.status == "dismissed" and again.decided_by == "reviewer@shop"
    assert again.updated_at == NOW and len(again.evidence) == 1
    assert duplicates.list_candidates(db, status="open")["items"] == []
    dismissed = duplicates.list_candidates(db, status="dismissed")["items"]
    assert [i["id"] for i in dismissed] == [candidate.id]
    assert duplicates.dismiss(db, candidate.id, actor="x", now=NOW).decided_by == "reviewer@shop"


def test_rescan_updates_open_pairs_and_keeps_ingestion_evidence(db):
    a = make(db, {"first_name": "John", "last_name": "Smith", "postal_code": "10001"})
    b = make(db, {"first_name": "Jon", "last_name": "Smith", "postal_code": "10001"})
    c = make(db, {"email": "cee@example.com"}, ("email", "cee@example.com"))
    d = make(db, {"email": "cee@example.com"})
    record_candidates(db, [(c, d, ["api call linked email=cee@example.com"])], T0)
    duplicates.scan(db, now=NOW)
    first = stored(db)[pair(a, b)].score

    db.get(Profile, b).attributes = {
        "first_name": "John",
        "last_name": "Smith",
        "postal_code": "10001",
    }
    db.flush()
    report = duplicates.scan(db, now=NOW + timedelta(hours=1))

    found = stored(db)
    assert report.updated == 1 and report.unchanged == 1 and report.inserted == 0
    assert found[pair(a, b)].score > first and found[pair(a, b)].updated_at == NOW + timedelta(
        hours=1
    )
    assert found[pair(c, d)].evidence == [
        "api call linked email=cee@example.com",
        f"scan: same email cee@example.com (identity of {c}, attribute of {d})",
    ]
    assert found[pair(c, d)].score == 1.0
    # A pair whose evidence is gone stays as it was (a reviewer decides), and nothing merged.
    assert db.scalar(select(func.count()).select_from(Merge)) == 0


def test_accept_merges_the_younger_into_the_older(db):
    older = make(
        db,
        {"email": "old@example.com", "plan": "gold"},
        ("email", "old@example.com"),
        created=T0 - timedelta(days=30),
    )
    younger = make(db, {"email": "old@example.com", "city": "Lyon"}, created=T0)
    assert younger > older
    newer_but_older = make(db, {"email": "z@example.com"}, ("email", "z@example.com"), created=T0)
    oldest = make(db, {"email": "z@example.com"}, created=T0 - timedelta(days=400))
    duplicates.scan(db, now=NOW)
    found = stored(db)

    done = duplicates.accept(
        db, found[pair(older, younger)].id, actor="rev", reason="same email", now=NOW
    )
    assert (done["survivor_id"], done["merged_id"]) == (older, younger)
    # By creation time, not by id: the higher id created first survives.
    done2 = duplicates.accept(
        db, found[pair(newer_but_older, oldest)].id, actor="rev", reason="same email", now=NOW
    )
    assert (done2["survivor_id"], done2["merged_id"]) == (oldest, newer_but_older)

    db.expire_all()
    assert db.get(Profile, younger).merged_into_id == older
    assert db.get(Profile, older).attributes["city"] == "Lyon"
    candidate = db.get(DuplicateCandidate, found[pair(older, younger)].id)
    assert candidate.status == "merged" and candidate.decided_by == "rev"
    merge = db.get(Merge, done["merge_id"])
    assert merge.reason == "same email" and merge.actor == "rev"
    with pytest.raises(Conflict, match="already merged"):
        duplicates.accept(db, candidate.id, actor="rev", reason="again", now=NOW)
    with pytest.raises(Conflict):
        duplicates.dismiss(db, candidate.id, actor="rev", now=NOW)
    # The tombstone is no longer scanned.
    assert duplicates.scan(db, now=NOW).profiles == 2


def test_accept_needs_force_for_two_external_ids(db):
    a = make(db, {"email": "f@example.com"}, ("id", "crm-1"), ("email", "f@example.com"))
    b = make(db, {"email": "f@example.com"}, ("id", "crm-2"))
    duplicates.scan(db, now=NOW)
    cid = stored(db)[pair(a, b)].id
    shown = duplicates.list_candidates(db)["items"][0]["profiles"]
    assert [p["external_ids"] for p in shown] == [["crm-1"], ["crm-2"]]

    with pytest.raises(Conflict, match="needs force"):
        duplicates.accept(db, cid, actor="rev", reason="same email", now=NOW)
    assert db.get(Profile, b).merged_into_id is None
    assert stored(db)[pair(a, b)].status == "open"
    duplicates.accept(db, cid, actor="rev", reason="same email", now=NOW, force=True)
    db.expire_all()
    assert db.get(Profile, b).merged_into_id == a


def test_review_errors(db):
    with pytest.raises(NotFound):
        duplicates.accept(db, 999_999, actor="r", reason="x", now=NOW)
    with pytest.raises(NotFound):
        duplicates.dismiss(db, 999_999, actor="r", now=NOW)
    with pytest.raises(Invalid):
        duplicates.accept(db, 1, actor="r", reason="  ", now=NOW)
    with pytest.raises(Invalid):
        duplicates.list_candidates(db, status="maybe")


def test_nothing_fuzzy_merges_on_its_own_through_ingestion(runtime, db):
    """Real Segment identifies: a second account (another user id) typed the same email;
    ingestion flags it, the scan adds its evidence, and only a reviewer merges."""
    calls = [
        {
            "type": "identify",
            "userId": "u-1",
            "messageId": "m-1",
            "timestamp": "2026-01-10T09:00:00Z",
            "traits": {
                "email": "jo.miller@example.com",
                "firstName": "Jonathan",
                "lastName": "Miller",
                "address": {"city": "Oakland", "postalCode": "94607"},
            },
        },
        {
            "type": "identify",
            "userId": "u-2",
            "messageId": "m-2",
            "timestamp": "2026-01-11T09:00:00Z",
            "traits": {"email": "Jo.Miller@example.com", "name": "Jonathon Miller"},
        },
        {
            "type": "identify",
            "userId": "u-3",
            "messageId": "m-3",
            "timestamp": "2026-01-11T09:00:00Z",
            "traits": {
                "firstName": "Jonathan",
                "lastName": "Millar",
                "address": {"postalCode": "94607"},
            },
        },
    ]
    results = ingest(db, calls, now=NOW, options=runtime.ingest_options)
    p1, p2, p3 = (r.profile_id for r in results)
    assert len({p1, p2, p3}) == 3

    duplicates.scan(db, now=NOW)

    found = stored(db)
    assert set(found) == {pair(p1, p2), pair(p1, p3)}
    exact = found[pair(p1, p2)]
    assert exact.score == 1.0
    assert exact.evidence[0].startswith("api call linked email")
    assert (
        f"scan: same email jo.miller@example.com (identity of {p1}, attribute of {p2})"
        in exact.evidence
    )
    assert 0.85 <= found[pair(p1, p3)].score < 1.0
    assert db.scalar(select(func.count()).select_from(Merge)) == 0
    assert all(db.get(Profile, p).merged_into_id is None for p in (p1, p2, p3))


# --------------------------------------------------------------------------- API


@pytest.fixture
def client(runtime):
    app = create_app(runtime)
    app.include_router(router)
    return TestClient(app)


def test_api_scan_list_dismiss_accept(client, db):
    a = make(db, {"email": "api@example.com"}, ("id", "crm-a"), ("email", "api@example.com"))
    b = make(db, {"email": "api@example.com"}, ("id", "crm-b"))
    c = make(db, {"first_name": "Ola", "last_name": "Nordmann", "postal_code": "0150"})
    d = make(db, {"first_name": "Ola", "last_name": "Nordman", "postal_code": "0150"})

    assert client.get("/v1/duplicates").status_code == 401
    assert client.post("/v1/duplicates/scan").status_code == 401
    response = client.post("/v1/duplicates/scan", headers=ADMIN_AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["exact_pairs"] == 1 and response.json()["fuzzy_pairs"] == 1

    listing = client.get("/v1/duplicates?status=open&limit=10", headers=ADMIN_AUTH).json()
    assert listing["total"] == 2
    exact, fuzzy = listing["items"]
    assert [p["id"] for p in exact["profiles"]] == [a, b] and exact["score"] == 1.0
    assert [p["id"] for p in fuzzy["profiles"]] == [c, d]

    response = client.post(f"/v1/duplicates/{fuzzy['id']}/dismiss", headers=ADMIN_AUTH)
    assert response.status_code == 200 and response.json()["status"] == "dismissed"
    assert response.json()["decided_by"] == "admin"

    url = f"/v1/duplicates/{exact['id']}/accept"
    response = client.post(url, json={"reason": "same email"}, headers=ADMIN_AUTH)
    assert response.status_code == 409 and "force" in response.json()["error"]
    response = client.post(
        url, json={"reason": "same email", "by": "kim", "force": True}, headers=ADMIN_AUTH
    )
    assert response.status_code == 200, response.text
    assert response.json()["survivor_id"] == a and response.json()["merged_id"] == b
    assert client.post(url, json={"reason": "again"}, headers=ADMIN_AUTH).status_code == 409

    merged = client.get("/v1/duplicates?status=merged", headers=ADMIN_AUTH).json()["items"]
    assert [(i["id"], i["decided_by"]) for i in merged] == [(exact["id"], "kim")]
    assert client.get("/v1/duplicates", headers=ADMIN_AUTH).json()["total"] == 0
    # Rescan: the dismissed pair is not shown again.
    client.post("/v1/duplicates/scan", headers=ADMIN_AUTH)
    assert client.get("/v1/duplicates", headers=ADMIN_AUTH).json()["items"] == []

    assert client.post("/v1/duplicates/999999/dismiss", headers=ADMIN_AUTH).status_code == 404
    bad = client.get("/v1/duplicates?status=maybe", headers=ADMIN_AUTH)
    assert bad.status_code == 400 and bad.json()["field"] == "status"
    missing_reason = client.post(url, json={}, headers=ADMIN_AUTH)
    assert missing_reason.status_code == 422


# --------------------------------------------------------------------------- CLI


def test_cli_on_sqlite(sqlite_runtime, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", sqlite_runtime.settings.database_url)
    get_settings.cache_clear()
    try:
        with sqlite_runtime.session() as session:
            results = ingest(
                session,
                [
                    {
                        "type": "identify",
                        "userId": "c-1",
                        "messageId": "c-1",
                        "traits": {
                            "email": "cli@example.com",
                            "firstName": "Ada",
                            "lastName": "Lovelace",
                        },
                    },
                    {
                        "type": "identify",
                        "userId": "c-2",
                        "messageId": "c-2",
                        "traits": {"email": "CLI@example.com", "phone": "+44 20 7946 0000"},
                    },
                    {
                        "type": "identify",
                        "userId": "c-3",
                        "messageId": "c-3",
                        "traits": {
                            "firstName": "Grace",
                            "lastName": "Hopper",
                            "postalCode": "10001",
                        },
                    },
                    {
                        "type": "identify",
                        "userId": "c-4",
                        "messageId": "c-4",
                        "traits": {
                            "firstName": "Grace",
                            "lastName": "Hoper",
                            "postalCode": "10001",
                        },
                    },
                ],
                now=NOW,
                options=sqlite_runtime.ingest_options,
            )
        ids = [r.profile_id for r in results]
        runner = CliRunner()

        out = runner.invoke(cli_app, ["scan"])
        assert out.exit_code == 0, out.output
        assert "scanned 4 profiles" in out.output and "1 fuzzy pairs" in out.output

        out = runner.invoke(cli_app, ["list"])
        assert out.exit_code == 0, out.output
        assert "open duplicate candidates: 2" in out.output and "Hopper" in out.output

        with sqlite_runtime.session() as session:
            rows = {
                (c.profile_a, c.profile_b): c.id
                for c in session.scalars(select(DuplicateCandidate))
            }
        exact_id, fuzzy_id = rows[pair(ids[0], ids[1])], rows[pair(ids[2], ids[3])]

        out = runner.invoke(cli_app, ["dismiss", str(fuzzy_id), "--by", "rev"])
        assert out.exit_code == 0 and "dismissed" in out.output
        accept = ["accept", str(exact_id), "--reason", "same email", "--by", "rev"]
        out = runner.invoke(cli_app, accept)
        assert out.exit_code == 1 and "needs force" in out.output
        out = runner.invoke(cli_app, [*accept, "--force"])
        assert out.exit_code == 0, out.output
        assert f"profile {ids[1]} merged into {ids[0]}" in out.output
        out = runner.invoke(cli_app, ["accept", str(exact_id), "--reason", "again", "--by", "rev"])
        assert out.exit_code == 1 and "already merged" in out.output

        out = runner.invoke(cli_app, ["scan"])
        assert out.exit_code == 0 and "scanned 3 profiles" in out.output
        out = runner.invoke(cli_app, ["list"])
        assert "no open duplicate candidates" in out.output
        with sqlite_runtime.session() as session:
            assert session.get(Profile, ids[1]).merged_into_id == ids[0]
            assert session.get(DuplicateCandidate, fuzzy_id).status == "dismissed"
    finally:
        get_settings.cache_clear()
