"""Messages: written before queued, claimed before sent, never sent twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from lifecycle import clock, jobs
from lifecycle.delivery import service as delivery
from lifecycle.delivery.models import Message, MessageEvent
from lifecycle.events.service import ingest
from lifecycle.workers import tasks
from tests.support import at


def _profile(runtime, email="lena@example.com") -> int:
    with runtime.session() as session:
        [result] = ingest(
            session,
            [{"userId": "lena", "traits": {"email": email}, "messageId": "i1"}],
            now=clock.now(),
            options=runtime.ingest_options,
            call_type="identify",
        )
        return result.profile_id


def _message(runtime, profile_id: int, key: str = "k1", template: str = "cart_reminder") -> int:
    with runtime.session() as session:
        message = delivery.create_message(
            session,
            idempotency_key=key,
            profile_id=profile_id,
            channel="email",
            template=template,
            now=clock.now(),
            context={"trigger": {"brand": "acme", "price": 9.5}},
            reason="test",
        )
        return message.id


def test_same_key_twice_is_one_message_and_one_job(runtime, inline):
    clock.set_now(at("2026-03-01T09:00:00Z"))
    pid = _profile(runtime)
    inline.drain()
    first = _message(runtime, pid)
    second = _message(runtime, pid)
    assert first == second
    assert [name for name, _ in inline.queue] == ["delivery.send"]


def test_duplicate_queue_message_sends_once(runtime, inline, recorder):
    clock.set_now(at("2026-03-01T09:00:00Z"))
    pid = _profile(runtime)
    mid = _message(runtime, pid)
    inline.queue.append(("delivery.send", {"message_id": mid}))  # the broker delivered it twice
    inline.drain()
    assert len(recorder.calls) == 1
    assert tasks.send_message(runtime, mid) is None  # a third delivery, later: nothing
    assert len(recorder.calls) == 1


def test_transient_errors_retry_with_backoff_then_fail_with_reason(runtime, inline, recorder, db):
    clock.set_now(at("2026-03-01T09:00:00Z"))
    pid = _profile(runtime, "slow@example.com")
    recorder.script(
        "slow@example.com", [("transient", "Throttling", "Maximum sending rate exceeded")]
    )
    mid = _message(runtime, pid)
    inline.drain()
    message = db.get(Message, mid)
    assert message.status == "retrying" and message.attempts == 1
    assert message.next_attempt_at == at("2026-03-01T09:01:00Z")
    inline.tick("2026-03-01T09:00:59Z")
    assert len(recorder.calls) == 1  # not before it is due
    inline.tick("2026-03-01T10:00:00Z")
    db.refresh(message)
    assert len(recorder.calls) == 3 and message.status == "failed"
    assert message.error_code == "retries_exhausted:Throttling"
    assert "Maximum sending rate exceeded" in message.error_message
    statuses = db.scalars(
        select(MessageEvent.status).where(MessageEvent.message_id == mid).order_by(MessageEvent.id)
    ).all()
    assert statuses == ["queued", "sending", "retrying", "sending", "retrying", "sending", "failed"]


def test_permanent_error_fails_at_once_with_provider_reason(runtime, inline, recorder, db):
    clock.set_now(at("2026-03-01T09:00:00Z"))
    pid = _profile(runtime, "bad@example.com")
    recorder.script(
        "bad@example.com", [("permanent", "MessageRejected", "Email address is not verified")]
    )
    mid = _message(runtime, pid)
    inline.tick("2026-03-02T00:00:00Z")
    message = db.get(Message, mid)
    assert (message.status, message.attempts, message.error_code) == (
        "failed",
        1,
        "MessageRejected",
    )
    assert len(recorder.calls) == 1


def test_undefined_template_variable_fails_the_message_not_the_worker(
    runtime, inline, recorder, db, tmp_path
):
    from lifecycle.rendering.templates import Templates

    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "oops.j2").write_text(
        "{% block subject %}Hi {{ profile.first_name }}{% endblock %}{% block html %}x{% endblock %}"
    )
    runtime.templates = Templates(tmp_path)
    clock.set_now(at("2026-03-01T09:00:00Z"))
    pid = _profile(runtime)
    mid = _message(runtime, pid, template="oops")
    inline.drain()
    message = db.get(Message, mid)
    assert message.status == "failed" and message.error_code == "template_error"
    assert "first_name" in message.error_message
    assert recorder.calls == []


@pytest.mark.parametrize(
    "traits",
    [
        {"unsubscribed": True},
        {"unsubscribed": "TRUE"},  # as a spreadsheet writes it
        {"unsubscribed_email": "yes"},
        {"unsubscribed_email": "True"},
    ],
)
def test_an_unsubscribed_profile_is_suppressed_whether_true_or_written_as_text(
    runtime, inline, recorder, db, traits
):
    """The segments' consent condition reads "TRUE" and "yes" as true; delivery must too,
    or a person left out of every consent segment is still sent to."""
    clock.set_now(at("2026-03-01T09:00:00Z"))
    with runtime.session() as session:
        [r] = ingest(
            session,
            [{"userId": "t", "traits": {"email": "t@example.com", **traits}}],
            now=clock.now(),
            options=runtime.ingest_options,
            call_type="identify",
        )
    mid = _message(runtime, r.profile_id)
    inline.drain()
    assert db.get(Message, mid).status == "suppressed" and recorder.calls == []


def test_no_address_is_recorded_as_skipped_not_dropped(runtime, inline, db):
    clock.set_now(at("2026-03-01T09:00:00Z"))
    with runtime.session() as session:
        [r] = ingest(
            session,
            [{"userId": "nomail"}],
            now=clock.now(),
            options=runtime.ingest_options,
            call_type="identify",
        )
    mid = _message(runtime, r.profile_id)
    message = db.get(Message, mid)
    assert message.status == "skipped" and message.recipient is None


def test_worker_death_mid_send_marks_uncertain_and_never_resends(runtime, inline, recorder, db):
    clock.set_now(at("2026-03-01T09:00:00Z"))
    pid = _profile(runtime)
    mid = _message(runtime, pid)
    jobs.install(None)
    with runtime.session() as session:  # claimed, then the worker died before recording
        assert delivery.claim(
            session, mid, now=clock.now(), templates=runtime.templates, policy=runtime.policy
        )
    inline.install()
    inline.queue.clear()
    inline.tick(
        at("2026-03-01T09:00:00Z") + timedelta(seconds=runtime.settings.sending_timeout_seconds + 1)
    )
    message = db.get(Message, mid)
    assert message.status == "uncertain"
    inline.queue.append(("delivery.send", {"message_id": mid}))
    inline.drain()
    assert recorder.calls == []
