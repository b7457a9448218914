"""Store fixtures: every test that takes `db` runs twice, on SQLite (a file in tmp_path) and on
PostgreSQL (a throwaway cluster started once per session, see postgres.py; a database per test,
copied from a migrated template)."""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from store import accounts, ledger
from store.db import Database
from store.models import Account
from tests.integration.store.postgres import Cluster, running_cluster

pytestmark = pytest.mark.integration
BACKENDS = ("sqlite", "postgresql")
_names = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def pg_template(pg_cluster: Cluster) -> Iterator[str]:
    name = "ivrgate_template"
    pg_cluster.drop_database(name)
    database = Database.open(pg_cluster.create_database(name))
    database.upgrade()
    database.dispose()
    yield name
    pg_cluster.drop_database(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    database = Database.open(f"sqlite:///{path}")
    database.upgrade()
    database.dispose()
    return path


@pytest.fixture
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database (no tables) of the backend in request.param."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    name = f"ivrgate_empty_{next(_names)}"
    yield cluster.create_database(name)
    cluster.drop_database(name)


@contextmanager
def migrated_database(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> Iterator[Database]:
    """A migrated, empty store on `backend` ("sqlite" or "postgresql"), copied from its template; the
    fixtures it needs (sqlite_template, or pg_cluster and pg_template) must be visible to `request`."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, tmp_path / "store.db")
        database = Database.open(f"sqlite:///{tmp_path / 'store.db'}")
        yield database
        database.dispose()
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    name = f"ivrgate_test_{next(_names)}"
    database = Database.open(cluster.create_database(name, template=request.getfixturevalue("pg_template")))
    yield database
    database.dispose()
    cluster.drop_database(name)


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty store on SQLite or PostgreSQL."""
    with migrated_database(request, tmp_path, request.param) as database:
        yield database


@pytest.fixture
def now() -> dt.datetime:
    return dt.datetime(2026, 11, 24, 12, 0, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def hasher() -> PasswordHasher:
    """argon2 with tiny costs: the tests check behaviour, not hardness."""
    return PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)


def make_owner(
    db: Database,
    now: dt.datetime,
    hasher: PasswordHasher,
    balance: int = 0,
    username: str = "owner@example.com",
) -> Account:
    """An active owner with `balance` micro-units topped up."""
    with db.transaction() as session:
        owner = accounts.create_account(
            session, username=username, password="pw-owner", now=now, hasher=hasher
        )
        if balance:
            ledger.top_up(session, owner.id, balance, now)
    return owner
