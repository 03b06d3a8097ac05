"""Memberships through merges and their undo; causes; a merged-away profile is in nothing."""

from __future__ import annotations

from pathlib import Path

from lifecycle import clock
from lifecycle.profiles import service as profiles
from lifecycle.profiles.service import find_profile
from lifecycle.segments import service as segments
from tests.cases.harness import Case
from tests.support import at


def _setup(runtime, inline, recorder, root: Path) -> Case:
    (root / "campaigns" / "segments").mkdir(parents=True)
    (root / "campaigns" / "segments" / "vip.yaml").write_text(
        "name: vip\nwhere: {attribute: vip, op: equals, value: true}\n"
    )
    (root / "campaigns" / "segments" / "buyers.yaml").write_text(
        "name: buyers\nwhere: {event: Order Completed}\n"
    )
    harness = Case(runtime, inline, recorder)
    clock.set_now(at("2026-04-01T09:00:00Z"))
    harness.publish(root)
    return harness


def _identify(harness: Case, when: str, **body: object) -> None:
    harness.call({"call": "identify", "at": when, "body": {"timestamp": when, **body}})


def _current(runtime, ref: str) -> list[str]:
    with runtime.session() as session:
        profile = find_profile(session, ref)
        rows = segments.memberships_of(session, profile.id)
    return sorted(r["segment"] for r in rows if r["current"])


def test_a_merge_keeps_one_membership_and_its_undo_gives_both_back(
    runtime, inline, recorder, tmp_path
):
    harness = _setup(runtime, inline, recorder, tmp_path)
    _identify(harness, "2026-04-01T10:00:00Z", userId="u-a", traits={"vip": True})
    _identify(harness, "2026-04-01T10:01:00Z", anonymousId="anon-b", traits={"vip": True, "x": 1})
    harness.call(
        {
            "call": "track",
            "at": "2026-04-01T10:02:00Z",
            "body": {"anonymousId": "anon-b", "event": "Order Completed", "timestamp": "2026-04-01T10:02:00Z"},
        }
    )  # fmt: skip
    assert _current(runtime, "id:u-a") == ["vip"]
    assert _current(runtime, "anon:anon-b") == ["buyers", "vip"]

    clock.set_now(at("2026-04-01T11:00:00Z"))
    with runtime.session() as session:
        a, b = find_profile(session, "id:u-a"), find_profile(session, "anon:anon-b")
        record = profiles.merge(
            session, "id:u-a", "anon:anon-b", reason="same person", actor="staff", now=clock.now()
        )
        merge_id, a_id, b_id = record.id, a.id, b.id
    inline.drain()
    with runtime.session() as session:
        history = segments.memberships_of(session, a_id)
        assert sorted(r["segment"] for r in history if r["current"]) == ["buyers", "vip"]
        assert segments.memberships_of(session, b_id) == []
        assert segments.current_members(session, "vip") == {a_id}

    clock.set_now(at("2026-04-01T12:00:00Z"))
    with runtime.session() as session:
        profiles.undo_merge(
            session, merge_id, reason="not the same", actor="staff", now=clock.now()
        )
    inline.drain()
    with runtime.session() as session:
        assert segments.current_members(session, "vip") == {a_id, b_id}
        assert segments.current_members(session, "buyers") == {b_id}


def test_each_move_says_why(runtime, inline, recorder, tmp_path):
    harness = _setup(runtime, inline, recorder, tmp_path)
    _identify(harness, "2026-04-01T10:00:00Z", userId="u-c", traits={"vip": False})
    _identify(harness, "2026-04-01T10:05:00Z", userId="u-c", traits={"vip": True})
    harness.call(
        {
            "call": "track",
            "at": "2026-04-01T10:06:00Z",
            "body": {"userId": "u-c", "event": "Order Completed", "timestamp": "2026-04-01T10:06:00Z"},
        }
    )  # fmt: skip
    _identify(harness, "2026-04-01T10:07:00Z", userId="u-c", traits={"vip": None})
    with runtime.session() as session:
        history = segments.memberships_of(session, find_profile(session, "id:u-c").id)
    causes = {(h["segment"], h["entered_cause"], h["exited_cause"]) for h in history}
    assert ("vip", "attribute vip changed", "attribute vip changed") in causes
    assert any(s == "buyers" and c.startswith("event Order Completed (#") for s, c, _ in causes)


def test_people_an_import_creates_in_bulk_are_checked_against_every_segment(
    runtime, inline, recorder, tmp_path, monkeypatch
):
    """The set-wise path for new people (big files) must not skip the segment re-check
    that the general path enqueues for every new profile."""
    from lifecycle.events import service as events
    from lifecycle.imports.service import ImportOptions, run

    monkeypatch.setattr(events, "NEW_PEOPLE_MIN", 1)
    (tmp_path / "campaigns" / "segments").mkdir(parents=True)
    (tmp_path / "campaigns" / "segments" / "gold.yaml").write_text(
        "name: gold\nwhere: {attribute: tier, op: equals, value: gold}\n"
    )
    clock.set_now(at("2026-04-01T09:00:00Z"))
    Case(runtime, inline, recorder).publish(tmp_path)
    data = b"email,tier\nann@example.com,gold\nbob@example.com,silver\n"
    clock.set_now(at("2026-04-01T10:00:00Z"))
    with runtime.session() as session:
        report = run(
            session,
            data,
            filename="t.csv",
            options=ImportOptions(unknown_columns="keep"),
            ingest_options=runtime.ingest_options,
            now=clock.now(),
        )
    assert report.counts["created"] == 2, report
    inline.drain()
    assert _current(runtime, "email:ann@example.com") == ["gold"]
    assert _current(runtime, "email:bob@example.com") == []


def test_a_batch_gives_each_segment_the_cause_that_concerned_it(
    runtime, inline, recorder, tmp_path
):
    harness = _setup(runtime, inline, recorder, tmp_path)
    inline.hold = {"segments.recheck", "events.evaluate"}  # nothing re-checked yet
    _identify(harness, "2026-04-01T10:00:00Z", userId="u-d", traits={"vip": True})
    harness.call(
        {
            "call": "track",
            "at": "2026-04-01T10:01:00Z",
            "body": {"userId": "u-d", "event": "Order Completed", "timestamp": "2026-04-01T10:01:00Z"},
        }
    )  # fmt: skip
    with runtime.session() as session:
        pid = find_profile(session, "id:u-d").id
        moved = segments.recheck_many(
            session,
            [
                segments.Change(pid, "attribute vip changed", attributes=frozenset({"vip"})),
                segments.Change(
                    pid, "event Order Completed", events=frozenset({"Order Completed"})
                ),
            ],
            now=clock.now(),
            zone="UTC",
        )
        session.commit()
    assert {(t.segment, t.cause) for t in moved} == {
        ("vip", "attribute vip changed"),
        ("buyers", "event Order Completed"),
    }
