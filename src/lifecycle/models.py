"""Imports every domain's models: one registry for Alembic and tests."""

from lifecycle.campaigns.models import Broadcast, Campaign, CampaignVersion, Journey, JourneyLog
from lifecycle.db import Base
from lifecycle.delivery.models import Message, MessageEvent
from lifecycle.events.models import Event
from lifecycle.imports.models import Import, ImportRejection
from lifecycle.profiles.models import (
    AttributeChange,
    DuplicateCandidate,
    Identity,
    Merge,
    Profile,
)
from lifecycle.segments.models import Segment, SegmentMembership

__all__ = [
    "AttributeChange",
    "Base",
    "Broadcast",
    "Campaign",
    "CampaignVersion",
    "DuplicateCandidate",
    "Event",
    "Identity",
    "Import",
    "ImportRejection",
    "Journey",
    "JourneyLog",
    "Merge",
    "Message",
    "MessageEvent",
    "Profile",
    "Segment",
    "SegmentMembership",
]

# Cross-domain hooks that must be in place wherever the models are.
import lifecycle.campaigns.merge_hook
import lifecycle.segments.merge_hook  # noqa: F401
