"""The journey step engine, pure: a definition, a state, fake facts and a time in; actions out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lifecycle.campaigns.definition import CampaignDef
from lifecycle.campaigns.engine import Log, Send, State, advance, resolve_where
from lifecycle.campaigns.matching import properties_match

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
SETTLE = timedelta(minutes=30)


@dataclass
class FakeFacts:
    """The engine's view of one profile: attributes, events and message outcomes in memory."""

    attrs: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[int, str, datetime, dict[str, Any]]] = field(default_factory=list)
    outcomes: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    queries: list[tuple[str, dict[str, Any], datetime, datetime | None]] = field(
        default_factory=list
    )

    def event(self, name: str, at: datetime, **props: Any) -> int:
        event_id = len(self.events) + 1
        self.events.append((event_id, name, at, props))
        return event_id

    def attributes(self) -> dict[str, Any]:
        return self.attrs

    def find_event(
        self, name: str, where: dict[str, Any], since: datetime, until: datetime | None
    ) -> tuple[int, datetime] | None:
        self.queries.append((name, where, since, until))
        for event_id, event_name, at, props in sorted(self.events, key=lambda e: (e[2], e[0])):
            if event_name != name or at < since or (until is not None and at > until):
                continue
            if properties_match(props, where):
                return event_id, at
        return None

    def message_outcome(self, step_id: str) -> tuple[str, datetime] | None:
        return self.outcomes.get(step_id)


def campaign(steps: list[dict[str, Any]], **extra: Any) -> CampaignDef:
    return CampaignDef.model_validate(
        {"name": "test", "trigger": {"event": "Signed Up"}, "steps": steps, **extra}
    )


def fresh(at: datetime = T0, **data: Any) -> State:
    return State(
        status="active",
        step_index=0,
        waiting_on=None,
        wake_at=None,
        anchor_at=at,
        entered_at=at,
        data={"trigger": {}, **data},
    )


def run(definition: CampaignDef, state: State, facts: FakeFacts, now: datetime) -> list[Any]:
    return advance(definition, state, facts, now=now, settle_window=SETTLE)


def sends(actions: list[Any]) -> list[str]:
    return [a.step_id for a in actions if isinstance(a, Send)]


def kinds(actions: list[Any]) -> list[str]:
    return [a.kind if isinstance(a, Log) else "send" for a in actions]


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# -- waits -------------------------------------------------------------------------------


def test_wait_moves_on_only_when_due_and_anchors_at_the_wake_time() -> None:
    definition = campaign(
        [{"id": "w1", "wait": "1h"}, {"id": "w2", "wait": "2h"}, {"id": "s1", "wait": "1d"}]
    )
    state, facts = fresh(), FakeFacts()

    assert kinds(run(definition, state, facts, T0)) == ["waiting"]
    assert (state.step_index, state.waiting_on, state.wake_at) == (0, "time", T0 + minutes(60))

    assert run(definition, state, facts, T0 + minutes(59)) == []
    assert (state.step_index, state.wake_at) == (0, T0 + minutes(60))

    # The tick comes late (1h25m in): the next wait still counts from 1h, not from the tick.
    actions = run(definition, state, facts, T0 + minutes(85))
    assert kinds(actions) == ["waited", "waiting"]
    assert state.anchor_at == T0 + minutes(60)
    assert (state.step_index, state.wake_at) == (1, T0 + minutes(180))


def test_wait_logs_its_wake_time() -> None:
    definition = campaign([{"id": "w1", "wait": "1h"}])
    actions = run(definition, fresh(), FakeFacts(), T0)
    assert actions == [Log("waiting", "w1", f"until {(T0 + minutes(60)).isoformat()}")]


def test_a_very_late_tick_runs_every_wait_that_fell_due_in_order() -> None:
    definition = campaign(
        [
            {"id": "w1", "wait": "1h"},
            {"id": "w2", "wait": "1h"},
            {"id": "s1", "send": {"channel": "email", "template": "x"}},
        ]
    )
    state = fresh()
    actions = run(definition, state, FakeFacts(), T0 + timedelta(days=1))
    assert kinds(actions) == ["waiting", "waited", "waiting", "waited", "send"]
    assert state.anchor_at == T0 + minutes(120)
    assert sends(actions) == ["s1"]


