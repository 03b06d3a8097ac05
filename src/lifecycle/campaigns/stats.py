"""Campaign figures: journeys by status, messages by channel and status, conversions."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
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
    for name, channel, step, status, count in session.execute(
        select(
            Message.campaign, Message.channel, Message.step_id, Message.status, func.count()
        ).group_by(Message.campaign, Message.channel, Message.step_id, Message.status)
    ):
        key = f"{channel}/{step}"
        out[name or "(none)"]["messages"].setdefault(key, {})[status] = count
    for name in session.scalars(select(Campaign.name)):
        out[name]
    return dict(out)
