"""The provider interface: one method, two kinds of failure.

A provider takes an :class:`Outgoing` and returns the provider's message id, or
raises :class:`TransientError` (worth retrying: throttling, 5xx, timeouts) or
:class:`PermanentError` (retrying cannot help: rejected address, bad request).
Both carry the provider's own code and text, which end up on the message row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Outgoing:
    message_id: int
    idempotency_key: str
    channel: str  # email | sms | push
    to: str
    sender: str
    body: str  # email: HTML body; sms/push: the text
    subject: str | None = None
    text: str | None = None  # email: plain-text alternative
    headers: dict[str, str] = field(default_factory=dict)


class ProviderError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TransientError(ProviderError):
    """Retry later with backoff."""


class PermanentError(ProviderError):
    """Fail the message with the provider's reason; do not retry."""


class Provider(Protocol):
    name: str

    def send(self, message: Outgoing) -> str:
        """Hand the message over; return the provider's id for it."""
        ...
