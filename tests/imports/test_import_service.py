"""Importing CSV files through the identity layer (cases B1, B2, B11, B14, B17, B22, B24)."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from lifecycle import clock
from lifecycle.errors import Invalid
from lifecycle.events.service import ingest
from lifecycle.imports.service import ImportOptions, rejected_csv, run
from lifecycle.profiles.models import AttributeChange, Identity, Merge, Profile
from lifecycle.profiles.service import find_profile
from tests.cases.harness import case_dir
from tests.support import at


@pytest.fixture(autouse=True, params=["general", "set-wise"])
def new_people_path(request, monkeypatch):
    """Every import test runs twice: with new people created by the general path (as for
    small batches) and by the set-wise one (as for big files), which must agree."""
    from lifecycle.events import service

    monkeypatch.setattr(service, "NEW_PEOPLE_MIN", 10**9 if request.param == "general" else 1)
    return request.param


def _import(runtime, data: bytes, **options):
    clock.set_now(at("2026-05-04T10:00:00Z"))
    with runtime.session() as session:
        return run(
            session,
            data,
            filename="t.csv",
            options=ImportOptions(**options),
            ingest_options=runtime.ingest_options,
            now=clock.now(),
        )


def _identify(runtime, body: dict) -> int:
    clock.set_now(at("2026-05-04T09:00:00Z"))
    with runtime.session() as session:
        [r] = ingest(
            session, [body], now=clock.now(), options=runtime.ingest_options, call_type="identify"
        )
        return r.profile_id


def _profiles(db, above: int) -> int:
    return db.scalar(
        select(func.count())
        .select_from(Profile)
        .where(Profile.merged_into_id.is_(None), Profile.id > above)
    )


def _top(db) -> int:
    return db.scalar(select(func.max(Profile.id))) or 0


def test_b1_bom_and_b2_semicolon_and_tab_files_import_every_row(runtime, db):
    for name in ("input.csv", "input-2.csv"):
        report = _import(runtime, (case_dir("B1") / name).read_bytes())
        assert report.status == "done" and report.counts["rejected"] == 0, report
        assert report.key == "email" and report.counts["created"] + report.counts["updated"] > 0
    for name in ("input-semicolon.csv", "input-tab.csv"):
        report = _import(runtime, (case_dir("B2") / name).read_bytes(), unknown_columns="keep")
        assert report.status == "done", report
        assert report.counts["read"] > 0 and report.counts["rejected"] == 0
        assert report.delimiter in (";", "\t")


def test_b11_the_same_person_twice_in_one_file_is_one_profile_later_row_wins(runtime, db):
    top = _top(db)
    report = _import(runtime, (case_dir("B11") / "input.csv").read_bytes(), key="email")
    assert report.counts == {
        "read": 2,
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "repeated_in_file": 1,
        "warned": 0,
    }
    assert report.folded == [{"line": 3, "into": 2}]  # row 3 folded into row 2
    assert _profiles(db, top) == 1
    noa = find_profile(db, "email:noa@example.com")
    assert noa.attributes["first_name"] == "Noah"
    assert db.scalars(
        select(Identity.value).where(Identity.profile_id == noa.id, Identity.kind == "email")
    ).all() == ["noa@example.com"]


def test_a_persons_rows_fold_into_one_write_and_a_rerun_changes_nothing(runtime, db):
    """Rows of one person are folded before anything is compared: the history shows one
    change per field, never Alpha -> Bravo -> Alpha, and nothing of a row is lost."""
    data = (
        b"email,first_name,last_name\n"
        b"ann@example.com,Ann,Alpha\n"
        b"bob@example.com,Bob,Beta\n"
        b"ANN@example.com,,Bravo\n"
        b"ann@example.com,Anne,Alpha\n"
    )
    report = _import(runtime, data)
    assert report.counts == {
        "read": 4,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "repeated_in_file": 2,
        "warned": 0,
    }
    assert report.folded == [{"line": 4, "into": 2}, {"line": 5, "into": 2}]
    ann = find_profile(db, "email:ann@example.com")
    assert (ann.attributes["first_name"], ann.attributes["last_name"]) == ("Anne", "Alpha")
    history = db.execute(
        select(AttributeChange.name, AttributeChange.new_value)
        .where(AttributeChange.profile_id == ann.id)
        .order_by(AttributeChange.id)
    ).all()
    # One row of first values: the folded row's, never Alpha then Bravo then Alpha.
    assert history == [
        (None, {"email": "ann@example.com", "first_name": "Anne", "last_name": "Alpha"})
    ]
    again = _import(runtime, data)
    assert again.counts["updated"] == 0 and again.counts["created"] == 0
    assert db.scalar(
        select(func.count())
        .select_from(AttributeChange)
        .where(AttributeChange.profile_id == ann.id)
    ) == len(history)


def test_b14_upper_case_email_with_a_space_updates_the_same_person(runtime, db):
    top = _top(db)
    pid = _identify(
        runtime, {"userId": "c-ava", "traits": {"email": "ava@example.com", "first_name": "Ava"}}
    )
    report = _import(runtime, (case_dir("B14") / "update.csv").read_bytes(), key="email")
    assert (report.counts["updated"], report.counts["created"]) == (1, 0)
    assert _profiles(db, top) == 1
    ava = db.get(Profile, pid)
    db.refresh(ava)
    assert (ava.attributes["city"], ava.attributes["first_name"]) == ("Porto", "Ava")


def test_b17_a_shared_family_phone_does_not_merge_three_people(runtime, db):
    top = _top(db)
    report = _import(runtime, (case_dir("B17") / "input.csv").read_bytes(), key="email")
    assert (report.counts["created"], report.counts["updated"]) == (3, 0)
    assert _profiles(db, top) == 3 and db.scalar(select(func.count()).select_from(Merge)) == 0
    assert (
        len(db.scalars(select(Identity.profile_id).where(Identity.value == "+12015550123")).all())
        == 1
    )
    warned = [p for p in report.preview if any("+12015550123" in w for w in p["warnings"])]
    assert len(warned) == 2
    for email, name in (("amy", "Amy"), ("ben", "Ben"), ("cal", "Cal")):
        assert find_profile(db, f"email:{email}@example.com").attributes["first_name"] == name


def test_b22_import_after_an_email_change_updates_the_same_profile(runtime, db):
    top = _top(db)
    _identify(runtime, {"userId": "u_1001", "traits": {"email": "old.name@example.com"}})
    clock.set_now(at("2026-05-04T09:30:00Z"))
    with runtime.session() as session:
        ingest(
            session,
            [{"userId": "u_1001", "traits": {"email": "new.name@example.com"}, "messageId": "chg"}],
            now=clock.now(),
            options=runtime.ingest_options,
            call_type="identify",
        )
    report = _import(runtime, (case_dir("B22") / "update.csv").read_bytes(), key="email")
    assert (report.counts["updated"], report.counts["created"]) == (1, 0)
    assert _profiles(db, top) == 1
    assert find_profile(db, "id:u_1001").attributes["city"] == "Lyon"


def _b24_people(runtime) -> tuple[int, int]:
    iris = _identify(
        runtime,
        {
            "userId": "c-iris",
            "traits": {"phone": "+1 201 555 0142", "name": "Iris Lane", "city": "Porto"},
        },
    )
    omar = _identify(
        runtime,
        {
            "userId": "c-omar",
            "traits": {"phone": "+1 201 555 0143", "name": "Omar Reyes", "city": "Oslo"},
        },
    )
    return iris, omar


def test_b24_null_markers_and_empty_cells_leave_values_by_default(runtime, db):
    iris, omar = _b24_people(runtime)
    report = _import(runtime, (case_dir("B24") / "update.csv").read_bytes(), key="phone")
    assert report.counts["updated"] == 1 and report.counts["unchanged"] == 1
    db.expire_all()
    assert db.get(Profile, iris).attributes | {} == {
        "phone": "+1 201 555 0142",
        "name": "Iris Lane",
        "city": "Porto",
    }
    assert (db.get(Profile, omar).attributes["name"], db.get(Profile, omar).attributes["city"]) == (
        "Omar Reyes",
        "Lisbon",
    )


def test_b24_empty_cells_clear_when_asked(runtime, db):
    iris, omar = _b24_people(runtime)
    _import(runtime, (case_dir("B24") / "update.csv").read_bytes(), key="phone", empty_clears=True)
    db.expire_all()
    assert (
        "name" not in db.get(Profile, iris).attributes
        and "city" not in db.get(Profile, iris).attributes
    )
    assert (
        "name" not in db.get(Profile, omar).attributes
        and db.get(Profile, omar).attributes["city"] == "Lisbon"
    )


def test_b24_without_markers_null_is_text(runtime, db):
    iris, _ = _b24_people(runtime)
    _import(runtime, (case_dir("B24") / "update.csv").read_bytes(), key="phone", missing_markers=())
    db.expire_all()
    assert db.get(Profile, iris).attributes["name"] == "NULL"


def test_rerun_changes_nothing_dry_run_writes_nothing_and_bad_rows_are_kept(runtime, db):
    data = b"email,first_name,zip\nada@example.com,Ada,01234\nnot-an-email,Bo,1\n,Cy,2\n"
    top = _top(db)
    dry = _import(runtime, data, dry_run=True)
    assert dry.counts["created"] == 1 and dry.import_id is None and _profiles(db, top) == 0
    first = _import(runtime, data)
    assert first.counts == {
        "read": 3,
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "rejected": 2,
        "repeated_in_file": 0,
        "warned": 0,
    }
    assert find_profile(db, "email:ada@example.com").attributes["postal_code"] == "01234"
    again = _import(runtime, data)
    assert again.counts["created"] == 0 and again.counts["unchanged"] == 1
    with runtime.session() as session:
        text = rejected_csv(session, first.import_id)
    # A byte-order mark first: spreadsheets and the import read it as UTF-8.
    assert text.splitlines()[0] == "\ufeffrejected_line,rejected_reason,email,first_name,zip"
    assert text.splitlines()[1].startswith("3,") and text.splitlines()[1].endswith(
        ",not-an-email,Bo,1"
    )
    assert text.splitlines()[2].startswith("4,the key column (email) is empty")
    assert text.splitlines()[2].endswith(",,Cy,2")
    # Fixed in a spreadsheet (one row badly again) and imported again: the notes are not
    # data; the second round's rejected rows keep the first file's line, notes once.
    fixed = text.replace("not-an-email", "bo@example.com").replace(",,Cy,2", ",cy@@example,Cy,2")
    second = _import(runtime, fixed.encode())
    assert second.counts["created"] == 1 and second.counts["rejected"] == 1, second
    with runtime.session() as session:
        again = rejected_csv(session, second.import_id).splitlines()
    assert again[0] == "\ufeffrejected_line,rejected_reason,email,first_name,zip"
    assert again[1].startswith("4,") and again[1].endswith(",cy@@example,Cy,2")
    fixed = "\n".join(again).replace("cy@@example", "cy@example.com") + "\n"
    report = _import(runtime, fixed.encode())
    assert report.counts["created"] == 1 and report.counts["rejected"] == 0, report
    bo = find_profile(db, "email:bo@example.com").attributes
    assert bo == {"email": "bo@example.com", "first_name": "Bo", "postal_code": "1"}


def test_zero_of_n_rows_is_a_failure(runtime):
    report = _import(runtime, b"email\nnope\nalso-nope\n")
    assert report.status == "failed" and "0 of 2" in report.message


def test_existing_profiles_update_fill_empty_or_skip(runtime, db):
    for mode, expected in (
        ("skip", ("Z", None)),
        ("fill_empty", ("Z", "Rome")),
        ("update", ("Zed", "Rome")),
    ):
        email = f"zed-{mode}@example.com"
        pid = _identify(
            runtime, {"userId": f"z-{mode}", "traits": {"email": email, "first_name": "Z"}}
        )
        report = _import(
            runtime, f"email,first_name,city\n{email},Zed,Rome\n".encode(), existing=mode
        )
        db.expire_all()
        attrs = db.get(Profile, pid).attributes
        assert (attrs.get("first_name"), attrs.get("city")) == expected, mode
        assert report.counts["created"] == 0


def test_upload_through_the_api_runs_on_a_worker_and_reports_progress(runtime, inline, db):
    from fastapi.testclient import TestClient

    from lifecycle.api.app import create_app
    from tests.support import ADMIN_AUTH

    clock.set_now(at("2026-05-04T10:00:00Z"))
    client = TestClient(create_app(runtime))
    data = (case_dir("B2") / "input-semicolon.csv").read_bytes()
    response = client.post(
        "/v1/imports?filename=crm.csv&unknown_columns=keep", content=data, headers=ADMIN_AUTH
    )
    assert response.status_code == 202, response.text
    import_id = response.json()["id"]
    assert client.get(f"/v1/imports/{import_id}", headers=ADMIN_AUTH).json()["status"] == "queued"
    inline.drain()
    status = client.get(f"/v1/imports/{import_id}", headers=ADMIN_AUTH).json()
    assert status["status"] == "done" and status["delimiter"] == ";"
    assert status["rows_done"] == status["counts"]["read"] == 2
    assert "utf-8" in status["encoding"]
    rejected = client.get(f"/v1/imports/{import_id}/rejected", headers=ADMIN_AUTH)
    assert rejected.status_code == 200 and rejected.text.startswith(
        "\ufeffrejected_line,rejected_reason,"
    )
    assert rejected.headers["content-type"].startswith("text/csv")
    assert f"import-{import_id}-rejected.csv" in rejected.headers["content-disposition"]
    assert client.post("/v1/imports", content=data).status_code == 401
    # A dry run over HTTP answers at once with the report and writes nothing.
    dry = client.post(
        "/v1/imports?dry_run=true&unknown_columns=keep&filename=dry.csv",
        content=b"email,first_name\nhttpdry@example.com,Dee\n",
        headers=ADMIN_AUTH,
    )
    assert dry.status_code == 200, dry.text
    assert dry.json()["counts"]["created"] == 1 and dry.json()["import_id"] is None
    assert dry.json()["preview"][0]["traits"]["first_name"] == "Dee"
    inline.drain()
    with runtime.session() as session:
        assert (
            session.scalar(select(Identity.id).where(Identity.value == "httpdry@example.com"))
            is None
        )
    # A misspelt option is refused by name, not ignored.
    typo = client.post("/v1/imports?dryrun=true", content=data, headers=ADMIN_AUTH)
    assert typo.status_code == 400 and typo.json()["field"] == "dryrun"
    bad = client.post("/v1/imports?delimiter=ab", content=data, headers=ADMIN_AUTH)
    assert bad.status_code == 400 and bad.json()["field"] == "delimiter"
    twice = client.post("/v1/imports?dry_run=true&dry_run=false", content=data, headers=ADMIN_AUTH)
    assert twice.status_code == 400 and twice.json()["field"] == "dry_run"
    # Columns nobody decided about are refused at the upload, not by a worker later;
    # over HTTP, the refusal names the query parameters, not the command line's flags.
    refused = client.post("/v1/imports", content=data, headers=ADMIN_AUTH)
    assert refused.status_code == 400 and refused.json()["field"] == "mapping", refused.text
    message = refused.json()["error"]
    assert "map=COLUMN=field" in message and "unknown_columns=keep" in message
    assert "--map" not in message
    empty = client.post("/v1/imports", content=b"", headers=ADMIN_AUTH)
    assert empty.status_code == 400 and "the file is empty" in empty.text
    header_only = client.post("/v1/imports", content=b"email,first_name\n\n", headers=ADMIN_AUTH)
    assert header_only.status_code == 400 and "a header but no rows" in header_only.text
    assert client.get("/v1/imports/999999", headers=ADMIN_AUTH).status_code == 404


def test_a_file_with_no_column_to_match_on_fails_with_the_columns_named(runtime, inline, db):
    import pytest

    from lifecycle.errors import Invalid

    with pytest.raises(Invalid, match="Shoe Size"):
        _import(runtime, b"Shoe Size,Colour\n42,red\n")


def test_b7_dates_are_read_under_a_declared_rule_or_rejected_never_guessed(runtime, db):
    import json

    case = case_dir("B7")
    data = (case / "input.csv").read_bytes()
    runs = json.loads((case / "options.json").read_text())
    expected = {
        "run_a": {"r1": "1985-05-15", "r2": "1985-05-15", "r3": "1985-05-15", "r4": "--05-15"},
        "run_b": {"r1": "1985-05-15"},
        "run_c": {"r1": "1985-05-15", "r2": "1985-05-15", "r3": "1985-05-15"},
    }
    for run_name, spec in runs.items():
        column = spec["columns"]["birthday"]
        with runtime.session() as session:
            savepoint = session.begin_nested()  # each run on a fresh store
            report = run(
                session,
                data,
                filename="b7.csv",
                options=ImportOptions(
                    key="email",
                    date_fields=("birthday",),
                    date_order=column.get("date_order"),
                    excel_serials=column.get("spreadsheet_serials", False),
                    year_required=column.get("year_required", False),
                ),
                ingest_options=runtime.ingest_options,
                now=at("2026-05-04T10:00:00Z"),
            )
            stored = {
                who: find_profile(session, f"email:{who}@example.com").attributes["birthday"]
                for who in ("r1", "r2", "r3", "r4")
                if session.scalar(select(Identity.id).where(Identity.value == f"{who}@example.com"))
            }
            savepoint.rollback()
        assert stored == expected[run_name], run_name
        assert report.counts["rejected"] == 4 - len(expected[run_name])
        for rejection in report.rejections:
            assert "birthday" in rejection["reason"], rejection


def test_b10_columns_nobody_decided_about_stop_the_import_until_mapped(runtime, db):
    import pytest

    from lifecycle.errors import Invalid

    data = (case_dir("B10") / "input.csv").read_bytes()
    top = _top(db)
    preview = _import(runtime, data, dry_run=True)
    assert {c["header"].strip(): c["field"] for c in preview.columns} == {
        "Email": "email",
        "first_name": "first_name",
        "Last  Name": "last_name",
        "Shoe Size": "(not mapped)",
    }
    # The dry run shows everything, and says the real run would be refused, and why.
    assert preview.status == "refused"
    assert "a real run would be refused: columns not mapped: 'Shoe Size'" in preview.message
    assert "--map 'COLUMN=field'" in preview.message
    with pytest.raises(Invalid, match="Shoe Size"):
        _import(runtime, data)
    assert _profiles(db, top) == 0
    report = _import(runtime, data, mapping={"Shoe Size": "ignore"})
    assert report.counts["created"] == 1
    lee = find_profile(db, "email:lee@example.com")
    assert lee.attributes == {"email": "lee@example.com", "first_name": "Lee", "last_name": "Park"}


def test_b9_numeric_looking_text_is_kept_exactly(runtime, db):
    _import(runtime, (case_dir("B9") / "input.csv").read_bytes(), unknown_columns="keep")
    kim = find_profile(db, "email:kim@example.com").attributes
    lou = find_profile(db, "email:lou@example.com").attributes
    assert (kim["postal_code"], kim["member_no"], kim["phone"]) == (
        "02138",
        "000417",
        "0555 0100 123",
    )
    assert (lou["postal_code"], lou["member_no"]) == ("01801", "9007199254740993")


def test_consent_columns_become_yes_or_no_and_feed_unsubscribes(runtime, db):
    data = (
        b"Email,Accepts Email Marketing,Accepts SMS Marketing\n"
        b"c1@example.com,yes,no\nc2@example.com,maybe,yes\n"
    )
    report = _import(runtime, data)
    assert report.counts["created"] == 1 and report.counts["rejected"] == 1
    assert "neither yes nor no" in report.rejections[0]["reason"]
    attrs = find_profile(db, "email:c1@example.com").attributes
    assert attrs["accepts_email_marketing"] is True and attrs["unsubscribed_email"] is False
    assert attrs["accepts_sms_marketing"] is False and attrs["unsubscribed_sms"] is True


def test_an_import_never_subscribes_again_someone_who_unsubscribed(runtime, db):
    _identify(
        runtime,
        {"userId": "o-1", "traits": {"email": "out@example.com", "unsubscribed_email": "yes"}},
    )
    _import(runtime, b"Email,Accepts SMS Marketing\nsms@example.com,no\n")
    data = (
        b"Email,First Name,Accepts Email Marketing,Accepts SMS Marketing\n"
        b"out@example.com,Olive,yes,yes\nsms@example.com,Sam,yes,yes\n"
    )
    dry = _import(runtime, data, dry_run=True)  # the preview shows what would be stored
    assert dry.preview[0]["stored"]["unsubscribed_email"] == "yes"
    assert dry.preview[0]["traits"]["unsubscribed_email"] is False  # what the row says
    report = _import(runtime, data)
    assert report.counts["updated"] == 2, report.counts
    out = find_profile(db, "email:out@example.com").attributes
    # The email opt-out and its consent stay; the rest of the row (the name, SMS) applies.
    assert out["unsubscribed_email"] == "yes" and "accepts_email_marketing" not in out
    assert out["first_name"] == "Olive" and out["unsubscribed_sms"] is False
    sms = find_profile(db, "email:sms@example.com").attributes
    assert sms["unsubscribed_sms"] is True and sms["accepts_sms_marketing"] is False
    assert sms["unsubscribed_email"] is False and sms["accepts_email_marketing"] is True
    warned = [w for row in report.warned for w in row["warnings"]]
    assert sum("stays unsubscribed" in w for w in warned) == 2, report.warned
    assert sorted(w.split(":")[0] for w in warned) == ["unsubscribed_email", "unsubscribed_sms"]
    # An unsubscribe column emptied by the file does not clear the opt-out either.
    report = _import(
        runtime,
        b"Email,Unsubscribed\nout@example.com,\n",
        empty_clears=True,
        mapping={"Unsubscribed": "unsubscribed_email"},
    )
    assert find_profile(db, "email:out@example.com").attributes["unsubscribed_email"] == "yes"


def test_a_list_and_a_tag_are_added_to_everyone_imported_once(runtime, db):
    _identify(runtime, {"userId": "t1", "traits": {"email": "t1@example.com", "lists": ["news"]}})
    data = b"email\nt1@example.com\nt2@example.com\n"
    _import(runtime, data, lists=("spring-sale",), tags=("vip",))
    _import(runtime, data + b"t3@example.com\n", lists=("spring-sale",), tags=("vip",))
    t1 = find_profile(db, "email:t1@example.com").attributes
    assert t1["lists"] == ["news", "spring-sale"] and t1["tags"] == ["vip"]
    t3 = find_profile(db, "email:t3@example.com").attributes
    assert t3["lists"] == ["spring-sale"]


def test_new_people_get_their_identities_and_history_on_either_path(runtime, db):
    from lifecycle.profiles.models import AttributeChange

    report = _import(
        runtime,
        b"email,phone,first_name,city\nh1@example.com,+1 201 555 0177,Hal,\nh2@example.com,,Ida,Oslo\n",
        tags=("vip",),
    )
    assert report.counts["created"] == 2
    hal = find_profile(db, "email:h1@example.com")
    assert find_profile(db, "phone:+12015550177").id == hal.id
    assert hal.attributes == {
        "email": "h1@example.com",
        "phone": "+1 201 555 0177",
        "first_name": "Hal",
        "tags": ["vip"],
    }
    assert set(hal.attribute_times) == set(hal.attributes)
    history = db.execute(
        select(
            AttributeChange.name,
            AttributeChange.old_value,
            AttributeChange.new_value,
            AttributeChange.source,
            AttributeChange.via,
        )
        .where(AttributeChange.profile_id == hal.id)
        .order_by(AttributeChange.id)
    ).all()
    from lifecycle.events.models import Event

    [event] = db.scalars(select(Event).where(Event.profile_id == hal.id)).all()
    assert (event.type, event.name, event.properties, event.context, event.source) == (
        "identify",
        None,
        {},
        {},
        "csv",
    )
    assert event.dedupe_key.startswith("csv:import:") and event.dedupe_key.endswith(":2")
    assert event.evaluated_at is not None and not event.backfill
    assert event.via == "email:h1@example.com"
    # The first values are one row: the timeline's "profile created".
    assert history == [
        (None, None, hal.attributes, f"csv import {report.import_id}", "email:h1@example.com"),
    ]


def test_a_race_for_an_identifier_sends_new_people_the_general_way(runtime, db, monkeypatch):
    """Another writer takes an identifier between the check and the write: the COPY
    fails on the unique index, the savepoint is rolled back, and the rows take the
    general way (matched, not made twice)."""
    from lifecycle.events import service

    rae = _identify(runtime, {"userId": "u-rae", "traits": {"email": "r1@example.com"}})
    monkeypatch.setattr(service, "new_people", lambda _s, requests, **_k: [True] * len(requests))
    report = _import(runtime, b"email,first_name\nr1@example.com,Rae\nr2@example.com,Rex\n")
    assert report.counts["created"] == 1 and report.counts["updated"] == 1
    assert report.counts["rejected"] == 0
    assert find_profile(db, "email:r1@example.com").id == rae
    assert find_profile(db, "email:r1@example.com").attributes["first_name"] == "Rae"
    assert find_profile(db, "email:r2@example.com").attributes["first_name"] == "Rex"
    assert db.scalar(select(func.count()).select_from(Identity)) == 3


def test_rows_prepared_in_worker_processes_give_the_same_result(
    runtime, db, new_people_path, monkeypatch
):
    from lifecycle.imports import service

    if new_people_path == "general":
        pytest.skip("one run is enough: the processes only prepare rows")
    monkeypatch.setattr(service, "BATCH", 7)  # several chunks in flight, kept in file order
    rows = "".join(f"w{i}@example.com,Wen{i},0{i:04d}\n" for i in range(30))
    data = ("email,first_name,zip\n" + rows + "not-an-email,Bad,1\nw3@example.com,Wes,\n").encode()
    report = _import(runtime, data, workers=2)
    assert report.counts == {
        "read": 32,
        "created": 30,
        "updated": 0,
        "unchanged": 0,
        "rejected": 1,
        "repeated_in_file": 1,
        "warned": 0,
    }
    assert report.rejections[0]["line"] == 32 and "not-an-email" in report.rejections[0]["reason"]
    assert find_profile(db, "email:w3@example.com").attributes["first_name"] == "Wes"
    assert find_profile(db, "email:w7@example.com").attributes["postal_code"] == "00007"


def test_b9_national_phones_are_read_in_the_region_of_the_rows_country(runtime, db):
    _import(runtime, (case_dir("B9") / "input.csv").read_bytes(), unknown_columns="keep")
    kim = find_profile(db, "phone:+445550100123")
    assert kim.id == find_profile(db, "email:kim@example.com").id
    assert kim.attributes["phone"] == "0555 0100 123"  # the text as written, beside it
    assert (
        db.scalar(
            select(Identity.display).where(
                Identity.kind == "phone", Identity.value == "+445550100123"
            )
        )
        == "0555 0100 123"
    )
    lou = find_profile(db, "phone:+12015550142")
    assert lou.id == find_profile(db, "email:lou@example.com").id


def test_country_names_codes_and_the_phone_region_option(runtime, db):
    data = (
        b"email,phone,Country\n"
        b"g1@example.com,020 7946 0958,United Kingdom\n"
        b"g2@example.com,030 901820,Deutschland\n"
        b"g3@example.com,0612345678,nld\n"
        b"g4@example.com,(415) 555-0100,\n"
    )
    report = _import(runtime, data, phone_region="FR")
    assert report.counts["created"] == 4, report.rejections
    for who, number in (
        ("g1", "+442079460958"),
        ("g2", "+4930901820"),
        ("g3", "+31612345678"),
    ):
        assert (
            find_profile(db, f"phone:{number}").id
            == find_profile(db, f"email:{who}@example.com").id
        )
    # No country in the row: the import's region (FR), where (415) 555-0100 is no number.
    assert not db.scalar(select(Identity.id).where(Identity.value.like("%4155550100")))
    report = _import(runtime, b"email,phone\nf1@example.com,01 23 45 67 89\n", phone_region="fr")
    assert find_profile(db, "phone:+33123456789").id == find_profile(db, "email:f1@example.com").id


def test_a_country_that_names_no_country_rejects_a_national_phone_only(runtime, db):
    data = (
        b"email,phone,country\n"
        b"a1@example.com,020 7946 0958,Atlantis\n"
        b"a2@example.com,+44 20 7946 0959,Atlantis\n"
    )
    report = _import(runtime, data)
    assert (report.counts["created"], report.counts["rejected"]) == (1, 1)
    [rejection] = report.rejections
    assert rejection["line"] == 2
    assert "column 'country'" in rejection["reason"] and "'Atlantis'" in rejection["reason"]
    assert find_profile(db, "email:a2@example.com").attributes["country"] == "Atlantis"


def test_an_unknown_phone_region_option_is_refused(runtime):
    from lifecycle.errors import Invalid

    with pytest.raises(Invalid, match="Narnia") as err:
        _import(runtime, b"email\nx@example.com\n", phone_region="Narnia")
    assert err.value.field == "phone_region"


def test_cli_import_on_sqlite_with_a_phone_region(sqlite_runtime, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from lifecycle.cli.main import app
    from lifecycle.config import get_settings

    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", sqlite_runtime.settings.database_url)
    get_settings.cache_clear()
    path = tmp_path / "people.csv"
    path.write_bytes(b"email,phone,first_name\ns1@example.com,020 7946 0958,NULL\n")
    try:
        runner = CliRunner()
        out = runner.invoke(app, ["import", str(path), "--phone-region", "GB", "--dry-run"])
        assert out.exit_code == 0, out.output
        assert "created 1" in out.output
        out = runner.invoke(app, ["import", str(path), "--phone-region", "GB"])
        assert out.exit_code == 0, out.output
        with sqlite_runtime.session() as session:
            profile = find_profile(session, "phone:+442079460958")
            assert profile.attributes == {"email": "s1@example.com", "phone": "020 7946 0958"}
        out = runner.invoke(app, ["import", str(path), "--phone-region", "Narnia"])
        assert out.exit_code == 1 and "Narnia" in out.output
    finally:
        get_settings.cache_clear()


def test_b24_run_a_declared_marker_one_change_and_the_rule_in_the_preview(runtime, db):
    from lifecycle.profiles.models import AttributeChange

    _b24_people(runtime)
    data = (case_dir("B24") / "update.csv").read_bytes()
    preview = _import(runtime, data, key="phone", missing_markers=("NULL",), dry_run=True)
    assert preview.notes[0] == (
        "empty cells and the missing-value markers (NULL) leave stored values unchanged"
    )
    assert not preview.warnings
    _import(runtime, data, key="phone", missing_markers=("NULL",))
    changes = db.scalars(
        select(AttributeChange).where(AttributeChange.source.like("csv import %"))
    ).all()
    assert [(c.name, c.old_value, c.new_value) for c in changes] == [("city", "Oslo", "Lisbon")]


def test_b24_run_c_without_markers_the_preview_warns_about_null_text(runtime, db):
    iris, _ = _b24_people(runtime)
    data = (case_dir("B24") / "update.csv").read_bytes()
    preview = _import(runtime, data, key="phone", missing_markers=(), dry_run=True)
    [warning] = preview.warnings
    assert "column 'name'" in warning and "row 2: 'NULL'" in warning
    assert "look like a missing value" in warning
    assert "no missing-value markers" in preview.notes[0]
    _import(runtime, data, key="phone", missing_markers=())
    db.expire_all()
    assert db.get(Profile, iris).attributes["name"] == "NULL"


def test_b24_run_d_the_preview_lists_the_cells_read_as_missing_per_column(runtime, db):
    _b24_people(runtime)
    data = (case_dir("B24") / "update.csv").read_bytes()
    preview = _import(runtime, data, key="phone", dry_run=True)
    assert "(NULL, N/A, #N/A, (null), #NULL!) leave stored values unchanged" in preview.notes[0]
    assert preview.notes[1:] == [
        "column 'name': 2 cell(s) read as missing (1 empty, 1 marker(s))",
        "column 'city': 1 cell(s) read as missing (1 empty, 0 marker(s))",
    ]
    assert [c["missing"] for c in preview.columns] == [0, 2, 1]
    assert not preview.warnings
    cleared = _import(runtime, data, key="phone", dry_run=True, empty_clears=True)
    assert "clear the stored value" in cleared.notes[0]


def test_an_upload_can_declare_no_missing_markers_and_a_phone_region(runtime, inline, db):
    from fastapi.testclient import TestClient

    from lifecycle.api.app import create_app
    from tests.support import ADMIN_AUTH

    clock.set_now(at("2026-05-04T10:00:00Z"))
    client = TestClient(create_app(runtime))
    data = b"email,phone,first_name\nu1@example.com,020 7946 0958,NULL\n"
    bad = client.post("/v1/imports?phone_region=Narnia", content=data, headers=ADMIN_AUTH)
    assert bad.status_code in (400, 422) and "Narnia" in bad.text
    response = client.post(
        "/v1/imports?missing_markers=&phone_region=GB", content=data, headers=ADMIN_AUTH
    )
    assert response.status_code == 202, response.text
    inline.drain()
    profile = find_profile(db, "phone:+442079460958")
    assert profile.attributes["first_name"] == "NULL"


def test_greek_names_too_few_to_tell_their_encoding_wait_for_it_then_import_right(runtime, db):
    from lifecycle.errors import Invalid

    data = "email,first_name\nleo@example.com,Λεωνιδας\nalex@example.com,Αλεξανδρος\n".encode(
        "iso-8859-7"
    )
    with pytest.raises(Invalid) as refused:
        _import(runtime, data)
    assert refused.value.field == "encoding" and "Λεωνιδας" in refused.value.message
    assert db.scalar(select(Identity.id).where(Identity.value == "leo@example.com")) is None
    report = _import(runtime, data, encoding="iso-8859-7")
    assert report.counts["created"] == 2 and report.encoding.startswith("iso8859-7 (given)")
    assert find_profile(db, "email:leo@example.com").attributes["first_name"] == "Λεωνιδας"


def test_the_same_file_with_other_options_is_applied_and_a_true_rerun_says_so(runtime, db):
    data = b"Email,Shoe Size,Last Name\nss1@example.com,42,NULL\n"
    _import(runtime, data, mapping={"Shoe Size": "ignore"})
    assert "shoe_size" not in find_profile(db, "email:ss1@example.com").attributes
    report = _import(runtime, data, mapping={"Shoe Size": "shoe_size"})
    assert report.counts["updated"] == 1, report.counts
    db.expire_all()
    assert find_profile(db, "email:ss1@example.com").attributes["shoe_size"] == "42"
    report = _import(runtime, data, mapping={"Shoe Size": "shoe_size"}, missing_markers=())
    assert report.counts["updated"] == 1, report
    assert not any("imported before" in w for w in report.warnings), report
    db.expire_all()
    assert find_profile(db, "email:ss1@example.com").attributes["last_name"] == "NULL"
    again = _import(runtime, data, mapping={"Shoe Size": "shoe_size"}, missing_markers=())
    assert again.counts["unchanged"] == 1
    assert any("imported before from this same file" in w for w in again.warnings), again


def test_rows_of_one_phone_written_three_ways_fold_into_one(runtime, db):
    data = (
        b"phone,first_name\n(212) 555-0100,A\n+1 212 555 0100,B\n2125550100,C\n+1 646 555 0100,D\n"
    )
    report = _import(runtime, data, key="phone", phone_region="US")
    assert report.counts["created"] == 2 and report.counts["repeated_in_file"] == 2, report
    assert report.folded == [{"line": 3, "into": 2}, {"line": 4, "into": 2}]
    person = find_profile(db, "phone:+12125550100")
    assert person.attributes["first_name"] == "C"
    history = db.execute(
        select(AttributeChange.name, AttributeChange.new_value).where(
            AttributeChange.profile_id == person.id
        )
    ).all()
    assert history == [(None, {"phone": "2125550100", "first_name": "C"})]


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        ({"delimiter": "ab"}, "delimiter", "'ab' is not a delimiter"),
        ({"delimiter": "x"}, "delimiter", "'x' is not a delimiter"),
        ({"unknown_columns": "bogus"}, "unknown_columns", "'bogus' is not one of refuse"),
        ({"key": "nope"}, "key", "'nope' is not one of email, phone, id"),
        ({"date_order": "XYZ"}, "date_order", "'XYZ' is not one of DMY"),
        ({"existing": "merge"}, "existing", "'merge' is not one of update"),
        ({"mapping": {"Age": "email"}}, "mapping", "'Email' and 'Age' are both mapped"),
        ({"mapping": {"Nope": "x"}}, "mapping", "the file has no column 'Nope'"),
        ({"encoding": "rot13"}, "encoding", "'rot13' is not a text encoding"),
        ({"mapping": {"Age": "bad field!"}}, "mapping", "is mapped to 'bad field!'"),
        ({"encoding": "bogus"}, "encoding", "unknown encoding 'bogus'"),
        ({"encoding": "utf-16"}, "file", "t.csv: "),  # the bytes are not UTF-16
    ],
)
def test_options_that_are_not_among_their_choices_are_named(runtime, db, options, field, words):
    from lifecycle.errors import Invalid

    data = b"Email,Age\nopt@example.com,30\n"
    with pytest.raises(Invalid) as refused:
        _import(runtime, data, **{"mapping": {"Email": "email"}, **options})
    assert refused.value.field == field and words in refused.value.message
    assert db.scalar(select(Identity.id).where(Identity.value == "opt@example.com")) is None


@pytest.mark.parametrize("written", ["tab", "\\t", "\t"])
def test_a_tab_delimiter_however_written(runtime, db, written):
    report = _import(runtime, b"email\tfirst_name\ntab@example.com\tTia\n", delimiter=written)
    assert report.counts["created"] == 1 and report.delimiter == "\t"


def test_spaces_around_an_email_are_not_stored_nor_an_update(runtime, db):
    _import(runtime, b"email,first_name\nava@example.com,Ava\n")
    report = _import(runtime, b"email,first_name\n  ava@example.com ,Ava\n")
    assert report.counts["unchanged"] == 1 and report.counts["updated"] == 0, report.counts
    assert find_profile(db, "email:ava@example.com").attributes["email"] == "ava@example.com"


def test_b3_a_utf8_file_declared_windows_1252_is_warned_of_in_the_preview(runtime, db):
    data = (case_dir("B3") / "input.csv").read_bytes()
    preview = _import(runtime, data, encoding="windows-1252", dry_run=True)
    assert any("valid UTF-8 but was declared windows-1252" in w for w in preview.warnings)
    assert any("Ã" in str(row["traits"]) for row in preview.preview)  # the garbling shown


def test_a_column_mapped_to_an_unsubscribe_is_yes_or_no_and_stored_as_one(runtime, db):
    data = b"email,Unsub\nu1@example.com,TRUE\nu2@example.com,subscribed\nu3@example.com,maybe\n"
    report = _import(runtime, data, mapping={"Unsub": "unsubscribed_email"})
    assert report.counts["created"] == 2 and report.counts["rejected"] == 1
    assert "'maybe' is neither yes nor no" in report.rejections[0]["reason"]
    assert find_profile(db, "email:u1@example.com").attributes["unsubscribed_email"] is True
    assert find_profile(db, "email:u2@example.com").attributes["unsubscribed_email"] is False


def test_a_row_with_two_bad_cells_names_both(runtime, db):
    data = b"email,birthday,Accepts Email Marketing\ntwo@example.com,31/02/1990,maybe\n"
    report = _import(runtime, data, date_order="DMY")
    assert report.counts["rejected"] == 1
    reason = report.rejections[0]["reason"]
    assert "column 'birthday'" in reason and "column 'Accepts Email Marketing'" in reason, reason


def test_an_event_stored_meanwhile_sends_the_new_people_the_general_way(
    runtime, db, new_people_path, monkeypatch
):
    """Another writer stores a row's message id between the check and the write: the
    events COPY fails on the unique index, the savepoint (with the profiles already
    COPYed) is rolled back, and the rows take the general way."""
    from lifecycle.events import repository

    if new_people_path == "general":
        pytest.skip("the race is on the set-wise path")
    data = b"email,first_name\nr1@example.com,Rae\nr2@example.com,Rex\n"
    first = _import(runtime, data)
    assert first.counts["created"] == 2
    # The people are gone (as if never made), their events stay, and the check for
    # stored message ids misses them: only the unique index can tell.
    db.execute(Identity.__table__.delete())
    monkeypatch.setattr(repository, "existing", lambda _s, _keys: {})
    top = _top(db)
    again = _import(runtime, data)
    assert again.counts["read"] == 2 and again.counts["rejected"] == 0
    assert _profiles(db, top) == 2  # made once each, by the general way
    assert find_profile(db, "email:r2@example.com").attributes["first_name"] == "Rex"


def test_cells_with_backslashes_tabs_and_newlines_are_stored_as_written(runtime, db):
    """The set-wise path writes rows as COPY text: backslashes, tabs, newlines, quotes
    and non-ASCII letters must come out as they went in, as on the general path."""
    data = (
        "email,first_name,last_name,city,note\n"
        'o.brien@example.com,"O\\\'Brien","tab\there","C:\\\\path\\\\n","line one\nline two\r\nthree"\n'
        'zoe@example.com,Zoë,"say ""hi""",東京,"\\N"\n'
    ).encode()
    report = _import(runtime, data, unknown_columns="keep")
    assert report.counts["created"] == 2, report.rejections
    brien = find_profile(db, "email:o.brien@example.com")
    assert brien.attributes["first_name"] == "O\\'Brien"
    assert brien.attributes["last_name"] == "tab\there"
    assert brien.attributes["city"] == "C:\\\\path\\\\n"
    assert brien.attributes["note"] == "line one\nline two\nthree"  # line breaks read as \n
    zoe = find_profile(db, "email:zoe@example.com")
    assert (zoe.attributes["first_name"], zoe.attributes["city"]) == ("Zoë", "東京")
    assert zoe.attributes["last_name"] == 'say "hi"' and zoe.attributes["note"] == "\\N"
    [first] = db.scalars(
        select(AttributeChange.new_value).where(AttributeChange.profile_id == brien.id)
    ).all()
    assert first == brien.attributes


