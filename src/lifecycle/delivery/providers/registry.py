"""Chooses the provider for each channel from settings.

:func:`build_providers` returns ``{"email": ..., "sms": ..., "push": ...}``. Real
providers are imported only when chosen, so boto3 and twilio load only if used;
every channel left on "outbox" shares one :class:`OutboxProvider`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lifecycle.delivery.providers.base import Provider
from lifecycle.delivery.providers.outbox import OutboxProvider

if TYPE_CHECKING:
    from lifecycle.config import Settings


def build_providers(settings: Settings) -> dict[str, Provider]:
    outbox: OutboxProvider | None = None

    def shared_outbox() -> OutboxProvider:
        nonlocal outbox
        if outbox is None:
            outbox = OutboxProvider(settings.outbox_path)
        return outbox

    email: Provider
    if settings.email_provider == "ses":
        from lifecycle.delivery.providers.ses import SesProvider

        email = SesProvider(
            region=settings.ses_region,
            endpoint_url=settings.ses_endpoint_url,
            configuration_set=settings.ses_configuration_set,
        )
    elif settings.email_provider == "smtp":
        from lifecycle.delivery.providers.smtp import SmtpProvider

        email = SmtpProvider(
            settings.smtp_host,
            settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
    elif settings.email_provider == "outbox":
        email = shared_outbox()
    else:
        raise ValueError(f"unknown email provider: {settings.email_provider!r}")

    sms: Provider
    if settings.sms_provider == "twilio":
        from lifecycle.delivery.providers.twilio_sms import TwilioProvider

        sms = TwilioProvider(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            base_url=settings.twilio_base_url,
        )
    elif settings.sms_provider == "outbox":
        sms = shared_outbox()
    else:
        raise ValueError(f"unknown sms provider: {settings.sms_provider!r}")

    if settings.push_provider != "outbox":
        raise ValueError(f"unknown push provider: {settings.push_provider!r}")
    push: Provider = shared_outbox()

    return {"email": email, "sms": sms, "push": push}
