"""C11: goal, exit and removal are enforced on steps already scheduled.

Kind: exit and goal conditions not enforced on steps already scheduled. Every
journey run re-checks the goal and exit before any step, in the transaction that
claims the step, and a removed member's journey is no longer due at all.
"""

from __future__ import annotations

from sqlalchemy import select

from lifecycle import clock
from lifecycle.campaigns.models import Journey
from lifecycle.campaigns.stats import campaign_stats
from lifecycle.profiles.service import find_profile
from lifecycle.rendering.templates import Templates
from tests.cases.harness import Case, case_dir, steps
from tests.support import at

CAMPAIGN = """
name: abandoned_cart
trigger: {event: Checkout Started}
goal: {event: Order Completed}
steps:
  - {id: w1, wait: 1h}
  - {id: s1, send: {channel: email, template: cart_1}}
  - {id: w2, wait: 1d}
  - {id: rm, exit: true, if: {attribute: vip, op: equals, value: true}}
  - {id: s2, send: {channel: email, template: cart_2}}
"""
TEMPLATES = {
    f"email/{name}": "{% block subject %}" + name + "{% endblock %}{% block html %}x{% endblock %}"
    for name in ("cart_1", "cart_2")
}


def test_c11(runtime, inline, recorder, tmp_path):
    harness = Case(runtime, inline, recorder)
    harness.write(tmp_path, CAMPAIGN, TEMPLATES)
    runtime.templates = Templates(tmp_path / "templates")
    for step in steps(case_dir("C11")):
        call = step["call"]
        if call == "journey" and step["options"]["action"] == "publish":
            clock.set_now(at(step["at"]))
            harness.publish(tmp_path)
        elif call == "journey":
            harness.remove_member("abandoned_cart", step["options"]["profile"], step["at"])
        elif call in ("identify", "track"):
            harness.call(step)
        elif call == "tick":
            inline.tick(step["at"])

    assert harness.templates_sent("u-c11a") == []
    assert harness.templates_sent("u-c11b") == ["cart_1"]
    assert harness.templates_sent("u-c11c") == ["cart_1"]
    assert harness.templates_sent("u-c11d") == ["cart_1", "cart_2"]
    assert harness.templates_sent("u-c11e") == ["cart_1"]
    assert len(recorder.calls) == 5

    with runtime.session() as session:

        def journey(user: str) -> Journey:
            profile = find_profile(session, f"id:{user}")
            return session.scalar(select(Journey).where(Journey.profile_id == profile.id))

        assert (journey("u-c11a").status, journey("u-c11a").exit_reason) == (
            "converted",
            "goal_reached",
        )
        assert (journey("u-c11b").status, journey("u-c11b").exit_reason) == (
            "exited",
            "member_exited",
        )
        assert journey("u-c11c").exit_reason == "exit_step:rm"
        assert journey("u-c11d").status == "completed"
        assert journey("u-c11e").status == "converted"
        assert campaign_stats(session)["abandoned_cart"]["converted"] == 2
