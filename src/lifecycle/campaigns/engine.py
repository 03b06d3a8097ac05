"""The journey step engine: state + facts + time -> new state and actions (pure).

The service loads a journey, builds :class:`Facts` from the store, calls
:func:`advance`, and applies the result. Every run checks the goal and exit
conditions first, so a step scheduled long ago never runs for someone who has
already converted or left (C11). A wait-for-event accepts matching events since
the step's anchor (the moment the previous step finished), including events that
arrived before the wait was in place (C7). A send holds the journey until its
message settles; a failure continues or exits by the campaign's rule, so nobody
stays parked at a failed step (C6).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from lifecycle.campaigns.definition import CampaignDef, Condition, Step, parse_duration
from lifecycle.campaigns.matching import condition_holds


class Facts(Protocol):
    def attributes(self) -> dict[str, Any]: ...

    def in_segment(self, name: str) -> bool:
        """Is the profile in this segment now (evaluated at the moment of asking)?"""
        ...

    def find_event(
        self, name: str, where: dict[str, Any], since: datetime, until: datetime | None
    ) -> tuple[int, datetime] | None:
        """The first matching event of this profile with since <= occurred_at (<= until)."""
        ...

    def message_outcome(self, step_id: str) -> tuple[str, datetime] | None:
        """(final status, when it settled), or None while the message is unsettled."""
        ...


@dataclass
class State:
    status: str  # active | completed | converted | exited
    step_index: int
    waiting_on: str | None
    wake_at: datetime | None
    anchor_at: datetime
    entered_at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    exit_reason: str | None = None
    goal_event_id: int | None = None
    ended_at: datetime | None = None  # when a goal or exit event happened, if one ended it


@dataclass(frozen=True)
class Send:
    step_id: str
    channel: str
    template: str


@dataclass(frozen=True)
class Log:
    kind: str
    step_id: str | None
    detail: str = ""


Action = Send | Log


def _end(state: State, status: str, reason: str | None, actions: list[Action], step: str | None):  # type: ignore[no-untyped-def]
    state.status = status
    state.exit_reason = reason
    state.waiting_on = None
    state.wake_at = None
    actions.append(Log(status, step, reason or ""))


def advance(
    definition: CampaignDef,
    state: State,
    facts: Facts,
    *,
    now: datetime,
    settle_window: timedelta,
    max_steps: int = 100,
) -> list[Action]:
    """Run the journey as far as it can go at ``now``; mutate ``state``; return actions."""
    actions: list[Action] = []
    if state.status != "active":
        return actions
    for rule, status in ((definition.goal, "converted"), (definition.exit_when, "exited")):
        if rule is None:
            continue
        hit = facts.find_event(rule.event, resolve_where(rule.where, state), state.entered_at, None)
        if hit is not None:
            state.ended_at = hit[1]
            if status == "converted":
                state.goal_event_id = hit[0]
            _end(
                state,
                status,
                "goal_reached" if status == "converted" else "exit_event",
                actions,
                None,
            )
            return actions

    steps = definition.steps
    anchor_before = state.anchor_at
    for _ in range(max_steps):
        if state.step_index >= len(steps):
            _end(state, "completed", None, actions, None)
            return actions
        step = steps[state.step_index]
        if state.waiting_on is not None:
            if not _resume(definition, step, state, facts, now, actions):
                return actions
            continue
        _start(definition, step, state, facts, now, settle_window, actions)
        if state.status != "active" or state.waiting_on == "message":
            return actions
    actions.append(Log("halted", None, f"more than {max_steps} steps in one run"))
    if state.waiting_on is None:
        # Nothing would ever wake this journey again: it must not stay parked.
        if state.anchor_at == anchor_before:
            # No time passed in all those steps: they loop back with no wait between them.
            _end(state, "exited", "halted", actions, None)
        else:
            state.wake_at = now  # catching up on many waits that fell due: go on next run
    return actions


def _jump(definition: CampaignDef, state: State, target: str | None) -> None:
    state.waiting_on = None
    state.wake_at = None
    if target is None:
        state.step_index += 1
    else:
        state.step_index = next(i for i, s in enumerate(definition.steps) if s.id == target)


def _resume(
    definition: CampaignDef,
    step: Step,
    state: State,
    facts: Facts,
    now: datetime,
    actions: list[Action],
) -> bool:
    """Settle the wait the journey is in, if it can be; True when it moved on."""
    assert state.wake_at is not None
    if state.waiting_on == "time":
        if now < state.wake_at:
            return False
        state.anchor_at = state.wake_at
        actions.append(Log("waited", step.id))
        _jump(definition, state, None)
        return True
    if state.waiting_on == "event":
        assert step.wait_for is not None
        hit = facts.find_event(
            step.wait_for.event,
            resolve_where(step.wait_for.where, state),
            state.anchor_at,
            state.wake_at,
        )
        if hit is not None:
            state.data.setdefault("steps", {}).setdefault(step.id, {})["event_id"] = hit[0]
            actions.append(Log("event_seen", step.id, f"event {hit[0]} at {hit[1].isoformat()}"))
            state.anchor_at = max(state.anchor_at, hit[1])
            _jump(definition, state, step.on_event)
            return True
        if now < state.wake_at:
            return False
        actions.append(
            Log("timed_out", step.id, f"no {step.wait_for.event} by {state.wake_at.isoformat()}")
        )
        state.anchor_at = state.wake_at
        _jump(definition, state, step.on_timeout)
        return True
    if state.waiting_on == "message":
        outcome = facts.message_outcome(step.id)
        if outcome is None:
            if now < state.wake_at:
                return False
            actions.append(Log("send_unsettled", step.id, "message not settled in time; moving on"))
            settled_at = now
        else:
            status, settled_at = outcome
            if status != "sent" and definition.on_send_failure == "exit":
                _end(state, "exited", "send_failed", actions, step.id)
                return False
            actions.append(Log("send_settled", step.id, status))
        # What follows counts from when the message went out, not from when the
        # journey got round to resuming: an open in between is not missed (C7).
        state.anchor_at = max(state.anchor_at, settled_at)
        _jump(definition, state, None)
        return True
    raise AssertionError(f"unknown wait {state.waiting_on!r}")


def _start(
    definition: CampaignDef,
    step: Step,
    state: State,
    facts: Facts,
    now: datetime,
    settle_window: timedelta,
    actions: list[Action],
) -> None:
    if step.condition is not None and not _holds(step.condition, facts):
        actions.append(Log("skipped", step.id, "condition not met"))
        state.step_index += 1
        return
    if step.wait is not None:
        state.waiting_on = "time"
        state.wake_at = state.anchor_at + parse_duration(step.wait)
        actions.append(Log("waiting", step.id, f"until {state.wake_at.isoformat()}"))
    elif step.send is not None:
        actions.append(Send(step.id, step.send.channel, step.send.template))
        state.waiting_on = "message"
        state.wake_at = now + settle_window
    elif step.wait_for is not None:
        state.waiting_on = "event"
        state.wake_at = state.anchor_at + parse_duration(step.wait_for.timeout)
        actions.append(
            Log("waiting_for", step.id, f"{step.wait_for.event} until {state.wake_at.isoformat()}")
        )
    elif step.branch is not None:
        taken = _holds(step.branch.condition, facts)
        target = step.branch.then if taken else step.branch.otherwise
        actions.append(
            Log("branched", step.id, f"{'then' if taken else 'else'} -> {target or 'next'}")
        )
        _jump(definition, state, target)
        return
    elif step.exit:
        _end(state, "exited", f"exit_step:{step.id}", actions, step.id)
    elif step.end:
        _end(state, "completed", f"end_step:{step.id}", actions, step.id)


def resolve_where(where: dict[str, Any], state: State) -> dict[str, Any]:
    """Fill ``{{ steps.s1.message_id }}`` / ``{{ trigger.x }}`` placeholders in filter values."""
    resolved: dict[str, Any] = {}
    for key, value in where.items():
        if isinstance(value, str) and "{{" in value:
            resolved[key] = _placeholder(value, state.data)
        else:
            resolved[key] = value
    return resolved


def _placeholder(text: str, data: dict[str, Any]) -> Any:
    inner = text.strip()
    if not (inner.startswith("{{") and inner.endswith("}}")):
        return text
    current: Any = data
    for part in inner[2:-2].strip().split("."):
        current = current.get(part) if isinstance(current, dict) else None
    return current


def _holds(condition: Condition, facts: Facts) -> bool:
    if condition.segment is not None:
        return facts.in_segment(condition.segment) == (condition.value is not False)
    return condition_holds(condition, facts.attributes())


__all__ = ["Action", "Condition", "Facts", "Log", "Send", "State", "advance", "resolve_where"]
