"""The campaign YAML format as pydantic models, and durations (pure: no database).

See ``docs/campaigns.md`` for the reference a marketer reads.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from lifecycle.durations import parse_duration

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_STEP_REF = re.compile(r"^steps\.([A-Za-z0-9_\-]+)\.message_id$")
_TRIGGER_REF = re.compile(r"^trigger\.[A-Za-z0-9_\-]+$")


def _placeholders(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [p for v in value.values() for p in _placeholders(v)]
    if isinstance(value, str):
        return [m.strip() for m in _PLACEHOLDER.findall(value)]
    return []


def _placeholder_problem(text: str, sends: set[str], in_journey: bool) -> str | None:
    """Filter values may name {{ steps.<send step>.message_id }} or {{ trigger.<property> }}."""
    if not in_journey:
        return f"{{{{ {text} }}}}: a trigger's filter cannot use placeholders (no journey yet)"
    step = _STEP_REF.match(text)
    if step:
        return (
            None
            if step.group(1) in sends
            else f"{{{{ {text} }}}}: no send step has the id {step.group(1)!r}"
        )
    if _TRIGGER_REF.match(text):
        return None
    return f"{{{{ {text} }}}}: use {{{{ steps.<send step id>.message_id }}}} or {{{{ trigger.<property> }}}}"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


OPS = ("equals", "not_equals", "in", "contains", "exists", "gt", "gte", "lt", "lte")


class Condition(Strict):
    """A test on a profile attribute, ``{attribute: vip, op: equals, value: true}``, or
    membership of a segment checked at that moment, ``{segment: vip}`` (``value: false``
    for "not in it")."""

    attribute: str | None = None
    segment: str | None = None
    op: Literal[OPS] = "equals"  # type: ignore[valid-type]
    value: Any = None

    @model_validator(mode="after")
    def _one_subject(self) -> Condition:
        if (self.attribute is None) == (self.segment is None):
            raise ValueError("a condition names one attribute or one segment")
        if self.segment is not None and (
            self.op != "equals" or self.value not in (None, True, False)
        ):
            raise ValueError(
                "a segment condition is {segment: name} or {segment: name, value: false}"
            )
        return self


class EventFilter(Strict):
    """An event name and property filters: ``where: {category: shoes, price: {gt: 100}}``.

    String values in ``where`` may use ``{{ steps.<id>.message_id }}`` and
    ``{{ trigger.<property> }}``.
    """

    event: str = Field(min_length=1)
    where: dict[str, Any] = Field(default_factory=dict)

    @field_validator("where")
    @classmethod
    def _ops(cls, where: dict[str, Any]) -> dict[str, Any]:
        for prop, test in where.items():
            if isinstance(test, dict):
                unknown = set(test) - set(OPS)
                if unknown:
                    raise ValueError(f"{prop}: unknown operator(s) {sorted(unknown)}")
        return where


class Trigger(EventFilter):
    """What starts a journey: an event (``event``, ``where``); entering or leaving a
    segment because of new data or time passing (``segment``, ``on: entered|exited``);
    or a broadcast to a segment's members at a set time (``broadcast``, ``at``)."""

    event: str | None = Field(default=None, min_length=1)  # type: ignore[assignment]
    segment: str | None = Field(default=None, min_length=1)
    on: Literal["entered", "exited"] | None = None
    broadcast: str | None = Field(default=None, min_length=1)
    at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        kinds = [k for k in ("event", "segment", "broadcast") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a trigger names one event, one segment or one broadcast")
        if self.event is None and self.where:
            raise ValueError("where filters an event trigger")
        if self.segment is None and self.on is not None:
            raise ValueError("on (entered or exited) goes with a segment trigger")
        if (self.broadcast is None) != (self.at is None):
            raise ValueError("a broadcast needs at: the time to send, with its offset")
        return self


class SendSpec(Strict):
    channel: Literal["email", "sms", "push"]
    template: str = Field(min_length=1)


class WaitFor(Strict):
    event: str = Field(min_length=1)
    where: dict[str, Any] = Field(default_factory=dict)
    timeout: str

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        parse_duration(value)
        return value


class Branch(Strict):
    condition: Condition = Field(alias="if")
    then: str
    otherwise: str | None = Field(default=None, alias="else")


# exit: leave the journey early (status exited); end: finish it here (status completed).
STEP_KINDS = ("wait", "send", "wait_for", "branch", "exit", "end")


class Step(Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_\-]+$")
    condition: Condition | None = Field(default=None, alias="if")
    wait: str | None = None
    send: SendSpec | None = None
    wait_for: WaitFor | None = None
    on_event: str | None = None
    on_timeout: str | None = None
    branch: Branch | None = None
    exit: bool | None = None
    end: bool | None = None

    @field_validator("wait")
    @classmethod
    def _wait(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        actions = [k for k in STEP_KINDS if getattr(self, k)]
        if len(actions) != 1:
            raise ValueError(
                "a step needs exactly one of "
                + ", ".join(STEP_KINDS)
                + (f" (found {', '.join(actions)})" if actions else "")
            )
        if (self.on_event or self.on_timeout) and not self.wait_for:
            raise ValueError("on_event and on_timeout belong to a wait_for step")
        return self

    @property
    def kind(self) -> str:
        for k in STEP_KINDS:
            if getattr(self, k):
                return k
        raise AssertionError("validated step has an action")


# Validation context key: the caller (the loader) reports reference problems itself, with lines.
REFERENCES_REPORTED_BY_CALLER = "references_reported_by_caller"


def _dotted(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in loc)


class CampaignDef(Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_\-]+$")
    description: str = ""
    trigger: Trigger
    goal: EventFilter | None = None
    exit_when: EventFilter | None = None
    reentry: Literal["after_exit", "never"] = "after_exit"
    on_send_failure: Literal["continue", "exit"] = "continue"
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _targets(self, info: ValidationInfo) -> CampaignDef:
        if (info.context or {}).get(REFERENCES_REPORTED_BY_CALLER):
            return self  # the loader reports each one at its own line
        problems = self.reference_problems()
        if problems:
            raise ValueError("; ".join(f"{_dotted(loc)}: {text}" for loc, text in problems))
        return self

    def reference_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Duplicate step ids and targets naming no step, each with its location (YAML keys)."""
        problems: list[tuple[tuple[str | int, ...], str]] = []
        first: dict[str, int] = {}
        for i, step in enumerate(self.steps):
            if step.id in first:
                used = f"step id {step.id!r} is already used by steps.{first[step.id]}"
                problems.append((("steps", i, "id"), used))
            first.setdefault(step.id, i)
        for i, step in enumerate(self.steps):
            targets: list[tuple[tuple[str | int, ...], str | None]] = [
                (("steps", i, "on_event"), step.on_event),
                (("steps", i, "on_timeout"), step.on_timeout),
            ]
            if step.branch:
                targets += [
                    (("steps", i, "branch", "then"), step.branch.then),
                    (("steps", i, "branch", "else"), step.branch.otherwise),
                ]
            for loc, target in targets:
                if target is not None and target not in first:
                    problems.append((loc, f"no step has the id {target!r}"))
        filters: list[tuple[tuple[str | int, ...], dict[str, Any], bool]] = []
        if self.trigger.event is not None:
            filters.append((("trigger", "where"), self.trigger.where, False))
        filters += [
            ((key, "where"), f.where, True)
            for key, f in (("goal", self.goal), ("exit_when", self.exit_when))
            if f
        ]
        filters += [
            (("steps", i, "wait_for", "where"), s.wait_for.where, True)
            for i, s in enumerate(self.steps)
            if s.wait_for
        ]
        sends = {s.id for s in self.steps if s.send}
        for loc, where, in_journey in filters:
            for prop, value in where.items():
                for text in _placeholders(value):
                    problem = _placeholder_problem(text, sends, in_journey)
                    if problem:
                        problems.append(((*loc, prop), problem))
        return problems

    def segments(self) -> set[str]:
        """Segment names this campaign uses (trigger and conditions)."""
        names = {n for n in (self.trigger.segment, self.trigger.broadcast) if n}
        for step in self.steps:
            for condition in (step.condition, step.branch.condition if step.branch else None):
                if condition is not None and condition.segment:
                    names.add(condition.segment)
        return names

    def watched_events(self) -> set[str]:
        """Event names that can move a journey of this campaign."""
        names = {s.wait_for.event for s in self.steps if s.wait_for}
        for f in (self.goal, self.exit_when):
            if f is not None:
                names.add(f.event)
        return names
