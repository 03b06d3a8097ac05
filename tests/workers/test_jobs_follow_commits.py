"""Jobs leave when their work commits, and only then (lifecycle.jobs)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from lifecycle import clock, jobs
from lifecycle.imports.service import ImportOptions, run
from tests.support import at


def test_each_commit_sends_its_jobs_a_savepoint_does_not_a_rollback_drops(runtime, inline):
    with runtime.session() as session:
        jobs.enqueue(session, "segments.recheck", extend="changes", changes=[[1, [], "a"]])
        with session.begin_nested():
            jobs.enqueue(session, "segments.recheck", extend="changes", changes=[[2, [], "b"]])
        assert not inline.queue  # a savepoint released is not a commit
        session.commit()
        assert [kw["changes"] for _, kw in inline.queue] == [[[1, [], "a"], [2, [], "b"]]]
        session.execute(text("SELECT 1"))  # work begun in a transaction...
        jobs.enqueue(session, "segments.recheck", extend="changes", changes=[[3, [], "c"]])
        session.rollback()  # ...and rolled back: its jobs with it
        jobs.enqueue(session, "segments.recheck", extend="changes", changes=[[4, [], "d"]])
    assert [kw["changes"] for _, kw in inline.queue] == [
        [[1, [], "a"], [2, [], "b"]],
        [[4, [], "d"]],
    ]


def _rows(n: int) -> bytes:
    return ("email\n" + "".join(f"p{i}@example.com\n" for i in range(n))).encode()


def test_an_import_that_fails_part_way_has_sent_the_jobs_of_its_committed_batches(
    runtime, inline, monkeypatch
):
    """Batch by batch: a crash after the first batch keeps that batch's profiles and the
    re-checks they need (before, every job waited for the end and a failure dropped all)."""
    import lifecycle.imports.service as service

    monkeypatch.setattr(service, "BATCH", 5)
    clock.set_now(at("2026-05-04T10:00:00Z"))
    batches = []

    def commit_then_fail(record):
        session.commit()
        batches.append(record.rows_done)
        if len(batches) == 2:
            raise RuntimeError("the machine went down")

    with pytest.raises(RuntimeError), runtime.session() as session:
        run(
            session,
            _rows(12),
            filename="t.csv",
            options=ImportOptions(),
            ingest_options=runtime.ingest_options,
            now=clock.now(),
            on_batch=commit_then_fail,
        )
    rechecked = {
        p for name, kw in inline.queue if name == "segments.recheck" for p, *_ in kw["changes"]
    }
    assert len(rechecked) == 10  # two batches of five new people, each sent at its commit


def test_a_dry_run_sends_no_jobs(runtime, inline):
    clock.set_now(at("2026-05-04T10:00:00Z"))
    with runtime.session() as session:
        jobs.enqueue(session, "segments.recheck", extend="changes", changes=[[1, [], "before"]])
        report = run(
            session,
            _rows(3),
            filename="t.csv",
            options=ImportOptions(dry_run=True),
            ingest_options=runtime.ingest_options,
            now=clock.now(),
        )
        assert report.counts["created"] == 3
    assert [kw["changes"] for _, kw in inline.queue] == [[[1, [], "before"]]]
