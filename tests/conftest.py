"""Fixtures: one PostgreSQL database per test run (and per xdist worker), migrated by
Alembic; each test inside an outer transaction that is rolled back, even when the
code under test commits (sessions join it through savepoints)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.orm import sessionmaker

from lifecycle import clock, jobs, migrate
from lifecycle.campaigns import service as campaigns
from lifecycle.campaigns.loader import load_project
from lifecycle.campaigns.service import forget_live_campaigns
from lifecycle.config import Settings
from lifecycle.db import make_engine
from lifecycle.delivery.providers.outbox import RecordingProvider
from lifecycle.runtime import Runtime, build_runtime
from lifecycle.segments.service import forget_catalog
from tests.services import ensure_postgres, ensure_redis
from tests.support import ADMIN_KEY, WRITE_KEY, InlineJobs

ROOT = Path(__file__).resolve().parents[1]
# The team's shared cases and data sit beside the checkout; LIFECYCLE_SHARED_DIR overrides.
SHARED = Path(os.environ.get("LIFECYCLE_SHARED_DIR", ROOT.parent / "shared"))
CASES = SHARED / "cases"
DATA = SHARED / "data"
PG_ADMIN_URL = os.environ.get(
    "LIFECYCLE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def pytest_configure(config: pytest.Config) -> None:
    ensure_postgres()
    ensure_redis()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> object:
    """A test that reads a file of the shared cases or data is skipped, visibly, where
    that folder is missing or lacks the file (a checkout on its own); a file missing
    elsewhere is still an error."""
    try:
        return (yield)
    except FileNotFoundError as err:
        missing = Path(str(err.filename or ""))
        if missing.is_relative_to(SHARED):
            pytest.skip(f"{missing} not found (shared cases and data: {SHARED})")
        raise


def settings_for(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "database_url": database_url,
        "write_keys": [WRITE_KEY],
        "admin_keys": [ADMIN_KEY],
        "campaigns_dir": str(ROOT / "campaigns"),
        "templates_dir": str(ROOT / "templates"),
        "max_attempts": 3,
        "retry_delays_seconds": [60, 300],
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def scratch_database(tag: str) -> Iterator[str]:
    """A new, migrated PostgreSQL database for as long as the block runs."""
    name = f"lifecycle_test_{uuid.uuid4().hex[:10]}_{tag}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url(worker_id: str) -> Iterator[str]:
    with scratch_database(worker_id) as url:
        yield url


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    return getattr(request.config, "workerinput", {}).get("workerid", "main")


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(pg_engine: Engine) -> Iterator[Connection]:
    conn = pg_engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture
def recorder() -> RecordingProvider:
    return RecordingProvider()


def make_runtime(
    settings: Settings, engine: Engine, recorder: RecordingProvider, bind: object
) -> Runtime:
    runtime = build_runtime(
        settings,
        engine=engine,
        providers={"email": recorder, "sms": recorder, "push": recorder},
    )
    runtime.sessions = sessionmaker(
        bind=bind, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )  # type: ignore[call-overload]
    return runtime


@pytest.fixture
def runtime(
    pg_url: str, pg_engine: Engine, connection: Connection, recorder: RecordingProvider
) -> Runtime:
    """A runtime on the test database whose every session joins the test's transaction."""
    return make_runtime(settings_for(pg_url), pg_engine, recorder, connection)


@pytest.fixture
def db(runtime: Runtime) -> Iterator[object]:
    with runtime.session() as session:
        yield session


@pytest.fixture
def inline(runtime: Runtime) -> Iterator[InlineJobs]:
    runner = InlineJobs(runtime)
    runner.install()
    yield runner
    jobs.install(None)


@pytest.fixture(autouse=True)
def _release_clock() -> Iterator[None]:
    # Each test's data is rolled back, so campaigns cached by an earlier test are gone.
    forget_live_campaigns()
    forget_catalog()
    yield
    clock.set_now(None)
    jobs.install(None)


def publish_directory(runtime: Runtime, directory: Path | str | None = None) -> list[str]:
    loaded, segment_files, problems = load_project(
        directory or runtime.settings.campaigns_dir, runtime.templates
    )
    assert not problems, [str(p) for p in problems]
    with runtime.session() as session:
        return campaigns.publish_project(
            session,
            loaded,
            segment_files,
            now=clock.now(),
            zone=runtime.settings.workspace_timezone,
        )


@pytest.fixture
def sqlite_runtime(tmp_path: Path, recorder: RecordingProvider) -> Iterator[Runtime]:
    url = f"sqlite:///{tmp_path / 'lifecycle.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    runtime = build_runtime(
        settings_for(url, outbox_path=str(tmp_path / "outbox.jsonl")),
        engine=engine,
        providers={"email": recorder, "sms": recorder, "push": recorder},
    )
    yield runtime
    engine.dispose()
