"""What the benchmarks share: a scratch PostgreSQL database, created and dropped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager


def libpq(url: str) -> str:
    """A SQLAlchemy URL as psycopg's connection string."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A new database for one run; dropped afterwards, even on an error or Ctrl-C."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"lifecycle_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
