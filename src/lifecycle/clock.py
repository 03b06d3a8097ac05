"""The one place time comes from, so tests and the demo replay can move it.

``now()`` is timezone-aware UTC. ``set_now`` pins a simulated instant (demo replay,
case tests); ``freezegun`` also works because the real clock reads ``datetime.now``.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

_lock = threading.Lock()
_pinned: datetime | None = None


def now() -> datetime:
    pinned = _pinned
    if pinned is not None:
        return pinned
    return datetime.now(UTC)


def set_now(moment: datetime | None) -> None:
    """Pin the clock to ``moment`` (aware), or release it with ``None``."""
    global _pinned
    if moment is not None and moment.tzinfo is None:
        raise ValueError("the clock needs an aware datetime")
    with _lock:
        _pinned = moment.astimezone(UTC) if moment is not None else None


def as_utc(moment: datetime) -> datetime:
    """Read a datetime from the store as aware UTC (SQLite hands back naive values)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def stamp(moment: datetime) -> str:
    """Fixed-width UTC text that sorts like the instant it names (for JSON fields)."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