def test_rows_of_one_id_with_two_emails_keep_both_as_identities(runtime, db):
    data = b"Customer ID,Email\nc1,good@example.com\nc1,dup@example.com\n"
    report = _import(runtime, data, key="id", mapping={"Customer ID": "id"})
    assert report.counts["created"] == 1 and report.counts["repeated_in_file"] == 1
    person = find_profile(db, "id:c1")
    assert person.attributes["email"] == "dup@example.com"  # the later row's value
    assert find_profile(db, "email:good@example.com").id == person.id  # still theirs


def test_an_invalid_email_or_phone_is_left_out_with_a_warning_kept_per_row(runtime, db):
    from lifecycle.imports.models import ImportWarning
    from lifecycle.imports.service import status

    data = (
        b"Customer ID,Email,Phone\n"
        b"c1,bad-email,+1 201 555 0123\n"
        b"c2,ok@example.com,call me maybe\n"
        b"c3,fine@example.com,+1 201 555 0199\n"
    )
    report = _import(runtime, data, key="id", mapping={"Customer ID": "id"})
    assert report.counts["created"] == 3 and report.counts["warned"] == 2, report
    c1 = find_profile(db, "id:c1").attributes
    assert "email" not in c1 and c1["phone"] == "+1 201 555 0123"
    c2 = find_profile(db, "id:c2").attributes
    assert "phone" not in c2 and c2["email"] == "ok@example.com"
    assert [row["line"] for row in report.warned] == [2, 3]
    assert "column 'Email': 'bad-email' is not a valid address" in report.warned[0]["warnings"][0]
    assert "left out, the rest of the row imported" in report.warned[1]["warnings"][0]
    stored = db.scalars(
        select(ImportWarning.line).where(ImportWarning.import_id == report.import_id)
    )
    assert sorted(stored) == [2, 3]
    with runtime.session() as session:
        shown = status(session, report.import_id)
    assert [w["line"] for w in shown["row_warnings"]] == [2, 3]
    assert shown["counts"]["warned"] == 2
    # The key column itself must be usable: the row is rejected, with the reason.
    report = _import(runtime, b"Email,First Name\nnope,Ann\n", key="email")
    assert report.counts["rejected"] == 1
    assert "email: 'nope' is not a valid address" in report.rejections[0]["reason"]


