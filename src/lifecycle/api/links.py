"""Public links in messages: unsubscribe (a page to confirm, and RFC 8058 one-click POST)."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from lifecycle import clock
from lifecycle.api.deps import RuntimeDep, SessionDep
from lifecycle.delivery import unsubscribe

router = APIRouter(tags=["links"])


@router.get("/u/{message_id}/{token}", response_class=HTMLResponse, include_in_schema=False)
def unsubscribe_page(message_id: int, token: str, runtime: RuntimeDep, session: SessionDep) -> str:
    # A GET only asks: mail scanners follow links, and must not unsubscribe anyone.
    message = unsubscribe.verify(session, message_id, token, secret=runtime.policy.link_secret)
    return (
        "<!doctype html><title>Unsubscribe</title>"
        f"<p>Stop receiving {escape(message.channel)} messages like this one?</p>"
        f'<form method="post"><button type="submit">Unsubscribe</button></form>'
    )


@router.post("/u/{message_id}/{token}", response_class=HTMLResponse, include_in_schema=False)
def unsubscribe_now(message_id: int, token: str, runtime: RuntimeDep, session: SessionDep) -> str:
    message = unsubscribe.unsubscribe(
        session, message_id, token, secret=runtime.policy.link_secret, now=clock.now()
    )
    return f"<!doctype html><title>Unsubscribed</title><p>Done: no more {escape(message.channel)} messages.</p>"
