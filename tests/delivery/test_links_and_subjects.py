"""Unsubscribe links work and are signed; subjects are plain text with no line breaks."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from lifecycle import clock
from lifecycle.api.app import create_app
from lifecycle.delivery import service as delivery
from lifecycle.delivery import unsubscribe
from lifecycle.delivery.models import Message, MessageEvent
from lifecycle.events.service import ingest
from lifecycle.profiles.models import Profile
from lifecycle.rendering.templates import Templates
from tests.support import at


def _sent_message(runtime, inline, template="cart_reminder", trigger=None) -> Message:
    clock.set_now(at("2026-03-01T09:00:00Z"))
    with runtime.session() as session:
        [r] = ingest(
            session,
            [{"userId": "ul", "traits": {"email": "ul@example.com"}}],
            now=clock.now(),
            options=runtime.ingest_options,
            call_type="identify",
        )
        message = delivery.create_message(
            session,
            idempotency_key=f"k-{template}",
            profile_id=r.profile_id,
            channel="email",
            template=template,
            now=clock.now(),
            context={"trigger": trigger or {"brand": "acme"}},
        )
    inline.drain()
    with runtime.session() as session:
        return session.get(Message, message.id)


def test_unsubscribe_link_is_signed_asks_on_get_and_honours_a_post(runtime, inline, recorder, db):
    message = _sent_message(runtime, inline)
    [sent] = recorder.calls
    link = unsubscribe.url(runtime.policy.public_base_url, runtime.policy.link_secret, message.id)
    assert link in sent.body and sent.headers["List-Unsubscribe"] == f"<{link}>"
    path = link.removeprefix(runtime.policy.public_base_url)
    client = TestClient(create_app(runtime))
    assert client.get(f"/u/{message.id}/{'0' * 32}").status_code == 404  # forged
    assert client.get(path).status_code == 200  # asking only
    assert db.get(Profile, message.profile_id).attributes.get("unsubscribed_email") is None
    assert client.post(path).status_code == 200
    db.expire_all()
    assert db.get(Profile, message.profile_id).attributes["unsubscribed_email"] is True
    assert (
        "unsubscribed"
        in db.scalars(
            select(MessageEvent.status).where(MessageEvent.message_id == message.id)
        ).all()
    )
    # the next email to this person is suppressed, not sent
    second = _sent_message(runtime, inline, template="review_request")
    assert second.status == "suppressed" and len(recorder.calls) == 1


def test_subject_is_plain_text_without_line_breaks(tmp_path):
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "s.j2").write_text(
        "{% block subject %}Hi {{ trigger.name }}{% endblock %}{% block html %}<p>{{ trigger.name }}</p>{% endblock %}"
    )
    rendered = Templates(tmp_path).render(
        "email", "s", {"trigger": {"name": "<b>Bo</b> & co\r\nBcc: evil@example.com"}}
    )
    assert rendered.subject == "Hi <b>Bo</b> & co Bcc: evil@example.com"
    assert "&lt;b&gt;" in rendered.body
