"""``lifecycle import`` through the real typer app on SQLite: what an import sets off
(segment re-checks) runs before the command returns, as it would behind the API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from lifecycle import clock
from lifecycle.cli.main import app as cli_app
from lifecycle.config import get_settings
from lifecycle.segments.models import Segment, SegmentMembership
from tests.conftest import publish_directory
from tests.support import at

ADULTS = "where: {attribute: age, op: gte, value: 18}\n"


@pytest.fixture
def cli(sqlite_runtime, monkeypatch, tmp_path) -> Iterator[CliRunner]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", sqlite_runtime.settings.database_url)
    monkeypatch.setenv("LIFECYCLE_CAMPAIGNS_DIR", str(tmp_path / "campaigns"))
    monkeypatch.setenv("LIFECYCLE_TEMPLATES_DIR", sqlite_runtime.settings.templates_dir)
    monkeypatch.setenv("LIFECYCLE_OUTBOX_PATH", str(tmp_path / "outbox.jsonl"))
    (tmp_path / "campaigns" / "segments").mkdir(parents=True)
    (tmp_path / "campaigns" / "segments" / "adults.yaml").write_text(ADULTS)
    publish_directory(sqlite_runtime, tmp_path / "campaigns")
    clock.set_now(at("2026-03-10T12:00:00Z"))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def _members(runtime) -> dict[str, str]:
    with runtime.session() as session:
        rows = session.execute(
            select(SegmentMembership.profile_id, SegmentMembership.entered_cause)
            .join(Segment, Segment.id == SegmentMembership.segment_id)
            .where(Segment.name == "adults", SegmentMembership.exited_at.is_(None))
        ).all()
    return {str(profile_id): cause for profile_id, cause in rows}


def test_imported_people_enter_their_segments_before_the_command_returns(
    cli, sqlite_runtime, tmp_path
):
    people = tmp_path / "people.csv"
    people.write_text("email,age\nann@example.com,34\nbob@example.com,12\ncy@example.com,18\n")

    out = cli.invoke(cli_app, ["import", str(people), "--dry-run"])
    assert out.exit_code == 1, out.output  # 'age' is not mapped: the real run would refuse
    assert "a real run would be refused" in out.output and "'age'" in out.output
    out = cli.invoke(cli_app, ["import", str(people), "--dry-run", "--map", "age=age"])
    assert out.exit_code == 0, out.output
    assert _members(sqlite_runtime) == {}  # a dry run sets nothing off

    out = cli.invoke(cli_app, ["import", str(people), "--map", "age=age"])
    assert out.exit_code == 0, out.output
    members = _members(sqlite_runtime)
    assert len(members) == 2
    assert all(cause for cause in members.values())

    # A change in a later file moves bob in and cy out, at once.
    people.write_text("email,age\nbob@example.com,21\ncy@example.com,17\n")
    out = cli.invoke(cli_app, ["import", str(people), "--map", "age=age"])
    assert out.exit_code == 0, out.output
    assert len(_members(sqlite_runtime)) == 2
    with sqlite_runtime.session() as session:
        left = session.scalars(
            select(SegmentMembership.exited_cause).where(SegmentMembership.exited_at.is_not(None))
        ).all()
    assert len(left) == 1 and "age" in left[0]
