"""Segments drive campaigns: entered/exited triggers and branching on membership."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from lifecycle import clock
from lifecycle.campaigns.loader import load_project
from lifecycle.campaigns.models import Broadcast, Journey
from lifecycle.delivery.models import Message
from lifecycle.profiles.service import find_profile
from lifecycle.rendering.templates import Templates
from lifecycle.segments import service as segments
from tests.cases.harness import Case
from tests.support import at

SEGMENTS = {
    "vip": "where: {attribute: vip, op: equals, value: true}",
    "big_spender": "where: {event: Order Completed, sum: total, gte: 100}",
}
CAMPAIGNS = {
    "welcome_vip": """
trigger: {segment: vip, on: entered}
steps:
  - {id: hello, send: {channel: email, template: hello}}
""",
    "bye_vip": """
trigger: {segment: vip, on: exited}
steps:
  - {id: bye, send: {channel: email, template: bye}}
""",
    "promo": """
trigger: {event: Promo Joined}
steps:
  - id: pick
    branch: {if: {segment: big_spender}, then: gold, else: plain}
  - {id: plain, send: {channel: email, template: plain}}
  - {id: stop, end: true}
  - {id: gold, send: {channel: email, template: gold}}
""",
}


def _write(root: Path) -> None:
    (root / "campaigns" / "segments").mkdir(parents=True)
    for name, body in SEGMENTS.items():
        (root / "campaigns" / "segments" / f"{name}.yaml").write_text(f"name: {name}\n{body}\n")
    for name, body in CAMPAIGNS.items():
        (root / "campaigns" / f"{name}.yaml").write_text(f"name: {name}\n{body}")
    for name in ("hello", "bye", "plain", "gold"):
        path = root / "templates" / "email" / f"{name}.j2"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "{% block subject %}" + name + "{% endblock %}{% block html %}x{% endblock %}"
        )


def _sent(harness: Case, user: str) -> list[str]:
    return [m.template for m in harness.messages(user)]


def _identify(harness: Case, user: str, when: str, **traits: object) -> None:
    harness.call(
        {
            "call": "identify",
            "at": when,
            "body": {
                "userId": user,
                "traits": {"email": f"{user}@example.com", **traits},
                "timestamp": when,
            },
        }
    )


def _track(harness: Case, user: str, when: str, event: str, **properties: object) -> None:
    harness.call(
        {
            "call": "track",
            "at": when,
            "body": {"userId": user, "event": event, "properties": properties, "timestamp": when},
        }
    )


def test_entering_and_leaving_a_segment_start_campaigns(runtime, inline, recorder, tmp_path):
    _write(tmp_path)
    runtime.templates = Templates(tmp_path / "templates")
    harness = Case(runtime, inline, recorder)
    clock.set_now(at("2026-03-01T09:00:00Z"))
    _identify(harness, "u-old", "2026-03-01T09:00:00Z", vip=True)
    harness.publish(tmp_path)  # u-old was already a VIP: publishing starts nothing

    _identify(harness, "u-1", "2026-03-01T10:00:00Z", vip=True)
    _identify(harness, "u-2", "2026-03-01T10:01:00Z", vip=False)
    assert _sent(harness, "u-1") == ["hello"]
    assert _sent(harness, "u-2") == []
    assert _sent(harness, "u-old") == []

    _identify(harness, "u-2", "2026-03-01T11:00:00Z", vip=True)
    _identify(harness, "u-1", "2026-03-01T11:01:00Z", vip=False)
    assert _sent(harness, "u-2") == ["hello"]
    assert _sent(harness, "u-1") == ["hello", "bye"]

    with runtime.session() as session:
        profile = find_profile(session, "id:u-1")
        history = segments.memberships_of(session, profile.id)
        journey = session.scalars(
            select(Journey).where(Journey.profile_id == profile.id).order_by(Journey.id)
        ).first()
        message = session.scalar(select(Message).where(Message.profile_id == profile.id))
    assert [(h["segment"], h["current"]) for h in history] == [("vip", False)]
    assert history[0]["entered_cause"] == "new profile"
    assert history[0]["exited_cause"] == "attribute vip changed"
    assert journey is not None and journey.entered_via.startswith("segment vip entered")
    assert message is not None and "segment vip entered" in message.reason


def test_a_branch_reads_membership_at_that_moment(runtime, inline, recorder, tmp_path):
    _write(tmp_path)
    runtime.templates = Templates(tmp_path / "templates")
    harness = Case(runtime, inline, recorder)
    clock.set_now(at("2026-03-01T09:00:00Z"))
    harness.publish(tmp_path)
    for user in ("u-a", "u-b"):
        _identify(harness, user, "2026-03-01T09:30:00Z")
    _track(harness, "u-a", "2026-03-01T09:40:00Z", "Order Completed", total="60.00")
    _track(harness, "u-a", "2026-03-01T09:41:00Z", "Order Completed", total="40")
    _track(harness, "u-b", "2026-03-01T09:42:00Z", "Order Completed", total="99.99")
    _track(harness, "u-a", "2026-03-01T10:00:00Z", "Promo Joined")
    _track(harness, "u-b", "2026-03-01T10:00:00Z", "Promo Joined")
    assert _sent(harness, "u-a") == ["gold"]
    assert _sent(harness, "u-b") == ["plain"]


def test_a_campaign_naming_an_unknown_segment_is_refused(runtime, tmp_path):
    _write(tmp_path)
    (tmp_path / "campaigns" / "segments" / "vip.yaml").unlink()
    _, _, problems = load_project(tmp_path / "campaigns", Templates(tmp_path / "templates"))
    texts = sorted(str(p) for p in problems)
    assert any("welcome_vip.yaml" in t and "no segment named 'vip'" in t for t in texts), texts
    assert any("bye_vip.yaml" in t for t in texts), texts


BROADCAST = """
name: xmas
trigger: {broadcast: vip, at: "2026-12-24T09:00:00+01:00"}
steps:
  - {id: first, send: {channel: email, template: hello}}
  - {id: later, wait: 2d}
  - {id: second, send: {channel: email, template: bye}}
