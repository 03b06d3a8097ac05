"""The demo replay: the whole pipeline on the embedded default, twice."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console
from sqlalchemy import func, select

from lifecycle.campaigns.models import Journey
from lifecycle.cli.demo import run_demo
from lifecycle.delivery.models import Message
from lifecycle.events.models import Event
from lifecycle.replay import rees46
from lifecycle.runtime import build_runtime
from lifecycle.segments.models import SegmentMembership
from tests.conftest import ROOT, settings_for


def _counts(settings) -> dict[str, int]:
    runtime = build_runtime(settings)
    with runtime.session() as session:
        counts = {
            "events": session.scalar(select(func.count()).select_from(Event)),
            "journeys": session.scalar(select(func.count()).select_from(Journey)),
            "messages": session.scalar(select(func.count()).select_from(Message)),
            "memberships": session.scalar(select(func.count()).select_from(SegmentMembership)),
            "sent": session.scalar(
                select(func.count()).select_from(Message).where(Message.status == "sent")
            ),
        }
    runtime.engine.dispose()
    return counts


def test_demo_runs_end_to_end_and_a_second_run_changes_nothing(tmp_path: Path):
    events = rees46.generate(tmp_path / "events.csv", users=120, events=800, seed=7)
    settings = settings_for(
        f"sqlite:///{tmp_path / 'demo.db'}",
        outbox_path=str(tmp_path / "outbox.jsonl"),
        campaigns_dir=str(ROOT / "campaigns"),
        templates_dir=str(ROOT / "templates"),
    )
    console = Console(file=open(os.devnull, "w"), width=200)  # noqa: SIM115
    assert run_demo(settings, events, batch_size=200, console=console) == 0
    first = _counts(settings)
    outbox_lines = (tmp_path / "outbox.jsonl").read_text().count("\n")
    assert first["journeys"] > 0 and first["sent"] > 0 and first["memberships"] > 0
    assert outbox_lines == first["sent"]

    assert run_demo(settings, events, batch_size=200, console=console) == 0
    assert _counts(settings) == first
    assert (tmp_path / "outbox.jsonl").read_text().count("\n") == outbox_lines


def test_demo_rejects_a_file_of_another_format_with_its_line(tmp_path: Path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        ",".join(rees46.COLUMNS)
        + "\n2019-10-01 00:00:00 UTC,view,1,2,,b,oops,5,s"
        + "\n2019-10-01 00:00:01 UTC,cart,1,2,,b,3.50,5,s"
        + "\n2019-10-01 00:00:02 UTC,refund,1,2,,b,3.50,5,s"
        + "\n2019-10-01 00:00:03 UTC,view,1,2\n"
    )
    settings = settings_for(
        f"sqlite:///{tmp_path / 'demo.db'}", outbox_path=str(tmp_path / "outbox.jsonl")
    )
    console = Console(record=True, width=200)
    assert run_demo(settings, bad, batch_size=200, console=console) == 0
    text = console.export_text()
    assert "line 2: price 'oops' is not a number" in text
    assert "line 4: event_type 'refund'" in text
    assert "line 5: expected 9 columns, found 4" in text
    assert "3 row(s) rejected, 1 replayed" in text


def test_demo_refuses_a_file_with_another_header(tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text("email,name\na@example.com,A\n")
    settings = settings_for(
        f"sqlite:///{tmp_path / 'demo.db'}", outbox_path=str(tmp_path / "outbox.jsonl")
    )
    console = Console(record=True, width=200)
    assert run_demo(settings, bad, batch_size=200, console=console) == 1
    assert "line 1: the header must be" in console.export_text()
