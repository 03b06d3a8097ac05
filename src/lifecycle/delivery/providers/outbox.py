"""The local outbox (embedded default) and its in-memory twin for tests.

``OutboxProvider`` appends each message it would have sent to a JSON-lines file.
``RecordingProvider`` keeps calls in memory and can be scripted per recipient
(a list of answers used call by call, the last one repeating).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from lifecycle.delivery.providers.base import Outgoing, PermanentError, TransientError

Answer = Callable[[Outgoing], str]


class OutboxProvider:
    name = "outbox"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def send(self, message: Outgoing) -> str:
        provider_id = f"outbox-{message.message_id}"
        line = json.dumps({"provider_message_id": provider_id, **asdict(message)})
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        return provider_id


class RecordingProvider:
    """In-memory twin: records every call; answers as scripted (default: success)."""

    name = "recording"

    def __init__(self) -> None:
        self.calls: list[Outgoing] = []
        self.scripts: dict[str, list[tuple[str, str, str] | None]] = {}
        self._used: dict[str, int] = {}
        self._lock = threading.Lock()

    def script(self, recipient: str, answers: list[tuple[str, str, str] | None]) -> None:
        """Answers: ``None`` for success, or (``"transient"|"permanent"``, code, text)."""
        self.scripts[recipient] = answers

    def send(self, message: Outgoing) -> str:
        with self._lock:
            self.calls.append(message)
            answers = self.scripts.get(message.to)
            answer = None
            if answers:
                n = self._used.get(message.to, 0)
                answer = answers[min(n, len(answers) - 1)]
                self._used[message.to] = n + 1
        if answer is not None:
            kind, code, text = answer
            raise (TransientError if kind == "transient" else PermanentError)(code, text)
        return f"rec-{len(self.calls)}-{message.message_id}"

    def sent_to(self, recipient: str) -> list[Outgoing]:
        return [c for c in self.calls if c.to == recipient]
