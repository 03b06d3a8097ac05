"""Jobs recorded during a unit of work and sent only after it commits.

Services call ``enqueue(session, "delivery.send", message_id=...)``; nothing here
knows dramatiq. The worker layer installs the dispatcher. The state of record is
in the database, and the scheduler's sweep re-sends whatever is overdue, so a lost
job is late, never gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

Dispatcher = Callable[[str, dict[str, Any]], None]

_dispatcher: Dispatcher | None = None
_KEY = "lifecycle.jobs"


def install(dispatcher: Dispatcher | None) -> None:
    """Set the function that sends a job (``None``: jobs are dropped, the sweep finds them)."""
    global _dispatcher
    _dispatcher = dispatcher


def enqueue(session: Session, name: str, *, extend: str | None = None, **kwargs: Any) -> None:
    """Record a job. With ``extend`` (a list argument), a job of the same name already
    recorded in this unit of work gets the new items instead: one job per commit."""
    buffered = session.info.setdefault(_KEY, [])
    if extend is not None:
        for queued_name, queued in buffered:
            if queued_name == name and extend in queued:
                queued[extend].extend(kwargs[extend])  # our own copy (below): in place
                return
        kwargs = {**kwargs, extend: list(kwargs[extend])}
    buffered.append((name, kwargs))


def pending(session: Session) -> list[tuple[str, dict[str, Any]]]:
    return list(session.info.get(_KEY, []))


def discard(session: Session) -> None:
    session.info.pop(_KEY, None)


def flush(session: Session) -> None:
    """Send the jobs of a committed unit of work."""
    buffered = session.info.pop(_KEY, [])
    if _dispatcher is None:
        return
    for name, kwargs in buffered:
        _dispatcher(name, kwargs)


@contextmanager
def held_back(session: Session) -> Iterator[None]:
    """Jobs recorded inside are dropped: work that will be rolled back (a dry run)."""
    saved = session.info.pop(_KEY, None)
    try:
        yield
    finally:
        session.info.pop(_KEY, None)
        if saved is not None:
            session.info[_KEY] = saved


# Every commit sends its jobs, every rollback drops them: a unit of work that commits
# part way (an import, batch by batch) sends each part's jobs when that part lands, and a
# later failure does not take back what was sent for work already committed.
@event.listens_for(Session, "after_commit")
def _sent(session: Session) -> None:
    if not session.in_nested_transaction():  # a savepoint is not a commit
        flush(session)


@event.listens_for(Session, "after_soft_rollback")
def _dropped(session: Session, previous: SessionTransaction) -> None:
    if not previous.nested:
        discard(session)
