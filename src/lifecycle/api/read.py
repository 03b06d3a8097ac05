"""Admin read and journey-membership endpoints: profiles, timelines, campaigns."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel

from lifecycle import clock
from lifecycle.api.deps import AdminKey, RuntimeDep, SessionDep
from lifecycle.campaigns import service as campaigns
from lifecycle.campaigns.stats import campaign_stats
from lifecycle.profiles.service import describe, find_profile
from lifecycle.timeline.service import timeline

router = APIRouter(prefix="/v1", tags=["admin"])


@router.get("/profiles/{ref}", summary="A profile with its identities and attributes")
def get_profile(ref: str, _admin: AdminKey, runtime: RuntimeDep, session: SessionDep) -> Any:
    profile = find_profile(session, ref, default_region=runtime.settings.default_phone_region)
    return jsonable_encoder(describe(session, profile))


@router.get("/profiles/{ref}/timeline", summary="The profile's story, newest first, paginated")
def get_timeline(
    ref: str,
    _admin: AdminKey,
    runtime: RuntimeDep,
    session: SessionDep,
    limit: int = 50,
    cursor: str | None = None,
) -> Any:
    profile = find_profile(session, ref, default_region=runtime.settings.default_phone_region)
    return jsonable_encoder(timeline(session, profile.id, limit=limit, cursor=cursor))


@router.get("/campaigns", summary="Campaigns with journeys, messages and conversions")
def list_campaigns(_admin: AdminKey, session: SessionDep) -> Any:
    return campaign_stats(session)


class MemberIn(BaseModel):
    profile: str


@router.post("/campaigns/{name}/members", status_code=201, summary="Put a profile into a campaign")
def add_member(
    name: str, body: MemberIn, admin: AdminKey, runtime: RuntimeDep, session: SessionDep
) -> Any:
    profile = find_profile(
        session, body.profile, default_region=runtime.settings.default_phone_region
    )
    journey = campaigns.add_member(
        session, name, profile.id, now=clock.now(), settle_window=runtime.settle_window, actor=admin
    )
    return {"journey_id": journey.id, "status": journey.status}


@router.delete("/campaigns/{name}/members/{ref}", summary="Take a profile out of a campaign")
def remove_member(
    name: str, ref: str, admin: AdminKey, runtime: RuntimeDep, session: SessionDep
) -> Any:
    profile = find_profile(session, ref, default_region=runtime.settings.default_phone_region)
    journey = campaigns.remove_member(session, name, profile.id, now=clock.now(), actor=admin)
    return {"journey_id": journey.id, "status": journey.status, "reason": journey.exit_reason}