def test_a_run_that_stopped_part_way_no_longer_shows_as_running(runtime, db):
    from lifecycle.imports.models import Import
    from lifecycle.imports.service import status

    data = b"email\nr1@example.com\nr2@example.com\n"
    first = _import(runtime, data)
    with runtime.session() as session:  # as a run killed after its first batch leaves it
        record = session.get(Import, first.import_id)
        record.status, record.rows_done = "running", 1
        session.commit()
    again = _import(runtime, data)
    with runtime.session() as session:
        earlier = status(session, first.import_id)
        later = status(session, again.import_id)
    assert earlier["status"] == "interrupted"
    assert f"import {again.import_id} ran the file again" in earlier["message"]
    assert later["status"] == "done" and later["started_at"] is not None
    assert later["updated_at"] >= later["started_at"]


def test_a_tags_column_adds_its_items_and_list_options_reach_existing_people(runtime, db):
    _identify(runtime, {"userId": "g-1", "traits": {"email": "g1@example.com", "tags": ["vip"]}})
    _import(runtime, b'Email,Tags\ng1@example.com,"gold, silver"\ng2@example.com,gold\n')
    assert find_profile(db, "email:g1@example.com").attributes["tags"] == [
        "vip",
        "gold",
        "silver",
    ]
    assert find_profile(db, "email:g2@example.com").attributes["tags"] == ["gold"]
    _import(runtime, b"Email,Tags\ng1@example.com,c\n")
    db.expire_all()
    assert find_profile(db, "email:g1@example.com").attributes["tags"] == [
        "vip",
        "gold",
        "silver",
        "c",
    ]
    # --list and --tag add to everyone in the file, whatever is done with their fields.
    for mode in ("fill_empty", "skip"):
        report = _import(
            runtime,
            b"Email,First Name\ng2@example.com,Gus\n",
            existing=mode,
            lists=(f"list-{mode}",),
        )
        assert report.counts["updated"] == 1, (mode, report.counts)
    db.expire_all()
    g2 = find_profile(db, "email:g2@example.com").attributes
    assert g2["lists"] == ["list-fill_empty", "list-skip"]
    assert g2["first_name"] == "Gus"  # filled while empty; skip left it