def test_the_last_step_done_completes_the_journey() -> None:
    definition = campaign([{"id": "w1", "wait": "1h"}])
    state = fresh()
    run(definition, state, FakeFacts(), T0)
    actions = run(definition, state, FakeFacts(), T0 + minutes(60))
    assert kinds(actions) == ["waited", "completed"]
    assert (state.status, state.exit_reason, state.waiting_on, state.wake_at) == (
        "completed",
        None,
        None,
        None,
    )


# -- sends -------------------------------------------------------------------------------

SEND_THEN_WAIT = [
    {"id": "s1", "send": {"channel": "email", "template": "welcome_1"}},
    {"id": "w1", "wait": "1d"},
    {"id": "s2", "send": {"channel": "sms", "template": "welcome_2"}},
]


def test_send_holds_the_journey_until_the_message_settles() -> None:
    definition = campaign(SEND_THEN_WAIT)
    state, facts = fresh(), FakeFacts()

    assert run(definition, state, facts, T0) == [Send("s1", "email", "welcome_1")]
    assert (state.step_index, state.waiting_on, state.wake_at) == (0, "message", T0 + SETTLE)

    assert run(definition, state, facts, T0 + minutes(1)) == []
    assert state.waiting_on == "message"

    facts.outcomes["s1"] = ("sent", T0 + minutes(2))
    actions = run(definition, state, facts, T0 + minutes(5))
    assert actions[0] == Log("send_settled", "s1", "sent")
    # What follows counts from when the message went out, not from the resume (C7).
    assert state.anchor_at == T0 + minutes(2)
    assert (state.step_index, state.waiting_on, state.wake_at) == (
        1,
        "time",
        T0 + minutes(2) + timedelta(days=1),
    )


def test_send_is_not_repeated_while_waiting() -> None:
    definition = campaign(SEND_THEN_WAIT)
    state, facts = fresh(), FakeFacts()
    run(definition, state, facts, T0)
    for later in (1, 5, 29):
        assert sends(run(definition, state, facts, T0 + minutes(later))) == []


def test_failed_send_with_on_send_failure_exit_leaves_the_journey() -> None:
    definition = campaign(SEND_THEN_WAIT, on_send_failure="exit")
    state, facts = fresh(), FakeFacts()
    run(definition, state, facts, T0)
    facts.outcomes["s1"] = ("failed", T0 + minutes(1))

    actions = run(definition, state, facts, T0 + minutes(1))
    assert actions == [Log("exited", "s1", "send_failed")]
    assert (state.status, state.exit_reason, state.waiting_on, state.wake_at) == (
        "exited",
        "send_failed",
        None,
        None,
    )
    assert run(definition, state, facts, T0 + timedelta(days=2)) == []


def test_failed_send_with_on_send_failure_continue_goes_on() -> None:
    definition = campaign(SEND_THEN_WAIT, on_send_failure="continue")
    state, facts = fresh(), FakeFacts()
    run(definition, state, facts, T0)
    facts.outcomes["s1"] = ("failed", T0 + minutes(1))

    actions = run(definition, state, facts, T0 + minutes(1))
    assert kinds(actions) == ["send_settled", "waiting"]
    assert actions[0].detail == "failed"
    assert (state.status, state.step_index, state.waiting_on) == ("active", 1, "time")

    facts.outcomes["s2"] = ("sent", T0 + minutes(1) + timedelta(days=1))
    assert sends(run(definition, state, facts, T0 + minutes(1) + timedelta(days=1))) == ["s2"]


def test_continue_is_the_default_on_send_failure() -> None:
    definition = campaign(SEND_THEN_WAIT)
    assert definition.on_send_failure == "continue"
    state, facts = fresh(), FakeFacts()
    run(definition, state, facts, T0)
    facts.outcomes["s1"] = ("suppressed", T0)
    run(definition, state, facts, T0)
    assert (state.status, state.step_index) == ("active", 1)


