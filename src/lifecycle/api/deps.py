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


def write_key(request: Request, runtime: RuntimeDep) -> str | None:
    """Segment SDKs send the write key as the HTTP Basic user name (empty password).

    Returns None when no Authorization header came: the body's ``writeKey`` (Segment's
    other way) is then checked by :func:`check_body_key` once the body is read.
    """
    header = request.headers.get("authorization", "")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            user = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            raise HTTPException(401, "Authorization: not valid HTTP Basic credentials") from None
        if _matches(user, runtime.settings.write_keys):
            return user
    raise _no_write_key()


def _no_write_key() -> HTTPException:
    return HTTPException(
        401,
        "a valid write key is required, as the HTTP Basic user name or as writeKey in the body",
        headers={"WWW-Authenticate": 'Basic realm="lifecycle"'},
    )


def check_body_key(key: str | None, body: object, runtime: Runtime) -> str:
    if key is not None:
        return key
    given = body.get("writeKey") if isinstance(body, dict) else None
    if isinstance(given, str) and _matches(given, runtime.settings.write_keys):
        return given
    raise _no_write_key()


def admin_key(request: Request, runtime: RuntimeDep) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and _matches(value.strip(), runtime.settings.admin_keys):
        return "admin"
    raise HTTPException(401, "an admin key is required: Authorization: Bearer <key>")


WriteKey = Annotated[str | None, Depends(write_key)]
AdminKey = Annotated[str, Depends(admin_key)]
