"""The real Segment Python SDK against a running server (uvicorn in a thread).

The server's runtime commits (another thread serves requests), so it has a database of
its own: committed profiles would otherwise show up in other tests' scans.
Evaluation jobs run inline so no committed event is left for another test's sweep.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from segment.analytics import Client
from segment.analytics.request import APIError
from sqlalchemy import event as sa_event
from sqlalchemy import select

from lifecycle.api.app import create_app
from lifecycle.db import make_engine
from lifecycle.delivery.providers.outbox import RecordingProvider
from lifecycle.events.models import Event
from lifecycle.profiles.models import Identity, Profile
from lifecycle.runtime import Runtime, build_runtime
from tests import conftest
from tests.support import ADMIN_AUTH, WRITE_KEY, InlineJobs

COMMIT_DELAY = 0.3  # seconds: a slow commit makes "200 before commit" visible


@dataclass
class Live:
    runtime: Runtime
    jobs: InlineJobs
    url: str


@pytest.fixture(scope="module")
def own_pg_url() -> Iterator[str]:
    with conftest.scratch_database("sdk") as url:
        yield url


@pytest.fixture
def live(own_pg_url) -> Iterator[Live]:
    recorder = RecordingProvider()
    engine = make_engine(own_pg_url)
    rt = build_runtime(
        conftest.settings_for(own_pg_url),
        engine=engine,
        providers={"email": recorder, "sms": recorder, "push": recorder},
    )

    def slow_commit(_session) -> None:
        if threading.current_thread() is not threading.main_thread():  # the server's commits
            time.sleep(COMMIT_DELAY)

    sa_event.listen(rt.sessions, "before_commit", slow_commit)
    runner = InlineJobs(rt)
    runner.install()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(rt), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield Live(rt, runner, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        sa_event.remove(rt.sessions, "before_commit", slow_commit)
        runner.drain()  # evaluate what was stored, so no committed event waits for a sweep
        engine.dispose()


def _events(rt: Runtime, user_id: str) -> list[Event]:
    with rt.session() as session:
        pid = session.scalar(
            select(Identity.profile_id).where(Identity.kind == "id", Identity.value == user_id)
        )
        if pid is None:
            return []
        return list(
            session.scalars(select(Event).where(Event.profile_id == pid).order_by(Event.id))
        )


def _identities(rt: Runtime, user_id: str) -> dict[str, str]:
    with rt.session() as session:
        pid = session.scalar(
            select(Identity.profile_id).where(Identity.kind == "id", Identity.value == user_id)
        )
        rows = session.execute(
            select(Identity.kind, Identity.value).where(Identity.profile_id == pid)
        )
        return dict(rows.all())


def test_sdk_identify_and_track_land_and_are_stored_before_the_answer(live):
    user = f"sdk-{uuid.uuid4().hex}"
    email = f"{user}@Example.com"
    client = Client(write_key=WRITE_KEY, host=live.url, sync_mode=True, max_retries=0)

    client.identify(user, {"email": email, "plan": "pro"}, message_id=f"{user}-i")
    # sync mode returns once the server has answered: the call must already be stored
    assert [e.type for e in _events(live.runtime, user)] == ["identify"]
    assert _identities(live.runtime, user) == {"id": user, "email": email.casefold()}

    client.track(user, "Signed Up", {"source": "sdk"}, message_id=f"{user}-t")
    client.track(user, "Signed Up", {"source": "sdk"}, message_id=f"{user}-t")  # a retry
    events = _events(live.runtime, user)
    assert [(e.type, e.name) for e in events] == [("identify", None), ("track", "Signed Up")]
    track = events[1]
    assert track.properties == {"source": "sdk"}
    assert track.context["library"]["name"] == "analytics-python"
    assert track.dedupe_key == f"api:{user}-t"
    assert abs((track.received_at - track.occurred_at).total_seconds()) < 60

    with live.runtime.session() as session:
        profile = session.get(Profile, track.profile_id)
        assert profile.attributes == {"email": email, "plan": "pro"}

    # and the admin read API on the same running server shows it
    pid = track.profile_id
    got = httpx.get(f"{live.url}/v1/profiles/email:{email}", headers=ADMIN_AUTH, timeout=10)
    assert got.status_code == 200 and got.json()["id"] == pid
    timeline = httpx.get(f"{live.url}/v1/profiles/{pid}/timeline", headers=ADMIN_AUTH, timeout=10)
    assert [i["name"] for i in timeline.json()["items"] if i["kind"] == "event"] == ["Signed Up"]

    live.jobs.drain()
    assert _events(live.runtime, user)[1].evaluated_at is not None


def test_sdk_queued_mode_flushes_a_batch(live):
    user = f"sdk-{uuid.uuid4().hex}"
    anon = f"anon-{uuid.uuid4().hex}"
    errors: list[object] = []
    client = Client(
        write_key=WRITE_KEY,
        host=live.url,
        upload_interval=0.05,
        max_retries=0,
        on_error=lambda err, batch: errors.append(err),
    )
    try:
        client.track(anonymous_id=anon, event="Product Viewed", properties={"sku": "A1"})
        client.identify(user, {"phone": "(212) 555-0199"}, anonymous_id=anon)
        client.track(user, "Checkout Started", {"total": 12.5})
        client.flush()
    finally:
        client.join()
    assert errors == []
    events = _events(live.runtime, user)
    assert [e.name for e in events] == ["Product Viewed", None, "Checkout Started"]
    assert _identities(live.runtime, user) == {
        "id": user,
        "anonymous_id": anon,
        "phone": "+12125550199",
    }


def test_sdk_with_a_wrong_write_key_gets_401(live):
    user = f"sdk-{uuid.uuid4().hex}"
    client = Client(write_key="wrong-key", host=live.url, sync_mode=True, max_retries=0)
    with pytest.raises(APIError) as caught:
        client.track(user, "Signed Up")
    assert caught.value.status == 401
    assert _events(live.runtime, user) == []
