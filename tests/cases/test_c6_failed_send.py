"""C6: a failed send must not leave the person parked at that step.

Kind: journey state not moved on when a step's side effect fails. Permanent
failures are not retried, transient ones are retried with growing gaps and then
fail on their own count; the journey then continues or exits by the campaign's
``on_send_failure`` rule, and nobody sits at a send step past the retry window.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from itertools import pairwise

import pytest
from sqlalchemy import select

from lifecycle import clock
from lifecycle.campaigns.definition import parse_duration
from lifecycle.campaigns.models import Journey
from lifecycle.campaigns.service import stuck_journeys
from lifecycle.campaigns.stats import campaign_stats
from lifecycle.delivery.models import MessageEvent
from lifecycle.profiles.service import find_profile
from lifecycle.rendering.templates import Templates
from tests.cases.harness import Case, case_dir, script_provider, steps
from tests.support import at

CAMPAIGN = """
name: welcome
trigger: {event: Signed Up}
on_send_failure: %s
steps:
  - {id: s1, send: {channel: email, template: welcome_1}}
  - {id: w1, wait: 1d}
  - {id: s2, send: {channel: email, template: welcome_2}}
"""
TEMPLATES = {
    "email/welcome_1": "{% block subject %}Welcome{% endblock %}{% block html %}Hi{% endblock %}",
    "email/welcome_2": "{% block subject %}Day two{% endblock %}{% block html %}Hi{% endblock %}",
}
A, B, C = "kofi.mensah@example.com", "pia.lund@example.com", "ines.costa@example.com"


@pytest.mark.parametrize("run", ["run_a", "run_b"])
def test_c6(run, runtime, inline, recorder, tmp_path):
    case = case_dir("C6")
    settings = json.loads((case / "settings.json").read_text())[run]
    delays = [parse_duration(d).total_seconds() for d in settings["email_retry_delays"]]
    runtime.policy = replace(
        runtime.policy, max_attempts=settings["email_max_attempts"], retry_delays=delays
    )
    harness = Case(runtime, inline, recorder)
    script_provider(recorder, case / "provider-responses.json")
    harness.write(tmp_path, CAMPAIGN % settings["on_send_failure"], TEMPLATES)
    runtime.templates = Templates(tmp_path / "templates")
    all_steps = steps(case)
    for index, step in enumerate(all_steps, start=1):
        if step["call"] == "journey":
            clock.set_now(at(step["at"]))
            harness.publish(tmp_path)
        elif step["call"] in ("identify", "track"):
            harness.call(step)
        elif step["call"] == "tick":
            inline.tick(step["at"])
            if index >= 9:
                with runtime.session() as session:
                    assert stuck_journeys(session, now=clock.now(), grace=timedelta(0)) == []
                    parked = session.scalars(
                        select(Journey).where(Journey.waiting_on == "message")
                    ).all()
                    window = runtime.policy.retry_window() + timedelta(minutes=10)
                    assert all(clock.now() - j.anchor_at < window for j in parked)

    calls_a, calls_b, calls_c = (recorder.sent_to(x) for x in (A, B, C))
    msgs_a, msgs_b = harness.messages("u-c6a"), harness.messages("u-c6b")

    # u-c6a: one call, a permanent failure with the provider's code and text.
    first_a = msgs_a[0]
    assert first_a.template == "welcome_1" and first_a.status == "failed" and first_a.attempts == 1
    assert first_a.error_code == "InvalidParameterValue"
    assert "domain part is not valid" in first_a.error_message
    # u-c6b: three calls for welcome_1 with growing gaps, then "failed after retries".
    first_b = msgs_b[0]
    assert first_b.attempts == 3 and first_b.status == "failed"
    assert first_b.error_code.startswith("retries_exhausted:ServiceUnavailable")
    with runtime.session() as session:
        history = list(
            session.scalars(
                select(MessageEvent.at).where(
                    MessageEvent.message_id == first_b.id, MessageEvent.status == "sending"
                )
            )
        )
    gaps = [b - a for a, b in pairwise(history)]
    assert len(history) == 3 and gaps[0] < gaps[1]
    # u-c6c: both messages, once each, on their days.
    assert [(m.template, m.sent_at.date().isoformat()) for m in harness.messages("u-c6c")] == [
        ("welcome_1", "2026-03-02"),
        ("welcome_2", "2026-03-03"),
    ]
    assert len(calls_c) == 2

    with runtime.session() as session:
        journeys = {
            user: session.scalar(
                select(Journey).where(Journey.profile_id == find_profile(session, f"id:{user}").id)
            )
            for user in ("u-c6a", "u-c6b", "u-c6c")
        }
        figures = campaign_stats(session)["welcome"]["messages"]["email/s1"]
    assert figures == {"sent": 1, "failed": 1, "failed_after_retries": 1}
    assert journeys["u-c6c"].status == "completed"
    if run == "run_a":
        assert len(calls_a) == 2 and len(calls_b) == 3 + 3  # welcome_2 fails the same way
        assert [m.template for m in msgs_a] == ["welcome_1", "welcome_2"]
        assert journeys["u-c6a"].status == "completed"
        assert journeys["u-c6b"].status == "completed"
    else:
        assert len(calls_a) == 1 and len(calls_b) == 3
        for user in ("u-c6a", "u-c6b"):
            assert journeys[user].status == "exited"
            assert journeys[user].exit_reason == "send_failed"
        assert [m.template for m in msgs_a] == ["welcome_1"]
