"""Unsubscribe links: signed per message, honoured for that message's channel.

The link is ``{public_base_url}/u/{message_id}/{token}`` where the token is an HMAC
of the message id with ``LIFECYCLE_LINK_SECRET``: it cannot be guessed for another
message. Following it sets ``unsubscribed_<channel>`` on the profile (history
source ``unsubscribe``), which every later send of that channel checks.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from sqlalchemy.orm import Session

from lifecycle.delivery.models import Message, MessageEvent
from lifecycle.errors import NotFound
from lifecycle.profiles.traits import TraitUpdate, apply_traits


def token(secret: str, message_id: int) -> str:
    return hmac.new(
        secret.encode(), f"unsubscribe:{message_id}".encode(), hashlib.sha256
    ).hexdigest()[:32]


def url(base: str, secret: str, message_id: int) -> str:
    return f"{base.rstrip('/')}/u/{message_id}/{token(secret, message_id)}"


def verify(session: Session, message_id: int, given: str, *, secret: str) -> Message:
    message = session.get(Message, message_id)
    if message is None or not hmac.compare_digest(given, token(secret, message_id)):
        raise NotFound("this unsubscribe link is not valid")
    return message


def unsubscribe(
    session: Session, message_id: int, given: str, *, secret: str, now: datetime
) -> Message:
    """Idempotent: following the link twice changes nothing more."""
    message = verify(session, message_id, given, secret=secret)
    apply_traits(
        session,
        [TraitUpdate(message.profile_id, {f"unsubscribed_{message.channel}": True}, now, None)],
        source="unsubscribe",
        now=now,
    )
    session.add(
        MessageEvent(
            message_id=message.id, status="unsubscribed", at=now, detail="unsubscribe link followed"
        )
    )
    session.flush()
    return message