def test_other_final_outcomes_count_as_failures_for_exit() -> None:
    definition = campaign(SEND_THEN_WAIT, on_send_failure="exit")
    state, facts = fresh(), FakeFacts()
    run(definition, state, facts, T0)
    facts.outcomes["s1"] = ("suppressed", T0)
    run(definition, state, facts, T0)
    assert (state.status, state.exit_reason) == ("exited", "send_failed")


def test_unsettled_message_after_the_settle_window_moves_on_with_a_log() -> None:
    definition = campaign(SEND_THEN_WAIT, on_send_failure="exit")
    state, facts = fresh(), FakeFacts()
    run(definition, state, facts, T0)

    assert run(definition, state, facts, T0 + SETTLE - minutes(1)) == []
    actions = run(definition, state, facts, T0 + SETTLE + minutes(1))
    assert actions[0] == Log("send_unsettled", "s1", "message not settled in time; moving on")
    assert (state.status, state.step_index, state.waiting_on) == ("active", 1, "time")
    assert state.anchor_at == T0 + SETTLE + minutes(1)


# -- goal and exit: checked on every run (C11) -----------------------------------------------

CART = [
    {"id": "w1", "wait": "1h"},
    {"id": "s1", "send": {"channel": "email", "template": "cart_1"}},
    {"id": "w2", "wait": "1d"},
    {"id": "s2", "send": {"channel": "email", "template": "cart_2"}},
]


def test_goal_converts_before_any_step_runs_even_a_due_send() -> None:
    definition = campaign(CART, goal={"event": "Order Completed"})
    state, facts = fresh(), FakeFacts()
    run(definition, state, facts, T0)  # waiting for 1h
    order = facts.event("Order Completed", T0 + minutes(30), order_id="o1")

    actions = run(definition, state, facts, T0 + minutes(61))  # the send would be due now
    assert sends(actions) == []
    assert actions == [Log("converted", None, "goal_reached")]
    assert (state.status, state.exit_reason, state.goal_event_id) == (
        "converted",
        "goal_reached",
        order,
    )
    assert (state.waiting_on, state.wake_at) == (None, None)


def test_goal_reached_between_sends_stops_the_second_one() -> None:
    definition = campaign(CART, goal={"event": "Order Completed"})
    state, facts = fresh(), FakeFacts()
    run(definition, state, facts, T0)
    assert sends(run(definition, state, facts, T0 + minutes(60))) == ["s1"]
    facts.outcomes["s1"] = ("sent", T0 + minutes(60))
    run(definition, state, facts, T0 + minutes(61))
    facts.event("Order Completed", T0 + minutes(300))

    assert sends(run(definition, state, facts, T0 + timedelta(days=2))) == []
    assert state.status == "converted"


def test_goal_with_a_where_filter_and_events_before_entry_do_not_count() -> None:
    definition = campaign(CART, goal={"event": "Order Completed", "where": {"total": {"gte": 50}}})
    state, facts = fresh(), FakeFacts()
    facts.event("Order Completed", T0 - minutes(5), total=500)  # before the journey began
    facts.event("Order Completed", T0 + minutes(10), total="20.00")  # too small
    run(definition, state, facts, T0 + minutes(20))
    assert state.status == "active"

    facts.event("Order Completed", T0 + minutes(40), total="50.00")  # C2: text, yet 50
    run(definition, state, facts, T0 + minutes(45))
    assert state.status == "converted"


def test_exit_when_ends_the_journey_as_exited() -> None:
    definition = campaign(CART, exit_when={"event": "Unsubscribed"})
    state, facts = fresh(), FakeFacts()
    run(definition, state, facts, T0)
    facts.event("Unsubscribed", T0 + minutes(10))

    actions = run(definition, state, facts, T0 + minutes(60))
    assert actions == [Log("exited", None, "exit_event")]
    assert (state.status, state.exit_reason, state.goal_event_id) == (
        "exited",
        "exit_event",
        None,
    )


def test_goal_is_checked_before_exit_when() -> None:
    definition = campaign(
        CART, goal={"event": "Order Completed"}, exit_when={"event": "Unsubscribed"}
    )
    state, facts = fresh(), FakeFacts()
    facts.event("Unsubscribed", T0 + minutes(1))
    facts.event("Order Completed", T0 + minutes(2))
    run(definition, state, facts, T0 + minutes(5))
    assert state.status == "converted"


