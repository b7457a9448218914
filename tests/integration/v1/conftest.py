"""v1 fixtures: the real app (api.fronts.app.create_app) over a real Gateway and a migrated store (SQLite in a
temp dir; PostgreSQL for tests that ask for it with `@pytest.mark.parametrize("db", [...], indirect=True)`),
driven through FastAPI's TestClient. Accounts: an administrator, two owners with credit, a sub-user, and an
API key for each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from api.core.service import Gateway
from api.core.settings import Settings
from api.fronts.app import create_app
from ivr.settings import FetchSettings
from store import accounts, ledger, rating
from store.db import Database
from store.models import Account, Role
from tests.integration.sms_settings import smsc_elsewhere
from tests.integration.store.conftest import migrated_database, pg_cluster, pg_template, sqlite_template

__all__ = ["pg_cluster", "pg_template", "sqlite_template"]

pytestmark = pytest.mark.integration

RATES_CSV = "prefix,sms,voice,tts,currency,description\n1,0.0075,0.0130,0.0150,USD,North America\n"
BALANCE = 10_000_000
HASHER = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
PHONE = "+12506063167"
OTHER_PHONE = "+12501231233"


class Clock:
    """A settable clock: each call advances a millisecond, so rows keep a strict order."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 24, 12, 0, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(milliseconds=1)
        return self.now


@pytest.fixture
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty store: SQLite unless the test parametrizes `db` with "postgresql"."""
    with migrated_database(request, tmp_path, getattr(request, "param", "sqlite")) as database:
        yield database


@dataclass
class Login:
    account_id: int
    username: str
    password: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass
class Api:
    client: TestClient
    gateway: Gateway
    db: Database
    clock: Clock
    admin: Login
    owner: Login
    subuser: Login
    other: Login
    data_dir: Path
    logins: dict[str, Login] = field(default_factory=dict)


def _login(db: Database, now: dt.datetime, username: str, role: Role, parent_id: int | None = None) -> Login:
    password = f"pw-{username.split('@')[0]}"
    with db.transaction() as session:
        owner = session.get(Account, parent_id) if parent_id is not None else None
        account = accounts.create_account(
            session, username=username, password=password, now=now, role=role, parent=owner, hasher=HASHER
        )
        if role == Role.OWNER:
            ledger.top_up(session, account.id, BALANCE, now)
        _, key = accounts.create_api_key(session, account, now, "test")
        return Login(account.id, account.username, password, key)


@pytest.fixture
def api(db: Database, tmp_path: Path) -> Iterator[Api]:
    clock = Clock()
    settings = smsc_elsewhere(Settings(data_dir=tmp_path / "data", fetch=FetchSettings(allow_private=True)))
    gateway = Gateway(settings, db, now=clock, hasher=HASHER)  # the seeded hashes are current
    now = clock()
    with db.transaction() as session:
        rating.import_rates(session, rating.parse_rates_csv(RATES_CSV))
    admin = _login(db, now, "admin@example.com", Role.ADMINISTRATOR)
    owner = _login(db, now, "owner@example.com", Role.OWNER)
    subuser = _login(db, now, "sub@example.com", Role.SUBUSER, owner.account_id)
    other = _login(db, now, "other@example.com", Role.OWNER)
    with TestClient(create_app(settings, gateway)) as client:
        yield Api(client, gateway, db, clock, admin, owner, subuser, other, tmp_path / "data")


@pytest.fixture
def wav_server() -> Iterator[str]:
    """The URL of samples/prompts/short.wav served by a real HTTP server on 127.0.0.1."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    directory = Path(__file__).resolve().parents[3] / "samples" / "prompts"
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/short.wav"
    server.shutdown()
    server.server_close()
    thread.join(5)