def test_recognised_date_time_columns_are_read_as_dates_or_rejected(runtime, db):
    data = (
        b"Email,Signup Date,OPTIN_TIME,Last Updated\n"
        b"d1@example.com,2020-02-03,2015-03-16 14:40:47,2023-04-01 12:34:56 -0400\n"
        b"d2@example.com,2020-02-30,2015-03-16 14:40:47,\n"
        b"d3@example.com,,2015-13-16 10:00,\n"
        b"d4@example.com,,4/1/2023 1:05 PM,\n"
    )
    report = _import(runtime, data, date_order="MDY")
    assert report.counts["created"] == 2 and report.counts["rejected"] == 2, report
    d1 = find_profile(db, "email:d1@example.com").attributes
    assert d1["created_at"] == "2020-02-03"
    assert d1["optin_time"] == "2015-03-16T14:40:47"
    assert d1["updated_at"] == "2023-04-01T16:34:56+00:00"
    assert find_profile(db, "email:d4@example.com").attributes["optin_time"] == (
        "2023-04-01T13:05:00"
    )
    reasons = {r["line"]: r["reason"] for r in report.rejections}
    assert "column 'Signup Date': '2020-02-30'" in reasons[3]
    assert "column 'OPTIN_TIME': '2015-13-16 10:00': impossible date-time" in reasons[4]


