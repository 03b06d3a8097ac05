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
from lifecycle.profiles import service as profiles
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


class MergeIn(BaseModel):
    other: str  # the profile to merge away, as a reference (id:..., email:..., ...)
    reason: str
    by: str | None = None  # the person asking; defaults to the admin key's holder
    force: bool = False  # needed when both profiles have an external id


class UndoIn(BaseModel):
    reason: str
    by: str | None = None


@router.post(
    "/profiles/{ref}/merge", status_code=201, summary="Merge another profile into this one"
)
def merge_profiles(
    ref: str, body: MergeIn, admin: AdminKey, runtime: RuntimeDep, session: SessionDep
) -> Any:
    record = profiles.merge(
        session,
        ref,
        body.other,
        reason=body.reason,
        actor=body.by or admin,
        now=clock.now(),
        force=body.force,
        default_region=runtime.settings.default_phone_region,
    )
    return {"merge_id": record.id, "survivor_id": record.survivor_id, "merged_id": record.merged_id}


@router.post("/merges/{merge_id}/undo", summary="Undo a merge exactly")
def undo_merge(merge_id: int, body: UndoIn, admin: AdminKey, session: SessionDep) -> Any:
    record = profiles.undo_merge(
        session, merge_id, reason=body.reason, actor=body.by or admin, now=clock.now()
    )
    return {
        "merge_id": record.id,
        "undone_at": record.undone_at,
        "profiles": [record.survivor_id, record.merged_id],
    }


@router.get("/profiles/{ref}/merges", summary="Merges this profile took part in, with undos")
def profile_merges(ref: str, _admin: AdminKey, runtime: RuntimeDep, session: SessionDep) -> Any:
    profile = find_profile(session, ref, default_region=runtime.settings.default_phone_region)
    return jsonable_encoder(profiles.merges_of(session, profile.id))


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
