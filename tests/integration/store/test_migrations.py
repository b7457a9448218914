"""Migrations build the schema from nothing, and the models match what they build."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from store.db import Database, alembic_config, current_revision
from store.models import Base

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("empty_url", ["sqlite", "postgresql"], indirect=True)
def test_upgrade_from_empty_then_models_match(empty_url: str) -> None:
    database = Database.open(empty_url)
    try:
        assert current_revision(database.engine) is None
        database.upgrade()
        database.upgrade()  # idempotent
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert head is not None and current_revision(database.engine) == head
        tables = set(inspect(database.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        with database.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        database.dispose()


@pytest.mark.parametrize("empty_url", ["sqlite"], indirect=True)
def test_sqlite_connection_rules(empty_url: str) -> None:
    database = Database.open(empty_url)
    try:
        with database.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        database.dispose()