def test_rejected_rows_with_undecodable_bytes_are_not_imported_as_escapes(runtime, db):
    data = "email,first_name\njose@example.com,José\nann@example.com,Ann\n".encode("cp1252")
    first = _import(runtime, data, encoding="utf-8")
    assert first.counts["rejected"] == 1 and "not valid utf-8" in first.rejections[0]["reason"]
    assert "check the encoding given (--encoding)" in first.rejections[0]["reason"]
    # Found to be UTF-8 but for one byte: the advice is to fix that row, not the encoding.
    mostly = (
        "email,first_name\nzoe@example.com,Zoë Müller\n".encode()
        + "x@example.com,Jos\xe9\n".encode("cp1252")
    )
    report = _import(runtime, mostly)
    assert report.counts["rejected"] == 1 and report.counts["created"] == 1
    assert "the rest of the file is UTF-8" in report.rejections[0]["reason"]
    with runtime.session() as session:
        text = rejected_csv(session, first.import_id)
    assert "Jos\\xe9" in text
    # Imported again as they are (even declared cp1252: the byte-order mark wins), the
    # \xNN would be stored as text: the row is rejected again, saying what to do.
    for options in ({}, {"encoding": "cp1252"}):
        again = _import(runtime, text.encode("utf-8"), **options)
        assert again.counts["rejected"] == 1 and again.counts["created"] == 0, again
        assert "replace each with the letter it stands for" in again.rejections[0]["reason"]
    # The notes columns deleted in a spreadsheet: the \\xNN are still told apart.
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    bare = "".join(",".join(row[2:]) + "\n" for row in rows)
    again = _import(runtime, bare.encode("utf-8"))
    assert again.counts["rejected"] == 1 and again.counts["created"] == 0, again
    assert "column 'first_name': holds bytes shown as" in again.rejections[0]["reason"]
    fixed = _import(runtime, text.replace("Jos\\xe9", "José").encode("utf-8"))
    assert fixed.counts["created"] == 1
    assert find_profile(db, "email:jose@example.com").attributes["first_name"] == "José"


