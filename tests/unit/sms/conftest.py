"""SMS unit fixtures: a migrated SQLite store in a file (no sockets) with one funded account and rates.

`IVRGATE_SMS_TEST_BACKEND=postgresql` runs the same tests on PostgreSQL instead (a throwaway cluster,
tests/integration/store/postgres.py; a database per test copied from a seeded template)."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from store import accounts, ledger, rating
from store.db import Database
from tests.integration.store.postgres import Cluster, running_cluster

T0 = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
SMS_RATE = 7500
"""Micro-units per part for +1 numbers (0.0075)."""
FUNDS = 10_000_000


@dataclass
class Store:
    db: Database
    owner_id: int


def _seed(db: Database) -> int:
    db.upgrade()
    with db.transaction() as session:
        owner = accounts.create_account(session, username="owner@example.com", password="pass7782", now=T0)
        ledger.top_up(session, owner.id, FUNDS, T0)
        rating.import_rates(session, rating.parse_rates_csv("prefix,sms,voice,tts\n1,0.0075,0.013,0.015\n"))
        owner_id = owner.id
    db.dispose()
    return owner_id


POSTGRESQL = os.environ.get("IVRGATE_SMS_TEST_BACKEND", "sqlite") == "postgresql"
_names = itertools.count()


@pytest.fixture(scope="session")
def sms_pg_cluster() -> Iterator[Cluster]:
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def store_template(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> tuple[Path, int]:
    """The seeded template: a file, or (PostgreSQL) a template database's name."""
    if POSTGRESQL:
        cluster: Cluster = request.getfixturevalue("sms_pg_cluster")
        name = "ivrgate_sms_template"
        cluster.drop_database(name)
        return Path(name), _seed(Database.open(cluster.create_database(name)))
    path = tmp_path_factory.mktemp("sms-store") / "template.db"
    return path, _seed(Database.open(f"sqlite:///{path}"))


@pytest.fixture
def store(
    store_template: tuple[Path, int], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Store]:
    template, owner_id = store_template
    if POSTGRESQL:
        cluster: Cluster = request.getfixturevalue("sms_pg_cluster")
        name = f"ivrgate_sms_{next(_names)}"
        db = Database.open(cluster.create_database(name, template=str(template)))
        yield Store(db, owner_id)
        db.dispose()
        cluster.drop_database(name)
        return
    shutil.copyfile(template, tmp_path / "store.db")
    db = Database.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield Store(db, owner_id)
    db.dispose()