# -- wait_for (C7) ---------------------------------------------------------------------------

PROMO = [
    {"id": "s1", "send": {"channel": "email", "template": "promo_1"}},
    {
        "id": "w1",
        "wait_for": {
            "event": "Email Opened",
            "where": {"message_id": "{{ steps.s1.message_id }}"},
            "timeout": "2d",
        },
        "on_event": "s2",
        "on_timeout": "s3",
    },
    {"id": "s2", "send": {"channel": "email", "template": "promo_followup"}},
    {"id": "done", "exit": True},
    {"id": "s3", "send": {"channel": "email", "template": "promo_reminder"}},
]


def promo_after_s1(
    sent_at: datetime = T0, resumed_at: datetime | None = None
) -> tuple[CampaignDef, State, FakeFacts]:
    """A promo journey whose s1 (message 77) went out at ``sent_at`` and settled."""
    definition, facts = campaign(PROMO), FakeFacts()
    state = fresh(sent_at)
    assert sends(run(definition, state, facts, sent_at)) == ["s1"]
    state.data.setdefault("steps", {})["s1"] = {"message_id": 77}  # as the service records it
    facts.outcomes["s1"] = ("sent", sent_at)
    return definition, state, facts


def test_wait_for_takes_an_event_that_came_before_the_wait_began() -> None:
    definition, state, facts = promo_after_s1()
    # The open lands 0.5 s after s1 went out, before the journey resumed (C7).
    opened = facts.event("Email Opened", T0 + timedelta(seconds=0.5), message_id=77)

    actions = run(definition, state, facts, T0 + minutes(3))
    assert kinds(actions) == ["send_settled", "waiting_for", "event_seen", "send"]
    assert sends(actions) == ["s2"]
    assert state.data["steps"]["w1"]["event_id"] == opened
    assert state.anchor_at == T0 + timedelta(seconds=0.5)
    name, where, since, until = facts.queries[-1]
    assert (name, where, since, until) == (
        "Email Opened",
        {"message_id": 77},
        T0,
        T0 + timedelta(days=2),
    )


def test_wait_for_ignores_events_before_its_anchor_and_for_other_messages() -> None:
    definition, state, facts = promo_after_s1()
    facts.event("Email Opened", T0 - minutes(1), message_id=77)  # before the anchor
    facts.event("Email Opened", T0 + minutes(1), message_id=78)  # another message
    facts.event("Email Clicked", T0 + minutes(1), message_id=77)  # another event

    actions = run(definition, state, facts, T0 + minutes(3))
    assert kinds(actions) == ["send_settled", "waiting_for"]
    assert (state.step_index, state.waiting_on, state.wake_at) == (
        1,
        "event",
        T0 + timedelta(days=2),
    )


def test_wait_for_event_arriving_later_takes_on_event() -> None:
    definition, state, facts = promo_after_s1()
    run(definition, state, facts, T0 + minutes(1))
    assert run(definition, state, facts, T0 + timedelta(hours=5)) == []

    facts.event("Email Opened", T0 + timedelta(hours=6), message_id="77")  # id as text: still 77
    actions = run(definition, state, facts, T0 + timedelta(hours=6))
    assert sends(actions) == ["s2"]


def test_wait_for_timeout_takes_on_timeout_and_anchors_at_the_timeout() -> None:
    definition, state, facts = promo_after_s1()
    run(definition, state, facts, T0 + minutes(1))
    timeout = T0 + timedelta(days=2)

    assert run(definition, state, facts, timeout - minutes(1)) == []
    actions = run(definition, state, facts, timeout + minutes(7))
    assert kinds(actions) == ["timed_out", "send"]
    assert sends(actions) == ["s3"]
    assert state.anchor_at == timeout
    assert (state.step_index, state.waiting_on) == (4, "message")


def test_event_after_the_timeout_does_not_count() -> None:
    definition, state, facts = promo_after_s1()
    run(definition, state, facts, T0 + minutes(1))
    timeout = T0 + timedelta(days=2)
    facts.event("Email Opened", timeout + minutes(1), message_id=77)  # late, and the tick later

    actions = run(definition, state, facts, timeout + minutes(2))
    assert sends(actions) == ["s3"]
    assert facts.queries[-1][3] == timeout  # the search is bounded by the timeout