def test_a_mapping_names_a_column_however_its_header_is_written(runtime, db):
    data = b"E-Mail,Shoe Size\nshoe@example.com,42\n"
    report = _import(runtime, data, mapping={"shoe size": "shoe_size", "e-mail": "email"})
    assert report.counts["created"] == 1, report
    assert find_profile(db, "email:shoe@example.com").attributes["shoe_size"] == "42"
    with pytest.raises(Invalid, match="the file has no column 'Shoe Colour' to map"):
        _import(runtime, data, mapping={"Shoe Colour": "colour"})
    with pytest.raises(Invalid, match="the file is empty"):
        _import(runtime, b"")


def test_progress_is_reported_batch_by_batch_in_a_dry_run_too(runtime, db, monkeypatch):
    from lifecycle.imports import service

    monkeypatch.setattr(service, "BATCH", 2)
    seen: list[int] = []
    clock.set_now(at("2026-05-04T10:00:00Z"))
    data = b"email\n" + b"".join(b"p%d@example.com\n" % i for i in range(5))
    with runtime.session() as session:
        report = run(
            session,
            data,
            filename="t.csv",
            options=ImportOptions(dry_run=True),
            ingest_options=runtime.ingest_options,
            now=clock.now(),
            on_batch=lambda _: pytest.fail("a dry run commits nothing"),
            on_progress=seen.append,
        )
    assert report.counts["created"] == 5 and seen == [2, 4, 5]


