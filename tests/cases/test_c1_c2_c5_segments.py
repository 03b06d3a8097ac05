"""Segment cases: C1 (relative dates, workspace zone), C2 (numbers sent as text),
C5 ("did not" and zero counts).

Each case is run through the API and the scheduler as the steps say; the memberships
that incremental re-checks and scheduled recomputes wrote are then compared with the
expected sets *and* with a full recompute by the compiled query, so both evaluators
are held to the case.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from lifecycle import clock
from lifecycle.profiles.models import Identity
from lifecycle.segments import service as segments
from lifecycle.segments.loader import load_directory
from lifecycle.segments.models import Segment, SegmentMembership
from tests.cases.harness import Case, case_dir, steps
from tests.support import ADMIN_AUTH, at

C1 = {
    "renews_today": "where: {attribute: renewal_date, op: equals, value: today}",
    "trial_expired": "where: {attribute: trial_ends_at, op: before, value: now}",
    "renewed_recently": "where: {attribute: renewal_date, op: within_last, value: 3d}",
}
C2 = {
    "adults": "where: {attribute: age, op: gte, value: 18}",
    "big_spenders": "where: {event: Order Completed, where: {total: {gt: 99.5}}}",
    "tiny_baskets": """where:
  all:
    - {event: Order Completed}
    - {event: Order Completed, sum: total, lte: 0.30}
""",
}
C5 = {
    "never_opened": "where: {event: Email Opened, count: 0}",
    "never_opened_alt": "where: {event: Email Opened, performed: false}",
    "inactive_180": "where: {event: Email Opened, count: 0, within_last: 180d}",
    "opened_m1": "where: {event: Email Opened, where: {message_id: m1}}",
    "not_opened_m1": "where: {not: {segment: opened_m1}}",
    "got_m1_not_opened": """where:
  all:
    - {event: Email Delivered, where: {message_id: m1}}
    - {not: {segment: opened_m1}}
