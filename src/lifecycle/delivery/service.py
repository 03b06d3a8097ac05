"""Messages: written before they are queued, claimed before they are sent, never sent twice.

Flow (the ``delivery.send`` actor runs the three parts in three transactions):

1. :func:`create_message` writes the row with its idempotency key (journey + step)
   and queues ``delivery.send`` after commit. The same key twice returns the row
   that exists, and queues nothing.
2. :func:`claim` moves ``queued``/``retrying`` -> ``sending`` atomically. A duplicate
   queue message finds nothing to claim and does nothing.
3. :func:`record_outcome` stores ``sent``, ``retrying`` (with ``next_attempt_at`` by
   the backoff schedule) or ``failed`` with the provider's code and text; a final
   status queues ``journeys.resume`` so the journey moves on.

Retries are durable rows, not timers in the broker: the scheduler re-queues
messages whose ``next_attempt_at`` has come (see ``docs/delivery.md``). A message
left in ``sending`` (worker died mid-call) becomes ``uncertain`` and is not re-sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lifecycle import jobs, values
from lifecycle.delivery import unsubscribe
from lifecycle.delivery.models import FINAL_STATUSES, Message, MessageEvent
from lifecycle.delivery.providers.base import Outgoing, PermanentError, Provider, TransientError
from lifecycle.profiles.models import Profile
from lifecycle.profiles.service import contact_for
from lifecycle.rendering.templates import RenderError, Templates


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int
    retry_delays: list[float]
    email_from: str
    sms_from: str
    public_base_url: str
    link_secret: str = "dev-link-secret"

    def delay_after(self, attempt: int) -> timedelta:
        delays = self.retry_delays or [60.0]
        return timedelta(seconds=delays[min(attempt - 1, len(delays) - 1)])

    def retry_window(self) -> timedelta:
        return sum((self.delay_after(a) for a in range(1, self.max_attempts)), timedelta())


def _status(
    session: Session, message: Message, status: str, now: datetime, detail: str = ""
) -> None:
    message.status = status
    message.updated_at = now
    session.add(MessageEvent(message_id=message.id, status=status, at=now, detail=detail))


def create_message(
    session: Session,
    *,
    idempotency_key: str,
    profile_id: int,
    channel: str,
    template: str,
    now: datetime,
    journey_id: int | None = None,
    campaign: str | None = None,
    campaign_version: int | None = None,
    step_id: str | None = None,
    context: dict[str, Any] | None = None,
    reason: str = "",
) -> Message:
    """Write the message (or return the one with this key); queue its send after commit."""
    existing = session.scalar(select(Message).where(Message.idempotency_key == idempotency_key))
    if existing is not None:
        return existing
    recipient = contact_for(session, profile_id, channel)
    message = Message(
        idempotency_key=idempotency_key,
        profile_id=profile_id,
        journey_id=journey_id,
        campaign=campaign,
        campaign_version=campaign_version,
        step_id=step_id,
        channel=channel,
        template=template,
        recipient=recipient,
        status="queued",
        attempts=0,
        context=context or {},
        reason=reason,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(message)
            session.flush()
    except IntegrityError:
        found = session.scalar(select(Message).where(Message.idempotency_key == idempotency_key))
        if found is None:
            raise
        return found
    if recipient is None:
        _status(session, message, "skipped", now, f"the profile has no {channel} address")
        _settled(session, message)
        return message
    session.add(MessageEvent(message_id=message.id, status="queued", at=now, detail=reason))
    jobs.enqueue(session, "delivery.send", message_id=message.id)
    return message


def _settled(session: Session, message: Message) -> None:
    if message.journey_id is not None:
        jobs.enqueue(session, "journeys.resume", journey_id=message.journey_id)


def claim(
    session: Session,
    message_id: int,
    *,
    now: datetime,
    templates: Templates,
    policy: DeliveryPolicy,
) -> Outgoing | None:
    """Take the message for sending, or return None if it is not due or not ours to send.

    Suppression and rendering are settled here, before any provider is called.
    """
    claimed = session.execute(
        update(Message)
        .where(
            Message.id == message_id,
            Message.status.in_(("queued", "retrying")),
            (Message.next_attempt_at.is_(None)) | (Message.next_attempt_at <= now),
        )
        .values(status="sending", attempts=Message.attempts + 1, updated_at=now)
        .returning(Message.id)
    ).scalar()
    if claimed is None:
        return None
    message = session.get(Message, message_id, populate_existing=True)
    assert message is not None
    profile = session.get(Profile, message.profile_id)
    attributes = dict(profile.attributes) if profile else {}
    # The same reading of yes/no as the segments' consent condition: a CSV's "TRUE" or
    # "yes" is an unsubscribe as much as JSON true is.
    if (
        values.boolean(attributes.get("unsubscribed")) is True
        or values.boolean(attributes.get(f"unsubscribed_{message.channel}")) is True
    ):
        _status(session, message, "suppressed", now, "the profile is unsubscribed")
        _settled(session, message)
        return None
    context = {
        "profile": attributes,
        "trigger": message.context.get("trigger", {}),
        "campaign": message.campaign,
        "message": {"id": message.id},
        "links": {
            "unsubscribe": unsubscribe.url(policy.public_base_url, policy.link_secret, message.id),
        },
    }
    try:
        rendered = templates.render(message.channel, message.template, context)
    except RenderError as err:
        message.error_code = "template_error"
        message.error_message = str(err)
        _status(session, message, "failed", now, f"template: {err}")
        _settled(session, message)
        return None
    message.subject = rendered.subject
    message.body = rendered.body
    session.add(
        MessageEvent(
            message_id=message.id, status="sending", at=now, detail=f"attempt {message.attempts}"
        )
    )
    assert message.recipient is not None
    return Outgoing(
        message_id=message.id,
        idempotency_key=message.idempotency_key,
        channel=message.channel,
        to=message.recipient,
        sender=policy.email_from if message.channel == "email" else policy.sms_from,
        body=rendered.body,
        subject=rendered.subject,
        text=rendered.text,
        headers=(
            {
                "List-Unsubscribe": f"<{context['links']['unsubscribe']}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
            if message.channel == "email"
            else {}
        ),
    )


@dataclass(frozen=True)
class Outcome:
    provider: str
    provider_message_id: str | None = None
    error: Exception | None = None


def call_provider(provider: Provider, outgoing: Outgoing) -> Outcome:
    """The only part that talks to the outside world; it never touches the database."""
    try:
        return Outcome(provider.name, provider.send(outgoing))
    except (TransientError, PermanentError) as err:
        return Outcome(provider.name, error=err)
    except Exception as err:  # an unknown failure: retry, never lose the message
        return Outcome(provider.name, error=TransientError(type(err).__name__, str(err)))


def record_outcome(
    session: Session, message_id: int, outcome: Outcome, *, now: datetime, policy: DeliveryPolicy
) -> Message:
    message = session.get(Message, message_id, with_for_update=True, populate_existing=True)
    assert message is not None
    message.provider = outcome.provider
    err = outcome.error
    if err is None:
        message.provider_message_id = outcome.provider_message_id
        message.sent_at = now
        message.next_attempt_at = None
        _status(
            session, message, "sent", now, f"{outcome.provider} id {outcome.provider_message_id}"
        )
        _settled(session, message)
        return message
    code = getattr(err, "code", type(err).__name__)
    text = getattr(err, "message", str(err))
    message.error_code = code
    message.error_message = text
    if isinstance(err, TransientError) and message.attempts < policy.max_attempts:
        message.next_attempt_at = now + policy.delay_after(message.attempts)
        _status(
            session,
            message,
            "retrying",
            now,
            f"attempt {message.attempts} failed ({code}: {text}); next at {message.next_attempt_at.isoformat()}",
        )
        return message
    message.next_attempt_at = None
    if isinstance(err, TransientError):
        detail = f"failed after retries ({message.attempts} attempts); last error {code}: {text}"
        message.error_code = f"retries_exhausted:{code}"
    else:
        detail = f"permanent failure {code}: {text}"
    _status(session, message, "failed", now, detail)
    _settled(session, message)
    return message


def due_retries(session: Session, *, now: datetime, limit: int = 500) -> list[int]:
    """Messages whose next attempt has come, or queued ones whose job was lost."""
    return list(
        session.scalars(
            select(Message.id)
            .where(
                ((Message.status == "retrying") & (Message.next_attempt_at <= now))
                | (
                    (Message.status == "queued")
                    & (Message.updated_at <= now - timedelta(minutes=5))
                )
            )
            .order_by(Message.id)
            .limit(limit)
        )
    )


def next_retry(session: Session) -> datetime | None:
    return session.scalar(
        select(func.min(Message.next_attempt_at)).where(Message.status == "retrying")
    )


def mark_uncertain(session: Session, *, now: datetime, older_than: timedelta) -> list[int]:
    """Messages stuck in ``sending``: possibly handed over, so never re-sent blindly."""
    stuck = list(
        session.scalars(
            select(Message).where(
                Message.status == "sending", Message.updated_at <= now - older_than
            )
        )
    )
    for message in stuck:
        _status(
            session,
            message,
            "uncertain",
            now,
            "worker stopped during the provider call; not re-sent",
        )
        _settled(session, message)
    return [m.id for m in stuck]


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES
