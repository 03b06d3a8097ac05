"""Property: merge then undo gives back both profiles exactly (identities, attributes,
events, history), and what arrived while merged goes to the profile it came through."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from lifecycle import clock
from lifecycle.events.models import Event
from lifecycle.events.service import ingest
from lifecycle.profiles.merge import merge_profiles, unmerge
from lifecycle.profiles.models import AttributeChange, Identity, Profile
from tests.support import at

NAMES = ["plan", "city", "tags", "score", "unsubscribed", "first_name"]
values = st.one_of(
    st.integers(-5, 5),
    st.sampled_from(["gold", "basic", "Turin", "Rome", ""]),
    st.lists(st.sampled_from(["a", "b", "c"]), max_size=3),
    st.booleans(),
    st.none(),
)
person = st.fixed_dictionaries(
    {
        "user_id": st.one_of(st.none(), st.sampled_from(["u-1", "u-2"])),
        "updates": st.lists(
            st.dictionaries(st.sampled_from(NAMES), values, max_size=4), max_size=3
        ),
        "events": st.lists(st.sampled_from(["Viewed", "Added", "Ordered"]), max_size=4),
        "email": st.booleans(),
    }
)


def _calls(tag: str, spec: dict, start: int) -> list[dict]:
    base = {"anonymousId": f"anon-{tag}"}
    if spec["user_id"]:
        base["userId"] = f"{spec['user_id']}-{tag}"
    calls, t = [], start
    traits0 = {"email": f"{tag}@example.com"} if spec["email"] else {}
    calls.append({**base, "type": "identify", "traits": traits0, "messageId": f"{tag}-0"})
    for i, traits in enumerate(spec["updates"]):
        t += 1
        stamp = (at("2026-01-01T00:00:00Z") + timedelta(minutes=t)).isoformat()
        calls.append(
            {
                **base,
                "type": "identify",
                "traits": traits,
                "timestamp": stamp,
                "messageId": f"{tag}-u{i}",
            }
        )
    for i, name in enumerate(spec["events"]):
        t += 1
        stamp = (at("2026-01-01T00:00:00Z") + timedelta(minutes=t)).isoformat()
        calls.append(
            {**base, "type": "track", "event": name, "timestamp": stamp, "messageId": f"{tag}-e{i}"}
        )
    return calls


def _state(session, profile_id: int) -> dict:
    profile = session.get(Profile, profile_id, populate_existing=True)
    return {
        "attributes": profile.attributes,
        "times": profile.attribute_times,
        "created_at": profile.created_at,
        "merged_into": profile.merged_into_id,
        "identities": sorted(
            session.execute(
                select(Identity.kind, Identity.value).where(Identity.profile_id == profile_id)
            ).all()
        ),
        "events": sorted(
            session.scalars(select(Event.dedupe_key).where(Event.profile_id == profile_id))
        ),
        "history": sorted(
            session.scalars(
                select(AttributeChange.id).where(
                    AttributeChange.profile_id == profile_id,
                    AttributeChange.source.not_in(("merge", "unmerge")),
                )
            )
        ),
    }


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(a=person, b=person, during=st.lists(st.sampled_from(["a", "b"]), max_size=3))
def test_merge_then_undo_restores_both_profiles(runtime, connection, a, b, during):
    savepoint = connection.begin_nested()
    try:
        clock.set_now(at("2026-02-01T00:00:00Z"))
        with runtime.session() as session:
            results = ingest(
                session,
                _calls("a", a, 0) + _calls("b", b, 100),
                now=clock.now(),
                options=runtime.ingest_options,
            )
            assert all(r.status == "accepted" for r in results), [r.as_dict() for r in results]
            pid_a, pid_b = results[0].profile_id, results[len(_calls("a", a, 0))].profile_id
            assert pid_a != pid_b
            before = {pid_a: _state(session, pid_a), pid_b: _state(session, pid_b)}
            record = merge_profiles(
                session, pid_a, pid_b, reason="test", actor="prop", now=clock.now(), force=True
            )
            assert session.get(Profile, pid_b).merged_into_id == pid_a
        clock.set_now(at("2026-02-01T01:00:00Z"))
        arrived = []
        with runtime.session() as session:
            for i, who in enumerate(during):
                call = {
                    "anonymousId": f"anon-{who}",
                    "type": "track",
                    "event": "Meanwhile",
                    "messageId": f"m-{i}",
                }
                [r] = ingest(session, [call], now=clock.now(), options=runtime.ingest_options)
                assert r.profile_id == pid_a  # while merged, both names reach the survivor
                arrived.append((who, f"api:m-{i}"))
        clock.set_now(at("2026-02-01T02:00:00Z"))
        with runtime.session() as session:
            unmerge(session, record.id, actor="prop", reason="undo", now=clock.now())
            after = {pid_a: _state(session, pid_a), pid_b: _state(session, pid_b)}
        for pid, who in ((pid_a, "a"), (pid_b, "b")):
            expected = dict(before[pid])
            expected["events"] = sorted(
                expected["events"] + [key for w, key in arrived if w == who]
            )
            assert after[pid] == expected
    finally:
        savepoint.rollback()
        clock.set_now(None)
