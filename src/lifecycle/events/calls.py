"""Parsing Segment HTTP API calls (identify, track, alias, page, screen); pure, no database.

Each error names the field at fault (``traits.email``, ``timestamp``). Identifier
values that cannot identify anyone are not errors: they become warnings and the
call is still stored.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lifecycle.errors import Invalid
from lifecycle.profiles.identifiers import Identifier, NotAnIdentifier, normalize

TYPES = ("identify", "track", "alias", "page", "screen")
MAX_AHEAD = timedelta(hours=24)


@dataclass
class Call:
    type: str
    name: str | None
    message_id: str
    occurred_at: datetime
    identifiers: list[Identifier]
    traits: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    backfill: bool = False
    warnings: list[str] = field(default_factory=list)
    # Identifiers given but not usable, as (where, reason): e.g. ("traits.email", ...).
    refused: list[tuple[str, str]] = field(default_factory=list)

    @property
    def via(self) -> str | None:
        """The identifier that names whom this call is about (the first usable one)."""
        first = self.identifiers[0] if self.identifiers else None
        return f"{first.kind}:{first.value}" if first else None


def parse_time(value: Any, where: str) -> datetime:
    """ISO 8601; a value without an offset is read as UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise Invalid(f"{value!r} is not an ISO 8601 date-time", field=where) from None
    else:
        raise Invalid("must be an ISO 8601 date-time string", field=where)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the last representable instant
        raise Invalid(f"{value!r} is out of range", field=where) from None


# The parts of a call that are stored (as text or JSON), so must be storable.
STORED = (
    "userId",
    "anonymousId",
    "previousId",
    "messageId",
    "event",
    "name",
    "traits",
    "properties",
    "context",
)


def _unstorable(value: Any, where: str) -> tuple[str, str] | None:
    """The first value the database cannot store (a NUL character, a non-finite number).

    Iterative, so deeply nested JSON cannot exhaust the stack.
    """
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return path, "contains a NUL character (\\u0000), which cannot be stored"
            if not _utf8(item):
                return path, "contains a lone UTF-16 surrogate, which is not text"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return path, f"{item} is not a finite number"
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                if isinstance(key, str) and ("\x00" in key or not _utf8(key)):
                    return path, "a key contains a NUL character (\\u0000), which cannot be stored"
                children.append((child, f"{path}.{key}"))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend(reversed([(child, f"{path}[{i}]") for i, child in enumerate(item)]))
    return None


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _storable_text(text: str) -> bool:
    return "\x00" not in text and (text.isascii() or _utf8(text))


_SCALARS = (bool, int)


def _plainly_storable(value: Any) -> bool:
    """A value of the common shape (text, a yes/no, a whole number, or an object of them:
    an identify's traits, a CSV row) that is storable; False means "look closer"."""
    kind = type(value)
    if value is None or kind in _SCALARS:
        return True
    if kind is str:
        return _storable_text(value)
    if kind is not dict:
        return False
    for key, item in value.items():
        if type(key) is not str or not _storable_text(key):
            return False
        kind = type(item)
        if kind is str:
            if not _storable_text(item):
                return False
        elif not (item is None or kind in _SCALARS):
            return False
    return True


