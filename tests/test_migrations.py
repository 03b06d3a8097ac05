"""The schema comes only from the migrations, and they match the models on both engines."""

from __future__ import annotations

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from lifecycle import migrate
from lifecycle.db import make_engine
from lifecycle.models import Base


def test_migrations_match_the_models_on_postgresql(pg_engine):
    with pg_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_migrations_match_the_models_on_sqlite(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    migrate.upgrade(engine)
    migrate.upgrade(engine)  # idempotent
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


@pytest.mark.parametrize("engine_kind", ["sqlite", "postgresql"])
def test_downgrading_0009_gives_each_first_value_its_own_row_again(
    engine_kind, tmp_path, pg_engine
):
    from alembic import command
    from sqlalchemy import select, text

    from lifecycle.profiles.models import AttributeChange

    if engine_kind == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
        migrate.upgrade(engine)
    else:
        engine = pg_engine
    moment = "2026-05-04 10:00:00+00:00"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO attribute_changes (profile_id, name, old_value, new_value, source,"
                " changed_at, recorded_at, via) VALUES (7, NULL, NULL, :first, 'csv', :at, :at,"
                " 'email:a@b.c'), (7, 'city', '\"Oslo\"', '\"Rome\"', 'api', :at, :at, NULL)"
            ),
            {"first": json.dumps({"email": "a@b.c", "vip": True, "city": "Oslo"}), "at": moment},
        )
    cfg = migrate.alembic_config(engine.url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0008")
            conn.commit()
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    AttributeChange.name,
                    AttributeChange.old_value,
                    AttributeChange.new_value,
                    AttributeChange.via,
                ).where(AttributeChange.profile_id == 7)
            ).all()
        assert sorted(rows, key=str) == sorted(
            [
                ("city", "Oslo", "Rome", None),
                ("email", None, "a@b.c", "email:a@b.c"),
                ("vip", None, True, "email:a@b.c"),
                ("city", None, "Oslo", "email:a@b.c"),
            ],
            key=str,
        )
    finally:
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.execute(text("DELETE FROM attribute_changes WHERE profile_id = 7"))
            conn.commit()
        if engine_kind == "sqlite":
            engine.dispose()
