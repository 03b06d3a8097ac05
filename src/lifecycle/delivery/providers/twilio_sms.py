"""Twilio SMS provider (official ``twilio`` package) and its error classification.

``TwilioProvider.send`` calls ``messages.create`` and returns the message SID.
Rate limits, queue overflow, 5xx and network errors are :class:`TransientError`;
other 4xx answers (invalid number, unsubscribed recipient, ...) are
:class:`PermanentError` with Twilio's numeric code as text.

``base_url`` points every API call at another origin (a local fake in tests): the
client gets a :class:`RedirectingHttpClient`, which swaps the scheme and host of any
``*.twilio.com`` URL for ``base_url`` and keeps the path.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from lifecycle.delivery.providers.base import (
    Outgoing,
    PermanentError,
    ProviderError,
    TransientError,
)

# 20429 too many requests, 30001 queue overflow, 20500 internal error,
# 20503 service unavailable, 14107 outbound SMS rate limit.
TRANSIENT_CODES = frozenset({20429, 30001, 20500, 20503, 14107})

_UNABLE_PREFIX = re.compile(r"^Unable to \w+ record:\s*")


class RedirectingHttpClient(TwilioHttpClient):
    """A ``TwilioHttpClient`` that sends ``https://<anything>.twilio.com/<path>``
    to ``<base_url>/<path>`` instead."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def rewrite(self, url: str) -> str:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if host != "twilio.com" and not host.endswith(".twilio.com"):
            return url
        base = urlsplit(self.base_url)
        path = base.path.rstrip("/") + parts.path
        return urlunsplit((base.scheme, base.netloc, path, parts.query, parts.fragment))

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        return super().request(method, self.rewrite(url), *args, **kwargs)


def classify_twilio_error(
    exc: TwilioRestException | TwilioServiceException,
) -> TransientError | PermanentError:
    """Map a Twilio API error to the provider error kinds (code, Twilio's message)."""
    status = int(getattr(exc, "status", 0) or 0)
    raw_code = getattr(exc, "code", None)
    code = str(raw_code if raw_code is not None else status)
    if isinstance(exc, TwilioServiceException):
        text = exc.detail or exc.title
    else:
        text = _UNABLE_PREFIX.sub("", exc.msg or "") or f"HTTP {status}"
    try:
        numeric = int(code)
    except ValueError:
        numeric = 0
    if status == 429 or status >= 500 or numeric in TRANSIENT_CODES:
        return TransientError(code, text)
    return PermanentError(code, text)


def classify_request_error(exc: requests.RequestException) -> ProviderError:
    """Network trouble is transient; a malformed URL (configuration) is not."""
    if isinstance(
        exc,
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ),
    ):
        return PermanentError(type(exc).__name__, str(exc))
    return TransientError(type(exc).__name__, str(exc) or "network error")


class TwilioProvider:
    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        base_url: str | None = None,
        client: Any = None,
        timeout: float = 30,
    ) -> None:
        if client is None:
            http_client = (
                RedirectingHttpClient(base_url, timeout=timeout)
                if base_url
                else TwilioHttpClient(timeout=timeout)
            )
            client = Client(account_sid, auth_token, http_client=http_client)
        self.client = client
        self.account_sid = account_sid

    def send(self, message: Outgoing) -> str:
        params: dict[str, Any] = {"to": message.to, "body": message.body}
        if message.sender.startswith("MG"):
            params["messaging_service_sid"] = message.sender
        else:
            params["from_"] = message.sender
        try:
            created = self.client.messages.create(**params)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise classify_twilio_error(exc) from exc
        except requests.RequestException as exc:
            raise classify_request_error(exc) from exc
        sid = getattr(created, "sid", None)
        if not sid:
            # Accepted but unidentifiable: retrying could send it twice.
            raise PermanentError("no_sid", "Twilio accepted the request but returned no SID")
        return str(sid)
