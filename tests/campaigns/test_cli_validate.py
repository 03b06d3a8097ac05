"""``lifecycle campaigns validate``: the real command, in its own process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def lifecycle_command() -> str:
    beside_python = Path(sys.executable).parent / "lifecycle"
    found = shutil.which("lifecycle") or (str(beside_python) if beside_python.exists() else None)
    assert found, "the lifecycle console script is not installed"
    return found


def validate(
    cwd: Path, *args: str, templates: Path, campaigns: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")}
    env["LIFECYCLE_TEMPLATES_DIR"] = str(templates)
    if campaigns is not None:
        env["LIFECYCLE_CAMPAIGNS_DIR"] = str(campaigns)
    # cwd is a scratch directory, so no stray .env is read.
    return subprocess.run(
        [lifecycle_command(), "campaigns", "validate", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def make_templates(root: Path) -> Path:
    (root / "email").mkdir(parents=True)
    (root / "email" / "hello.j2").write_text(
        "{% block subject %}Hi{% endblock %}\n{% block html %}<p>Hi</p>{% endblock %}\n"
    )
    (root / "sms").mkdir()
    (root / "sms" / "bad.j2").write_text("Hi {{ profile.first_name \n")
    return root


def test_broken_directory_exits_1_with_one_line_per_problem(tmp_path: Path) -> None:
    templates = make_templates(tmp_path / "templates")
    campaigns = tmp_path / "campaigns"
    campaigns.mkdir()
    good = campaigns / "good.yaml"
    good.write_text(
        "trigger: {event: A}\nsteps:\n  - {id: s1, send: {channel: email, template: hello}}\n"
    )
    broken = campaigns / "broken.yaml"
    broken.write_text(
        "trigger:\n"
        "  event: Product Added\n"
        "colour: red\n"
        "steps:\n"
        "  - id: w1\n"
        "    wait: 1 hour\n"
        "  - id: s1\n"
        "    send: {channel: email, template: nope}\n"
        "  - id: s2\n"
        "    send: {channel: sms, template: bad}\n"
    )

    result = validate(tmp_path, str(campaigns), templates=templates)

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"{broken}:3: colour: unknown key 'colour'",
        f"{broken}:6: steps.0.wait: '1 hour' is not a duration such as 30m, 1h, 3d",
        f"{broken}:8: template email/nope.j2 not found in {templates}",
        f"{broken}:10: sms/bad.j2:1: unexpected end of template, expected 'end of print statement'.",
    ]
    assert "Traceback" not in result.stderr


def test_relative_directory_prints_relative_paths(tmp_path: Path) -> None:
    templates = make_templates(tmp_path / "templates")
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "list.yaml").write_text("- not a mapping\n")

    result = validate(tmp_path, "campaigns", templates=templates)

    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "campaigns/list.yaml:1: a campaign file must be a mapping of keys"
    ]


def test_shipped_campaigns_are_valid_from_the_settings(tmp_path: Path) -> None:
    result = validate(
        tmp_path, templates=ROOT / "templates", campaigns=ROOT / "campaigns"
    )  # no argument: LIFECYCLE_CAMPAIGNS_DIR

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(
        f"{ROOT / 'campaigns' / 'abandoned_cart.yaml'}: ok (abandoned_cart, "
    )
    assert lines[1].startswith(f"{ROOT / 'campaigns' / 'post_purchase.yaml'}: ok (post_purchase, ")


def test_missing_directory_exits_1(tmp_path: Path) -> None:
    result = validate(tmp_path, str(tmp_path / "nowhere"), templates=ROOT / "templates")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{tmp_path / 'nowhere'}:1: campaigns directory not found"
    ]
