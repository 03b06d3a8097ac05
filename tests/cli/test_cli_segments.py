"""``lifecycle segments``: list, preview (validates first, writes nothing), members,
recompute, validate; on SQLite, through the real typer app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from lifecycle import clock
from lifecycle.cli.main import app as cli_app
from lifecycle.config import get_settings
from lifecycle.events.models import Event
from lifecycle.events.service import ingest
from lifecycle.profiles.models import AttributeChange, Profile
from lifecycle.segments.models import Segment, SegmentMembership
from tests.conftest import publish_directory
from tests.support import at

T0 = "2026-03-10T12:00:00Z"
ADULTS = "description: Old enough\nwhere: {attribute: age, op: gte, value: 18}\n"
RECENT = "where: {attribute: signed_up_at, op: within_last, value: 7d}\n"


@pytest.fixture
def cli(sqlite_runtime, monkeypatch, tmp_path) -> Iterator[CliRunner]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", sqlite_runtime.settings.database_url)
    monkeypatch.setenv("LIFECYCLE_CAMPAIGNS_DIR", str(tmp_path / "campaigns"))
    monkeypatch.setenv("LIFECYCLE_TEMPLATES_DIR", sqlite_runtime.settings.templates_dir)
    (tmp_path / "campaigns" / "segments").mkdir(parents=True)
    clock.set_now(at(T0))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def _people(runtime, *traits: dict) -> list[int]:
    with runtime.session() as session:
        results = ingest(
            session,
            [
                {"type": "identify", "userId": f"u-{i}", "messageId": f"m-{i}", "traits": t}
                for i, t in enumerate(traits)
            ],
            now=clock.now(),
            options=runtime.ingest_options,
        )
    return [r.profile_id for r in results]


def _deploy(runtime, tmp_path: Path, **files: str) -> None:
    for name, text in files.items():
        (tmp_path / "campaigns" / "segments" / f"{name}.yaml").write_text(text)
    publish_directory(runtime, tmp_path / "campaigns")


def _counts(runtime) -> tuple[int, ...]:
    with runtime.session() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model))
            for model in (Segment, SegmentMembership, Profile, Event, AttributeChange)
        )


def test_list_members_and_recompute(cli, sqlite_runtime, tmp_path):
    out = cli.invoke(cli_app, ["segments", "list"])
    assert out.exit_code == 0, out.output
    assert "no segments deployed" in out.output

    ids = _people(
        sqlite_runtime,
        {"email": "ann@example.com", "age": 34},
        {"email": "bob@example.com", "age": 19, "signed_up_at": "2026-03-09"},
        {"age": 12},
    )
    _deploy(sqlite_runtime, tmp_path, adults=ADULTS, recent=RECENT)

    out = cli.invoke(cli_app, ["segments", "list"])
    assert out.exit_code == 0, out.output
    row = next(line for line in out.output.splitlines() if "adults" in line)
    assert " 2 " in row and "no" in row and "2026-03-10 12:00:00 UTC" in row
    row = next(line for line in out.output.splitlines() if "recent" in line)
    assert " 1 " in row and "yes" in row

    out = cli.invoke(cli_app, ["segments", "members", "adults"])
    assert out.exit_code == 0, out.output
    assert "adults: 2 members" in out.output
    assert "ann@example.com" in out.output and "bob@example.com" in out.output
    assert "segment adults published" in out.output
    out = cli.invoke(cli_app, ["segments", "members", "adults", "--limit", "1"])
    assert out.exit_code == 0 and "1 more" in out.output

    # Time passes: bob's sign-up is no longer recent; a hand recompute moves him out.
    clock.set_now(at("2026-03-20T12:00:00Z"))
    out = cli.invoke(cli_app, ["segments", "recompute", "recent"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == ["recent: 0 entered, 1 left, 0 members now"]
    with sqlite_runtime.session() as session:
        (row,) = session.scalars(
            select(SegmentMembership)
            .where(SegmentMembership.profile_id == ids[1])
            .join(Segment, Segment.id == SegmentMembership.segment_id)
            .where(Segment.name == "recent")
        )
        assert row.exited_cause == "recomputed by hand"
    out = cli.invoke(cli_app, ["segments", "recompute"])
    assert out.exit_code == 0, out.output
    assert "adults: 0 entered, 0 left, 2 members now" in out.output
    assert "recent: 0 entered, 0 left, 0 members now" in out.output


@pytest.mark.parametrize("name", ["nope", "x'; drop table profiles;--"])
def test_unknown_segment_is_one_line_and_exit_1(cli, sqlite_runtime, tmp_path, name):
    _people(sqlite_runtime, {"age": 30})
    _deploy(sqlite_runtime, tmp_path, adults=ADULTS)
    for command in (["members", name], ["recompute", name]):
        out = cli.invoke(cli_app, ["segments", *command])
        assert out.exit_code == 1, out.output
        assert f"no segment named {name!r}" in out.output
        assert "Traceback" not in out.output
    assert _counts(sqlite_runtime)[2] == 1


@pytest.mark.parametrize("limit", ["0", "-1", "501"])
def test_members_limit_out_of_range(cli, sqlite_runtime, tmp_path, limit):
    _deploy(sqlite_runtime, tmp_path, adults=ADULTS)
    out = cli.invoke(cli_app, ["segments", "members", "adults", "--limit", limit])
    assert out.exit_code == 2 and "--limit" in out.output


def test_preview_prints_size_sample_and_warnings_and_writes_nothing(cli, sqlite_runtime, tmp_path):
    _people(
        sqlite_runtime,
        {"email": "ann@example.com", "age": 34},
        {"email": "bob@example.com", "age": "19"},
        {"age": "n/a"},
    )
    _deploy(sqlite_runtime, tmp_path, adults=ADULTS)
    before = _counts(sqlite_runtime)
    draft = tmp_path / "teens.yaml"
    draft.write_text("where: {attribute: age, op: between, value: [13, 19]}\n")
    both = tmp_path / "grown_teens.yaml"
    both.write_text("where: {all: [{segment: adults}, {segment: teens}]}\n")

    out = cli.invoke(cli_app, ["segments", "preview", str(draft), str(both)])

    assert out.exit_code == 0, out.output
    assert f"teens ({draft}): 1 profile" in out.output
    assert "bob@example.com" in out.output
    assert "warning: 1 profile has an age that is not a number" in out.output
    assert f"grown_teens ({both}): 1 profile" in out.output
    assert _counts(sqlite_runtime) == before
    with sqlite_runtime.session() as session:
        assert session.scalar(select(Segment).where(Segment.name == "teens")) is None


def test_preview_warns_of_birthdays_that_are_not_dates(cli, sqlite_runtime, tmp_path):
    _people(
        sqlite_runtime,
        {"email": "ann@example.com", "birthday": "1985-03-10"},
        {"email": "bob@example.com", "birthday": "--03-10"},
        {"email": "cy@example.com", "birthday": "10/03"},
        {"email": "di@example.com", "birthday": "soon"},
    )
    draft = tmp_path / "birthday_today.yaml"
    draft.write_text("where: {attribute: birthday, op: anniversary}\n")
    out = cli.invoke(cli_app, ["segments", "preview", str(draft)])
    assert out.exit_code == 0, out.output
    assert "time-based): 2 profiles" in out.output
    assert "warning: 2 profiles have a birthday that is not a date" in out.output


def test_preview_on_an_empty_database_writes_nothing(cli, sqlite_runtime, tmp_path):
    draft = tmp_path / "a.yaml"
    draft.write_text("where: {event: Viewed, count: {gte: 3}, within_last: 7d}\n")
    out = cli.invoke(cli_app, ["segments", "preview", str(draft)])
    assert out.exit_code == 0, out.output
    assert "a (" in out.output and "time-based): 0 profiles" in out.output
    assert _counts(sqlite_runtime) == (0, 0, 0, 0, 0)


def test_preview_problems_are_file_line_and_exit_1(cli, sqlite_runtime, tmp_path):
    _people(sqlite_runtime, {"age": 30})
    before = _counts(sqlite_runtime)
    bad = tmp_path / "bad.yaml"
    bad.write_text("where:\n  attribute: age\n  op: bigger\n  value: 3\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("where: {attribute: age,\n  op: [gte\n")
    good = tmp_path / "good.yaml"
    good.write_text(ADULTS)
    dangling = tmp_path / "dangling.yaml"
    dangling.write_text("where: {segment: nowhere}\n")

    out = cli.invoke(cli_app, ["segments", "preview", str(bad), str(broken), str(good)])
    assert out.exit_code == 1, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith(f"{bad}:3: where.op: unknown op 'bigger'")
    assert lines[1].startswith(f"{broken}:") and "YAML" in lines[1]
    assert "profile" not in out.output  # nothing previewed

    out = cli.invoke(cli_app, ["segments", "preview", str(dangling)])
    assert out.exit_code == 1
    assert out.output.splitlines() == [f"{dangling}:1: where: no segment named 'nowhere'"]
    out = cli.invoke(cli_app, ["segments", "preview", str(tmp_path / "missing.yaml")])
    assert out.exit_code == 1 and "missing.yaml:1: cannot read" in out.output
    assert _counts(sqlite_runtime) == before


def test_validate_the_segments_directory(cli, tmp_path):
    folder = tmp_path / "campaigns" / "segments"
    (folder / "adults.yaml").write_text(ADULTS)
    out = cli.invoke(cli_app, ["segments", "validate"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == [f"{folder / 'adults.yaml'}: ok (adults)"]

    (folder / "bad.yaml").write_text("where:\n  all:\n    - {attribute: age, op: gte}\n")
    (folder / "loop.yaml").write_text("where: {segment: loop}\n")
    out = cli.invoke(cli_app, ["segments", "validate", str(tmp_path / "campaigns")])
    assert out.exit_code == 1, out.output
    lines = out.output.splitlines()
    assert any(line.startswith(f"{folder / 'bad.yaml'}:3: ") for line in lines), lines
    assert any(line.startswith(f"{folder / 'loop.yaml'}:1: ") for line in lines), lines

    out = cli.invoke(cli_app, ["segments", "validate", str(tmp_path / "nowhere")])
    assert out.exit_code == 1
    assert out.output.splitlines() == [f"{tmp_path / 'nowhere'}:1: directory not found"]
    (tmp_path / "empty").mkdir()
    out = cli.invoke(cli_app, ["segments", "validate", str(tmp_path / "empty")])
    assert out.exit_code == 0 and "no segments directory" in out.output


def test_validate_a_folder_of_segment_files_under_another_name(cli, tmp_path):
    drafts = tmp_path / "drafts"
    drafts.mkdir()
    (drafts / "adults.yaml").write_text(ADULTS)
    (drafts / "bad.yaml").write_text("where: {attribute: age, op: between, value: [9, 1]}\n")
    out = cli.invoke(cli_app, ["segments", "validate", str(drafts)])
    assert out.exit_code == 1, out.output  # checked, not "no segments directory"
    assert f"{drafts / 'bad.yaml'}:1: where.value: between takes [low, high]" in out.output


def test_validate_one_file(cli, tmp_path):
    good = tmp_path / "adults.yaml"
    good.write_text(ADULTS)
    out = cli.invoke(cli_app, ["segments", "validate", str(good)])
    assert out.exit_code == 0 and out.output.splitlines() == [f"{good}: ok (adults)"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("where: {attribute: age, op: gte}\n")
    out = cli.invoke(cli_app, ["segments", "validate", str(bad)])
    assert out.exit_code == 1 and f"{bad}:1: where.op: gte needs a value" in out.output
    lonely = tmp_path / "lonely.yaml"
    lonely.write_text("where: {segment: nosuch}\n")
    out = cli.invoke(cli_app, ["segments", "validate", str(lonely)])
    assert out.exit_code == 1 and "no segment named 'nosuch'" in out.output
    both = tmp_path / "grown.yaml"
    both.write_text("where: {segment: adults}\n")
    out = cli.invoke(cli_app, ["segments", "validate", str(both)])
    assert out.exit_code == 0, out.output  # adults.yaml is beside it
    out = cli.invoke(cli_app, ["segments", "validate", str(tmp_path / "nope.yaml")])
    assert out.exit_code == 1 and "nope.yaml:1: file not found" in out.output


def test_publish_deploys_new_segment_files_and_refuses_a_broken_one(cli, sqlite_runtime, tmp_path):
    _people(sqlite_runtime, {"email": "ann@example.com", "age": 34})
    folder = tmp_path / "campaigns" / "segments"
    (folder / "adults.yaml").write_text(ADULTS)
    out = cli.invoke(cli_app, ["publish"])
    assert out.exit_code == 0, out.output
    assert "published segment adults v1" in out.output
    out = cli.invoke(cli_app, ["segments", "members", "adults"])
    assert "adults: 1 member" in out.output
    (folder / "bad.yaml").write_text("where: {attribute: age, op: gte}\n")
    (folder / "recent.yaml").write_text(RECENT)
    out = cli.invoke(cli_app, ["publish"])
    assert out.exit_code == 1 and "bad.yaml:1: where.op: gte needs a value" in out.output
    out = cli.invoke(cli_app, ["segments", "list"])
    assert "recent" not in out.output  # nothing deployed while a file has a problem
    (folder / "bad.yaml").unlink()
    (folder / "adults.yaml").unlink()
    out = cli.invoke(cli_app, ["publish"])
    assert out.exit_code == 0, out.output
    assert "published segment recent v1" in out.output
    assert "segment adults archived (its file is gone; its members left)" in out.output
