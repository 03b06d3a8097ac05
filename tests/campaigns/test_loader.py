"""Campaign files: the shipped ones load cleanly; each mistake is one ``file:line: problem``."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from lifecycle.campaigns.definition import CampaignDef, parse_duration
from lifecycle.campaigns.loader import load_directory, parse_file
from lifecycle.rendering.templates import Templates

ROOT = Path(__file__).resolve().parents[2]

EMAIL_OK = """\
{% block subject %}Hello{% endblock %}
{% block html %}<p>Hi {{ profile.get("first_name") or "there" }}</p>{% endblock %}
"""


@pytest.fixture
def templates(tmp_path: Path) -> Templates:
    root = tmp_path / "templates"
    (root / "email").mkdir(parents=True)
    (root / "sms").mkdir()
    (root / "email" / "hello.j2").write_text(EMAIL_OK)
    (root / "email" / "no_subject.j2").write_text("{% block html %}<p>Hi</p>{% endblock %}\n")
    (root / "sms" / "hello.j2").write_text("Hi {{ profile.get('first_name') or 'there' }}\n")
    (root / "sms" / "broken.j2").write_text("Hi\nthere\n{{ trigger.get( }}\n")
    (root / "sms" / "unknown_filter.j2").write_text("Hi\n{{ trigger.price | money }}\n")
    (root / "sms" / "latin1.j2").write_bytes(b"Caf\xe9\n")
    return Templates(root)


def write(tmp_path: Path, text: str, filename: str = "promo.yaml") -> Path:
    path = tmp_path / "campaigns" / filename
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path: Path, templates: Templates) -> list[str]:
    _, found = load_directory(tmp_path / "campaigns", templates)
    return [str(p) for p in found]


# -- the shipped campaigns -----------------------------------------------------------


def test_shipped_campaigns_load_without_problems() -> None:
    loaded, found = load_directory(ROOT / "campaigns", Templates(ROOT / "templates"))
    assert [str(p) for p in found] == []
    assert sorted(c.definition.name for c in loaded) == ["abandoned_cart", "post_purchase"]
    cart = next(c.definition for c in loaded if c.definition.name == "abandoned_cart")
    assert cart.goal is not None and cart.goal.event == "Order Completed"
    assert [s.kind for s in cart.steps] == ["wait", "send", "wait", "send"]


def test_a_valid_file_loads_with_its_name_from_the_file_and_a_stable_checksum(
    tmp_path: Path, templates: Templates
) -> None:
    path = write(
        tmp_path,
        """\
        trigger: {event: Signed Up}
        steps:
          - {id: s1, send: {channel: email, template: hello}}
        """,
        filename="welcome.yaml",
    )
    first, found = parse_file(path, templates)
    again, _ = parse_file(path, templates)
    assert found == []
    assert first is not None and again is not None
    assert first.definition.name == "welcome"
    assert first.file == str(path)
    assert first.checksum == again.checksum
    path.write_text(path.read_text() + "  - {id: s2, wait: 1h}\n")
    changed, found = parse_file(path, templates)
    assert found == [] and changed is not None and changed.checksum != first.checksum


# -- one mistake, one line -------------------------------------------------------------


def test_unknown_top_level_key_points_at_the_key(tmp_path: Path, templates: Templates) -> None:
    path = write(
        tmp_path,
        """\
        description: Welcome
        trigger:
          event: Signed Up
        colour: red
        steps:
          - id: s1
            wait: 1h
        """,
    )
    assert problems(tmp_path, templates) == [f"{path}:4: colour: unknown key 'colour'"]


def test_unknown_step_key_points_at_the_key(tmp_path: Path, templates: Templates) -> None:
    path = write(
        tmp_path,
        """\
        trigger:
          event: Signed Up
        steps:
          - id: s1
            wait: 1h
          - id: s2
            send: {channel: email, template: hello}
            delay: 5m
        """,
    )
    assert problems(tmp_path, templates) == [f"{path}:8: steps.1.delay: unknown key 'delay'"]


def test_unknown_key_inside_the_trigger(tmp_path: Path, templates: Templates) -> None:
    path = write(
        tmp_path,
        """\
        trigger:
          event: Product Added
          wher: {category: shoes}
        steps:
          - {id: s1, wait: 1h}
        """,
    )
    assert problems(tmp_path, templates) == [f"{path}:3: trigger.wher: unknown key 'wher'"]


def test_unknown_operator_in_a_where_filter(tmp_path: Path, templates: Templates) -> None:
    path = write(
        tmp_path,
        """\
        trigger:
          event: Product Added
          where:
            price: {greater: 100}
        steps:
          - {id: s1, wait: 1h}
        """,
    )
    assert problems(tmp_path, templates) == [
        f"{path}:3: trigger.where: price: unknown operator(s) ['greater']"
    ]


@pytest.mark.parametrize(
    "send",
    [
        "    send: {channel: email, template: missing}\n",
        "    send:\n      channel: email\n      template: missing\n",
    ],
    ids=["flow", "block"],
)
def test_missing_template_points_at_the_send(
    tmp_path: Path, templates: Templates, send: str
) -> None:
    path = write(
        tmp_path,
        "trigger: {event: Signed Up}\nsteps:\n  - id: s1\n    wait: 1h\n  - id: s2\n" + send,
    )
    assert problems(tmp_path, templates) == [
        f"{path}:6: template email/missing.j2 not found in {templates.directory}"
    ]


def test_bad_duration_in_a_wait(tmp_path: Path, templates: Templates) -> None:
    path = write(
        tmp_path,
        """\
        trigger: {event: Signed Up}
        steps:
          - id: s1
            wait: 3 days
        """,
    )
    assert problems(tmp_path, templates) == [
        f"{path}:4: steps.0.wait: '3 days' is not a duration such as 30m, 1h, 3d"
    ]


def test_bad_duration_in_a_wait_for_timeout(tmp_path: Path, templates: Templates) -> None:
    path = write(
        tmp_path,
        """\
        trigger: {event: Signed Up}
        steps:
          - id: s1
            send: {channel: email, template: hello}
          - id: w1
            wait_for:
              event: Email Opened
              timeout: soon
        """,
    )
    assert problems(tmp_path, templates) == [
        f"{path}:8: steps.1.wait_for.timeout: 'soon' is not a duration such as 30m, 1h, 3d"
    ]


def test_zero_duration_is_refused(tmp_path: Path, templates: Templates) -> None:
    path = write(tmp_path, "trigger: {event: A}\nsteps:\n  - {id: s1, wait: 0m}\n")
    assert problems(tmp_path, templates) == [
        f"{path}:3: steps.0.wait: '0m' must be longer than zero"
    ]


def test_bad_jinja_names_the_template_and_its_line(tmp_path: Path, templates: Templates) -> None:
    path = write(
        tmp_path,
        """\
        trigger: {event: Signed Up}
        steps:
          - id: s1
            send: {channel: sms, template: broken}
        """,
    )
    assert problems(tmp_path, templates) == [
        f"{path}:4: sms/broken.j2:3: unexpected '}}', expected ')'"
    ]


def test_unknown_jinja_filter_is_bad_jinja(tmp_path: Path, templates: Templates) -> None:
    path = write(
        tmp_path,
        "trigger: {event: A}\nsteps:\n  - {id: s1, send: {channel: sms, template: unknown_filter}}\n",
    )
    assert problems(tmp_path, templates) == [
        f"{path}:3: sms/unknown_filter.j2:2: No filter named 'money'."
    ]


def test_template_that_is_not_utf8(tmp_path: Path, templates: Templates) -> None:
    path = write(
        tmp_path,
        "trigger: {event: A}\nsteps:\n  - {id: s1, send: {channel: sms, template: latin1}}\n",
    )
    [found] = problems(tmp_path, templates)
    assert found.startswith(f"{path}:3: sms/latin1.j2: not UTF-8 text")


def test_email_template_without_a_subject_block(tmp_path: Path, templates: Templates) -> None:
    path = write(
        tmp_path,
        """\
        trigger: {event: Signed Up}
        steps:
          - id: s1
            wait: 1h
          - id: s2
            send: {channel: email, template: no_subject}
        """,
    )
    assert problems(tmp_path, templates) == [
        f"{path}:6: email/no_subject.j2: missing block(s) subject"
    ]


def test_step_with_two_actions_points_at_the_step(tmp_path: Path, templates: Templates) -> None:
    path = write(
        tmp_path,
        """\
        trigger: {event: Signed Up}
        steps:
          - id: s1
            wait: 1h
          - id: s2
            wait: 2h
            send: {channel: email, template: hello}
        """,
    )
    [found] = problems(tmp_path, templates)
    assert found.startswith(f"{path}:5: steps.1: a step needs exactly one of wait, send, ")
    assert found.endswith(" (found wait, send)")


def test_step_with_no_action(tmp_path: Path, templates: Templates) -> None:
    path = write(tmp_path, "trigger: {event: A}\nsteps:\n  - id: s1\n")
    [found] = problems(tmp_path, templates)
    assert found.startswith(f"{path}:3: steps.0: a step needs exactly one of wait, send, ")
    assert "found" not in found


def test_on_event_without_wait_for(tmp_path: Path, templates: Templates) -> None:
    path = write(
        tmp_path,
        "trigger: {event: A}\nsteps:\n  - {id: s1, wait: 1h}\n  - id: s2\n    wait: 1h\n    on_event: s1\n",
    )
    assert problems(tmp_path, templates) == [
        f"{path}:4: steps.1: on_event and on_timeout belong to a wait_for step"
    ]


def test_duplicate_step_ids_point_at_the_second_id(tmp_path: Path, templates: Templates) -> None:
    path = write(
        tmp_path,
        """\
        trigger: {event: Signed Up}
        steps:
          - id: s1
            wait: 1h
          - id: s2
            wait: 1h
          - id: s1
            send: {channel: email, template: hello}
        """,
    )
    assert problems(tmp_path, templates) == [
        f"{path}:7: steps.2.id: step id 's1' is already used by steps.0"
    ]


def test_on_event_target_that_does_not_exist(tmp_path: Path, templates: Templates) -> None:
    path = write(
        tmp_path,
        """\
        trigger: {event: Signed Up}
        steps:
          - id: s1
            send: {channel: email, template: hello}
          - id: w1
            wait_for:
              event: Email Opened
              timeout: 2d
            on_event: followup
            on_timeout: s1
        """,
    )
    assert problems(tmp_path, templates) == [
        f"{path}:9: steps.1.on_event: no step has the id 'followup'"
    ]


def test_branch_targets_that_do_not_exist(tmp_path: Path, templates: Templates) -> None:
    path = write(
        tmp_path,
        """\
        trigger: {event: Signed Up}
        steps:
          - id: b1
            branch:
              if: {attribute: vip, op: equals, value: true}
              then: vip_mail
              else: plain_mail
          - {id: s1, send: {channel: email, template: hello}}
        """,
    )
    assert problems(tmp_path, templates) == [
        f"{path}:6: steps.0.branch.then: no step has the id 'vip_mail'",
        f"{path}:7: steps.0.branch.else: no step has the id 'plain_mail'",
    ]


def test_reference_problems_still_refuse_a_definition_built_directly() -> None:
    data = {
        "name": "x",
        "trigger": {"event": "A"},
        "steps": [{"id": "s1", "wait": "1h"}, {"id": "s1", "wait": "1h"}],
    }
    with pytest.raises(ValueError, match=r"step id 's1' is already used by steps\.0"):
        CampaignDef.model_validate(data)


def test_yaml_syntax_error_gives_its_line(tmp_path: Path, templates: Templates) -> None:
    path = write(
        tmp_path,
        """\
        trigger:
          event: [Signed Up
        steps:
          - {id: s1, wait: 1h}
        """,
    )
    [found] = problems(tmp_path, templates)
    assert found.startswith(f"{path}:3: YAML: ")


def test_an_impossible_unquoted_date_is_a_problem_at_its_line(
    tmp_path: Path, templates: Templates
) -> None:
    path = write(
        tmp_path,
        "trigger:\n  broadcast: everyone\n  at: 2026-02-30 10:00:00+00:00\n"
        "steps:\n  - {id: s1, wait: 1h}\n",
    )
    [found] = problems(tmp_path, templates)
    assert found.startswith(f"{path}:3: YAML: '2026-02-30 10:00:00+00:00' is not a valid date")


def test_tab_indentation_is_a_yaml_error(tmp_path: Path, templates: Templates) -> None:
    path = write(tmp_path, "trigger:\n  event: A\nsteps:\n\t- {id: s1, wait: 1h}\n")
    [found] = problems(tmp_path, templates)
    assert found.startswith(f"{path}:4: YAML: ")


@pytest.mark.parametrize(
    "text", ["", "\n\n", "# nothing here yet\n"], ids=["empty", "blank", "comment"]
)
def test_empty_file(tmp_path: Path, templates: Templates, text: str) -> None:
    path = tmp_path / "campaigns" / "empty.yaml"
    path.parent.mkdir()
    path.write_text(text)
    assert problems(tmp_path, templates) == [f"{path}:1: the file is empty"]


def test_top_level_list(tmp_path: Path, templates: Templates) -> None:
    path = write(tmp_path, "- trigger: {event: A}\n- steps: []\n")
    assert problems(tmp_path, templates) == [f"{path}:1: a campaign file must be a mapping of keys"]


def test_missing_required_keys(tmp_path: Path, templates: Templates) -> None:
    path = write(tmp_path, "description: nothing else\n")
    assert problems(tmp_path, templates) == [
        f"{path}:1: trigger: Field required",
        f"{path}:1: steps: Field required",
    ]


def test_several_mistakes_in_one_file_are_all_reported_by_line(
    tmp_path: Path, templates: Templates
) -> None:
    path = write(
        tmp_path,
        """\
        description: Everything wrong at once
        trigger:
          event: Signed Up
        reentry: sometimes
        steps:
          - id: s1
            wait: 3x
          - id: s2
            send: {channel: email, template: missing}
          - id: s3
            wait_for:
              event: Email Opened
              timeout: soon
          - id: s4
            send: {channel: sms, template: hello}
            bogus: 1
        colour: red
        """,
    )
    found = problems(tmp_path, templates)
    assert found == [
        f"{path}:4: reentry: Input should be 'after_exit' or 'never'",
        f"{path}:7: steps.0.wait: '3x' is not a duration such as 30m, 1h, 3d",
        f"{path}:9: template email/missing.j2 not found in {templates.directory}",
        f"{path}:13: steps.2.wait_for.timeout: 'soon' is not a duration such as 30m, 1h, 3d",
        f"{path}:16: steps.3.bogus: unknown key 'bogus'",
        f"{path}:17: colour: unknown key 'colour'",
    ]


def test_several_template_and_reference_mistakes_are_all_reported(
    tmp_path: Path, templates: Templates
) -> None:
    path = write(
        tmp_path,
        """\
        trigger: {event: Signed Up}
        steps:
          - {id: s1, send: {channel: email, template: no_subject}}
          - id: w1
            wait_for: {event: Email Opened, timeout: 1d}
            on_timeout: nowhere
          - {id: s1, send: {channel: sms, template: broken}}
        """,
    )
    assert problems(tmp_path, templates) == [
        f"{path}:3: email/no_subject.j2: missing block(s) subject",
        f"{path}:6: steps.1.on_timeout: no step has the id 'nowhere'",
        f"{path}:7: sms/broken.j2:3: unexpected '}}', expected ')'",
        f"{path}:7: steps.2.id: step id 's1' is already used by steps.0",
    ]


def test_every_file_in_the_directory_is_checked(tmp_path: Path, templates: Templates) -> None:
    good = write(tmp_path, "trigger: {event: A}\nsteps:\n  - {id: s1, wait: 1h}\n", "a.yaml")
    bad = write(tmp_path, "trigger: {event: A}\nsteps:\n  - {id: s1, wait: never}\n", "b.yml")
    empty = write(tmp_path, "", "c.yaml")
    (tmp_path / "campaigns" / "notes.txt").write_text("not a campaign: ignored")
    loaded, found = load_directory(tmp_path / "campaigns", templates)
    assert [c.file for c in loaded] == [str(good)]
    assert [str(p) for p in found] == [
        f"{bad}:3: steps.0.wait: 'never' is not a duration such as 30m, 1h, 3d",
        f"{empty}:1: the file is empty",
    ]


def test_two_files_with_the_same_campaign_name(tmp_path: Path, templates: Templates) -> None:
    first = write(tmp_path, "trigger: {event: A}\nsteps:\n  - {id: s1, wait: 1h}\n", "a.yaml")
    second = write(
        tmp_path, "name: a\ntrigger: {event: B}\nsteps:\n  - {id: s1, wait: 1h}\n", "b.yaml"
    )
    loaded, found = load_directory(tmp_path / "campaigns", templates)
    assert [c.file for c in loaded] == [str(first)]
    assert [str(p) for p in found] == [f"{second}:1: campaign name 'a' also in {first}"]


def test_missing_directory(tmp_path: Path, templates: Templates) -> None:
    assert [str(p) for p in load_directory(tmp_path / "nope", templates)[1]] == [
        f"{tmp_path / 'nope'}:1: campaigns directory not found"
    ]


# -- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("1h", timedelta(hours=1)),
        ("23h", timedelta(hours=23)),
        ("3d", timedelta(days=3)),
        ("2w", timedelta(weeks=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("1D", timedelta(days=1)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "3", "h", "3 days", "1.5h", "-1h", "0s", "1h30", "soon"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_parse_duration_refuses_a_number() -> None:
    with pytest.raises(ValueError):
        parse_duration(3)  # type: ignore[arg-type]


def test_placeholders_in_filters_must_name_a_send_step_or_the_trigger(tmp_path):
    from lifecycle.campaigns.loader import parse_file
    from lifecycle.rendering.templates import Templates
    from tests.conftest import ROOT

    path = tmp_path / "c.yaml"
    path.write_text(
        'trigger: {event: A, where: {cart: "{{ trigger.cart_id }}"}}\n'
        'goal: {event: B, where: {x: "{{ bogus }}"}}\n'
        "steps:\n"
        "  - {id: s1, send: {channel: email, template: cart_reminder}}\n"
        "  - id: w\n"
        '    wait_for: {event: O, where: {m: "{{ steps.nope.message_id }}",'
        ' ok: "{{ steps.s1.message_id }}", t: "{{ trigger.brand }}"}, timeout: 1d}\n'
    )
    loaded, problems = parse_file(path, Templates(ROOT / "templates"))
    assert loaded is None
    texts = [f"{p.line}: {p.text}" for p in problems]
    assert len(texts) == 3
    assert texts[0].startswith("1: trigger.where.cart:") and "no journey yet" in texts[0]
    assert texts[1].startswith("2: goal.where.x:")
    assert texts[2].startswith("6: steps.1.wait_for.where.m:") and "'nope'" in texts[2]
