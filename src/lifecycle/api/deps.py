"""Request dependencies: the runtime, a session per request, write-key and admin-key auth."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from lifecycle.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """One unit of work per request: commit on success, jobs leave after the commit."""
    with runtime.session() as session:
        yield session


# scope="function": commit before the response is sent, so a 200 means stored (FastAPI's
# default "request" scope would commit only after the client already has its answer).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def _matches(candidate: str, keys: list[str]) -> bool:
    return any(hmac.compare_digest(candidate.encode(), k.encode()) for k in keys)


def write_key(request: Request, runtime: RuntimeDep) -> str:
    """Segment SDKs send the write key as the HTTP Basic user name (empty password)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            user = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            raise HTTPException(401, "Authorization: not valid HTTP Basic credentials") from None
        if _matches(user, runtime.settings.write_keys):
            return user
    raise HTTPException(
        401,
        "a valid write key is required as the HTTP Basic user name",
        headers={"WWW-Authenticate": 'Basic realm="lifecycle"'},
    )


def admin_key(request: Request, runtime: RuntimeDep) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and _matches(value.strip(), runtime.settings.admin_keys):
        return "admin"
    raise HTTPException(401, "an admin key is required: Authorization: Bearer <key>")


WriteKey = Annotated[str, Depends(write_key)]
AdminKey = Annotated[str, Depends(admin_key)]
