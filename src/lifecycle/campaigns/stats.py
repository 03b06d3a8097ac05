"""Campaign figures: journeys by status, messages by channel and status, conversions."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from lifecycle.campaigns.models import Campaign, Journey
from lifecycle.delivery.models import Message


def campaign_stats(session: Session) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"journeys": {}, "started": 0, "converted": 0, "messages": {}}
    )
    for name, status, count in session.execute(
        select(Campaign.name, Journey.status, func.count())
        .join(Journey, Journey.campaign_id == Campaign.id)
        .group_by(Campaign.name, Journey.status)
    ):
        out[name]["journeys"][status] = count
        out[name]["started"] += count
        if status == "converted":
            out[name]["converted"] = count
    exhausted = Message.error_code.like("retries_exhausted:%")
    outcome = case(
        (and_(Message.status == "failed", exhausted), "failed_after_retries"),
        else_=Message.status,
    )
    for name, channel, step, status, count in session.execute(
        select(Message.campaign, Message.channel, Message.step_id, outcome, func.count()).group_by(
            Message.campaign, Message.channel, Message.step_id, outcome
        )
    ):
        key = f"{channel}/{step}"
        out[name or "(none)"]["messages"].setdefault(key, {})[status] = count
    for name in session.scalars(select(Campaign.name)):
        out[name]  # every campaign appears, even with no journeys
    return dict(out)