""",
}


class SegmentCase(Case):
    def write_segments(self, root: Path, definitions: dict[str, str]) -> None:
        folder = root / "campaigns" / "segments"
        folder.mkdir(parents=True, exist_ok=True)
        for name, body in definitions.items():
            (folder / f"{name}.yaml").write_text(f"name: {name}\n{body}\n")

    def run(self, root: Path, case: str, stop_after: int | None = None) -> None:
        for number, step in enumerate(steps(case_dir(case)), start=1):
            if step["call"] == "segment":
                clock.set_now(at(step["at"]))
                self.publish(root)
            elif step["call"] in ("identify", "track"):
                self.call(step)
            elif step["call"] == "tick":
                self.inline.tick(step["at"])
            if number == stop_after:
                return

    def users(self, profile_ids: set[int]) -> set[str]:
        with self.runtime.session() as session:
            return set(
                session.scalars(
                    select(Identity.value).where(
                        Identity.profile_id.in_(profile_ids), Identity.kind == "id"
                    )
                )
            )

    def members(self, name: str) -> set[str]:
        """Stored members, checked against a full recompute by the compiled query."""
        with self.runtime.session() as session:
            stored = segments.current_members(session, name)
            entry = segments.catalog(session).get(name)
            query = segments.members_query(
                session, entry, now=clock.now(), zone=self.runtime.settings.workspace_timezone
            )
            computed = set(session.scalars(query))
        assert self.users(stored) == self.users(computed), name
        return self.users(stored)


@pytest.fixture
def harness(runtime, inline, recorder, tmp_path) -> SegmentCase:
    (tmp_path / "campaigns").mkdir()
    return SegmentCase(runtime, inline, recorder)


def test_c1_relative_dates_in_the_workspace_zone(harness, runtime, tmp_path):
    zone = json.loads((case_dir("C1") / "settings.json").read_text())["workspace_timezone"]
    runtime.settings.workspace_timezone = zone
    harness.write_segments(tmp_path, C1)

    harness.run(tmp_path, "C1", stop_after=1)
    with runtime.session() as session:
        saved = {s.name: s.definition for s in session.scalars(select(Segment))}
    assert saved["renews_today"]["where"]["value"] == "today"
    assert saved["trial_expired"]["where"]["value"] == "now"
    assert saved["renewed_recently"]["where"]["value"] == "3d"

    harness.run(tmp_path, "C1", stop_after=6)
    assert harness.members("renews_today") == {"u-c1a"}
    assert harness.members("trial_expired") == {"u-c1a"}
    assert harness.members("renewed_recently") == {"u-c1a", "u-c1c"}

    harness.inline.tick(steps(case_dir("C1"))[6]["at"])  # step 7, 04:10Z
    assert harness.members("trial_expired") == {"u-c1a", "u-c1b"}
    assert harness.members("renews_today") == {"u-c1a"}
    assert harness.members("renewed_recently") == {"u-c1a", "u-c1c"}

    harness.inline.tick(steps(case_dir("C1"))[7]["at"])  # step 8, local midnight
    assert harness.members("renews_today") == {"u-c1d"}
    assert harness.members("renewed_recently") == {"u-c1a", "u-c1d"}
    with runtime.session() as session:
        left = session.execute(
            select(Segment.name, Identity.value, SegmentMembership.exited_at)
            .join(Segment, Segment.id == SegmentMembership.segment_id)
            .join(Identity, Identity.profile_id == SegmentMembership.profile_id)
            .where(Identity.kind == "id", SegmentMembership.exited_at.is_not(None))
            .add_columns(SegmentMembership.exited_cause)
        ).all()
    exits = {(name, user): (when, cause) for name, user, when, cause in left}
    midnight = at("2026-01-16T05:00:00Z")
    assert exits[("renews_today", "u-c1a")][0] == midnight
    assert exits[("renewed_recently", "u-c1c")][0] == midnight
    assert all(cause.startswith("time") for _, cause in exits.values())


def test_c1_documentation_says_what_within_last_means():
    docs = (Path(__file__).parents[2] / "docs" / "segments.md").read_text()
    assert "the 3 local dates ending today, both ends included" in docs


def test_c2_numbers_sent_as_text_compare_as_numbers(harness, runtime, tmp_path):
    harness.write_segments(tmp_path, C2)
    harness.run(tmp_path, "C2")
    assert harness.members("adults") == {"u-c2b", "u-c2c", "u-c2e"}
    assert harness.members("big_spenders") == {"u-c2c"}
    assert harness.members("tiny_baskets") == {"u-c2e"}

    with runtime.session() as session:
        loaded, problems = load_directory(tmp_path / "campaigns" / "segments")
        assert not problems
        adults = [item for item in loaded if item.definition.name == "adults"]
        (report,) = segments.preview(session, adults, now=clock.now(), zone="UTC")
        assert report["size"] == 3
        assert report["not_comparable"] == {"age": 1}
    # Stored as sent: only comparisons and sums read them as numbers.
    profile = harness.client.get("/v1/profiles/id:u-c2a", headers=ADMIN_AUTH).json()
    assert profile["attributes"]["age"] == "8"
    timeline = harness.client.get("/v1/profiles/id:u-c2c/timeline", headers=ADMIN_AUTH).json()
    totals = [i.get("properties", {}).get("total") for i in timeline["items"]]
    assert "100.50" in totals


def test_c5_did_not_and_zero_counts_keep_people_with_no_events(harness, tmp_path):
    harness.write_segments(tmp_path, C5)
    harness.run(tmp_path, "C5")
    assert harness.members("never_opened") == {"u-c5b", "u-c5c"}
    assert harness.members("never_opened_alt") == {"u-c5b", "u-c5c"}
    assert harness.members("inactive_180") == {"u-c5b", "u-c5c", "u-c5d"}
    assert harness.members("opened_m1") == {"u-c5a"}
    assert harness.members("not_opened_m1") == {"u-c5b", "u-c5c", "u-c5d"}
    assert harness.members("got_m1_not_opened") == {"u-c5b"}


@pytest.mark.parametrize(
    "extra",
    ["", ", within_last: 30d", ", where: {message_id: m1}", ", within_last: 400d, where: {x: 1}"],
)
def test_c5_a_zero_count_is_did_not_with_any_window_or_filter(harness, tmp_path, extra):
    harness.write_segments(
        tmp_path,
        {
            "zero": f"where: {{event: Email Opened, count: 0{extra}}}",
            "did_not": f"where: {{event: Email Opened, performed: false{extra}}}",
            "at_most_0": f"where: {{event: Email Opened, count: {{lte: 0}}{extra}}}",
        },
    )
    harness.run(tmp_path, "C5")
    assert harness.members("zero") == harness.members("did_not") == harness.members("at_most_0")