def test_a_national_phone_read_again_in_its_region_is_not_called_an_earlier_one(runtime, db):
    data = b"Email,Phone\nuk@example.com,07700 900123\n"
    first = _import(runtime, data, phone_region="GB")
    assert first.counts["created"] == 1 and first.counts["warned"] == 0
    again = _import(runtime, data, phone_region="GB", tags=("again",))  # other options
    assert again.counts["updated"] == 1 and again.counts["warned"] == 0, again.warned
    assert find_profile(db, "phone:+447700900123").attributes["tags"] == ["again"]


def test_a_spreadsheet_date_time_serial_in_an_instant_column(runtime, db):
    data = b"Email,Created At\nsx@example.com,44197.75\nsy@example.com,44197\n"
    report = _import(runtime, data, excel_serials=True)
    assert report.counts["created"] == 2, report
    assert find_profile(db, "email:sx@example.com").attributes["created_at"] == (
        "2021-01-01T18:00:00"
    )
    assert find_profile(db, "email:sy@example.com").attributes["created_at"] == "2021-01-01"
    refused = _import(runtime, b"Email,Created At\nsz@example.com,44197.75\n")
    assert refused.counts["rejected"] == 1


@pytest.mark.parametrize(
    ("cell", "stored"),
    [
        ("2023-04-01T12:34:56.1234567Z", "2023-04-01T12:34:56.123456+00:00"),
        ("2023-04-01 12:34:56.1234567", "2023-04-01T12:34:56.123456"),
        ("2023-04-01 12:34:56 +02", "2023-04-01T10:34:56+00:00"),
        ("2023-04-01 12:34:56 GMT", "2023-04-01T12:34:56+00:00"),
        ("Sat, 01 Apr 2023 12:34:56 +0000", "2023-04-01T12:34:56+00:00"),
        ("Sat, 01 Apr 2023 12:34:56 PDT", "2023-04-01T19:34:56+00:00"),
        ("Sat, 01 Apr 2023 12:34:56 -0000", "2023-04-01T12:34:56+00:00"),
        ("2023-04-01T12:34:56.1234567890Z", "2023-04-01T12:34:56.123456+00:00"),
        ("20230401", "2023-04-01"),
    ],
)
def test_date_times_as_systems_export_them(runtime, db, cell, stored):
    report = _import(runtime, f'Email,Created At\ndt@example.com,"{cell}"\n'.encode())
    assert report.counts["created"] == 1, report.rejections
    assert find_profile(db, "email:dt@example.com").attributes["created_at"] == stored


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("2023-04-01T25:61:00.0000000", "impossible"),
        ("2023-04-01T99:99:99.1234567Z", "impossible"),
        ("Sat, 01 Apr 2023 12:34:56 XYZ", "its time zone is not known"),
        ("2023-04-01T12:00:00+25:00", "impossible offset +25:00"),
        ("2023-04-01T12:00:00+23:99", "impossible offset"),
        ("4/1/2023 1:05 PM", "'4/1/2023 1:05 PM' could be day/month or month/day"),
    ],
)
def test_impossible_or_unclear_date_times_are_row_errors(runtime, db, cell, reason):
    report = _import(runtime, f'Email,Created At\ndt@example.com,"{cell}"\n'.encode())
    assert report.counts["rejected"] == 1 and reason in report.rejections[0]["reason"], report


