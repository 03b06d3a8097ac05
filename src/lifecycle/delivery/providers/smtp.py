"""Plain SMTP email provider (smtplib) and its reply-code classification.

One connection per message. The MIME message is multipart/alternative (text, then
HTML) with a Message-ID derived from the idempotency key, which is also what
:meth:`SmtpProvider.send` returns. 4xx replies, refused connections, timeouts and
dropped connections are :class:`TransientError`; 5xx replies are
:class:`PermanentError` carrying the server's code and text.
"""

from __future__ import annotations

import contextlib
import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from lifecycle.delivery.providers.base import (
    Outgoing,
    PermanentError,
    ProviderError,
    TransientError,
)

# Headers this module writes itself; caller-supplied duplicates are ignored.
_OWN_HEADERS = frozenset(
    {"from", "to", "subject", "message-id", "date", "mime-version", "content-type"}
)


def message_id_for(message: Outgoing) -> str:
    """A stable RFC 5322 Message-ID for one message (same key, same id)."""
    digest = hashlib.sha256(message.idempotency_key.encode("utf-8")).hexdigest()[:32]
    _, address = parseaddr(message.sender)
    domain = address.rpartition("@")[2] or "lifecycle.invalid"
    return f"<{digest}.{message.message_id}@{domain}>"


def build_email(message: Outgoing) -> EmailMessage:
    """The MIME message: plain text (when given) and HTML as alternatives."""
    email = EmailMessage()
    email["From"] = message.sender
    email["To"] = message.to
    email["Subject"] = message.subject or ""
    email["Date"] = formatdate(localtime=False, usegmt=True)
    email["Message-ID"] = message_id_for(message)
    for name, value in message.headers.items():
        if name.lower() not in _OWN_HEADERS:
            email[name] = value
    if message.text:
        email.set_content(message.text)
        email.add_alternative(message.body, subtype="html")
    else:
        email.set_content(message.body, subtype="html")
    return email


def _decode(text: bytes | str) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)


def classify_reply(code: int, text: bytes | str) -> TransientError | PermanentError:
    """4xx is temporary by definition (RFC 5321 4.2.1); anything else is final."""
    kind = TransientError if 400 <= code < 500 else PermanentError
    return kind(str(code), _decode(text))


def classify_smtp_error(exc: Exception) -> ProviderError:
    """Map an smtplib/socket failure to the provider error kinds."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        # Only one recipient per message: report its reply.
        code, text = next(iter(exc.recipients.values()), (554, b"recipient refused"))
        return classify_reply(code, text)
    if isinstance(exc, smtplib.SMTPResponseException):
        # SMTPSenderRefused, SMTPDataError, SMTPAuthenticationError, SMTPHeloError, ...
        return classify_reply(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TransientError("disconnected", str(exc) or "server disconnected")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return PermanentError("not_supported", str(exc))
    if isinstance(exc, TimeoutError):
        return TransientError("timeout", str(exc) or "timed out")
    if isinstance(exc, ConnectionRefusedError):
        return TransientError("connection_refused", str(exc))
    if isinstance(exc, OSError):
        return TransientError("network", str(exc) or type(exc).__name__)
    return TransientError("smtp_error", str(exc) or type(exc).__name__)


class SmtpProvider:
    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 30,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.starttls = starttls
        self.timeout = timeout

    def send(self, message: Outgoing) -> str:
        email = build_email(message)
        _, envelope_from = parseaddr(message.sender)
        _, envelope_to = parseaddr(message.to)
        smtp: smtplib.SMTP | None = None
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(
                email,
                from_addr=envelope_from or message.sender,
                to_addrs=[envelope_to or message.to],
            )
        except (smtplib.SMTPException, OSError) as exc:
            if smtp is not None:
                _close_quietly(smtp)
            raise classify_smtp_error(exc) from exc
        # The message is accepted: a failing QUIT must not turn into a resend.
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            _close_quietly(smtp)
        return str(email["Message-ID"])


def _close_quietly(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        smtp.close()
