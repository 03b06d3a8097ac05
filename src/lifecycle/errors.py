"""Errors with meaning, not HTTP codes; ``api/errors.py`` maps them to responses.

LifecycleError
 ├── NotFound      a profile, campaign or message that does not exist
 ├── Conflict      the request contradicts what is stored
 └── Invalid       bad input; ``field`` names what is wrong (``traits.email``, ``line 12``)
"""

from __future__ import annotations


class LifecycleError(Exception):
    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(LifecycleError):
    pass


class Conflict(LifecycleError):
    pass


class Invalid(LifecycleError):
    pass


class TooLarge(Invalid):
    pass
