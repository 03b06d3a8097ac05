"""Amazon SES (API v2) email provider and its error classification.

``SesProvider.send`` calls ``sesv2.send_email`` with simple content (subject, HTML
body, optional text body) and returns SES's ``MessageId``. Failures are sorted into
:class:`TransientError` (throttling, quotas, paused sending, 5xx, network trouble)
and :class:`PermanentError` (rejected content, unverified sender, bad request, ...).
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ParamValidationError,
)

from lifecycle.delivery.providers.base import Outgoing, PermanentError, TransientError

# Error codes worth retrying later. ``SendingPausedException`` is an account-level
# pause (for example while a review is open) that can be lifted; the retry schedule
# gives it hours. ``AccountSuspendedException`` is permanent by AWS's own wording.
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "LimitExceededException",
        "SendingPausedException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)

# Headers that SES composes itself from the request; never passed through.
_OWN_HEADERS = frozenset({"from", "to", "subject", "message-id", "cc", "bcc", "date"})

_CHARSET = "UTF-8"


def classify_client_error(exc: ClientError) -> TransientError | PermanentError:
    """Map a botocore ``ClientError`` to the provider error kinds (code, AWS message)."""
    error = exc.response.get("Error", {}) or {}
    code = str(error.get("Code") or "Unknown")
    text = str(error.get("Message") or exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in TRANSIENT_CODES:
        return TransientError(code, text)
    if isinstance(status, int) and (status == 429 or status >= 500):
        return TransientError(code, text)
    return PermanentError(code, text)


def classify_botocore_error(exc: BotoCoreError) -> TransientError | PermanentError:
    """Client-side failures: bad parameters are permanent, the rest (connection
    errors, read timeouts, credentials not yet available) is worth retrying."""
    code = type(exc).__name__
    if isinstance(exc, ParamValidationError):
        return PermanentError(code, str(exc))
    return TransientError(code, str(exc))


class SesProvider:
    name = "ses"

    def __init__(
        self,
        client: Any = None,
        *,
        region: str,
        endpoint_url: str | None = None,
        configuration_set: str | None = None,
        connect_timeout: float = 10,
        read_timeout: float = 30,
    ) -> None:
        if client is None:
            client = boto3.client(
                "sesv2",
                region_name=region,
                endpoint_url=endpoint_url,
                config=Config(
                    connect_timeout=connect_timeout,
                    read_timeout=read_timeout,
                    # Our own retry schedule does the long waits; keep botocore's short.
                    retries={"mode": "standard", "max_attempts": 2},
                ),
            )
        self.client = client
        self.region = region
        self.configuration_set = configuration_set

    def build_request(self, message: Outgoing) -> dict[str, Any]:
        """The ``send_email`` keyword arguments for one message."""
        body: dict[str, Any] = {"Html": {"Data": message.body, "Charset": _CHARSET}}
        if message.text:
            body["Text"] = {"Data": message.text, "Charset": _CHARSET}
        simple: dict[str, Any] = {
            "Subject": {"Data": message.subject or "", "Charset": _CHARSET},
            "Body": body,
        }
        headers = [
            {"Name": name, "Value": value}
            for name, value in message.headers.items()
            if name.lower() not in _OWN_HEADERS
        ]
        if headers:
            simple["Headers"] = headers
        request: dict[str, Any] = {
            "FromEmailAddress": message.sender,
            "Destination": {"ToAddresses": [message.to]},
            "Content": {"Simple": simple},
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        return request

    def send(self, message: Outgoing) -> str:
        request = self.build_request(message)
        try:
            response = self.client.send_email(**request)
        except ClientError as exc:
            raise classify_client_error(exc) from exc
        except BotoCoreError as exc:
            raise classify_botocore_error(exc) from exc
        return str(response["MessageId"])
