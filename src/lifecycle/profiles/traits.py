"""Applying attribute updates set-wise, keeping every change as history.

Rules: a missing key changes nothing; an explicit ``null`` clears; an update older
(by its own timestamp) than the attribute's last change does not overwrite it; a
write that changes nothing records nothing. Whatever changed queues one
``segments.recheck`` job (names per profile), whichever way the change came in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.orm import Session

from lifecycle import jobs, values
from lifecycle.clock import stamp
from lifecycle.profiles import repository

# Many updates share one moment (a batch, an import): format it once.
_stamp = lru_cache(maxsize=1024)(stamp)


@dataclass
class TraitUpdate:
    profile_id: int
    traits: dict[str, Any]
    at: datetime  # the update's own timestamp
    via: str | None = None  # the identifier the update came through
    fill_only: bool = False  # only set attributes the profile lacks (or holds empty)
    add: dict[str, list[Any]] | None = None  # items added to list attributes (kept once)
    created: bool = False  # the profile was made for this update: its values are its first
    # Opt-outs this update may not undo: (attribute, its companions) each. Where the
    # profile holds True (unsubscribed) and the update would make it anything else, the
    # attribute and its companions (e.g. the matching consent) are left as they are.
    keep_opt_outs: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass
class Applied:
    warnings: list[tuple[int, str]]  # (index of the update, warning)
    changed: set[int]  # indexes of the updates that changed something


def apply_traits(
    session: Session, updates: list[TraitUpdate], *, source: str, now: datetime
) -> Applied:
    """Apply updates in order."""
    if not updates:
        return Applied([], set())
    state = repository.attribute_state(session, sorted({u.profile_id for u in updates}))
    changes: list[dict[str, Any]] = []
    warnings: list[tuple[int, str]] = []
    changed: set[int] = set()
    dirty: set[int] = set()
    names: dict[int, set[str]] = {}  # the attributes changed, per profile
    made: set[int] = set()  # profiles whose first values are written (once, by their maker)
    for index, upd in enumerate(updates):
        attrs, times = state[upd.profile_id]
        found = _apply(attrs, times, upd, index, warnings)
        if not found:
            continue
        dirty.add(upd.profile_id)
        changed.add(index)
        names.setdefault(upd.profile_id, set()).update(name for name, _, _ in found)
        first = upd.created and upd.profile_id not in made
        if first:
            made.add(upd.profile_id)
        changes.extend(
            {
                "profile_id": upd.profile_id,
                "name": name,
                "old_value": old,
                "new_value": value,
                "source": source,
                "changed_at": upd.at,
                "recorded_at": now,
                "via": upd.via,
            }
            for name, old, value in repository.history_of(found, created=first)
        )
    repository.write_attribute_state(session, {pid: state[pid] for pid in dirty}, changes, now)
    if changes:
        # After commit, segments that read these attributes are re-checked for these people.
        jobs.enqueue(
            session,
            "segments.recheck",
            extend="changes",
            changes=[[pid, sorted(found)] for pid, found in sorted(names.items())],
        )
    return Applied(warnings, changed)


def _apply(
    attrs: dict[str, Any],
    times: dict[str, str],
    upd: TraitUpdate,
    index: int,
    warnings: list[tuple[int, str]],
) -> list[tuple[str, Any, Any]]:
    """Apply one update to a profile's state in place; the changes as (name, old, new)."""
    at_text = _stamp(upd.at)
    traits = dict(upd.traits)
    added = upd.add or {}  # items added to a list: an existing person gets them too
    for name, items in added.items():
        current = traits.get(name, attrs.get(name))
        base = (
            list(current)
            if isinstance(current, list)
            else ([] if current in (None, "") else [current])
        )
        traits[name] = base + [item for item in items if item not in base]
    kept: set[str] = set()
    for name, companions in upd.keep_opt_outs:
        # As delivery reads it: True, or a text such as "yes" stored by an API call.
        if (
            name in traits
            and values.boolean(attrs.get(name)) is True
            and values.boolean(traits[name]) is not True
        ):
            kept.update((name, *companions))
            warnings.append(
                (
                    index,
                    f"traits.{name}: this person unsubscribed and stays unsubscribed (an"
                    " import never subscribes anyone again; they opt in themselves)",
                )
            )
    found: list[tuple[str, Any, Any]] = []
    for name, value in traits.items():
        if name in kept:
            continue
        last = times.get(name)
        if last is not None and at_text < last:
            warnings.append(
                (index, f"traits.{name}: older than the last change ({last}); not applied")
            )
            continue
        present = name in attrs
        if (value is None and not present) or (present and attrs[name] == value):
            continue
        if upd.fill_only and present and attrs[name] not in (None, "") and name not in added:
            continue
        old = attrs.get(name)
        if value is None:
            del attrs[name]
        else:
            attrs[name] = value
        times[name] = at_text
        found.append((name, old, value))
    return found


def initial_state(
    upd: TraitUpdate,
) -> tuple[dict[str, Any], dict[str, str], list[tuple[str, Any, Any]]]:
    """The attributes, their times and the changes of a profile made by ``upd`` alone
    (a new person): :func:`apply_traits`'s rules on an empty profile."""
    attrs: dict[str, Any] = {}
    times: dict[str, str] = {}
    return attrs, times, _apply(attrs, times, upd, 0, [])
