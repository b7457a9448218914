"""SMS unit fixtures: a migrated SQLite store in a file (no sockets) with one funded account and rates."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from store import accounts, ledger, rating
from store.db import Database

T0 = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
SMS_RATE = 7500
"""Micro-units per part for +1 numbers (0.0075)."""
FUNDS = 10_000_000


@dataclass
class Store:
    db: Database
    owner_id: int


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("sms-store") / "template.db"
    db = Database.open(f"sqlite:///{path}")
    db.upgrade()
    with db.transaction() as session:
        owner = accounts.create_account(session, username="owner@example.com", password="pass7782", now=T0)
        ledger.top_up(session, owner.id, FUNDS, T0)
        rating.import_rates(session, rating.parse_rates_csv("prefix,sms,voice,tts\n1,0.0075,0.013,0.015\n"))
        owner_id = owner.id
    db.dispose()
    return path, owner_id


@pytest.fixture
def store(store_template: tuple[Path, int], tmp_path: Path) -> Iterator[Store]:
    template, owner_id = store_template
    shutil.copyfile(template, tmp_path / "store.db")
    db = Database.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield Store(db, owner_id)
    db.dispose()
