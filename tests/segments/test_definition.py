"""Segment files: every mistake named with file and line; names and values are data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from lifecycle.profiles.models import Profile
from lifecycle.segments.compile import Compiled, prepare
from lifecycle.segments.definition import DefinitionError, is_time_based, parse_segment
from lifecycle.segments.loader import load_directory


def _problems(tmp_path: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    _, problems = load_directory(tmp_path)
    return [str(p).replace(str(tmp_path) + "/", "") for p in problems]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("where: {attribute: age, op: bigger, value: 3}\n", "a.yaml:1: where.op: unknown op 'bigger'"),
        ("where:\n  all:\n    - {attribute: age, op: gte, value: n/a}\n",
         "a.yaml:3: where.all.0.value: gte compares numbers or dates; 'n/a' is neither"),
        ("where:\n  any:\n    - {event: X, within_last: 3 days}\n",
         "a.yaml:3: where.any.0.within_last: '3 days' is not a duration"),
        ("where:\n  not:\n    {event: X, count: -1}\n",
         "a.yaml:3: where.not.count.equals: counts are whole numbers, 0 or more"),
        ("where: {event: X, sum: total}\n", "a.yaml:1: where: sum needs one of gt, gte, lt, lte"),
        ("where: {attribute: signup, op: equals, value: today - 3h}\n",
         "a.yaml:1: where.value: 'today - 3h': 'today' moves by whole days"),
        ("where:\n  attribute: x\n  op: between\n  value: [500, 100]\n",
         "a.yaml:4: where.value: between takes [low, high]: 500 is above 100"),
        ("where: {attribute: x, op: between, value: [today, today - 7d]}\n",
         "a.yaml:1: where.value: between takes [low, high]: 'today' is above 'today - 7d'"),
        ("where: {event: X, count: {between: [5, 2]}}\n",
         "a.yaml:1: where.count.between: between takes [low, high]: 5 is above 2"),
        ("where: {attribute: x, op: equals}\n", "a.yaml:1: where.op: equals needs a value"),
        ("where: {attribute: x, op: after, value: soon}\n",
         "a.yaml:1: where.value: after compares numbers or dates; 'soon' is neither"),
        ("where: {attribute: x, op: in, value: []}\n", "a.yaml:1: where.value: in takes a non-empty list"),
        ("where: {attribute: x, colour: red}\n", "a.yaml:1: where.colour: unknown key 'colour'"),
        ("where: {attribute: x, event: y}\n", "a.yaml:1: where: a condition needs exactly one of"),
        ("where: {consent: fax}\n", "a.yaml:1: where.consent: consent is one of email, sms, push"),
        ("name: 'bad name'\nwhere: {attribute: x}\n", "a.yaml:1: name: a name of letters"),
        ("wher: {attribute: x}\n", "a.yaml:1: wher: unknown key 'wher'"),
        ("where: [unclosed\n", "a.yaml:2: YAML:"),
        ("where:\n  attribute: signup\n  op: after\n  value: 2026-02-30\n",
         "a.yaml:4: YAML: '2026-02-30' is not a valid date"),
        ("", "a.yaml:1: the file is empty"),
    ],
)  # fmt: skip
def test_every_mistake_is_named_with_its_line(tmp_path, text, expected):
    problems = _problems(tmp_path, {"a.yaml": text})
    assert problems and problems[0].startswith(expected), problems


def test_an_impossible_date_does_not_hide_the_other_mistakes(tmp_path):
    text = (
        "where:\n"
        "  all:\n"
        "    - {attribute: signup, op: after, value: 2026-02-30}\n"
        "    - {attribute: age, op: between, value: [9, 1]}\n"
        "    - {segment: nope}\n"
    )
    problems = _problems(tmp_path, {"a.yaml": text})
    assert [p.split(": ")[0] for p in problems] == ["a.yaml:3", "a.yaml:4"], problems
    assert "2026-02-30" in problems[0] and "between takes [low, high]" in problems[1]


def test_every_mistake_of_a_file_is_reported_not_only_the_first(tmp_path):
    text = (
        "name: 'bad name'\n"
        "where:\n"
        "  all:\n"
        "    - {attribute: age, op: gte, value: n/a}\n"
        "    - {attribute: country, op: equals, value: DE}\n"
        "    - any:\n"
        "        - {event: X, within_last: 3 days}\n"
        "        - {attribute: x, op: between, value: [9, 1]}\n"
    )
    problems = _problems(tmp_path, {"a.yaml": text})
    assert [p.split(": ")[0] for p in problems] == [
        "a.yaml:1",
        "a.yaml:4",
        "a.yaml:7",
        "a.yaml:8",
    ], problems


def test_references_must_exist_and_never_loop(tmp_path):
    problems = _problems(
        tmp_path,
        {
            "a.yaml": "where: {segment: b}\n",
            "b.yaml": "where: {not: {segment: a}}\n",
            "c.yaml": "where: {segment: nowhere}\n",
        },
    )
    assert "c.yaml:1: where: no segment named 'nowhere'" in problems
    assert any(
        p.startswith("a.yaml:1: where: segments refer in a loop: a -> b -> a") for p in problems
    )


def test_a_name_with_a_newline_is_refused():
    with pytest.raises(DefinitionError, match="name"):
        parse_segment({"name": "vip\n", "where": {"attribute": "x"}})


def test_unquoted_yaml_dates_stay_dates_as_written(tmp_path):
    (tmp_path / "a.yaml").write_text("where: {attribute: renewal, op: after, value: 2026-01-15}\n")
    (loaded,), problems = load_directory(tmp_path)
    assert not problems
    assert loaded.definition.source["where"]["value"] == "2026-01-15"


def test_what_depends_on_time():
    def timed(where: dict) -> bool:
        return is_time_based(parse_segment({"name": "s", "where": where}).where)

    assert timed({"attribute": "d", "op": "before", "value": "now"})
    assert timed({"attribute": "d", "op": "within_last", "value": "3d"})
    assert timed({"event": "X", "within_last": "7d", "performed": False})
    assert timed({"attribute": "birthday", "op": "anniversary"})
    assert not timed({"attribute": "d", "op": "before", "value": "2026-01-01"})
    assert not timed({"all": [{"attribute": "age", "op": "gte", "value": 18}, {"event": "X"}]})


HOSTILE = "x'); DROP TABLE profiles;--"


def test_hostile_names_and_values_are_data(db):
    now = datetime(2026, 5, 1, tzinfo=UTC)
    db.execute(
        insert(Profile),
        [
            {"attributes": {HOSTILE: HOSTILE}, "attribute_times": {}, "created_at": now, "updated_at": now},
            {"attributes": {HOSTILE: "other"}, "attribute_times": {}, "created_at": now, "updated_at": now},
        ],
    )  # fmt: skip
    definition = parse_segment(
        {
            "name": "s",
            "where": {
                "all": [
                    {"attribute": HOSTILE, "op": "equals", "value": HOSTILE},
                    {"event": HOSTILE, "where": {HOSTILE: HOSTILE}, "performed": False},
                ]
            },
        }
    )
    prepare(db)
    query = Compiled(
        definition.where,
        dialect="postgresql",
        now=now,
        workspace_zone="UTC",
        segment=lambda n: None,
    ).members()
    assert len(list(db.scalars(query))) == 1
    assert db.scalar(select(func.count()).select_from(Profile)) >= 2