def _check_storable(raw: dict[str, Any]) -> None:
    """Reject a NUL character or a non-finite number, naming where it is.

    A flat call of text, yes/no and whole numbers is checked value by value; else one
    serialisation answers for a clean call; only a suspect call is walked.
    """
    stored = [raw.get(key) for key in STORED]
    if all(_plainly_storable(value) for value in stored):
        return
    try:
        text = json.dumps(stored, allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")  # a lone surrogate cannot be encoded
        if "\\u0000" not in text:
            return
    except ValueError:  # also UnicodeEncodeError
        pass
    for key, value in zip(STORED, stored, strict=True):
        bad = _unstorable(value, key)
        if bad is not None:
            raise Invalid(bad[1], field=bad[0])


def _object(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid("must be a JSON object", field=key)
    return value


def _text(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Invalid("must be a string", field=key)
    return str(value)


def parse_call(
    raw: Any,
    *,
    call_type: str | None,
    now: datetime,
    default_region: str = "US",
    extra_junk: frozenset[str] = frozenset(),
    phone_rules: frozenset[str] = frozenset(),
    require_user_or_anonymous: bool = True,
) -> Call:
    """Validate one call. ``call_type`` is fixed by the endpoint, or read from ``type``."""
    if not isinstance(raw, dict):
        raise Invalid("each call must be a JSON object", field="")
    kind = call_type or raw.get("type")
    if kind not in TYPES:
        raise Invalid(f"type {kind!r} is not one of {', '.join(TYPES)}", field="type")
    _check_storable(raw)

    user_id = _text(raw, "userId")
    anonymous_id = _text(raw, "anonymousId")
    traits = _object(raw, "traits")
    properties = _object(raw, "properties")
    context = _object(raw, "context")
    message_id = _text(raw, "messageId") or f"generated-{uuid.uuid4()}"
    if len(message_id) > 200:
        raise Invalid("longer than 200 characters", field="messageId")
    occurred_at = now
    if raw.get("timestamp") is not None:
        occurred_at = parse_time(raw["timestamp"], "timestamp")
        if occurred_at > now + MAX_AHEAD:
            # A clock far ahead would freeze the profile: every later change looks older.
            raise Invalid(
                f"{raw['timestamp']!r} is more than {MAX_AHEAD} ahead of the server's clock",
                field="timestamp",
            )
    backfill = raw.get("backfill", False)
    if not isinstance(backfill, bool):
        raise Invalid("must be true or false", field="backfill")

    if kind == "identify":
        for key in traits:
            if len(key) > 255:  # attribute names are stored as VARCHAR(255)
                raise Invalid(
                    f"trait name {key[:40]!r}... is longer than 255 characters", field="traits"
                )

    name: str | None = None
    if kind == "track":
        event = raw.get("event")
        if not isinstance(event, str) or not event.strip():
            raise Invalid("a track call needs a non-empty event name", field="event")
        if len(event) > 255:
            raise Invalid("longer than 255 characters", field="event")
        name = event.strip()
    elif kind in ("page", "screen"):
        name = "Page Viewed" if kind == "page" else "Screen Viewed"
        if raw.get("name") is not None:
            properties = {"name": raw["name"], **properties}
    previous_id = _text(raw, "previousId")
    if kind == "alias" and (previous_id is None or user_id is None):
        raise Invalid("an alias call needs both userId and previousId", field="previousId")
    if user_id is None and anonymous_id is None and require_user_or_anonymous:
        raise Invalid("either userId or anonymousId is required", field="userId")

    warnings: list[str] = []
    identifiers: list[Identifier] = []
    wanted: list[tuple[str, str, Any]] = [
        ("id", "userId", user_id),
        ("anonymous_id", "anonymousId", anonymous_id),
        ("anonymous_id", "previousId", previous_id),
    ]
    context_traits = context.get("traits") if isinstance(context.get("traits"), dict) else {}
    for source, where in ((traits, "traits"), (context_traits, "context.traits")):
        for kind_name in ("email", "phone"):
            if source.get(kind_name) not in (None, ""):
                wanted.append((kind_name, f"{where}.{kind_name}", source[kind_name]))
    seen: set[tuple[str, str]] = set()
    refused: list[tuple[str, str]] = []
    for ident_kind, where, value in wanted:
        if value is None:
            continue
        try:
            ident = normalize(
                ident_kind,
                value,
                default_region=default_region,
                extra_junk=extra_junk,
                rules=phone_rules,
            )
        except NotAnIdentifier as err:
            warnings.append(f"{where}: {err}; not used to identify")
            refused.append((where, str(err)))
            continue
        if ident.key not in seen:
            seen.add(ident.key)
            identifiers.append(ident)
    if not identifiers:
        # Only junk or invalid identifiers: the call names nobody, so it cannot be
        # attributed; the answer names what was refused.
        where, reason = refused[0] if refused else ("userId", "no identifier")
        for name in ("anonymousId", "userId"):
            hit = next((r for r in refused if r[0] == name), None)
            if hit:
                where, reason = hit
                break
        raise Invalid(f"{reason}; the call names nobody", field=where)
    return Call(
        type=kind,
        name=name,
        message_id=message_id,
        occurred_at=occurred_at,
        identifiers=identifiers,
        traits=traits if kind == "identify" else {},
        properties=properties,
        context=context,
        backfill=backfill,
        warnings=warnings,
        refused=refused,
    )
