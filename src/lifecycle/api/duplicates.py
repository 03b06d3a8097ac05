"""Admin endpoints for possible duplicate profiles: scan, review, accept (merge), dismiss.

Nothing here merges on its own: a pair found by the scan is merged only when a reviewer
accepts it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel

from lifecycle import clock
from lifecycle.api.deps import AdminKey, RuntimeDep, SessionDep
from lifecycle.profiles import duplicates

router = APIRouter(prefix="/v1", tags=["duplicates"])


@router.get("/duplicates", summary="Possible duplicate profiles, best evidence first")
def list_duplicates(
    _admin: AdminKey,
    session: SessionDep,
    status: str = "open",
    limit: int = 50,
    offset: int = 0,
) -> Any:
    return jsonable_encoder(
        duplicates.list_candidates(session, status=status, limit=limit, offset=offset)
    )


@router.post("/duplicates/scan", summary="Scan every live profile for possible duplicates")
def scan_duplicates(
    _admin: AdminKey, runtime: RuntimeDep, session: SessionDep, limit: int | None = None
) -> Any:
    report = duplicates.scan(
        session,
        now=clock.now(),
        limit=limit,
        **runtime.identifier_rules,  # type: ignore[arg-type]
    )
    return report.as_dict()


class AcceptIn(BaseModel):
    reason: str
    by: str | None = None  # the reviewer; defaults to the admin key's holder
    force: bool = False  # needed when both profiles have an external id


class DismissIn(BaseModel):
    by: str | None = None


@router.post("/duplicates/{candidate_id}/accept", summary="The same person: merge the pair")
def accept_duplicate(
    candidate_id: int, body: AcceptIn, admin: AdminKey, session: SessionDep
) -> Any:
    return duplicates.accept(
        session,
        candidate_id,
        actor=body.by or admin,
        reason=body.reason,
        now=clock.now(),
        force=body.force,
    )


@router.post("/duplicates/{candidate_id}/dismiss", summary="Not the same person: never shown again")
def dismiss_duplicate(
    candidate_id: int, admin: AdminKey, session: SessionDep, body: DismissIn | None = None
) -> Any:
    candidate = duplicates.dismiss(
        session, candidate_id, actor=(body.by if body else None) or admin, now=clock.now()
    )
    return jsonable_encoder(duplicates.describe(candidate))
