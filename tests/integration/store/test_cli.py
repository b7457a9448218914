"""`ivrgate db upgrade` migrates SQLite in the data directory and PostgreSQL by URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from api.cli.main import main
from store.db import Database, alembic_config, current_revision


def head_revision() -> str | None:
    """The newest migration's revision: what `ivrgate db upgrade` must reach."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()

pytestmark = pytest.mark.integration


def test_db_upgrade_sqlite_in_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("IVRGATE_DATABASE_URL", raising=False)
    assert main(["--data", str(tmp_path), "db", "upgrade"]) == 0
    assert f"schema revision {head_revision()}" in capsys.readouterr().out
    database = Database.open(f"sqlite:///{tmp_path / 'ivrgate.db'}")
    assert current_revision(database.engine) == head_revision()
    database.dispose()


@pytest.mark.parametrize("empty_url", ["postgresql"], indirect=True)
def test_db_upgrade_postgresql_from_environment(
    empty_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IVRGATE_DATABASE_URL", empty_url.replace("postgresql+psycopg://", "postgresql://"))
    assert main(["--data", str(tmp_path), "db", "upgrade"]) == 0
    database = Database.open(empty_url)
    assert current_revision(database.engine) == head_revision()
    database.dispose()
    assert not (tmp_path / "ivrgate.db").exists()
