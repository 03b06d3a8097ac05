"""C7: a wait-for-event must see an event that already arrived, whatever way the
person entered, and a timeout must not fire once the wait is settled.

Kind: wait-for-event and branch decisions taken on stale state. The engine counts
matching events from the moment the previous step's message went out, and it
never schedules a timeout ahead that would have to be withdrawn: the wake time is
replaced when the wait is settled.

People enter by the segment ``promo_list`` (``promo`` is true), as in the case, and
u-c7c through the admin API.
"""

from __future__ import annotations

from sqlalchemy import select

from lifecycle import clock
from lifecycle.campaigns.models import Journey, JourneyLog
from lifecycle.profiles.service import find_profile
from lifecycle.rendering.templates import Templates
from tests.cases.harness import Case, case_dir, steps
from tests.support import at

CAMPAIGN = """
name: promo
trigger: {segment: promo_list, on: entered}
steps:
  - {id: s1, send: {channel: email, template: promo_1}}
  - id: w1
    wait_for:
      event: Email Opened
      where: {message_id: "{{ steps.s1.message_id }}"}
      timeout: 2d
    on_event: s2
    on_timeout: s3
  - {id: s2, send: {channel: email, template: promo_followup}}
  - {id: done, end: true}
  - {id: s3, send: {channel: email, template: promo_reminder}}
"""
TEMPLATES = {
    f"email/{name}": "{% block subject %}" + name + "{% endblock %}{% block html %}x{% endblock %}"
    for name in ("promo_1", "promo_followup", "promo_reminder")
}


def test_c7(runtime, inline, recorder, tmp_path):
    harness = Case(runtime, inline, recorder)
    harness.write(tmp_path, CAMPAIGN, TEMPLATES)
    (tmp_path / "campaigns" / "segments").mkdir()
    (tmp_path / "campaigns" / "segments" / "promo_list.yaml").write_text(
        "name: promo_list\nwhere: {attribute: promo, op: equals, value: true}\n"
    )
    runtime.templates = Templates(tmp_path / "templates")
    message_ids: dict[str, dict[str, int]] = {}

    def remember(user: str) -> None:
        for m in harness.messages(user):
            message_ids.setdefault(user, {})[m.step_id] = m.id

    for step in steps(case_dir("C7")):
        call = step["call"]
        if call == "journey" and step["options"]["action"] == "publish":
            clock.set_now(at(step["at"]))
            harness.publish(tmp_path)
        elif call == "journey":  # add member through the admin API
            harness.add_member("promo", step["options"]["profile"], step["at"])
            remember(step["options"]["profile"])
        elif call == "fault" and "hold_journey" in step["options"]:
            inline.hold.add("journeys.resume")  # the worker pauses after s1, before w1
        elif call == "fault":
            inline.hold.clear()
            clock.set_now(at(step["at"]))
            inline.drain()
        elif call == "identify":
            harness.call(step)
            remember(step["body"]["userId"])
        elif call == "track":
            harness.call(step, message_ids=message_ids)
        elif call == "tick":
            inline.tick(step["at"])

    for user in ("u-c7a", "u-c7b", "u-c7c"):
        assert harness.templates_sent(user) == ["promo_1", "promo_followup"], user
    assert harness.templates_sent("u-c7d") == ["promo_1", "promo_reminder"]
    reminder = harness.messages("u-c7d")[-1]
    assert reminder.sent_at == at("2026-03-12T09:00:03Z")  # two days after promo_1 went out
    followup_a = harness.messages("u-c7a")[-1]
    assert followup_a.sent_at == at("2026-03-10T09:30:00Z")

    with runtime.session() as session:
        for user in ("u-c7a", "u-c7b", "u-c7c"):
            profile = find_profile(session, f"id:{user}")
            journey = session.scalar(select(Journey).where(Journey.profile_id == profile.id))
            assert journey.status == "completed" and journey.wake_at is None
            via = "admin:" if user == "u-c7c" else "segment promo_list entered"
            assert journey.entered_via.startswith(via), journey.entered_via
            kinds = [
                log.kind
                for log in session.scalars(
                    select(JourneyLog).where(JourneyLog.journey_id == journey.id)
                )
            ]
            assert "event_seen" in kinds and "timed_out" not in kinds