def test_event_exactly_at_the_timeout_still_counts() -> None:
    definition, state, facts = promo_after_s1()
    run(definition, state, facts, T0 + minutes(1))
    timeout = T0 + timedelta(days=2)
    facts.event("Email Opened", timeout, message_id=77)
    assert sends(run(definition, state, facts, timeout + minutes(1))) == ["s2"]


def test_timeout_after_the_event_was_seen_does_nothing() -> None:
    definition, state, facts = promo_after_s1()
    facts.event("Email Opened", T0 + minutes(30), message_id=77)
    assert sends(run(definition, state, facts, T0 + minutes(30))) == ["s2"]
    facts.outcomes["s2"] = ("sent", T0 + minutes(31))
    actions = run(definition, state, facts, T0 + minutes(31))
    assert (state.status, state.exit_reason) == ("exited", "exit_step:done")

    assert "s3" not in sends(actions)
    # The old w1 timeout falls due: nothing is sent, nothing changes.
    assert run(definition, state, facts, T0 + timedelta(days=2, minutes=1)) == []


def test_wait_for_without_targets_goes_to_the_next_step_either_way() -> None:
    steps = [
        {"id": "w1", "wait_for": {"event": "Email Opened", "timeout": "1h"}},
        {"id": "after", "wait": "1d"},
    ]
    definition = campaign(steps)
    seen, facts = fresh(), FakeFacts()
    facts.event("Email Opened", T0 + minutes(5))
    run(definition, seen, facts, T0 + minutes(6))
    assert (seen.step_index, seen.waiting_on) == (1, "time")

    timed_out = fresh()
    run(definition, timed_out, FakeFacts(), T0 + minutes(61))
    assert (timed_out.step_index, timed_out.waiting_on) == (1, "time")
    assert timed_out.wake_at == T0 + minutes(60) + timedelta(days=1)


def test_placeholders_in_where_resolve_from_the_journey_data() -> None:
    state = fresh(steps={"s1": {"message_id": 42}})
    state.data["trigger"] = {"order_id": "o-9"}
    where = {
        "message_id": "{{ steps.s1.message_id }}",
        "order_id": "{{trigger.order_id}}",
        "plain": "text",
        "number": 3,
        "missing": "{{ steps.s9.message_id }}",
    }
    assert resolve_where(where, state) == {
        "message_id": 42,
        "order_id": "o-9",
        "plain": "text",
        "number": 3,
        "missing": None,
    }


# -- branch, if, exit ------------------------------------------------------------------------


def branching(**branch: Any) -> CampaignDef:
    return campaign(
        [
            {"id": "b1", "branch": {"if": {"attribute": "vip", "value": True}, **branch}},
            {"id": "plain", "send": {"channel": "email", "template": "plain"}},
            {"id": "vip", "send": {"channel": "email", "template": "vip"}},
        ]
    )


def test_branch_then() -> None:
    state = fresh()
    actions = run(branching(then="vip", **{"else": "plain"}), state, FakeFacts({"vip": True}), T0)
    assert actions[0] == Log("branched", "b1", "then -> vip")
    assert sends(actions) == ["vip"]


def test_branch_else() -> None:
    state = fresh()
    actions = run(branching(then="vip", **{"else": "plain"}), state, FakeFacts({"vip": False}), T0)
    assert actions[0] == Log("branched", "b1", "else -> plain")
    assert sends(actions) == ["plain"]


def test_branch_without_else_goes_to_the_next_step() -> None:
    actions = run(branching(then="vip"), fresh(), FakeFacts({}), T0)
    assert actions[0] == Log("branched", "b1", "else -> next")
    assert sends(actions) == ["plain"]


def test_step_if_false_is_skipped_and_true_runs() -> None:
    definition = campaign(
        [
            {
                "id": "vip_only",
                "if": {"attribute": "vip", "op": "equals", "value": True},
                "send": {"channel": "email", "template": "vip"},
            },
            {"id": "all", "send": {"channel": "email", "template": "all"}},
        ]
    )
    skipped = run(definition, fresh(), FakeFacts({"vip": False}), T0)
    assert skipped[0] == Log("skipped", "vip_only", "condition not met")
    assert sends(skipped) == ["all"]
    assert sends(run(definition, fresh(), FakeFacts({"vip": True}), T0)) == ["vip_only"]


