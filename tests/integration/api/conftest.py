"""Fixtures of the HTTP API tests: a seeded store on SQLite and PostgreSQL (the store tests' fixtures),
the Gateway on it, the app in-process (TestClient), and an audio server on 127.0.0.1 for voice URLs."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from api.core.service import Gateway
from api.core.settings import Settings
from api.fronts.app import create_app
from ivr.settings import FetchSettings
from store import accounts, ledger, lists, rating
from store.db import Database
from store.models import Account, Blob, LedgerEntry, Message, MessageEvent, Role
from tests.integration.fetch.server import Server, serve
from tests.integration.sms_settings import smsc_elsewhere
from tests.integration.store.conftest import (  # noqa: F401  (fixtures)
    db,
    pg_cluster,
    pg_template,
    sqlite_template,
)

pytestmark = pytest.mark.integration

PASSWORD = "pass72727"
OWNER = "user@hotmail.com"
SUBUSER = "sub@hotmail.com"
OTHER = "other@yahoo.ca"
INACTIVE = "off@hotmail.com"
ORPHAN = "orphan@hotmail.com"
DNC_PHONE = "+12508763211"
"""On the global do-not-call list."""
RATES = "prefix,sms,voice,tts\n1,0.0075,0.013,0.015\n33,0.05,0.02,0.025\n44,0.04,,\n"
FIXED_FR = "+33142685300"
"""A French fixed line: matrix with tts=1 turns it into a TTS call."""
BALANCE = 10_000_000
NOW = dt.datetime(2026, 11, 24, 12, 0, 0, tzinfo=dt.UTC)
STAMP = int(NOW.timestamp())


@dataclass
class World:
    """The seeded accounts."""

    owner: Account
    subuser: Account
    other: Account


@pytest.fixture(scope="session")
def hasher() -> PasswordHasher:
    """argon2 with tiny costs: the tests check behaviour, not hardness."""
    return PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)


def seed(database: Database, hasher: PasswordHasher, now: dt.datetime = NOW) -> World:
    """Accounts (owner with 10.00, sub-user, another owner, an inactive one, an orphaned sub-user), rates,
    a global do-not-call number and the owner's group Test_Group."""
    with database.transaction() as s:
        make = accounts.create_account
        owner = make(s, username=OWNER, password=PASSWORD, now=now, hasher=hasher)
        sub = make(
            s, username=SUBUSER, password=PASSWORD, now=now, hasher=hasher, role=Role.SUBUSER, parent=owner
        )
        other = make(s, username=OTHER, password=PASSWORD, now=now, hasher=hasher)
        off = make(s, username=INACTIVE, password=PASSWORD, now=now, hasher=hasher)
        orphan = make(
            s, username=ORPHAN, password=PASSWORD, now=now, hasher=hasher, role=Role.SUBUSER, parent=other
        )
        s.flush()
        accounts.set_active(s, off, False)
        s.execute(update(Account).where(Account.id == orphan.id).values(parent_id=None))
        for account in (owner, other, off):
            ledger.top_up(s, account.id, BALANCE, now)
        rating.import_rates(s, rating.parse_rates_csv(RATES))
        lists.add_do_not_call(s, DNC_PHONE, now)
        group = lists.create_group(s, owner.id, "Test_Group", now)
        lists.add_members(s, group, [("+12506063167", "Adam"), ("+12506058145", "Eve")])
    return World(owner, sub, other)


@pytest.fixture
def world(db: Database, hasher: PasswordHasher) -> World:  # noqa: F811
    return seed(db, hasher)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return smsc_elsewhere(Settings(data_dir=tmp_path, fetch=FetchSettings(allow_private=True)))


@pytest.fixture
def gateway(settings: Settings, db: Database, world: World, hasher: PasswordHasher) -> Gateway:  # noqa: F811
    """The seeded hashes are current for this gateway (`hasher`): logins do not upgrade them."""
    return Gateway(settings, db, now=lambda: NOW, hasher=hasher)


@pytest.fixture
def client(settings: Settings, gateway: Gateway) -> Iterator[TestClient]:
    with TestClient(create_app(settings, gateway), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def audio_server() -> Iterator[Server]:
    with serve() as state:
        yield state


def account(username: str = OWNER, password: str = PASSWORD, **fields: Any) -> dict[str, Any]:
    return {"username": username, "password": password, **fields}


def blocks(text: str) -> list[dict[str, str]]:
    """A legacy text answer as one dict per block; checks the line format on the way."""
    assert text.endswith("\n") and "\r" not in text
    out = []
    for block in text.rstrip("\n").split("\n\n"):
        fields = {}
        for line in block.split("\n"):
            match = re.fullmatch(r"([A-Z]+): (.*)", line)
            assert match, f"not a KEY: value line: {line!r}"
            fields[match.group(1)] = match.group(2)
        out.append(fields)
    return out


def one(text: str) -> dict[str, str]:
    (only,) = blocks(text)
    return only


def legacy_json(text: str) -> dict[str, Any]:
    body = json.loads(text)
    assert isinstance(body, dict)
    return body


def counts(database: Database) -> dict[str, Any]:
    """Rows that a refused request must not have added, and the money."""
    with database.read() as s:
        rows = {
            model.__tablename__: s.scalar(select(func.count()).select_from(model))
            for model in (Message, MessageEvent, LedgerEntry, Blob)
        }
        rows["money"] = s.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0)))
    return rows