"""


def test_a_broadcast_goes_to_members_at_send_time_rechecked_per_person(
    runtime, inline, recorder, tmp_path
):
    _write(tmp_path)
    (tmp_path / "campaigns" / "xmas.yaml").write_text(BROADCAST)
    runtime.templates = Templates(tmp_path / "templates")
    runtime.settings.tick_batch_size = 2  # several batches: the cursor carries on
    harness = Case(runtime, inline, recorder)
    clock.set_now(at("2026-12-20T09:00:00Z"))
    harness.publish(tmp_path)
    for n in range(5):
        _identify(harness, f"u-{n}", "2026-12-20T09:00:00Z", vip=n != 4)
    _identify(harness, "u-late", "2026-12-23T09:00:00Z", vip=True)  # joins before send time
    _identify(harness, "u-0", "2026-12-23T10:00:00Z", vip=False)  # leaves before send time
    before = {u: len(_sent(harness, u)) for u in ("u-1", "u-2", "u-3", "u-late")}

    inline.tick("2026-12-24T07:59:00Z")  # not yet
    assert all(len(_sent(harness, u)) == before[u] for u in before)

    inline.tick("2026-12-24T08:00:00Z")
    for user in ("u-1", "u-2", "u-3", "u-late"):
        assert _sent(harness, user).count("hello") == 2, user  # welcome_vip and xmas
    assert "hello" not in _sent(harness, "u-4")
    assert _sent(harness, "u-0").count("hello") == 1  # welcome_vip only

    _identify(harness, "u-2", "2026-12-25T09:00:00Z", vip=False)  # leaves between sends
    inline.tick("2026-12-27T09:00:00Z")
    with runtime.session() as session:
        xmas = {find_profile(session, f"id:{u}").id: u for u in ("u-1", "u-2", "u-3", "u-late")}
        journeys = session.scalars(
            select(Journey).where(Journey.entered_via == "broadcast", Journey.profile_id.in_(xmas))
        ).all()
        outcome = {xmas[j.profile_id]: (j.status, j.exit_reason) for j in journeys}
        (row,) = session.scalars(select(Broadcast)).all()
    assert outcome["u-2"] == ("exited", "left_segment")
    assert outcome["u-1"] == ("completed", None)
    assert (row.audience, row.started, row.finished_at is not None) == (4, 4, True)

    # Publishing an edited file (a new version) with the same time sends nothing again.
    (tmp_path / "campaigns" / "xmas.yaml").write_text(BROADCAST + "description: edited\n")
    harness.publish(tmp_path)
    inline.tick("2026-12-28T09:00:00Z")
    assert _sent(harness, "u-1").count("hello") == 2