def test_exit_step_ends_the_journey_with_a_reason_naming_it() -> None:
    definition = campaign(
        [
            {"id": "w1", "wait": "1h"},
            {"id": "rm", "exit": True, "if": {"attribute": "vip", "value": True}},
            {"id": "s2", "send": {"channel": "email", "template": "cart_2"}},
        ]
    )
    state = fresh()
    actions = run(definition, state, FakeFacts({"vip": True}), T0 + minutes(60))
    assert actions[-1] == Log("exited", "rm", "exit_step:rm")
    assert sends(actions) == []
    assert (state.status, state.exit_reason, state.waiting_on) == ("exited", "exit_step:rm", None)

    other = fresh()
    assert sends(run(definition, other, FakeFacts({"vip": False}), T0 + minutes(60))) == ["s2"]


def test_an_ended_journey_does_nothing() -> None:
    definition = campaign(CART, goal={"event": "Order Completed"})
    for status in ("completed", "converted", "exited"):
        state = fresh()
        state.status = status
        state.step_index = 1
        before = State(**vars(state))
        facts = FakeFacts()
        facts.event("Order Completed", T0)
        assert run(definition, state, facts, T0 + timedelta(days=9)) == []
        assert state == before
        assert facts.queries == []


def test_a_loop_without_waits_ends_the_journey_instead_of_parking_it() -> None:
    definition = campaign(
        [{"id": "b1", "branch": {"if": {"attribute": "x", "op": "exists"}, "then": "b1"}}]
    )
    state = fresh()
    actions = run(definition, state, FakeFacts({"x": 1}), T0)
    assert actions[-2:] == [
        Log("halted", None, "more than 100 steps in one run"),
        Log("exited", None, "halted"),
    ]
    assert (state.status, state.exit_reason, state.wake_at) == ("exited", "halted", None)


def test_a_long_catch_up_halts_but_stays_due_and_finishes_over_several_runs() -> None:
    # A polling loop woken a day late: each run stops after 100 steps, still due, never parked.
    definition = campaign(
        [
            {"id": "w1", "wait": "1m"},
            {"id": "b1", "branch": {"if": {"attribute": "done", "value": True}, "then": "end"}},
            {"id": "again", "branch": {"if": {"attribute": "done", "value": False}, "then": "w1"}},
            {"id": "end", "exit": True},
        ]
    )
    state, facts, now = fresh(), FakeFacts({"done": False}), T0 + timedelta(days=1)
    runs = 0
    while True:
        runs += 1
        actions = run(definition, state, facts, now)
        assert state.status == "active"
        if kinds(actions)[-1] != "halted":
            break
        assert state.wake_at is not None and state.wake_at <= now
        assert runs < 100
    assert runs > 1
    assert (state.waiting_on, state.wake_at) == ("time", T0 + timedelta(days=1, minutes=1))


# -- type-aware conditions (C2) --------------------------------------------------------------


def test_conditions_compare_numbers_sent_as_text_as_numbers() -> None:
    definition = campaign(
        [
            {
                "id": "b1",
                "branch": {
                    "if": {"attribute": "total", "op": "equals", "value": 35},
                    "then": "exact",
                },
            },
            {
                "id": "big",
                "if": {"attribute": "score", "op": "gt", "value": "9"},
                "send": {"channel": "email", "template": "big"},
            },
            {"id": "exact", "send": {"channel": "email", "template": "exact"}},
        ]
    )
    assert sends(run(definition, fresh(), FakeFacts({"total": "35.00"}), T0)) == ["exact"]
    # "100" > "9" as numbers, though not as text.
    attrs = {"total": "36", "score": "100"}
    assert sends(run(definition, fresh(), FakeFacts(attrs), T0)) == ["big"]
    attrs = {"total": "36", "score": "8.5"}
    actions = run(definition, fresh(), FakeFacts(attrs), T0)
    assert kinds(actions)[:3] == ["branched", "skipped", "send"]
    assert sends(actions) == ["exact"]