def test_a_phone_taken_by_a_person_made_in_the_same_batch_names_their_real_profile(runtime, db):
    data = b"Email,Phone\nfam1@example.com,+1 201 555 0177\nfam2@example.com,+1 201 555 0177\n"
    report = _import(runtime, data)
    assert report.counts["created"] == 2 and report.counts["warned"] == 1, report
    first = find_profile(db, "email:fam1@example.com").id
    [warning] = report.warned[0]["warnings"]
    assert f"belongs to another person (profile {first})" in warning, warning
    assert warning.startswith("phone=+12015550177"), warning


def test_an_upload_whose_worker_stopped_part_way_is_resumed_by_the_scheduler(runtime, inline, db):
    from lifecycle.imports.models import Import
    from lifecycle.imports.service import queue, status

    clock.set_now(at("2026-05-04T10:00:00Z"))
    data = b"email\nlost1@example.com\nlost2@example.com\n"
    with runtime.session() as session:  # queued, then its worker died after starting it
        record = queue(session, data, filename="t.csv", options=ImportOptions(), now=clock.now())
        record.status = "running"
        session.commit()
        import_id = record.id
    inline.queue.clear()  # the job went with the worker
    inline.tick("2026-05-04T10:05:00Z")  # still within the time a batch may take
    with runtime.session() as session:
        assert status(session, import_id)["status"] == "running"
    inline.tick("2026-05-04T10:11:00Z")
    with runtime.session() as session:
        done = status(session, import_id)
        assert done["status"] == "done" and done["counts"]["created"] == 2, done
        assert session.get(Import, import_id).data is None
    assert find_profile(db, "email:lost2@example.com") is not None


def test_tags_cells_as_mailchimp_writes_them_and_in_any_case(runtime, db):
    data = (
        b'Email,TAGS\nmc@example.com,"""Customer"",""VIP Club"""\nmd@example.com,"vip, VIP, vip"\n'
    )
    _import(runtime, data)
    assert find_profile(db, "email:mc@example.com").attributes["tags"] == ["Customer", "VIP Club"]
    assert find_profile(db, "email:md@example.com").attributes["tags"] == ["vip"]
