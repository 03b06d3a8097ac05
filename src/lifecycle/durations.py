"""Durations as marketers write them: ``30m``, ``1h``, ``3d``, ``1h30m``, ``2w`` (pure)."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"(\d+)\s*(w|d|h|m|s)")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
MAX_DURATION_SECONDS = 10 * 366 * 86400  # ten years: longer is a typo, and overflows dates


def parse_duration(text: str) -> timedelta:
    """``"1h"``, ``"23h"``, ``"3d"``, ``"1h30m"``, ``"2w"`` -> timedelta (positive)."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a duration such as 30m, 1h, 3d")
    compact = text.replace(" ", "").lower()
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not a duration such as 30m, 1h, 3d")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"{text!r} is longer than {MAX_DURATION_SECONDS // 86400} days")
    return timedelta(seconds=seconds)


__all__ = ["MAX_DURATION_SECONDS", "parse_duration"]
